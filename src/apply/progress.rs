//! How apply's progress reaches a person: one line on stderr per step started and finished
//! (the executor reports through the [`Reporter`] trait and never prints itself).

use super::{Reporter, StepResult};
use crate::plan::{Change, Step};
use std::time::Duration;

/// Prints one line per step as it starts and as it ends.
pub struct StderrReporter;

impl Reporter for StderrReporter {
    fn started(&self, step: &Step, change: &Change) {
        eprintln!("{}: {}…", change.address, verb(step.op, change, false));
    }
    fn finished(&self, step: &Step, change: &Change, result: &StepResult, took: Duration) {
        match result {
            StepResult::Done(id) => eprintln!(
                "{}: {} after {:.1}s{}",
                change.address,
                verb(step.op, change, true),
                took.as_secs_f64(),
                id.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default()
            ),
            StepResult::Failed(m) => eprintln!(
                "{}: FAILED after {:.1}s: {m}",
                change.address,
                took.as_secs_f64()
            ),
        }
    }
}

fn verb(op: crate::plan::StepOp, change: &Change, done: bool) -> &'static str {
    use crate::plan::StepOp::*;
    match (op, change.new_revision, done) {
        (Create, true, false) => "registering a new revision",
        (Create, true, true) => "registered",
        (Create | CreateReplacement, _, false) => "creating",
        (Create | CreateReplacement, _, true) => "created",
        (Update, _, false) => "updating",
        (Update, _, true) => "updated",
        (Delete | DeleteReplaced, _, false) => "deleting",
        (Delete | DeleteReplaced, _, true) => "deleted",
        (AuthorizeDeferred, _, false) => "authorizing its rules to groups created after it",
        (AuthorizeDeferred, _, true) => "authorized its rules to groups created after it",
    }
}

impl super::wait::WaitReporter for StderrReporter {
    fn progress(&self, line: &str) {
        eprintln!("{line}");
    }
}
