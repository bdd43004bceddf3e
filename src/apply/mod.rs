//! Carries out a plan's steps in dependency order, independent steps concurrently, and stops
//! cleanly: after a failure or Ctrl-C no new step starts, steps in flight finish, and the
//! report says what was done, what failed and what never started.
//!
//! The executor never decides what to do; the plan did. It is generic over a [`Provider`]
//! so its scheduling is unit-tested on plain values.

pub mod live;
pub mod progress;
pub mod wait;

use crate::model::Address;
use crate::plan::{Change, Plan, Step, StepOp};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ids known so far: address → the AWS id (ARN, group id, log group name) to use for it.
pub type Refs = BTreeMap<Address, String>;

/// Does the AWS work of one step. Returns the id of what it created, when it created one.
pub trait Provider {
    fn run(
        &self,
        op: StepOp,
        change: &Change,
        refs: &Refs,
    ) -> impl Future<Output = Result<Option<String>, crate::aws::AwsError>>;
}

/// Told about progress as it happens (printing is the caller's business).
pub trait Reporter {
    fn started(&self, step: &Step, change: &Change);
    fn finished(&self, step: &Step, change: &Change, result: &StepResult, took: Duration);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    Done(Option<String>),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    NotStarted,
}

#[derive(Clone, Debug)]
pub struct Report {
    /// One per plan step, in step order.
    pub outcomes: Vec<(Address, StepOp, Outcome)>,
    pub interrupted: bool,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        !self.interrupted && self.outcomes.iter().all(|(_, _, o)| *o == Outcome::Done)
    }
}

/// How many steps run at once.
pub const PARALLEL_STEPS: usize = 4;

/// Why the plan's steps cannot be carried out as they are: a step naming a change or a step
/// the plan does not have (only a plan read from a file can; nothing is started then).
pub fn unrunnable_steps(plan: &Plan) -> Option<String> {
    plan.steps.iter().enumerate().find_map(|(i, step)| {
        if step.change >= plan.changes.len() {
            Some(format!(
                "step {i} names change {}, the plan has {}",
                step.change,
                plan.changes.len()
            ))
        } else {
            step.after
                .iter()
                .find(|&&d| d >= plan.steps.len())
                .map(|d| {
                    format!(
                        "step {i} waits for step {d}, the plan has {}",
                        plan.steps.len()
                    )
                })
        }
    })
}

/// Runs the plan. `stop` is raised by Ctrl-C (or anything else) to stop starting steps.
/// Refuses, starting nothing, a plan whose steps name what it does not have.
pub async fn execute<P: Provider, R: Reporter>(
    plan: &Plan,
    provider: &P,
    reporter: &R,
    initial_refs: Refs,
    stop: Arc<AtomicBool>,
) -> Result<Report, String> {
    if let Some(why) = unrunnable_steps(plan) {
        return Err(why);
    }
    // Every index below is in range from here on.
    let n = plan.steps.len();
    #[derive(Clone, PartialEq)]
    enum State {
        Pending,
        Running,
        Finished(Outcome),
    }
    let mut state = vec![State::Pending; n];
    let mut refs = initial_refs;
    let mut running = FuturesUnordered::new();
    let mut failed = false;
    loop {
        if !failed && !stop.load(Ordering::SeqCst) {
            for i in 0..n {
                if running.len() >= PARALLEL_STEPS {
                    break;
                }
                let ready = state[i] == State::Pending
                    && plan.steps[i]
                        .after
                        .iter()
                        .all(|&d| state[d] == State::Finished(Outcome::Done));
                if !ready {
                    continue;
                }
                state[i] = State::Running;
                let step = &plan.steps[i];
                let change = &plan.changes[step.change];
                reporter.started(step, change);
                let snapshot = refs.clone();
                running.push(async move {
                    let t = Instant::now();
                    let r = provider.run(step.op, change, &snapshot).await;
                    (i, r, t.elapsed())
                });
            }
        }
        if running.is_empty() {
            break;
        }
        let Some((i, result, took)) = running.next().await else {
            break;
        };
        let step = &plan.steps[i];
        let change = &plan.changes[step.change];
        let result = match result {
            Ok(id) => {
                if let Some(id) = &id {
                    refs.insert(change.address.clone(), id.clone());
                }
                StepResult::Done(id)
            }
            Err(e) => {
                failed = true;
                StepResult::Failed(e.at(&change.address).to_string())
            }
        };
        reporter.finished(step, change, &result, took);
        state[i] = State::Finished(match result {
            StepResult::Done(_) => Outcome::Done,
            StepResult::Failed(m) => Outcome::Failed(m),
        });
    }
    let outcomes = plan
        .steps
        .iter()
        .zip(state)
        .map(|(s, st)| {
            let outcome = match st {
                State::Finished(o) => o,
                _ => Outcome::NotStarted,
            };
            (plan.changes[s.change].address.clone(), s.op, outcome)
        })
        .collect();
    Ok(Report {
        outcomes,
        interrupted: stop.load(Ordering::SeqCst),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsError;
    use crate::model::{Attrs, Desired, Kind, LogGroupAttrs};
    use crate::plan::{Action, Cause};
    use std::sync::Mutex;

    struct Scripted {
        calls: Mutex<Vec<String>>,
        fail: Option<String>,
    }

    impl Provider for Scripted {
        async fn run(
            &self,
            op: StepOp,
            change: &Change,
            refs: &Refs,
        ) -> Result<Option<String>, AwsError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let name = change.address.to_string();
            self.calls
                .lock()
                .unwrap()
                .push(format!("{op:?} {name} refs={}", refs.len()));
            if self.fail.as_deref() == Some(name.as_str()) {
                return Err(AwsError::other("test", "Op", "boom"));
            }
            Ok(Some(format!("id-{name}")))
        }
    }

    struct Quiet;
    impl Reporter for Quiet {
        fn started(&self, _: &Step, _: &Change) {}
        fn finished(&self, _: &Step, _: &Change, _: &StepResult, _: Duration) {}
    }

    fn change(name: &str) -> Change {
        let d = Desired {
            address: Address::new(Kind::LogGroup, name),
            attrs: Attrs::LogGroup(LogGroupAttrs {
                name: name.into(),
                retention_days: None,
                tags: Default::default(),
            }),
            ignore: Default::default(),
            restart_loses: None,
        };
        Change {
            address: d.address.clone(),
            action: Action::Create,
            cause: Some(Cause::New),
            attrs: vec![],
            desired: Some(d),
            observed: None,
            live_references: Default::default(),
            new_revision: false,
            warnings: vec![],
        }
    }

    fn chain_plan() -> Plan {
        // a → b → c, and d independent.
        let changes = vec![change("a"), change("b"), change("c"), change("d")];
        let steps = vec![
            Step {
                change: 0,
                op: StepOp::Create,
                after: vec![],
            },
            Step {
                change: 1,
                op: StepOp::Create,
                after: vec![0],
            },
            Step {
                change: 2,
                op: StepOp::Create,
                after: vec![1],
            },
            Step {
                change: 3,
                op: StepOp::Create,
                after: vec![],
            },
        ];
        Plan {
            stack: "s".into(),
            environment: "e".into(),
            account_id: "1".into(),
            region: "r".into(),
            destroy: false,
            changes,
            conflicts: vec![],
            warnings: vec![],
            steps,
            kept: vec![],
            deregister_revisions: vec![],
            reload_services: vec![],
        }
    }

    /// Runs the chain plan with a provider that fails on `fail`; returns the report and the
    /// provider's calls in order.
    async fn run_chain(fail: Option<&str>, stop: bool) -> (Report, Vec<String>) {
        let p = Scripted {
            calls: Mutex::new(vec![]),
            fail: fail.map(str::to_string),
        };
        let stop = Arc::new(AtomicBool::new(stop));
        let report = execute(&chain_plan(), &p, &Quiet, Refs::new(), stop)
            .await
            .expect("the chain plan's steps are in range");
        let calls = p.calls.lock().unwrap().clone();
        (report, calls)
    }

    #[tokio::test]
    async fn runs_in_dependency_order_and_passes_ids_on() {
        let (report, calls) = run_chain(None, false).await;
        assert!(report.succeeded());
        let pos = |s: &str| calls.iter().position(|c| c.contains(s)).unwrap();
        assert!(pos("log_group.a") < pos("log_group.b"));
        assert!(pos("log_group.b") < pos("log_group.c"));
        // c starts with the ids of a and b (and maybe d) known.
        assert!(
            calls[pos("log_group.c")].contains("refs=2")
                || calls[pos("log_group.c")].contains("refs=3")
        );
    }

    #[tokio::test]
    async fn a_failure_stops_new_steps_and_reports_the_rest_not_started() {
        let (report, _) = run_chain(Some("log_group.a"), false).await;
        assert!(!report.succeeded());
        let by_name: BTreeMap<String, Outcome> = report
            .outcomes
            .iter()
            .map(|(a, _, o)| (a.to_string(), o.clone()))
            .collect();
        assert!(matches!(by_name["log_group.a"], Outcome::Failed(_)));
        assert_eq!(by_name["log_group.b"], Outcome::NotStarted);
        assert_eq!(by_name["log_group.c"], Outcome::NotStarted);
        // d was started alongside a (in flight), so it finished.
        assert_eq!(by_name["log_group.d"], Outcome::Done);
    }

    #[tokio::test]
    async fn steps_naming_what_the_plan_lacks_start_nothing() {
        for (change, after, why) in [
            (4, vec![], "step 1 names change 4, the plan has 4"),
            (1, vec![9], "step 1 waits for step 9, the plan has 4"),
        ] {
            let mut plan = chain_plan();
            plan.steps[1].change = change;
            plan.steps[1].after = after;
            let p = Scripted {
                calls: Mutex::new(vec![]),
                fail: None,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let refused = execute(&plan, &p, &Quiet, Refs::new(), stop).await;
            assert_eq!(refused.unwrap_err(), why);
            assert!(p.calls.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_raised_stop_flag_starts_nothing() {
        let (report, calls) = run_chain(None, true).await;
        assert!(report.interrupted);
        assert!(report
            .outcomes
            .iter()
            .all(|(_, _, o)| *o == Outcome::NotStarted));
        assert!(calls.is_empty());
    }
}
