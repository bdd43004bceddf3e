//! After the calls: follows the rollouts an apply started until each completed, failed, was
//! rolled back or superseded, or the time ran out — so "Apply complete" is only said when the
//! services really run what was applied. Generic over a [`Watcher`] (the AWS reads) and a
//! [`WaitReporter`] (the printing), so the loop is unit-tested on plain values.

use crate::aws::AwsError;
use crate::rollout::{
    judge, judge_rollback, progress_line, Evidence, Followed, Outcome, ServiceState, Verdict,
};
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The reads a wait needs.
pub trait Watcher {
    /// The current state of each followed service (deployments, counts, events), in order.
    fn poll(
        &self,
        followed: &[Followed],
    ) -> impl Future<Output = Result<Vec<ServiceState>, AwsError>>;
    /// What explains a rollout that did not complete (read once, when it ends so).
    fn evidence(&self, followed: &Followed) -> impl Future<Output = Evidence>;
    /// Stops the followed deployment with a rollback to the service's previous revision
    /// (`--rollback-on-failure`); answers the stopped service deployment's ARN.
    fn roll_back(&self, followed: &Followed) -> impl Future<Output = Result<String, AwsError>>;
}

/// Told each change of a rollout's state, as one line, and (for a live view) each poll's
/// state of every open change.
pub trait WaitReporter {
    fn progress(&self, line: &str);
    /// The state `f`'s service was read in; the plain-line reporter needs no more than
    /// [`WaitReporter::progress`].
    fn state(&self, _f: &Followed, _s: &ServiceState) {}
    /// `f` ended (its last line was given to `progress`).
    fn ended(&self, _f: &Followed) {}
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Give up (outcome `timed_out`) after this long.
    pub timeout: Duration,
    /// How long between polls.
    pub interval: Duration,
    /// Stop at this many failed tasks of the new revision, before the breaker's threshold.
    pub max_task_failures: i32,
    /// Stop a failed or timed-out deployment with a rollback and wait (up to `timeout` again)
    /// until the previous revision runs.
    pub rollback_on_failure: bool,
}

/// How one followed change ended, with the evidence when it did not complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloutResult {
    pub address: String,
    pub deployment: Option<String>,
    /// The service deployment ARN `--rollback-on-failure` stopped (not a deployment id).
    pub stopped_service_deployment: Option<String>,
    pub task_definition: String,
    pub outcome: Outcome,
    pub reason: String,
    pub evidence: Option<Evidence>,
}

impl RolloutResult {
    /// How the change `f` ended (nothing stopped by `--rollback-on-failure` yet).
    pub fn of(
        f: &Followed,
        outcome: Outcome,
        reason: String,
        evidence: Option<Evidence>,
    ) -> RolloutResult {
        RolloutResult {
            address: f.address.clone(),
            deployment: f.deployment.clone(),
            stopped_service_deployment: None,
            task_definition: f.task_definition.clone(),
            outcome,
            reason,
            evidence,
        }
    }

    pub fn not_waited(f: &Followed, reason: &str) -> RolloutResult {
        RolloutResult::of(f, Outcome::NotWaited, reason.to_string(), None)
    }
}

/// Follows every change until it ends, the timeout passes or `stop` is raised (Ctrl-C: the
/// ones still open end `not_waited`, nothing is rolled back). With `rollback_on_failure`, a
/// rollout that failed or timed out (one whose deployment apply started) is then stopped with
/// a rollback, and followed until the previous revision runs: it ends `rolled_back`, or
/// `failed` / `timed_out` when the rollback does not finish.
pub async fn wait<W: Watcher, R: WaitReporter>(
    followed: &[Followed],
    watcher: &W,
    reporter: &R,
    settings: &Settings,
    stop: Arc<AtomicBool>,
) -> Vec<RolloutResult> {
    let max = settings.max_task_failures;
    let judge_rollout = |f: &Followed, s: &ServiceState| judge(f, s, max);
    let mut results = follow(
        followed,
        watcher,
        reporter,
        settings,
        &stop,
        judge_rollout,
        true,
    )
    .await;
    if !settings.rollback_on_failure || stop.load(Ordering::SeqCst) {
        return results;
    }
    let mut rolling_back = Vec::new();
    for (i, r) in results.iter_mut().enumerate() {
        let failing = matches!(r.outcome, Outcome::Failed | Outcome::TimedOut);
        if !failing || followed[i].deployment.is_none() {
            continue;
        }
        match watcher.roll_back(&followed[i]).await {
            Ok(arn) => {
                reporter.progress(&format!(
                    "{}: stopping deployment {} with a rollback (--rollback-on-failure; service deployment {arn})",
                    r.address,
                    r.deployment.as_deref().unwrap_or("-")
                ));
                r.stopped_service_deployment = Some(arn);
                rolling_back.push(i);
            }
            Err(e) => {
                r.reason = format!("{}; --rollback-on-failure could not stop it: {e}", r.reason)
            }
        }
    }
    let asked: Vec<Followed> = rolling_back.iter().map(|&i| followed[i].clone()).collect();
    let back = follow(
        &asked,
        watcher,
        reporter,
        settings,
        &stop,
        judge_rollback,
        false,
    )
    .await;
    for (&i, b) in rolling_back.iter().zip(back) {
        let r = &mut results[i];
        r.outcome = b.outcome;
        r.reason = format!(
            "{}; stopped by --rollback-on-failure: {}",
            r.reason, b.reason
        );
    }
    results
}

/// The polling loop: reads the open changes every `interval`, ends each when `judge` says
/// so (reading its evidence, with `gather_evidence`, unless it completed), and the rest at
/// the timeout or on `stop`.
async fn follow<W: Watcher, R: WaitReporter>(
    followed: &[Followed],
    watcher: &W,
    reporter: &R,
    settings: &Settings,
    stop: &AtomicBool,
    judge: impl Fn(&Followed, &ServiceState) -> Verdict,
    gather_evidence: bool,
) -> Vec<RolloutResult> {
    let started = Instant::now();
    let mut results: Vec<Option<RolloutResult>> = vec![None; followed.len()];
    let mut last_line: Vec<String> = vec![String::new(); followed.len()];
    loop {
        let open: Vec<usize> = (0..followed.len())
            .filter(|&i| results[i].is_none())
            .collect();
        if open.is_empty() {
            break;
        }
        let asked: Vec<Followed> = open.iter().map(|&i| followed[i].clone()).collect();
        match watcher.poll(&asked).await {
            Ok(states) => {
                for (&i, state) in open.iter().zip(&states) {
                    let f = &followed[i];
                    reporter.state(f, state);
                    let line = progress_line(f, state);
                    if line != last_line[i] {
                        reporter.progress(&line);
                        last_line[i] = line;
                    }
                    if let Verdict::Done(outcome, reason) = judge(f, state) {
                        let evidence = match outcome {
                            Outcome::Completed => None,
                            _ if !gather_evidence => None,
                            _ => {
                                let mut e = watcher.evidence(f).await;
                                e.keep_judged(f, state);
                                Some(e)
                            }
                        };
                        reporter.progress(&format!(
                            "{}: {} — {reason}",
                            f.address,
                            outcome_word(outcome)
                        ));
                        reporter.ended(f);
                        results[i] = Some(RolloutResult::of(f, outcome, reason, evidence));
                    }
                }
            }
            // A failed read is not the rollout's failure: say so and read again.
            Err(e) => {
                reporter.progress(&format!("reading the services failed ({e}); trying again"))
            }
        }
        if results.iter().all(Option::is_some) {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            for (i, r) in results.iter_mut().enumerate() {
                if r.is_none() {
                    *r = Some(RolloutResult::not_waited(
                        &followed[i],
                        "interrupted: ECS goes on with the deployment",
                    ));
                }
            }
            break;
        }
        if started.elapsed() >= settings.timeout {
            for (i, r) in results.iter_mut().enumerate() {
                if r.is_none() {
                    let f = &followed[i];
                    let reason = format!(
                        "not done after {}s (--wait-timeout); ECS goes on with the deployment",
                        settings.timeout.as_secs()
                    );
                    let evidence = if gather_evidence {
                        Some(watcher.evidence(f).await)
                    } else {
                        None
                    };
                    *r = Some(RolloutResult::of(f, Outcome::TimedOut, reason, evidence));
                }
            }
            break;
        }
        // Sleep in short steps so Ctrl-C is seen at once.
        let until = Instant::now() + settings.interval;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100).min(settings.interval)).await;
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every change ended"))
        .collect()
}

/// The word for an outcome in progress lines.
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Completed => "rollout completed",
        Outcome::Failed => "rollout FAILED",
        Outcome::RolledBack => "rollout ROLLED BACK",
        Outcome::TimedOut => "rollout TIMED OUT",
        Outcome::Superseded => "rollout SUPERSEDED",
        Outcome::NotWaited => "not waited for",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Deployment;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// Answers polls from a script of states per service (the last one repeats).
    struct Script {
        states: RefCell<Vec<VecDeque<ServiceState>>>,
        polls: RefCell<usize>,
        rolled_back: RefCell<Vec<String>>,
    }

    impl Watcher for Script {
        async fn poll(&self, followed: &[Followed]) -> Result<Vec<ServiceState>, AwsError> {
            *self.polls.borrow_mut() += 1;
            let mut states = self.states.borrow_mut();
            Ok(followed
                .iter()
                .map(|f| {
                    let i: usize = f.service.parse().unwrap();
                    let q = &mut states[i];
                    if q.len() > 1 {
                        q.pop_front().unwrap()
                    } else {
                        q[0].clone()
                    }
                })
                .collect())
        }
        async fn evidence(&self, _f: &Followed) -> Evidence {
            Evidence {
                failed_tasks: 3,
                ..Default::default()
            }
        }
        async fn roll_back(&self, f: &Followed) -> Result<String, AwsError> {
            self.rolled_back.borrow_mut().push(f.address.clone());
            Ok(format!(
                "arn:aws:ecs:r:1:service-deployment/c/{}/sd",
                f.service
            ))
        }
    }

    struct Lines(RefCell<Vec<String>>);
    impl WaitReporter for Lines {
        fn progress(&self, line: &str) {
            self.0.borrow_mut().push(line.to_string());
        }
    }

    const NEW: &str = "arn:aws:ecs:r:1:task-definition/prom-task:2";
    const OLD: &str = "arn:aws:ecs:r:1:task-definition/prom-task:1";

    fn followed(i: usize) -> Followed {
        Followed {
            address: format!("ecs_service.s{i}"),
            cluster: "c".into(),
            service: i.to_string(),
            deployment: Some("ecs-svc/new".into()),
            task_definition: NEW.into(),
            desired: 1,
            since: None,
            breaker_threshold: 3,
        }
    }

    fn state(deployments: Vec<Deployment>) -> ServiceState {
        let mut s = ServiceState::missing("a", "n", "c");
        s.status = "ACTIVE".into();
        s.task_definition = NEW.into();
        s.desired = 1;
        s.deployments = deployments;
        s
    }

    fn dep(id: &str, status: &str, td: &str, state: &str, running: i32, failed: i32) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(state.into()),
            rollout_state_reason: Some(format!("reason of {id}")),
            desired: 1,
            running,
            pending: 0,
            failed,
            created_at: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            timeout: Duration::from_secs(5),
            interval: Duration::from_millis(1),
            max_task_failures: 2,
            rollback_on_failure: false,
        }
    }

    fn run(script: Vec<Vec<ServiceState>>, n: usize) -> (Vec<RolloutResult>, Vec<String>, usize) {
        run_with(script, n, &settings())
    }

    /// Follows services 0..n whose polls answer `script` (one list per service).
    fn run_with(
        script: Vec<Vec<ServiceState>>,
        n: usize,
        settings: &Settings,
    ) -> (Vec<RolloutResult>, Vec<String>, usize) {
        let watcher = Script {
            states: RefCell::new(script.into_iter().map(VecDeque::from).collect()),
            polls: RefCell::new(0),
            rolled_back: RefCell::new(vec![]),
        };
        let lines = Lines(RefCell::new(vec![]));
        let f: Vec<Followed> = (0..n).map(followed).collect();
        let results = block_on(wait(
            &f,
            &watcher,
            &lines,
            settings,
            Arc::new(AtomicBool::new(false)),
        ));
        let polls = *watcher.polls.borrow();
        (results, lines.0.into_inner(), polls)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn in_progress_then_completed() {
        let old_done = dep("ecs-svc/old", "ACTIVE", OLD, "COMPLETED", 1, 0);
        let (r, lines, polls) = run(
            vec![vec![
                state(vec![
                    dep("ecs-svc/new", "PRIMARY", NEW, "IN_PROGRESS", 0, 0),
                    old_done.clone(),
                ]),
                state(vec![dep("ecs-svc/new", "PRIMARY", NEW, "COMPLETED", 1, 0)]),
            ]],
            1,
        );
        assert_eq!(r[0].outcome, Outcome::Completed);
        assert_eq!(polls, 2);
        assert!(lines[0].contains("IN_PROGRESS: running 0/1"), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.contains("rollout completed")),
            "{lines:?}"
        );
    }

    #[test]
    fn an_older_failed_deployment_is_ignored() {
        let (r, _, _) = run(
            vec![vec![state(vec![
                dep("ecs-svc/new", "PRIMARY", NEW, "COMPLETED", 1, 0),
                dep("ecs-svc/older", "INACTIVE", OLD, "FAILED", 0, 5),
            ])]],
            1,
        );
        assert_eq!(r[0].outcome, Outcome::Completed);
    }

    #[test]
    fn a_breaker_rollback_is_a_failure_with_evidence() {
        let (r, _, _) = run(
            vec![vec![state(vec![
                dep("ecs-svc/rollback", "PRIMARY", OLD, "IN_PROGRESS", 0, 0),
                dep("ecs-svc/new", "ACTIVE", NEW, "FAILED", 0, 3),
            ])]],
            1,
        );
        assert_eq!(r[0].outcome, Outcome::RolledBack);
        assert!(
            r[0].reason
                .contains("rolled the service back to prom-task:1"),
            "{}",
            r[0].reason
        );
        assert_eq!(r[0].evidence.as_ref().unwrap().failed_tasks, 3);
    }

    #[test]
    fn a_crash_loop_stops_at_max_task_failures() {
        let (r, _, _) = run(
            vec![vec![state(vec![dep(
                "ecs-svc/new",
                "PRIMARY",
                NEW,
                "IN_PROGRESS",
                0,
                2,
            )])]],
            1,
        );
        assert_eq!(r[0].outcome, Outcome::Failed);
        assert!(
            r[0].reason.contains("2 tasks of prom-task:2 failed"),
            "{}",
            r[0].reason
        );
        assert!(r[0].reason.contains("threshold is 3"), "{}", r[0].reason);
    }

    #[test]
    fn rollback_on_failure_stops_a_crash_loop_and_waits_for_the_previous_revision() {
        let mut s = settings();
        s.rollback_on_failure = true;
        let crash = dep("ecs-svc/new", "PRIMARY", NEW, "IN_PROGRESS", 0, 2);
        let mut stopped = dep("ecs-svc/new", "ACTIVE", NEW, "FAILED", 0, 2);
        stopped.rollout_state_reason = Some("stopped".into());
        let back = dep("ecs-svc/back", "PRIMARY", OLD, "IN_PROGRESS", 0, 0);
        let back_done = dep("ecs-svc/back", "PRIMARY", OLD, "COMPLETED", 1, 0);
        let (r, lines, _) = run_with(
            vec![vec![
                state(vec![crash.clone()]),
                // ECS has not switched yet, then the rollback runs and completes.
                state(vec![crash]),
                state(vec![back, stopped.clone()]),
                state(vec![back_done, stopped]),
            ]],
            1,
            &s,
        );
        assert_eq!(r[0].outcome, Outcome::RolledBack, "{:?}", r[0]);
        assert!(
            r[0].reason.contains("2 tasks of prom-task:2 failed"),
            "{}",
            r[0].reason
        );
        assert!(
            r[0].reason
                .contains("stopped by --rollback-on-failure: rolled back to prom-task:1"),
            "{}",
            r[0].reason
        );
        assert!(r[0].evidence.is_some(), "the failure's evidence is kept");
        assert_eq!(
            r[0].stopped_service_deployment.as_deref(),
            Some("arn:aws:ecs:r:1:service-deployment/c/0/sd")
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("stopping deployment ecs-svc/new with a rollback")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_newer_deployment_by_someone_else_supersedes() {
        let (r, _, _) = run(
            vec![vec![state(vec![
                dep("ecs-svc/theirs", "PRIMARY", NEW, "IN_PROGRESS", 0, 0),
                dep("ecs-svc/new", "ACTIVE", NEW, "IN_PROGRESS", 0, 0),
            ])]],
            1,
        );
        assert_eq!(r[0].outcome, Outcome::Superseded);
    }

    #[test]
    fn it_times_out_and_follows_each_service_apart() {
        let mut s = settings();
        s.timeout = Duration::from_millis(30);
        let (r, _, _) = run_with(
            vec![
                vec![state(vec![dep(
                    "ecs-svc/new",
                    "PRIMARY",
                    NEW,
                    "IN_PROGRESS",
                    0,
                    0,
                )])],
                vec![state(vec![dep(
                    "ecs-svc/new",
                    "PRIMARY",
                    NEW,
                    "COMPLETED",
                    1,
                    0,
                )])],
            ],
            2,
            &s,
        );
        assert_eq!(r[0].outcome, Outcome::TimedOut);
        assert!(r[0].evidence.is_some());
        assert_eq!(r[1].outcome, Outcome::Completed);
    }

    #[test]
    fn a_change_without_a_deployment_waits_for_the_count() {
        let mut f = followed(0);
        f.deployment = None;
        let mut waiting = state(vec![]);
        waiting.desired = 3;
        waiting.running = 1;
        assert_eq!(judge(&f, &waiting, 2), Verdict::Waiting);
        waiting.running = 3;
        assert!(matches!(
            judge(&f, &waiting, 2),
            Verdict::Done(Outcome::Completed, _)
        ));
    }

    /// A crash-looping Grafana as the wait reports it: the plain progress lines while it
    /// follows the rollout, then the failure report with its evidence.
    #[test]
    fn a_crash_looping_grafana_is_reported_with_its_evidence() {
        use crate::rollout::{ContainerExit, ContainerLog, ServiceEvent, TargetState, TaskState};
        const GRAFANA_NEW: &str =
            "arn:aws:ecs:us-west-2:123456789012:task-definition/grafana-task:7";
        const GRAFANA_OLD: &str =
            "arn:aws:ecs:us-west-2:123456789012:task-definition/grafana-task:6";
        struct CrashLoop {
            polls: RefCell<i32>,
        }
        impl Watcher for CrashLoop {
            async fn poll(&self, _f: &[Followed]) -> Result<Vec<ServiceState>, AwsError> {
                let n = {
                    let mut p = self.polls.borrow_mut();
                    *p += 1;
                    *p
                };
                let mut s = ServiceState::missing("ecs_service.grafana", "grafana", "monitoring");
                s.status = "ACTIVE".into();
                s.task_definition = GRAFANA_NEW.into();
                s.desired = 1;
                s.running = 1;
                let mut new = dep("ecs-svc/7", "PRIMARY", GRAFANA_NEW, "IN_PROGRESS", 0, n - 1);
                new.pending = if n == 1 { 1 } else { 0 };
                s.deployments = vec![
                    new,
                    dep("ecs-svc/6", "ACTIVE", GRAFANA_OLD, "COMPLETED", 1, 0),
                ];
                Ok(vec![s])
            }
            async fn roll_back(&self, _f: &Followed) -> Result<String, AwsError> {
                unreachable!("no --rollback-on-failure here")
            }
            async fn evidence(&self, _f: &Followed) -> Evidence {
                let stopped = |id: &str| TaskState {
                    id: id.into(),
                    task_definition: GRAFANA_NEW.into(),
                    last_status: "STOPPED".into(),
                    stopped_reason: Some("Essential container in task exited".into()),
                    stopped_at: None,
                    containers: vec![ContainerExit {
                        name: "grafana".into(),
                        exit_code: Some(1),
                        reason: None,
                    }],
                };
                Evidence {
                    rollout_state: Some("IN_PROGRESS".into()),
                    rollout_state_reason: Some("ECS deployment ecs-svc/7 in progress.".into()),
                    failed_tasks: 2,
                    breaker_threshold: 3,
                    stopped: vec![stopped("0a1b2c3d"), stopped("4e5f6a7b")],
                    events: vec![ServiceEvent {
                        at: None,
                        message: "(service grafana) has started 1 tasks: (task 4e5f6a7b).".into(),
                    }],
                    unhealthy_targets: vec![(
                        "monitoring-grafana".into(),
                        TargetState {
                            id: "10.20.1.77".into(),
                            port: Some(3000),
                            state: "unhealthy".into(),
                            reason: Some("Target.FailedHealthChecks".into()),
                            description: Some("Health checks failed".into()),
                        },
                    )],
                    logs: vec![ContainerLog {
                        task: "4e5f6a7b".into(),
                        container: "grafana".into(),
                        log_group: "/ecs/grafana-task".into(),
                        log_stream: "grafana/grafana/4e5f6a7b".into(),
                        lines: vec![
                            "logger=settings t=2026-12-01T15:00:02Z level=info msg=\"Starting Grafana\"".into(),
                            "logger=sqlstore level=error msg=\"unable to open database file\" error=\"permission denied\"".into(),
                            "Error: ✗ unable to open database file: permission denied".into(),
                        ],
                    }],
                }
            }
        }
        let f = Followed {
            address: "ecs_service.grafana".into(),
            cluster: "monitoring".into(),
            service: "grafana".into(),
            deployment: Some("ecs-svc/7".into()),
            task_definition: GRAFANA_NEW.into(),
            desired: 1,
            since: None,
            breaker_threshold: 3,
        };
        let lines = Lines(RefCell::new(vec![]));
        let results = block_on(wait(
            std::slice::from_ref(&f),
            &CrashLoop {
                polls: RefCell::new(0),
            },
            &lines,
            &settings(),
            Arc::new(AtomicBool::new(false)),
        ));
        assert_eq!(results[0].outcome, Outcome::Failed);
        let shown = format!(
            "{}\n\n{}",
            lines.0.into_inner().join("\n"),
            crate::output::rollouts_text(&results)
        );
        insta::assert_snapshot!("crash_looping_grafana", shown);
    }
}
