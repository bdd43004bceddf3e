//! ECS reads about what runs, not what is configured: a service's deployments and events, its
//! running and recently stopped tasks, and the health of the targets it registers — converted
//! to the pure `rollout` types that `deploy status` (and apply's rollout wait) judge.

use super::{err, Aws, AwsError};
use crate::rollout::{
    ContainerExit, Deployment, ServiceEvent, ServiceState, TargetState, TaskState,
};
use aws_sdk_ecs::types as ecs;
use std::collections::BTreeMap;

/// DescribeTasks takes at most 100 tasks a call.
const DESCRIBE_TASKS_MAX: usize = 100;
/// How far back `status` looks for stopped tasks (ECS keeps them visible about an hour).
const STOPPED_WINDOW_SECS: i64 = 3600;

fn secs(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.map(|t| t.secs())
}

pub(crate) fn deployment(d: &ecs::Deployment) -> Deployment {
    Deployment {
        id: d.id().unwrap_or_default().to_string(),
        status: d.status().unwrap_or_default().to_string(),
        task_definition: d.task_definition().unwrap_or_default().to_string(),
        rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
        rollout_state_reason: d.rollout_state_reason().map(str::to_string),
        desired: d.desired_count(),
        running: d.running_count(),
        pending: d.pending_count(),
        failed: d.failed_tasks(),
        created_at: secs(d.created_at()),
    }
}

fn task(t: &ecs::Task) -> TaskState {
    TaskState {
        id: t
            .task_arn()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default()
            .to_string(),
        task_definition: t.task_definition_arn().unwrap_or_default().to_string(),
        last_status: t.last_status().unwrap_or_default().to_string(),
        stopped_reason: t.stopped_reason().map(str::to_string),
        stopped_at: secs(t.stopped_at()),
        containers: t
            .containers()
            .iter()
            .map(|c| ContainerExit {
                name: c.name().unwrap_or_default().to_string(),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
            })
            .collect(),
    }
}

/// The tasks of `service` with the desired status given (ListTasks, one call a page).
async fn task_arns(
    aws: &Aws,
    cluster: &str,
    service: &str,
    desired: ecs::DesiredStatus,
) -> Result<Vec<String>, AwsError> {
    let pages: Vec<_> = aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(desired)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("ecs", "ListTasks"))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.task_arns().iter().cloned())
        .collect())
}

/// DescribeTasks for `arns`, 100 a call.
async fn describe_tasks(
    aws: &Aws,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<TaskState>, AwsError> {
    let mut out = Vec::new();
    for chunk in arns.chunks(DESCRIBE_TASKS_MAX) {
        let answer = aws
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(err("ecs", "DescribeTasks"))?;
        out.extend(answer.tasks().iter().map(task));
    }
    Ok(out)
}

/// The targets of one target group (DescribeTargetHealth).
pub async fn target_states(aws: &Aws, target_group: &str) -> Result<Vec<TargetState>, AwsError> {
    let answer = aws
        .elbv2
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .map_err(err("elbv2", "DescribeTargetHealth"))?;
    Ok(answer
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let health = d.target_health();
            TargetState {
                id: d
                    .target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_string(),
                port: d.target().and_then(|t| t.port()),
                state: health
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: health
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_string()),
                description: health.and_then(|h| h.description()).map(str::to_string),
            }
        })
        .collect())
}

/// Everything `status` shows of one service; stopped tasks of the last hour by this machine's
/// clock. Calls: DescribeServices; ListTasks (running, stopped); DescribeTasks (when there are
/// tasks); DescribeTargetHealth per target group.
pub async fn service_state(
    aws: &Aws,
    address: &str,
    cluster: &str,
    name: &str,
) -> Result<ServiceState, AwsError> {
    let at = |e: AwsError| e.at(address);
    let missing = || ServiceState::missing(address, name, cluster);
    let answer = match aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .map_err(err("ecs", "DescribeServices"))
    {
        Ok(answer) => answer,
        // No cluster yet: the service is missing too.
        Err(e) if e.code_is("ClusterNotFoundException") => return Ok(missing()),
        Err(e) => return Err(at(e)),
    };
    let Some(s) = answer
        .services()
        .iter()
        .find(|s| s.status() != Some("INACTIVE"))
    else {
        return Ok(missing());
    };
    let (running_arns, stopped_arns) = tokio::try_join!(
        task_arns(aws, cluster, name, ecs::DesiredStatus::Running),
        task_arns(aws, cluster, name, ecs::DesiredStatus::Stopped),
    )
    .map_err(at)?;
    let all: Vec<String> = running_arns.iter().chain(&stopped_arns).cloned().collect();
    let tasks = describe_tasks(aws, cluster, &all).await.map_err(at)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut running_by_revision = BTreeMap::new();
    let mut stopped = Vec::new();
    for t in tasks {
        if t.last_status == "STOPPED" || t.stopped_at.is_some() {
            if t.stopped_at
                .is_none_or(|at| now - at <= STOPPED_WINDOW_SECS)
            {
                stopped.push(t);
            }
        } else {
            *running_by_revision
                .entry(t.task_definition.clone())
                .or_insert(0) += 1;
        }
    }
    stopped.sort_by_key(|t| std::cmp::Reverse(t.stopped_at));
    let mut targets = BTreeMap::new();
    for lb in s.load_balancers() {
        if let Some(tg) = lb.target_group_arn() {
            targets.insert(tg.to_string(), target_states(aws, tg).await.map_err(at)?);
        }
    }
    Ok(ServiceState {
        running_by_revision,
        stopped,
        targets,
        ..service(s, address, cluster)
    })
}

/// A described service as the rollout types see it (its tasks and targets left empty).
fn service(s: &ecs::Service, address: &str, cluster: &str) -> ServiceState {
    ServiceState {
        address: address.to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        cluster: cluster.to_string(),
        status: s.status().unwrap_or_default().to_string(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        deployments: s.deployments().iter().map(deployment).collect(),
        events: s
            .events()
            .iter()
            .map(|e| ServiceEvent {
                at: secs(e.created_at()),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect(),
        running_by_revision: BTreeMap::new(),
        stopped: vec![],
        targets: BTreeMap::new(),
    }
}

/// What a rollout wait polls: the services' deployments, counts and events, one
/// DescribeServices per cluster ([`super::ecs::SERVICES_PER_CALL`] services a call); tasks
/// and targets are left empty (read only when a rollout fails). A service not found comes back `MISSING`.
pub async fn poll_services(
    aws: &Aws,
    cluster: &str,
    services: &[(String, String)],
) -> Result<Vec<ServiceState>, AwsError> {
    let mut out = Vec::new();
    for chunk in services.chunks(super::ecs::SERVICES_PER_CALL) {
        let answer = aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.iter().map(|(_, name)| name.clone()).collect()))
            .send()
            .await
            .map_err(err("ecs", "DescribeServices"))?;
        for (address, name) in chunk {
            let found = answer
                .services()
                .iter()
                .find(|s| s.service_name() == Some(name) && s.status() != Some("INACTIVE"));
            out.push(match found {
                Some(s) => service(s, address, cluster),
                None => ServiceState::missing(address, name, cluster),
            });
        }
    }
    Ok(out)
}
