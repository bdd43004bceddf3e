//! Command-line arguments (clap derive types only; behaviour lives in `run`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "deploy",
    version,
    about = "Plan and apply a Prometheus monitoring stack on AWS ECS Fargate"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct StackArgs {
    /// The stack file.
    #[arg(short = 'f', long = "file", default_value = crate::spec::DEFAULT_STACK_FILE)]
    pub file: PathBuf,
    /// Directory of the templates the stack names.
    #[arg(long, default_value = "templates")]
    pub templates: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct AwsArgs {
    /// AWS region (else the stack's `region`, else the AWS configuration).
    #[arg(long)]
    pub region: Option<String>,
    /// AWS profile from the shared config files.
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the stack offline: schema, references, sizes, templates. Makes no AWS call.
    Validate {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Do the lookups and write every rendered file and task definition request to DIR.
    Render {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare the stack with live AWS and print the plan.
    Plan {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Plan the removal of everything the stack owns.
        #[arg(long)]
        destroy: bool,
    },
    /// Plan, then carry the plan out.
    Apply {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Remove what this stack owns, and nothing else.
    Destroy {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[arg(long)]
        auto_approve: bool,
    },
    /// Adopt an existing resource into the stack: adds an `imports` entry to the stack file
    /// and shows the plan (the next apply tags and converges it).
    Import {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// The resource's address in the stack, e.g. log_group.prometheus.
        address: String,
        /// The existing resource's id (log group name, role name, sg-…, cluster name,
        /// task definition family, service name).
        id: String,
    },
}
