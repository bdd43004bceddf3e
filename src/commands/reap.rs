//! Destroy without the stack file: `deploy destroy --stack S --env E` removes one environment
//! and `deploy destroy --expired` every expired one in the account and region, when the
//! branch that made them (and its stack file) is gone. What to delete, in what order and
//! whether data goes is derived from the ownership tags, the kinds' descriptors and the
//! environment's record; protected environments are never removed here.

use super::apply::{execute_plan, Owner};
use crate::aws::{state_table, Aws};
use crate::cli::{AwsArgs, WaitArgs};
use crate::diff::{self, DiffInput};
use crate::lock::{self, now_epoch, utc_text, LockOptions, Operation, Record};
use crate::model::{Tags, TAG_DISPOSABLE, TAG_ENV, TAG_STACK};
use crate::printer::preview_plan;
use crate::run::Failure;
use std::collections::BTreeMap;

/// What a reap is asked to do.
pub struct Reap<'a> {
    pub aws: &'a AwsArgs,
    pub dry_run: bool,
    pub lock: LockOptions,
}

/// `deploy destroy --stack S --env E [--dry-run]`.
pub async fn one(how: &Reap<'_>, stack: &str, environment: &str) -> Result<(), Failure> {
    let aws = connect(how.aws).await?;
    let record = state_table::read_record(&aws, stack, environment).await?;
    if record.as_ref().is_some_and(|r| r.protected) {
        return Err(Failure::Refused(format!(
            "{stack}/{environment} is protected (its record says so): it is not destroyed; \
             remove `protected` from the stack and apply first. Nothing was changed"
        )));
    }
    destroy(&aws, how, stack, environment, record.as_ref()).await
}

/// `deploy destroy --expired [--dry-run]`: every expired, unprotected environment.
pub async fn expired(how: &Reap<'_>) -> Result<(), Failure> {
    let aws = connect(how.aws).await?;
    let (_, records) = state_table::scan(&aws).await?;
    let now = now_epoch();
    let (due, kept): (Vec<&Record>, Vec<&Record>) = records
        .iter()
        .filter(|r| r.expires_at.is_some_and(|t| t <= now))
        .partition(|r| r.reapable(now));
    for r in kept {
        eprintln!(
            "{}/{}: expired at {} but protected: kept",
            r.stack,
            r.environment,
            utc_text(r.expires_at.unwrap_or_default())
        );
    }
    if due.is_empty() {
        eprintln!("No expired environment in region {}.", aws.region);
        return Ok(());
    }
    let mut failed = Vec::new();
    for r in &due {
        eprintln!(
            "\n{}/{}: expired at {} (last applied by {})",
            r.stack,
            r.environment,
            utc_text(r.expires_at.unwrap_or_default()),
            r.last_applied_by
        );
        if let Err(f) = destroy(&aws, how, &r.stack, &r.environment, Some(r)).await {
            if let Failure::Other(m) | Failure::Refused(m) = &f {
                eprintln!("error: {m}");
            }
            if let Failure::Aws(e) = &f {
                eprintln!("error: {e}");
            }
            failed.push(format!("{}/{}", r.stack, r.environment));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "not every expired environment was destroyed: {}",
            failed.join(", ")
        )))
    }
}

async fn connect(args: &AwsArgs) -> Result<Aws, Failure> {
    Ok(Aws::connect(args.profile.as_deref(), args.region.as_deref()).await?)
}

/// Data goes when the environment's record says it is disposable; without a record, when
/// every data-bearing resource was tagged disposable at create.
fn data_may_go(record: Option<&Record>, world: &diff::World) -> bool {
    match record {
        Some(r) => r.disposable,
        None => world
            .owned_elsewhere
            .iter()
            .filter(|o| o.address.kind.info().data.is_some())
            .all(|o| o.all_tags.get(TAG_DISPOSABLE).map(String::as_str) == Some("true")),
    }
}

async fn destroy(
    aws: &Aws,
    how: &Reap<'_>,
    stack: &str,
    environment: &str,
    record: Option<&Record>,
) -> Result<(), Failure> {
    // A dry run changes nothing and takes no lock.
    let guard = if how.dry_run {
        None
    } else {
        Some(lock::take_for(aws, stack, environment, Operation::Destroy, &how.lock).await?)
    };
    let world = crate::observe::owned_without_stack(aws, stack, environment).await?;
    let account = aws.account_id().await?;
    let plan = diff::diff(&DiffInput {
        stack,
        environment,
        account_id: &account,
        region: &aws.region,
        desired: &[],
        world: &world,
        imports: &BTreeMap::new(),
        destroy: true,
        delete_data: data_may_go(record, &world),
    });
    preview_plan(&plan);
    let Some(guard) = guard else {
        eprintln!("Dry run: nothing was changed.");
        return Ok(());
    };
    let ownership: Tags = [
        (TAG_STACK.to_string(), stack.to_string()),
        (TAG_ENV.to_string(), environment.to_string()),
    ]
    .into();
    let owner = Owner {
        stack: stack.to_string(),
        environment: environment.to_string(),
        ownership,
    };
    let no_wait = WaitArgs::none();
    let held = guard.held();
    execute_plan(&plan, aws, &owner, Default::default(), &no_wait, &held).await?;
    if plan.kept.is_empty() {
        held.forget_environment().await?;
    }
    Ok(())
}
