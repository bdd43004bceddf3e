//! `deploy rollback`: returns services to the last revision that completed a rollout (or the
//! one named), after checking that everything that revision refers to still exists, and
//! follows the rollouts like apply. Nothing is changed when any service cannot be rolled back.

use super::apply::{ask, follow_rollouts, interrupt_flag, rollouts_outcome};
use super::status::stack_services;
use super::{build_offline, load_valid};
use crate::aws::provider::AwsProvider;
use crate::aws::{ecs_rollouts, Aws};
use crate::cli::{AwsArgs, StackArgs, WaitArgs};
use crate::printer::{json_output, to_json};
use crate::render::Templates;
use crate::report::{self, RollbackTarget};
use crate::rollout::{family_of, revision_of, rollback_target, ServiceState};
use crate::run::Failure;
use crate::spec;
use aws_sdk_ecs::types::ServiceDeploymentStatus;

/// `deploy rollback [SERVICE…] [--to REVISION]`.
pub async fn run(
    stack_args: &StackArgs,
    aws_args: &AwsArgs,
    names: &[String],
    to: Option<&str>,
    auto_approve: bool,
    wait: &WaitArgs,
    lock: &crate::lock::LockOptions,
) -> Result<(), Failure> {
    let loaded = load_valid(stack_args)?;
    let stack = &loaded.stack;
    let (_, built) = build_offline(&loaded, None, &Templates::new(&stack_args.templates))?;
    let all = stack_services(&built.desired);
    let selected = select(&all, names)?;
    if to.is_some() && selected.len() != 1 {
        return Err(Failure::Refused(
            "--to names one revision: give exactly one SERVICE with it; nothing was changed".into(),
        ));
    }
    let region = aws_args.region.clone().or_else(|| stack.region.clone());
    let aws = Aws::connect(aws_args.profile.as_deref(), region.as_deref()).await?;
    // Held from before the services are read until the rollouts' waits end.
    let guard = crate::lock::take_for(
        &aws,
        &stack.stack,
        &stack.environment,
        crate::lock::Operation::Rollback,
        lock,
    )
    .await?;

    let states = ecs_rollouts::poll_clusters(&aws, &selected).await?;
    let mut targets = Vec::new();
    let mut moved = Vec::new();
    let mut refusals = Vec::new();
    for state in &states {
        match choose(&aws, state, to, &stack.stack, &stack.environment).await? {
            Choice::Target(target) => {
                targets.push(target);
                moved.push(state.clone());
            }
            // Rolling back the whole stack passes over a service with nothing to go back to.
            Choice::NothingEarlier(why) if names.is_empty() => {
                eprintln!("{}: left as it is: {why}", state.address)
            }
            Choice::NothingEarlier(why) | Choice::Refused(why) => {
                refusals.push(format!("{}: {why}", state.address))
            }
        }
    }
    if targets.is_empty() && refusals.is_empty() {
        refusals.push("no service of the stack has an earlier revision to return to".into());
    }
    if !refusals.is_empty() {
        return Err(Failure::Refused(format!(
            "cannot roll back, nothing was changed:\n  {}",
            refusals.join("\n  ")
        )));
    }

    eprintln!(
        "Rollback of stack {} ({}) in region {}:",
        stack.stack, stack.environment, aws.region
    );
    for t in &targets {
        eprintln!(
            "  {}: {} -> {}{}",
            t.address,
            revision_of(&t.from),
            revision_of(&t.to),
            t.completed_at
                .as_deref()
                .map(|at| format!(" (its rollout completed at {at})"))
                .unwrap_or_else(|| " (ECS lists a successful deployment of it)".into())
        );
    }
    if !auto_approve {
        ask(
            "rollback",
            &format!(
                "Region {}, stack {}, environment {}: {} service(s) return to an earlier revision.",
                aws.region,
                stack.stack,
                stack.environment,
                targets.len()
            ),
            "Do you want to roll back? Only 'yes' will be accepted: ",
            "yes",
        )?;
    }

    let stop = interrupt_flag("\nInterrupt: no further service is rolled back…");
    let provider = AwsProvider {
        aws: aws.clone(),
        stack: stack.stack.clone(),
        environment: stack.environment.clone(),
        ownership: spec::ownership_tags(stack),
        started: Default::default(),
        published: Default::default(),
        lock: Some(guard.held()),
    };
    let mut followed = Vec::new();
    for (t, state) in targets.iter().zip(&moved) {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        restore_config_files(&aws, stack, t).await?;
        followed.push(
            ecs_rollouts::roll_service_back(&aws, state, &t.to)
                .await
                .map_err(|e| e.at(&t.address))?,
        );
    }
    let rollouts = follow_rollouts(&followed, &provider, wait, stop.clone(), None).await;
    if json_output() {
        println!(
            "{}",
            to_json(&report::rollback_report(
                &stack.stack,
                &stack.environment,
                &aws.region,
                &targets,
                &rollouts
            ))
        );
    }
    rollouts_outcome(&rollouts, wait, &stop, "Rollback")?;
    let newer: Vec<String> = targets
        .iter()
        .map(|t| format!("{} ({})", t.address, revision_of(&t.from)))
        .collect();
    eprintln!(
        "Rollback {}. The stack file still describes the newer revision of {}: the next `deploy plan` re-deploys it, and says so.",
        if wait.no_wait {
            "started (not followed: --no-wait; see deploy status)"
        } else {
            "complete"
        },
        newer.join(", ")
    );
    Ok(())
}

/// Before a service returns to revision `t.to`: the config files recorded with that revision
/// (its `deploy:config-manifest` tag) become current again, so its tasks (old and new) load
/// the files that went with it. Without a record the current files stay, and it says so.
/// Calls: GetCallerIdentity, DescribeTaskDefinition, CopyObject.
async fn restore_config_files(
    aws: &Aws,
    stack: &crate::spec::Stack,
    t: &RollbackTarget,
) -> Result<(), Failure> {
    if stack.config_bucket.is_none() {
        return Ok(());
    }
    let family = family_of(&t.to);
    let Some(version) = ecs_rollouts::recorded_config_manifest(aws, &t.to).await? else {
        eprintln!(
            "{}: no config files are recorded with {}: the current ones stay",
            t.address,
            revision_of(&t.to)
        );
        return Ok(());
    };
    let bucket = crate::render::reload::bucket_name(
        &stack.stack,
        &stack.environment,
        &aws.account_id().await?,
        &aws.region,
    );
    let current = crate::aws::s3::read_manifest(aws, &bucket, family)
        .await?
        .map(|(_, v)| v);
    if current.as_deref() == Some(version.as_str()) {
        return Ok(());
    }
    crate::aws::s3::restore_manifest(aws, &bucket, family, &version)
        .await
        .map_err(|e| e.at(&t.address))?;
    eprintln!(
        "{}: the config files of {} are current again (manifest version {version}); its tasks reload them",
        t.address,
        revision_of(&t.to)
    );
    Ok(())
}

/// The services named (by name or address), or every service of the stack.
fn select(
    all: &[(String, String, String)],
    names: &[String],
) -> Result<Vec<(String, String, String)>, Failure> {
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|(address, _, name)| {
                    address == n || name == n || address.ends_with(&format!(".{n}"))
                })
                .cloned()
                .ok_or_else(|| {
                    Failure::Refused(format!(
                        "the stack has no service `{n}` (its services: {}); nothing was changed",
                        all.iter()
                            .map(|(a, _, _)| a.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        })
        .collect()
}

/// What `rollback` does with one service.
enum Choice {
    Target(RollbackTarget),
    /// The family has no other ACTIVE revision.
    NothingEarlier(String),
    Refused(String),
}

/// Where `state`'s service goes back to, or why it cannot. Calls: ListTaskDefinitions and a
/// DescribeTaskDefinition per recent revision; ListServiceDeployments and
/// DescribeServiceRevisions when deploy recorded no completion; then the target's references.
async fn choose(
    aws: &Aws,
    state: &ServiceState,
    to: Option<&str>,
    stack: &str,
    environment: &str,
) -> Result<Choice, Failure> {
    if state.status != "ACTIVE" {
        return Ok(Choice::Refused(format!(
            "the service is {} (apply the stack first)",
            state.status
        )));
    }
    let current = state.task_definition.clone();
    let records =
        ecs_rollouts::revision_records(aws, family_of(&current), stack, environment).await?;
    let revisions: Vec<_> = records.iter().map(|(r, _)| r.clone()).collect();
    if revisions.iter().all(|r| r.arn == current) {
        return Ok(Choice::NothingEarlier(format!(
            "{} has no other ACTIVE revision",
            family_of(&current)
        )));
    }
    let recorded = revisions
        .iter()
        .any(|r| r.arn != current && r.completed_at.is_some());
    let successful = if to.is_none() && !recorded {
        ecs_rollouts::service_deployments(
            aws,
            &state.cluster,
            &state.name,
            &[
                ServiceDeploymentStatus::Successful,
                ServiceDeploymentStatus::RollbackSuccessful,
            ],
        )
        .await
        .map_err(|e| e.at(&state.address))?
        .into_iter()
        .filter_map(|d| d.task_definition)
        .collect()
    } else {
        vec![]
    };
    let chosen = match rollback_target(&current, &revisions, &successful, to) {
        Ok(arn) => arn,
        Err(why) => return Ok(Choice::Refused(why)),
    };
    let (record, attrs) = records
        .iter()
        .find(|(r, _)| r.arn == chosen)
        .expect("the target is one of the records");
    let gone = ecs_rollouts::gone_references(aws, attrs).await?;
    if !gone.is_empty() {
        return Ok(Choice::Refused(format!(
            "{} refers to what no longer exists: {} (a later apply replaced or removed it); roll back to a newer revision with --to, or apply",
            revision_of(&chosen),
            gone.join(", ")
        )));
    }
    Ok(Choice::Target(RollbackTarget {
        address: state.address.clone(),
        from: current,
        to: chosen,
        completed_at: record.completed_at.clone(),
    }))
}
