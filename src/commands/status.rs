//! `deploy status`: is the stack healthy now? Read-only, one screen: every service's
//! deployments, tasks per revision, target health, recently stopped tasks and newest events,
//! and where to look next. Exit 0 when every service is healthy, 2 when any is not.

use super::{build_offline, load_valid};
use crate::aws::{ecs_rollouts, Aws};
use crate::cli::{AwsArgs, StackArgs};
use crate::model::{aws_name_of, Attrs, Desired};
use crate::printer::{json_output, to_json};
use crate::reloads::FamilyFiles;
use crate::render::Templates;
use crate::report;
use crate::rollout::{revision_of, target_group_name, ServiceState, EVENTS_SHOWN};
use crate::run::Failure;
use futures::future::try_join_all;
use std::fmt::Write;

/// What the stack says to look at besides the services.
pub struct WhereToLook {
    /// `https://HOST/` of each listener rule's host (Grafana).
    pub urls: Vec<String>,
    pub log_groups: Vec<String>,
}

/// `deploy status`: Ok(0) healthy, Ok(2) not.
pub async fn run(stack_args: &StackArgs, aws_args: &AwsArgs) -> Result<i32, Failure> {
    let loaded = load_valid(stack_args)?;
    let stack = &loaded.stack;
    // Names follow from the stack alone: no lookup is needed to find the services.
    let (_, built) = build_offline(&loaded, None, &Templates::new(&stack_args.templates))?;
    let region = aws_args.region.clone().or_else(|| stack.region.clone());
    let aws = Aws::connect(aws_args.profile.as_deref(), region.as_deref()).await?;
    let services = stack_services(&built.desired);
    let states =
        try_join_all(services.iter().map(|(address, cluster, name)| {
            ecs_rollouts::service_state(&aws, address, cluster, name)
        }))
        .await?;
    let look = WhereToLook {
        urls: built
            .desired
            .iter()
            .filter_map(|d| match &d.attrs {
                Attrs::ListenerRule(r) => Some(r.conditions.host_headers.iter()),
                _ => None,
            })
            .flatten()
            .map(|h| format!("https://{h}/"))
            .collect(),
        log_groups: built
            .desired
            .iter()
            .filter_map(|d| match &d.attrs {
                Attrs::LogGroup(g) => Some(g.name.clone()),
                _ => None,
            })
            .collect(),
    };
    let files = config_files(stack, &built.desired, &aws).await?;
    let healthy = states.iter().all(|s| s.problems().is_empty())
        && files.iter().all(|f| f.problems().is_empty());
    if json_output() {
        println!(
            "{}",
            to_json(&report::status_report(
                &stack.stack,
                &stack.environment,
                &aws.region,
                &states,
                &look,
                &files
            ))
        );
    } else {
        print!(
            "{}",
            status_text(
                &stack.stack,
                &stack.environment,
                &aws.region,
                &states,
                &look,
                &files
            )
        );
    }
    Ok(if healthy { 0 } else { 2 })
}

/// What each task's config sidecar last reported, per family with files in the config bucket
/// (none without a `config_bucket`, or before the bucket exists). Calls: GetCallerIdentity,
/// then per family GetObject (the manifest), ListObjectsV2 and GetObject (status objects).
async fn config_files(
    stack: &crate::spec::Stack,
    desired: &[Desired],
    aws: &Aws,
) -> Result<Vec<FamilyFiles>, Failure> {
    if stack.config_bucket.is_none() {
        return Ok(vec![]);
    }
    let bucket = crate::render::reload::bucket_name(
        &stack.stack,
        &stack.environment,
        &aws.account_id().await?,
        &aws.region,
    );
    if crate::aws::s3::read_config_bucket(aws, &bucket)
        .await?
        .is_none()
    {
        return Ok(vec![]);
    }
    let families: std::collections::BTreeSet<String> =
        crate::reloads::services_of_families(desired)
            .into_iter()
            .map(|s| s.family)
            .collect();
    let mut out = Vec::new();
    for family in families {
        let manifest_version = crate::aws::s3::read_manifest(aws, &bucket, &family)
            .await?
            .map(|(_, v)| v);
        let tasks = crate::aws::s3::reload_statuses(aws, &bucket, &family).await?;
        out.push(FamilyFiles {
            family,
            manifest_version,
            tasks,
        });
    }
    Ok(out)
}

/// The stack's ECS services as (address, cluster name, service name), named from the stack
/// alone.
pub fn stack_services(desired: &[Desired]) -> Vec<(String, String, String)> {
    desired
        .iter()
        .filter_map(|d| match &d.attrs {
            Attrs::EcsService(s) => Some((
                d.address.to_string(),
                aws_name_of(desired, &s.cluster),
                s.name.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn when(secs: Option<i64>) -> String {
    secs.map(|s| {
        aws_smithy_types::DateTime::from_secs(s)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_else(|_| s.to_string())
    })
    .unwrap_or_else(|| "-".into())
}

/// The human form of `status`.
pub fn status_text(
    stack: &str,
    environment: &str,
    region: &str,
    states: &[ServiceState],
    look: &WhereToLook,
    files: &[FamilyFiles],
) -> String {
    let mut out = String::new();
    let unhealthy = states.iter().filter(|s| !s.problems().is_empty()).count();
    let _ = writeln!(
        out,
        "Stack {stack} ({environment}) in region {region}: {}\n",
        if unhealthy == 0 {
            format!("all {} services healthy", states.len())
        } else {
            format!("{unhealthy} of {} services unhealthy", states.len())
        }
    );
    for s in states {
        let problems = s.problems();
        let _ = writeln!(
            out,
            "{}  {} in cluster {}: {}",
            s.address,
            s.name,
            s.cluster,
            if problems.is_empty() {
                "healthy"
            } else {
                "UNHEALTHY"
            }
        );
        for p in &problems {
            let _ = writeln!(out, "  ! {p}");
        }
        if s.status == "MISSING" {
            out.push('\n');
            continue;
        }
        let _ = writeln!(
            out,
            "  revision {}, desired {} running {} pending {}",
            revision_of(&s.task_definition),
            s.desired,
            s.running,
            s.pending
        );
        for d in &s.deployments {
            let _ = writeln!(
                out,
                "  deployment {} {} {} {}{}: desired {} running {} pending {} failed {} (since {})",
                d.id,
                d.status,
                revision_of(&d.task_definition),
                d.rollout_state.as_deref().unwrap_or("-"),
                d.rollout_state_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                d.desired,
                d.running,
                d.pending,
                d.failed,
                when(d.created_at)
            );
        }
        if !s.running_by_revision.is_empty() {
            let list: Vec<String> = s
                .running_by_revision
                .iter()
                .map(|(r, n)| format!("{} ×{n}", revision_of(r)))
                .collect();
            let _ = writeln!(out, "  running tasks: {}", list.join(", "));
        }
        for (group, targets) in &s.targets {
            let _ = writeln!(out, "  targets of {}:", target_group_name(group));
            if targets.is_empty() {
                let _ = writeln!(out, "    (none registered)");
            }
            for t in targets {
                let _ = writeln!(
                    out,
                    "    {}{} {}{}",
                    t.id,
                    t.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    t.state,
                    match (&t.reason, &t.description) {
                        (Some(r), Some(d)) => format!(" {r}: {d}"),
                        (Some(r), None) => format!(" {r}"),
                        _ => String::new(),
                    }
                );
            }
        }
        let stopped = s.stopped_by_reason();
        if !stopped.is_empty() {
            let _ = writeln!(out, "  stopped in the last hour:");
            for (reason, n) in stopped {
                let _ = writeln!(out, "    {n} × {reason}");
            }
        }
        if !s.events.is_empty() {
            let _ = writeln!(out, "  newest events:");
            for e in s.events.iter().take(EVENTS_SHOWN) {
                let _ = writeln!(out, "    {}  {}", when(e.at), e.message);
            }
        }
        out.push('\n');
    }
    if !files.is_empty() {
        let _ = writeln!(out, "Config files (reloaded without a restart):");
    }
    for f in files {
        let _ = writeln!(
            out,
            "  {}: manifest version {}",
            f.family,
            f.manifest_version.as_deref().unwrap_or("(none published)")
        );
        for p in f.problems() {
            let _ = writeln!(out, "  ! {p}");
        }
        for t in &f.tasks {
            let current = Some(t.manifest_version.as_str()) == f.manifest_version.as_deref();
            let servers: Vec<String> = t
                .reload_successful
                .iter()
                .map(|(name, v)| match v {
                    Some(v) if *v == 1.0 => format!("{name} reload ok"),
                    Some(_) => format!("{name} last reload FAILED"),
                    None => format!("{name} not readable"),
                })
                .collect();
            let _ = writeln!(
                out,
                "    task {}: {} {}{} at {}{}{}",
                t.task,
                t.result,
                t.manifest_version,
                if current {
                    ""
                } else {
                    " (not the current version)"
                },
                t.at,
                if servers.is_empty() {
                    String::new()
                } else {
                    format!("; {}", servers.join(", "))
                },
                if t.error.is_empty() {
                    String::new()
                } else {
                    format!("; {}", t.error)
                }
            );
        }
    }
    if !files.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "Where to look:");
    for u in &look.urls {
        let _ = writeln!(out, "  Grafana: {u}");
    }
    for g in &look.log_groups {
        let _ = writeln!(out, "  logs: {g}  (aws logs tail {g} --follow)");
    }
    out
}
