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
    super::apply::converge(stack, aws, auto_approve, true, delete_data, &[]).await
}
