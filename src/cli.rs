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
    /// Colour: auto (a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Output format of plan, show, apply and destroy: text, or json (a versioned document
    /// on stdout, see schemas/deploy-v1.schema.json; human text goes to stderr), or markdown
    /// (plan and show only: a pull request comment of at most 65,536 characters).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub format: Format,
    /// Plans print every value in full: delivered files, IAM policies and containers as JSON
    /// (by default a file is its path, size and sha256, a policy one line per statement, a
    /// container its image, size, ports and names of its environment and secrets).
    #[arg(long, global = true)]
    pub full: bool,
    /// More detail on stderr: -v what is done, -vv every step and AWS call, -vvv the AWS
    /// SDK's own tracing. Secret values never appear at any level.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args, Clone)]
pub struct StackArgs {
    /// The stack file [default: stacks/monitoring.yaml].
    #[arg(short = 'f', long = "file")]
    pub file_arg: Option<PathBuf>,
    /// Directory of the templates the stack names.
    #[arg(long, default_value = "templates")]
    pub templates: PathBuf,
}

impl StackArgs {
    pub fn file(&self) -> PathBuf {
        self.file_arg
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::spec::DEFAULT_STACK_FILE))
    }
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
        /// Deletions also take resources that hold data (generated secrets); without it they
        /// are kept and listed. A stack with `disposable: true` always deletes them.
        #[arg(long)]
        delete_data: bool,
        /// Also write the plan to FILE, for `deploy show` and `deploy apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error (Terraform's
        /// convention).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Limit the plan to ADDRESS and what it depends on (repeatable).
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
    },
    /// Plan, then carry the plan out; or carry out a saved plan exactly.
    Apply {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// A plan saved with `deploy plan --out`: applied as reviewed, without re-planning
        /// and without asking; refused if anything it was made from has changed.
        plan_file: Option<PathBuf>,
        /// Limit the apply to ADDRESS and what it depends on (repeatable).
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
        /// Deletions also take resources that hold data (see `plan --delete-data`).
        #[arg(long)]
        delete_data: bool,
    },
    /// Print a saved plan.
    Show {
        /// A plan saved with `deploy plan --out`.
        plan_file: PathBuf,
    },
    /// Remove what this stack owns, and nothing else.
    Destroy {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[arg(long)]
        auto_approve: bool,
        /// Also delete what holds data (generated secrets); without it they are kept and
        /// listed. A stack with `disposable: true` always deletes them.
        #[arg(long)]
        delete_data: bool,
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
