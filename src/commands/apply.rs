//! `deploy apply`: plan then carry the plan out after confirmation, or carry out a saved plan
//! exactly after checking that nothing it was made from has moved.

use super::show::read_plan;
use super::{refuse_conflicts, Context};
use crate::apply::wait::{wait as rollout_wait, RolloutResult, Settings};
use crate::apply::{self, progress::StderrReporter, Refs};
use crate::aws::ecs_rollouts;
use crate::aws::provider::AwsProvider;
use crate::aws::Aws;
use crate::cli::{AwsArgs, StackArgs, WaitArgs};
use crate::lock::{self, Held, LockOptions, Operation};
use crate::observe;
use crate::output;
use crate::plan::Plan;
use crate::printer::{json_output, preview_plan, to_json};
use crate::report;
use crate::rollout::Followed;
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

/// Applies a saved plan exactly: re-reads what it was made from and refuses, changing
/// nothing, if any of it moved.
pub async fn apply_saved(
    file: &Path,
    env: Option<&str>,
    aws_args: &AwsArgs,
    wait: &WaitArgs,
    lock: &LockOptions,
    ttl: Option<Duration>,
) -> Result<(), Failure> {
    let saved = read_plan(file)?;
    if let Some(env) = env.filter(|e| *e != saved.plan.environment) {
        return Err(Failure::Refused(format!(
            "the plan in {} is for environment `{}`, not `{env}`; nothing was changed",
            file.display(),
            saved.plan.environment
        )));
    }
    // The release alone decides: builds of other commits of the same release apply it.
    if !crate::version::can_apply_plan_from(&saved.tool_version) {
        return Err(Failure::Refused(format!(
            "the plan was made by deploy {}, this is deploy {}: plan again with this version; nothing was changed",
            saved.tool_version,
            crate::version::RELEASE
        )));
    }
    let mut loaded = spec::parse(Path::new(&saved.stack_file), &saved.stack_text)?;
    spec::environments::select(&mut loaded, Some(&saved.plan.environment))?;
    crate::protection::refuse_plan(&loaded.stack, &saved.plan)?;
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

/// Asks on the terminal whether to carry out `plan`, after saying where and what: `yes` for
/// an apply, the environment's name for a destroy. Without a terminal it refuses: nobody is
/// there to answer, and `--auto-approve` is how a script says yes.
fn confirm(plan: &Plan) -> Result<(), Failure> {
    let verb = if plan.destroy { "destroy" } else { "apply" };
    let s = plan.summary();
    let what = format!(
        "Account {}, region {}, stack {}, environment {}:\n  {} to add, {} to change, {} to replace, {} to destroy.",
        plan.account_id,
        plan.region,
        plan.stack,
        plan.environment,
        s.add,
        s.change,
        s.replace,
        s.destroy
    );
    if plan.destroy {
        let question = format!(
            "Destroy environment {} of stack {}? Type the environment's name to confirm: ",
            plan.environment, plan.stack
        );
        ask(verb, &what, &question, &plan.environment)
    } else {
        ask(
            verb,
            &what,
            "Do you want to perform these actions? Only 'yes' will be accepted: ",
            "yes",
        )
    }
}

/// Asks `question` on the terminal after saying `what` will happen; Ok only when the answer
/// is `expected`. Without a terminal it refuses: nobody is there to answer, and
/// `--auto-approve` is how a script says yes. Shared by apply, destroy and rollback.
pub(crate) fn ask(verb: &str, what: &str, question: &str, expected: &str) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Refused(format!(
            "{verb} asks for confirmation on a terminal, and there is none: pass --auto-approve to `deploy {verb}` to go ahead without asking; nothing was changed"
        )));
    }
    eprintln!("\n{what}");
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Other(format!("cannot read the answer: {e}")))?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(Failure::Other("not confirmed; nothing was changed".into()))
    }
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
    let loaded = super::load_valid(stack_args)?;
    crate::protection::refuse_early(&loaded.stack, destroy, delete_data)?;
    if !destroy {
        // Like an ownership conflict, but known offline: refused before any AWS call.
        super::lint::refuse_errors(&loaded, stack_args)?;
    }
    let mut ctx = Context::load_from(
        loaded,
        stack_args,
        aws_args,
        true,
        targets,
        Some((op, &lock)),
    )
    .await?;
    ctx.delete_data |= delete_data;
    let planned = ctx.plan(destroy, &BTreeMap::new()).await?;
    preview_plan(&planned.plan);
    refuse_conflicts(&planned.plan)?;
    crate::protection::refuse_plan(&ctx.loaded.stack, &planned.plan)?;
    if planned.plan.has_changes() && !auto_approve {
        confirm(&planned.plan)?;
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
            println!(
                "{}",
                to_json(&report::apply_report(plan, &report, &[], &[]))
            );
        }
        return Ok(());
    }
    let stop = interrupt_flag("\nInterrupt: finishing the changes in flight, starting no new one…");
    let provider = AwsProvider {
        aws: aws.clone(),
        stack: owner.stack.clone(),
        environment: owner.environment.clone(),
        ownership: owner.ownership.clone(),
        started: Default::default(),
        published: Default::default(),
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
    let why_not = (!report.succeeded()).then_some("the apply did not complete");
    let rollouts = follow_rollouts(&followed, &provider, wait, stop.clone(), why_not).await;
    let rolled: Vec<String> = rollouts
        .iter()
        .filter(|r| r.outcome == Outcome::Completed)
        .map(|r| r.address.clone())
        .collect();
    let reloads = follow_reloads(plan, &provider, wait, stop.clone(), why_not, &rolled).await;
    if json_output() {
        println!(
            "{}",
            to_json(&report::apply_report(plan, &report, &rollouts, &reloads))
        );
    }
    if !report.succeeded() {
        return Err(Failure::Incomplete {
            interrupted: report.interrupted,
        });
    }
    rollouts_outcome(&rollouts, wait, &stop, "Apply")?;
    let unloaded = reloads
        .iter()
        .filter(|r| !matches!(r.outcome.as_str(), "completed" | "not_waited"))
        .count();
    if unloaded > 0 {
        eprintln!("Apply not complete: {unloaded} reload(s) of config files did not complete.");
        return Err(Failure::Rollouts {
            interrupted: stop.load(Ordering::SeqCst),
        });
    }
    if !plan.deregister_revisions.is_empty() {
        if wait.no_wait {
            eprintln!(
                "Old revisions left registered: the rollouts were not followed (--no-wait); the next apply deregisters them."
            );
        } else {
            deregister_old_revisions(plan, aws).await;
        }
    }
    if !wait.no_wait {
        record_config_manifests(plan, aws).await;
    }
    if wait.no_wait && !rollouts.is_empty() {
        eprintln!("Apply done; its rollouts were not followed (--no-wait): see deploy status.");
    } else {
        eprintln!("Apply complete: the services run what was applied.");
    }
    Ok(())
}

/// After a complete apply: records on the revision each reloading service runs the config
/// manifest version its tasks loaded, so `deploy rollback` to that revision brings its files
/// back too. A failure is reported, not fatal (a rollback then keeps the current files).
async fn record_config_manifests(plan: &Plan, aws: &Aws) {
    let Some(bucket) = plan.reload_services.first().map(|s| s.bucket.clone()) else {
        return;
    };
    let services: Vec<(String, String, String)> = plan
        .reload_services
        .iter()
        .map(|s| (s.address.clone(), s.cluster.clone(), s.service.clone()))
        .collect();
    let result = async {
        let states = ecs_rollouts::poll_clusters(aws, &services).await?;
        for (service, state) in plan.reload_services.iter().zip(&states) {
            let Some((_, version)) =
                crate::aws::s3::read_manifest(aws, &bucket, &service.family).await?
            else {
                continue;
            };
            ecs_rollouts::record_config_manifest(aws, &state.task_definition, &version).await?;
        }
        Ok::<(), crate::aws::AwsError>(())
    };
    if let Err(e) = result.await {
        eprintln!("warning: could not record which config files the revisions run ({e}); a rollback keeps the current files");
    }
}

/// Revision hygiene, after every rollout completed: deregisters the plan's old revisions,
/// except any a service's deployment names now (read again: someone may have deployed one
/// since the plan). A failure is reported, not fatal: the services run what was applied.
async fn deregister_old_revisions(plan: &Plan, aws: &Aws) {
    let services: Vec<(String, String, String)> = plan
        .changes
        .iter()
        .filter_map(|c| match c.observed.as_ref().map(|o| &o.attrs) {
            Some(crate::model::Attrs::EcsService(s)) => {
                Some((c.address.to_string(), s.cluster.clone(), s.name.clone()))
            }
            _ => None,
        })
        .collect();
    let in_use: std::collections::BTreeSet<String> =
        match ecs_rollouts::poll_clusters(aws, &services).await {
            Ok(states) => states
                .iter()
                .flat_map(|st| st.deployments.iter().map(|d| d.task_definition.clone()))
                .collect(),
            Err(e) => {
                eprintln!("warning: old revisions left registered: {e}");
                return;
            }
        };
    let gone: Vec<String> = plan
        .deregister_revisions
        .iter()
        .filter(|arn| !in_use.contains(*arn))
        .cloned()
        .collect();
    match ecs_rollouts::deregister_revisions(aws, &gone).await {
        Ok(()) => eprintln!(
            "Deregistered {} old revision(s) (keep_revisions): {}",
            gone.len(),
            gone.iter()
                .map(|a| crate::rollout::revision_of(a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => eprintln!("warning: old revisions left registered: {e}"),
    }
}

/// Raised on Ctrl-C (after printing `message`): the engine starts no new change and the
/// rollout wait stops waiting.
pub(crate) fn interrupt_flag(message: &'static str) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{message}");
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Follows the rollouts `followed` started until they end (unless `--no-wait`, or `why_not`
/// says they cannot be waited for), records on each revision whose rollout completed that it
/// did (what `deploy rollback` returns to), and prints their report. Shared by apply and
/// rollback.
pub(crate) async fn follow_rollouts(
    followed: &[Followed],
    provider: &AwsProvider,
    wait: &WaitArgs,
    stop: Arc<AtomicBool>,
    why_not: Option<&str>,
) -> Vec<RolloutResult> {
    if followed.is_empty() {
        return vec![];
    }
    if let Some(why) = why_not.or(wait.no_wait.then_some("--no-wait")) {
        return followed
            .iter()
            .map(|f| RolloutResult::not_waited(f, why))
            .collect();
    }
    eprintln!(
        "\nFollowing {} service change(s) until they run what was applied (--wait-timeout {}s, --no-wait to skip):",
        followed.len(),
        wait.wait_timeout.as_secs()
    );
    let settings = Settings {
        timeout: wait.wait_timeout,
        interval: wait.poll_interval.max(Duration::from_secs(1)),
        max_task_failures: wait.max_task_failures,
        rollback_on_failure: wait.rollback_on_failure,
    };
    // A terminal gets the in-place view; logs and pipes one plain line per change of state.
    let rollouts = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let live = crate::apply::live::LiveReporter::new();
        rollout_wait(followed, provider, &live, &settings, stop).await
    } else {
        rollout_wait(followed, provider, &StderrReporter, &settings, stop).await
    };
    for r in rollouts.iter().filter(|r| r.outcome == Outcome::Completed) {
        // The record is a convenience for `rollback` (which falls back to ECS's own list of
        // successful deployments): a failure to write it fails nothing.
        if let Err(e) = ecs_rollouts::record_completed(&provider.aws, &r.task_definition).await {
            eprintln!(
                "warning: could not record the completed rollout of {} ({e}); `deploy rollback` will ask ECS instead",
                crate::rollout::revision_of(&r.task_definition)
            );
        }
    }
    eprint!("\n{}", output::rollouts_text(&rollouts));
    rollouts
}

/// Follows the reloads of the config files this apply published (the families whose files
/// changed): until every running task of the services using them reports the new set loaded
/// (its sidecar's status object), a task's server refuses it, `--wait-timeout` passes or
/// Ctrl-C. A refused set is taken back: the previous manifest version is made current again,
/// so no task starts on files a server refused. A family whose services this apply rolled to
/// completion is not waited for: their tasks started after their sidecar's first fetch
/// (dependsOn HEALTHY), on the files current then.
pub(crate) async fn follow_reloads(
    plan: &Plan,
    provider: &AwsProvider,
    wait: &WaitArgs,
    stop: Arc<AtomicBool>,
    why_not: Option<&str>,
    rolled: &[String],
) -> Vec<crate::reloads::ReloadResult> {
    use crate::reloads::{judge, Judgement, ReloadResult};
    let published: Vec<(String, crate::aws::s3::Published)> = provider
        .published
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, p)| p.changed)
        .collect();
    if published.is_empty() {
        return vec![];
    }
    let bucket = plan
        .reload_services
        .first()
        .map(|s| s.bucket.clone())
        .unwrap_or_default();
    let services_of = |family: &str| -> Vec<&crate::reloads::ReloadService> {
        plan.reload_services
            .iter()
            .filter(|s| s.family == family)
            .collect()
    };
    let mut results: Vec<ReloadResult> = published
        .iter()
        .map(|(family, p)| ReloadResult {
            family: family.clone(),
            services: services_of(family)
                .iter()
                .map(|s| s.address.clone())
                .collect(),
            manifest_version: p.manifest_version.clone().unwrap_or_default(),
            uploaded: p.uploaded.clone(),
            outcome: String::new(),
            reported: 0,
            running: 0,
            reason: String::new(),
            restored_version: None,
        })
        .collect();
    if let Some(why) = why_not.or(wait.no_wait.then_some("--no-wait")) {
        for r in &mut results {
            r.outcome = "not_waited".into();
            r.reason = why.to_string();
        }
        return results;
    }
    for r in &mut results {
        if !r.services.is_empty() && r.services.iter().all(|s| rolled.contains(s)) {
            r.outcome = "completed".into();
            r.reason = "its tasks were started by this apply's rollout, each after its sidecar fetched the files".into();
        }
    }
    let open = results.iter().filter(|r| r.outcome.is_empty()).count();
    if open == 0 {
        return results;
    }
    eprintln!(
        "\nFollowing {open} reload(s) of config files until every task loaded them (--wait-timeout {}s):",
        wait.wait_timeout.as_secs()
    );
    let aws = &provider.aws;
    let started = std::time::Instant::now();
    let interval = wait.poll_interval.max(Duration::from_secs(1));
    loop {
        for (r, (family, p)) in results.iter_mut().zip(&published) {
            if !r.outcome.is_empty() {
                continue;
            }
            let services: Vec<(String, String, String)> = services_of(family)
                .iter()
                .map(|s| (s.address.clone(), s.cluster.clone(), s.service.clone()))
                .collect();
            let running = match ecs_rollouts::poll_clusters(aws, &services).await {
                Ok(states) => states.iter().map(|s| s.running.max(0) as usize).sum(),
                Err(e) => {
                    eprintln!("warning: {e}");
                    continue;
                }
            };
            r.running = running;
            if running == 0 {
                r.outcome = "completed".into();
                r.reason = "no task runs: the next task starts on these files".into();
                eprintln!("{family}: {}", r.reason);
                continue;
            }
            let statuses = match crate::aws::s3::reload_statuses(aws, &bucket, family).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: {e}");
                    continue;
                }
            };
            match judge(&statuses, &r.manifest_version, running) {
                Judgement::Waiting { reported } => {
                    if reported != r.reported {
                        eprintln!("{family}: {reported} of {running} task(s) loaded the new files");
                    }
                    r.reported = reported;
                }
                Judgement::Completed { reported } => {
                    r.reported = reported;
                    r.outcome = "completed".into();
                    eprintln!(
                        "{family}: reloaded — {reported} of {running} task(s) run the new files"
                    );
                }
                Judgement::Failed { task, error } => {
                    r.outcome = "failed".into();
                    r.reason = format!("task {task}: {error}");
                    eprintln!("{family}: reload FAILED on task {task}: {error}; the servers keep the previous files");
                    if let Some(previous) = &p.previous_version {
                        match crate::aws::s3::restore_manifest(aws, &bucket, family, previous).await
                        {
                            Ok(v) => {
                                eprintln!("{family}: the previous files (manifest version {previous}) are current again");
                                r.restored_version = Some(v);
                            }
                            Err(e) => eprintln!(
                                "warning: could not restore the previous files of {family}: {e}"
                            ),
                        }
                    }
                }
            }
        }
        if results.iter().all(|r| !r.outcome.is_empty()) {
            break;
        }
        let (outcome, reason) = if stop.load(Ordering::SeqCst) {
            ("interrupted", "interrupted (Ctrl-C)".to_string())
        } else if started.elapsed() >= wait.wait_timeout {
            (
                "timed_out",
                format!(
                    "not every task reported the new files within --wait-timeout {}s (see deploy status)",
                    wait.wait_timeout.as_secs()
                ),
            )
        } else {
            tokio::time::sleep(interval).await;
            continue;
        };
        for r in results.iter_mut().filter(|r| r.outcome.is_empty()) {
            r.outcome = outcome.into();
            r.reason = reason.clone();
            eprintln!("{}: {reason}", r.family);
        }
        break;
    }
    results
}

/// Exit status of followed rollouts: an error (exit 1, or 130 when interrupted) unless every
/// one completed or was not waited for on purpose.
pub(crate) fn rollouts_outcome(
    rollouts: &[RolloutResult],
    wait: &WaitArgs,
    stop: &AtomicBool,
    what: &str,
) -> Result<(), Failure> {
    let interrupted = stop.load(Ordering::SeqCst);
    let open = rollouts
        .iter()
        .filter(|r| r.outcome != Outcome::Completed)
        .count();
    if !wait.no_wait && open > 0 {
        if interrupted {
            let ids: Vec<String> = rollouts
                .iter()
                .filter(|r| r.outcome != Outcome::Completed)
                .map(|r| {
                    format!(
                        "{} {}",
                        r.address,
                        r.deployment.as_deref().unwrap_or("(no deployment)")
                    )
                })
                .collect();
            eprintln!(
                "Stopped waiting; ECS goes on with the deployments ({}). See how they end with: deploy status",
                ids.join(", ")
            );
        }
        eprintln!("{what} not complete: {open} rollout(s) did not complete.");
        return Err(Failure::Rollouts { interrupted });
    }
    Ok(())
}
