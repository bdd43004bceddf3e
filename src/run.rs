//! Runs one command: sets up logging, output and the async runtime, dispatches to the
//! command's module (`commands/`), and is the one place that maps outcomes to exit codes
//! (0 success, 1 error or refused plan, 130 interrupted).

use crate::aws::AwsError;
use crate::cli::{Cli, Command};
use crate::commands;
use crate::output;
use crate::printer;
use crate::spec;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    Spec(spec::SpecErrors),
    Aws(Box<AwsError>),
    /// The plan cannot be applied (ownership conflicts).
    Refused(String),
    /// Some steps failed or never started.
    Incomplete {
        interrupted: bool,
    },
    /// The steps were done but a rollout they started did not complete (or was not waited
    /// for because of Ctrl-C).
    Rollouts {
        interrupted: bool,
    },
    Other(String),
}

impl From<spec::SpecErrors> for Failure {
    fn from(e: spec::SpecErrors) -> Self {
        Failure::Spec(e)
    }
}
impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure::Aws(Box::new(e))
    }
}

/// `-v`: what deploy does (info); `-vv`: every step and the SDK's calls (debug); `-vvv`:
/// everything, the SDK's own tracing included. Logs go to stderr. Secret values are never
/// logged: deploy holds one only between GetRandomPassword and CreateSecret/PutSecretValue,
/// and the SDK redacts sensitive fields and bodies (a test searches -vvv output for one).
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let (own, sdk) = match verbose {
        0 => return,
        1 => (LevelFilter::INFO, LevelFilter::WARN),
        2 => (LevelFilter::DEBUG, LevelFilter::DEBUG),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let filter = Targets::new().with_target("deploy", own).with_default(sdk);
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}

pub fn main(cli: Cli) -> i32 {
    use std::io::IsTerminal;
    init_logging(cli.verbose);
    let no_color = std::env::var("NO_COLOR").ok();
    let style = output::Style::resolve(
        cli.color,
        std::io::stdout().is_terminal(),
        no_color.as_deref(),
    );
    let style = output::Style {
        full: cli.full,
        ..style
    };
    if let Err(m) = printer::init(style, cli.format, &cli.command) {
        eprintln!("error: {m}");
        return 1;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(f) => {
            match &f {
                Failure::Spec(e) => eprintln!("{e}"),
                Failure::Aws(e) => eprintln!("error: {e}"),
                Failure::Refused(m) | Failure::Other(m) => eprintln!("error: {m}"),
                Failure::Incomplete { .. } | Failure::Rollouts { .. } => {}
            }
            match f {
                Failure::Incomplete { interrupted: true }
                | Failure::Rollouts { interrupted: true } => 130,
                _ => 1,
            }
        }
    }
}

/// Runs the command; `Ok` carries the exit code of a success (2: `--detailed-exitcode` with
/// changes).
async fn dispatch(mut cli: Cli) -> Result<i32, Failure> {
    // `destroy --stack S --env E` works without a stack file: it needs the name itself.
    let env = cli.env.clone();
    cli.command
        .select_env(cli.env.take())
        .map_err(Failure::Other)?;
    match cli.command {
        Command::Validate { stack } => commands::validate::run(&stack).map(|()| 0),
        Command::Render { stack, aws, out } => {
            commands::render::run(&stack, &aws, &out).await.map(|()| 0)
        }
        Command::Plan {
            stack,
            aws,
            destroy,
            delete_data,
            out,
            detailed_exitcode,
            targets,
        } => {
            commands::plan::run(commands::plan::PlanArgs {
                stack: &stack,
                aws: &aws,
                destroy,
                delete_data,
                out,
                detailed_exitcode,
                targets: &targets,
            })
            .await
        }
        Command::Apply {
            stack,
            aws,
            plan_file: Some(file),
            targets,
            delete_data,
            wait,
            lock,
            ttl,
            ..
        } => {
            if stack.file_arg.is_some()
                || aws.region.is_some()
                || !targets.is_empty()
                || delete_data
            {
                return Err(Failure::Other(
                    "a saved plan carries its own stack, region, targets and deletions: -f/--file, --region, --target and --delete-data cannot be combined with a plan file".into(),
                ));
            }
            // A saved plan was reviewed already: it never asks.
            commands::apply::apply_saved(
                &file,
                stack.env.as_deref(),
                &aws,
                &wait,
                &(&lock).into(),
                ttl,
            )
            .await
            .map(|()| 0)
        }
        Command::Apply {
            stack,
            aws,
            auto_approve,
            plan_file: None,
            targets,
            delete_data,
            wait,
            lock,
            ttl,
        } => commands::apply::converge(
            &stack,
            &aws,
            commands::apply::Converge {
                auto_approve,
                destroy: false,
                delete_data,
                targets: &targets,
                wait: &wait,
                lock: (&lock).into(),
                ttl,
            },
        )
        .await
        .map(|()| 0),
        Command::Destroy {
            aws,
            lock,
            stack_name,
            expired,
            dry_run,
            ..
        } if expired || stack_name.is_some() => {
            let how = commands::reap::Reap {
                aws: &aws,
                dry_run,
                lock: (&lock).into(),
            };
            match (stack_name, env) {
                (Some(stack), Some(env)) => commands::reap::one(&how, &stack, &env).await,
                _ => commands::reap::expired(&how).await,
            }
            .map(|()| 0)
        }
        // With a stack file, what a destroy removes is its plan: `plan --destroy` shows it.
        Command::Destroy { dry_run: true, .. } => Err(Failure::Refused(
            "--dry-run goes with --expired or --stack NAME --env ENV; with a stack file, \
             `deploy plan --destroy` lists what destroy would remove. Nothing was changed"
                .into(),
        )),
        Command::Destroy {
            stack,
            aws,
            auto_approve,
            delete_data,
            lock,
            ..
        } => commands::destroy::run(&stack, &aws, auto_approve, delete_data, (&lock).into())
            .await
            .map(|()| 0),
        Command::Status { stack, aws } => commands::status::run(&stack, &aws).await,
        Command::Rollback {
            stack,
            aws,
            services,
            to,
            auto_approve,
            wait,
            lock,
        } => commands::rollback::run(
            &stack,
            &aws,
            &services,
            to.as_deref(),
            auto_approve,
            &wait,
            &(&lock).into(),
        )
        .await
        .map(|()| 0),
        Command::Policy {
            stack,
            role,
            account,
            region,
        } => commands::policy::run(&stack, role, &account, region.as_deref()).map(|()| 0),
        Command::Show { plan_file } => commands::show::run(&plan_file).map(|()| 0),
        Command::Import {
            stack,
            aws,
            address,
            id,
            lock,
        } => commands::import::run(&stack, &aws, &address, &id, &(&lock).into())
            .await
            .map(|()| 0),
        Command::Ls { aws, expired } => commands::ls::run(&aws, expired).await.map(|()| 0),
        Command::ForceUnlock { lock_id, aws } => commands::force_unlock::run(&lock_id, &aws)
            .await
            .map(|()| 0),
        Command::Completions { shell } => commands::completions::run(shell).map(|()| 0),
        Command::Man { command } => commands::man::run(command.as_deref()).map(|()| 0),
    }
}
