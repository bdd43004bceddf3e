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
    lock: crate::lock::LockOptions,
) -> Result<(), Failure> {
    // A destroy deletes services: it starts no rollout to follow.
    let no_wait = crate::cli::WaitArgs::none();
    let how = super::apply::Converge {
        auto_approve,
        destroy: true,
        delete_data,
        targets: &[],
        wait: &no_wait,
        lock,
        ttl: None,
    };
    super::apply::converge(stack, aws, how).await
}
