//! `deploy ls`: every stack environment in the account and region, without any stack file:
//! its resources by kind (found by their ownership tags), its record (created, last applied,
//! expiry), its lock and the rough monthly cost of its Fargate tasks.

use crate::aws::{state_table, Aws};
use crate::cli::AwsArgs;
use crate::inventory::{self, Environment, Found, Running};
use crate::lock::now_epoch;
use crate::model::{TAG_ENV, TAG_STACK};
use crate::printer::{json_output, to_json};
use crate::run::Failure;
use serde::Serialize;

/// The `--format json` document (`kind: inventory` in schemas/deploy-v1.schema.json).
#[derive(Serialize)]
struct InventoryReport<'a> {
    format_version: &'static str,
    tool_version: &'static str,
    kind: &'static str,
    region: &'a str,
    environments: &'a [Environment],
}

pub async fn run(aws_args: &AwsArgs, expired_only: bool) -> Result<(), Failure> {
    let aws = Aws::connect(aws_args.profile.as_deref(), aws_args.region.as_deref()).await?;
    let ((locks, records), (owned, services)) = tokio::try_join!(
        state_table::scan(&aws),
        crate::observe::everything_owned(&aws)
    )?;
    let owner = |tags: &crate::model::Tags| {
        Some((
            tags.get(TAG_STACK)?.clone(),
            tags.get(TAG_ENV).cloned().unwrap_or_default(),
        ))
    };
    let found: Vec<Found> = owned
        .iter()
        .filter_map(|(kind, _, tags)| {
            let (stack, environment) = owner(tags)?;
            Some(Found {
                stack,
                environment,
                kind: *kind,
            })
        })
        .collect();
    let running: Vec<Running> = services
        .iter()
        .filter_map(|(tags, cpu, memory, desired)| {
            let (stack, environment) = owner(tags)?;
            Some(Running {
                stack,
                environment,
                cpu_units: *cpu,
                memory_mib: *memory,
                desired: *desired,
            })
        })
        .collect();
    let mut envs =
        inventory::inventory(&aws.region, now_epoch(), &found, &running, &records, &locks);
    if expired_only {
        envs.retain(|e| e.expired);
    }
    if json_output() {
        println!(
            "{}",
            to_json(&InventoryReport {
                format_version: crate::report::FORMAT_VERSION,
                tool_version: env!("CARGO_PKG_VERSION"),
                kind: "inventory",
                region: &aws.region,
                environments: &envs,
            })
        );
    } else {
        print!("{}", inventory::text(&envs, &aws.region));
    }
    Ok(())
}
