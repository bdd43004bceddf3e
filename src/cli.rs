//! Command-line arguments (clap derive types only; behaviour lives in `run`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "deploy",
    version = crate::version::LONG,
    about = "Plan and apply a Prometheus monitoring stack on AWS ECS Fargate",
    after_long_help = "Exit codes: 0 success; 1 bad input, an AWS error, a refused plan or a failed \
        apply; 2 changes found (plan --detailed-exitcode); 130 an apply interrupted with Ctrl-C.\n\n\
        The stack file is stacks/monitoring.yaml unless -f names another. Credentials and region \
        come from the standard AWS configuration (--profile or AWS_PROFILE, --region or the \
        stack's region or AWS_REGION). One command's own page: deploy man COMMAND."
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
    /// The environment to work on (`production`, `pr-123`…): its names and values come from the
    /// stack's `environments:` and naming rule. Default: the stack's `environment`.
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
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
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file_arg: Option<PathBuf>,
    /// Directory of the templates the stack names.
    #[arg(long, default_value = "templates")]
    pub templates: PathBuf,
    /// The global `--env`, handed down by [`Command::select_env`].
    #[arg(skip)]
    pub env: Option<String>,
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

/// How `apply` follows the rollouts it starts.
#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// Return right after the calls, without following the rollouts they started.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this long (e.g. 90s, 15m, 1h); ECS goes on with the deployment.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// Fail a rollout after this many failed tasks of the new revision (below the circuit
    /// breaker's minimum threshold of 3, so a crash loop fails fast).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub max_task_failures: i32,
    /// When a rollout fails or times out, stop its deployment with a rollback
    /// (StopServiceDeployment) and wait, up to --wait-timeout again, for the previous revision.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// How often the wait reads the services: one DescribeServices per cluster each time (both
    /// services of the reference stack share one call). ECS's state changes take seconds (task
    /// placement, image pull, health checks every 30 s by default): 5 s shows each change soon
    /// while staying far below ECS's DescribeServices rate limit.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub poll_interval: std::time::Duration,
}

impl WaitArgs {
    /// No rollout to follow: a destroy deletes services, it starts none.
    pub fn none() -> WaitArgs {
        WaitArgs {
            no_wait: true,
            wait_timeout: std::time::Duration::ZERO,
            max_task_failures: 0,
            rollback_on_failure: false,
            poll_interval: std::time::Duration::ZERO,
        }
    }
}

/// How a command that changes a stack environment waits for its lock.
#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// Wait up to this long for the environment's lock when another deploy holds it (e.g.
    /// 5m); by default fail at once, naming the holder.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// A waiter takes over a lock it has seen unchanged (no heartbeat) for this long, on its
    /// own clock. Holders renew every 30 s (a quarter of this when shorter).
    #[arg(long, value_name = "DURATION", env = "DEPLOY_LOCK_STALE_AFTER", default_value = "2m",
          value_parser = parse_duration)]
    pub lock_stale_after: std::time::Duration,
}

/// `90s`, `15m`, `1h`, `2d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: use a number with s, m, h or d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
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
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        lock: LockArgs,
        /// The environment expires this long after this apply (s, m, h or d; e.g. 72h):
        /// `deploy destroy --expired` removes it then. Overrides the stack's `ttl`.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// Return services to the last revision that completed a rollout (or the one named), and
    /// wait like apply. The stack file still describes the newer revision: the next plan warns
    /// that it re-deploys it.
    Rollback {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Services to roll back, by name or address (`grafana`, `ecs_service.grafana`);
        /// default: every service of the stack.
        #[arg(value_name = "SERVICE")]
        services: Vec<String>,
        /// The revision to return to: `7`, `grafana-task:7` or its ARN (one service only).
        #[arg(long, value_name = "REVISION")]
        to: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        lock: LockArgs,
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
        #[command(flatten)]
        lock: LockArgs,
        /// Without the stack file: destroy the environment `--env` of stack NAME, found by
        /// its ownership tags (data-bearing resources go only when it was disposable;
        /// protected environments are refused).
        #[arg(
            long = "stack",
            value_name = "NAME",
            requires = "env",
            conflicts_with = "file_arg"
        )]
        stack_name: Option<String>,
        /// Without the stack file: destroy every expired, unprotected environment in the
        /// account and region (`apply --ttl` or the stack's `ttl` set the expiry).
        #[arg(long, conflicts_with_all = ["stack_name", "file_arg"])]
        expired: bool,
        /// With --stack or --expired: list exactly what would be removed, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Is the stack healthy now? Every service's deployments, tasks, targets, stopped tasks
    /// and events (read-only). Exit 0 when healthy, 2 when not, 1 on error.
    Status {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Print the least-privilege IAM policy a role needs for this stack (offline: makes no
    /// AWS call). `ci`: what plan, render and show read; `operator`: also what apply, destroy
    /// and import write; `reaper`: what destroy needs for any stack's resources.
    Policy {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, value_enum, default_value = "ci")]
        role: crate::policy::Role,
        /// The account the policy is for (its ARNs name it); default any (`*`).
        #[arg(long, default_value = "*")]
        account: String,
        /// The region (else the stack's `region`).
        #[arg(long)]
        region: Option<String>,
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
        #[command(flatten)]
        lock: LockArgs,
    },
    /// List every stack environment in the account and region (no stack file needed): its
    /// resources by kind, when it was created and last applied and by whom, its expiry, its
    /// lock and the rough monthly cost of its Fargate tasks.
    Ls {
        #[command(flatten)]
        aws: AwsArgs,
        /// Only the environments whose expiry has passed.
        #[arg(long)]
        expired: bool,
    },
    /// Remove a stack environment's lock now, whoever holds it (LOCK_ID as the holder's
    /// details name it). Only for a holder that is gone: a live one stops before its next
    /// write.
    ForceUnlock {
        /// The lock id, as an error naming the holder shows it.
        lock_id: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Print a shell completion script (e.g. `deploy completions bash > ~/.local/share/bash-completion/completions/deploy`).
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page: deploy(1), or deploy-COMMAND(1) for one command.
    Man {
        /// A command whose own page to print (e.g. plan).
        command: Option<String>,
    },
}

impl Command {
    /// Hands the global `--env` to the command's stack arguments (a command that reads a stack
    /// names its [`StackArgs`] here). `Err` when the command takes no environment.
    pub fn select_env(&mut self, env: Option<String>) -> Result<(), String> {
        let stack = match self {
            Command::Validate { stack }
            | Command::Render { stack, .. }
            | Command::Plan { stack, .. }
            | Command::Apply { stack, .. }
            | Command::Destroy { stack, .. }
            | Command::Status { stack, .. }
            | Command::Policy { stack, .. }
            | Command::Import { stack, .. }
            | Command::Rollback { stack, .. } => stack,
            Command::Show { .. }
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Ls { .. }
            | Command::ForceUnlock { .. } => {
                return match env {
                    None => Ok(()),
                    Some(_) => Err("--env applies to commands that read a stack file".into()),
                }
            }
        };
        stack.env = env;
        Ok(())
    }
}

/// The shells `deploy completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
