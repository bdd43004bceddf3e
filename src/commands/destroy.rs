//! `deploy destroy`: removes what this stack owns and nothing else (the plan of a removal,
//! carried out like an apply).

use crate::cli::{AwsArgs, StackArgs};
use crate::run::Failure;

/// `deploy destroy`: data-bearing resources stay unless `delete_data` (or the stack is
/// disposable).
pub async fn run(
    stack: &StackArgs,
    aws: &AwsArgs,
    auto_approve: bool,
    delete_data: bool,
) -> Result<(), Failure> {
    // A destroy deletes services: it starts no rollout to follow.
    let no_wait = crate::cli::WaitArgs {
        no_wait: true,
        wait_timeout: std::time::Duration::ZERO,
        max_task_failures: 0,
        rollback_on_failure: false,
        poll_interval: std::time::Duration::ZERO,
    };
    super::apply::converge(stack, aws, auto_approve, true, delete_data, &[], &no_wait).await
}
