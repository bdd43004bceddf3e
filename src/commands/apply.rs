//! `deploy apply`: plan then carry the plan out after confirmation, or carry out a saved plan
//! exactly after checking that nothing it was made from has moved.

use super::show::read_plan;
use super::{refuse_conflicts, Context};
use crate::apply::wait::{wait as rollout_wait, RolloutResult, Settings};
use crate::apply::{self, progress::StderrReporter, Refs};
use crate::aws::provider::AwsProvider;
use crate::aws::Aws;
use crate::cli::{AwsArgs, StackArgs, WaitArgs};
use crate::lock::{self, Held, LockOptions, Operation};
use crate::observe;
use crate::output;
use crate::plan::Plan;
use crate::printer::{json_output, preview_plan, to_json};
use crate::report;
use crate::rollout::Outcome;
use crate::run::Failure;
use crate::saved;
use crate::spec::{self, LoadedStack};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a rollout wait reads the services: one DescribeServices per cluster each time
/// (both services of the reference stack share one call). ECS's state changes take seconds
/// (task placement, image pull, health checks every 30 s by default), so 5 s shows each change
/// soon enough while staying far below ECS's DescribeServices rate limit.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Applies a saved plan exactly: re-reads what it was made from and refuses, changing
/// nothing, if any of it moved.
pub async fn apply_saved(
    file: &Path,
    aws_args: &AwsArgs,
    wait: &WaitArgs,
    lock: &LockOptions,
    ttl: Option<Duration>,
) -> Result<(), Failure> {
    let saved = read_plan(file)?;
    // The release alone decides: builds of other commits of the same release apply it.
    if !crate::version::can_apply_plan_from(&saved.tool_version) {
        return Err(Failure::Refused(format!(
            "the plan was made by deploy {}, this is deploy {}: plan again with this version; nothing was changed",
            saved.tool_version,
            crate::version::RELEASE
        )));
    }
    let loaded = spec::parse(Path::new(&saved.stack_file), &saved.stack_text)?;
    let aws = Aws::connect(aws_args.profile.as_deref(), Some(&saved.plan.region)).await?;
    let account = aws.account_id().await?;
    if account != saved.plan.account_id {
        return Err(Failure::Refused(format!(
            "the plan was made for account {}, these credentials are for account {account}; nothing was changed",
            saved.plan.account_id
        )));
    }
    // Held from before the staleness check until the rollout waits end.
    let s = &loaded.stack;
    let guard = lock::take_for(&aws, &s.stack, &s.environment, Operation::Apply, lock).await?;
    let lookups = observe::lookups(&aws, &loaded.stack).await?;
    let world = observe::observe(&aws, &loaded.stack, &lookups, &saved.desired).await?;
    let why = saved::staleness(&saved, &lookups, &world);
    if !why.is_empty() {
        return Err(Failure::Refused(format!(
            "the plan in {} is stale, nothing was changed; plan again. Since it was made:\n  {}",
            file.display(),
            why.join("\n  ")
        )));
    }
    preview_plan(&saved.plan);
    let held = guard.held();
    let owner = Owner::of(&loaded.stack);
    let done = execute_plan(&saved.plan, &aws, &owner, saved.refs.clone(), wait, &held).await;
    record_outcome(&held, &loaded, false, ttl, done).await
}

/// After an apply's steps: the environment's record notes the apply (also when a rollout
/// did not complete: the steps were made); after a complete destroy the record goes.
async fn record_outcome(
    held: &Held,
    loaded: &LoadedStack,
    destroy: bool,
    ttl: Option<Duration>,
    done: Result<(), Failure>,
) -> Result<(), Failure> {
    match (&done, destroy) {
        (Ok(()), true) => held.forget_environment().await?,
        (Ok(()) | Err(Failure::Rollouts { .. }), false) => {
            held.record_apply(&loaded.stack, &loaded.text, ttl).await?
        }
        _ => {}
    }
    done
}

fn confirm(destroy: bool) -> Result<bool, Failure> {
    // The answer may come from a terminal or a pipe; an empty pipe (EOF) is a no.
    let stdin = std::io::stdin();
    eprint!(
        "\nDo you want to {}? Only 'yes' will be accepted: ",
        if destroy {
            "destroy these resources"
        } else {
            "perform these actions"
        }
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Other(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

/// How `converge` plans and carries out.
pub struct Converge<'a> {
    pub auto_approve: bool,
    /// Plan the removal of everything owned.
    pub destroy: bool,
    pub delete_data: bool,
    pub targets: &'a [String],
    pub wait: &'a WaitArgs,
    pub lock: LockOptions,
    /// `apply --ttl`.
    pub ttl: Option<Duration>,
}

/// Takes the environment's lock, plans (the removal of everything owned, with `destroy`),
/// asks unless `auto_approve`, then carries the plan out and notes it in the environment's
/// record. Shared by `apply` and `destroy`.
pub async fn converge(
    stack_args: &StackArgs,
    aws_args: &AwsArgs,
    how: Converge<'_>,
) -> Result<(), Failure> {
    let Converge {
        auto_approve,
        destroy,
        delete_data,
        targets,
        wait,
        lock,
        ttl,
    } = how;
    let op = if destroy {
        Operation::Destroy
    } else {
        Operation::Apply
    };
    let mut ctx = Context::load_locked(stack_args, aws_args, targets, (op, &lock)).await?;
    ctx.delete_data |= delete_data;
    let planned = ctx.plan(destroy, &BTreeMap::new()).await?;
    preview_plan(&planned.plan);
    refuse_conflicts(&planned.plan)?;
    if planned.plan.has_changes() && !auto_approve && !confirm(destroy)? {
        return Err(Failure::Other("not confirmed; nothing was changed".into()));
    }
    let held = ctx
        .lock
        .as_ref()
        .expect("load_locked holds the lock")
        .held();
    let done = execute_plan(
        &planned.plan,
        &ctx.aws,
        &Owner::of(&ctx.loaded.stack),
        planned.refs,
        wait,
        &held,
    )
    .await;
    record_outcome(&held, &ctx.loaded, destroy, ttl, done).await
}

/// Whose resources a plan's steps create and tag.
pub struct Owner {
    pub stack: String,
    pub environment: String,
    /// The ownership tags every create and adoption puts on.
    pub ownership: crate::model::Tags,
}

impl Owner {
    pub fn of(stack: &spec::Stack) -> Owner {
        Owner {
            stack: stack.stack.clone(),
            environment: stack.environment.clone(),
            ownership: spec::ownership_tags(stack),
        }
    }
}

/// Carries out a plan with Ctrl-C handling, follows the rollouts it started (unless
/// `--no-wait`), and prints the final report.
pub(crate) async fn execute_plan(
    plan: &Plan,
    aws: &Aws,
    owner: &Owner,
    refs: Refs,
    wait: &WaitArgs,
    held: &Arc<Held>,
) -> Result<(), Failure> {
    if !plan.has_changes() {
        if json_output() {
            let report = apply::Report {
                outcomes: vec![],
                interrupted: false,
            };
            println!("{}", to_json(&report::apply_report(plan, &report, &[])));
        }
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nInterrupt: finishing the changes in flight, starting no new one…");
            flag.store(true, Ordering::SeqCst);
        }
    });
    let provider = AwsProvider {
        aws: aws.clone(),
        stack: owner.stack.clone(),
        environment: owner.environment.clone(),
        ownership: owner.ownership.clone(),
        started: Default::default(),
        lock: Some(held.clone()),
    };
    let report = apply::execute(plan, &provider, &StderrReporter, refs, stop.clone())
        .await
        .map_err(Failure::Other)?;
    eprint!("\n{}", output::report_text(&report));
    let mut followed = provider
        .started
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    followed.sort_by(|a, b| a.address.cmp(&b.address));
    let rollouts = if followed.is_empty() {
        vec![]
    } else if wait.no_wait || !report.succeeded() {
        let why = if wait.no_wait {
            "--no-wait"
        } else {
            "the apply did not complete"
        };
        followed
            .iter()
            .map(|f| RolloutResult::not_waited(f, why))
            .collect()
    } else {
        eprintln!(
            "\nFollowing {} service change(s) until they run what was applied (--wait-timeout {}s, --no-wait to skip):",
            followed.len(),
            wait.wait_timeout.as_secs()
        );
        let settings = Settings {
            timeout: wait.wait_timeout,
            interval: POLL_INTERVAL,
            max_task_failures: wait.max_task_failures,
        };
        rollout_wait(
            &followed,
            &provider,
            &StderrReporter,
            &settings,
            stop.clone(),
        )
        .await
    };
    let waited = !rollouts.is_empty() && !wait.no_wait && report.succeeded();
    if waited {
        eprint!("\n{}", output::rollouts_text(&rollouts));
    }
    if json_output() {
        println!(
            "{}",
            to_json(&report::apply_report(plan, &report, &rollouts))
        );
    }
    if !report.succeeded() {
        return Err(Failure::Incomplete {
            interrupted: report.interrupted,
        });
    }
    let interrupted = stop.load(Ordering::SeqCst);
    let open = rollouts
        .iter()
        .filter(|r| r.outcome != Outcome::Completed)
        .count();
    if waited && open > 0 {
        if interrupted {
            eprintln!(
                "Stopped waiting; ECS goes on with the deployments. See how they end with: deploy status"
            );
        }
        eprintln!("Apply not complete: {open} rollout(s) did not complete.");
        return Err(Failure::Rollouts { interrupted });
    }
    if wait.no_wait && !rollouts.is_empty() {
        eprintln!("Apply done; its rollouts were not followed (--no-wait): see deploy status.");
    } else {
        eprintln!("Apply complete: the services run what was applied.");
    }
    Ok(())
}
