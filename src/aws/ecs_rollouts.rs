//! ECS reads about what runs, not what is configured: a service's deployments and events, its
//! running and recently stopped tasks, and the health of the targets it registers — converted
//! to the pure `rollout` types that `deploy status` (and apply's rollout wait) judge.

use super::{err, Aws, AwsError};
use crate::model::{Tags, TaskDefinitionAttrs, TAG_ROLLED_BACK, TAG_ROLLOUT_COMPLETED};
use crate::rollout::{
    revision_of, ContainerExit, Deployment, Followed, RevisionFacts, ServiceDeployment,
    ServiceEvent, ServiceState, TargetState, TaskState,
};
use aws_sdk_ecs::types as ecs;
use std::collections::BTreeMap;

/// DescribeServiceRevisions takes at most 20 ARNs a call.
const DESCRIBE_REVISIONS_MAX: usize = 20;
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

/// Services in several clusters, each as (address, cluster, name), read the way a wait polls
/// them: one DescribeServices per cluster ([`poll_services`]); answered in the order asked.
pub async fn poll_clusters(
    aws: &Aws,
    services: &[(String, String, String)],
) -> Result<Vec<ServiceState>, AwsError> {
    let mut by_cluster: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (address, cluster, name) in services {
        by_cluster
            .entry(cluster.as_str())
            .or_default()
            .push((address.clone(), name.clone()));
    }
    let mut states = Vec::new();
    for (cluster, wanted) in by_cluster {
        states.extend(poll_services(aws, cluster, &wanted).await?);
    }
    Ok(services
        .iter()
        .map(|(address, cluster, name)| {
            states
                .iter()
                .find(|s| &s.address == address)
                .cloned()
                .unwrap_or_else(|| ServiceState::missing(address, name, cluster))
        })
        .collect())
}

/// The service deployments of a service in the statuses given (all when empty), newest first,
/// each with the revision it deployed. Calls: ListServiceDeployments (a call a page), then
/// DescribeServiceRevisions (20 a call).
pub async fn service_deployments(
    aws: &Aws,
    cluster: &str,
    service: &str,
    statuses: &[ecs::ServiceDeploymentStatus],
) -> Result<Vec<ServiceDeployment>, AwsError> {
    let mut briefs = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = aws
            .ecs
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .set_status((!statuses.is_empty()).then(|| statuses.to_vec()))
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(err("ecs", "ListServiceDeployments"))?;
        briefs.extend(page.service_deployments().iter().cloned());
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    let revision_arns: Vec<String> = briefs
        .iter()
        .filter_map(|b| b.target_service_revision_arn().map(str::to_string))
        .collect();
    let mut revisions = BTreeMap::new();
    for chunk in revision_arns.chunks(DESCRIBE_REVISIONS_MAX) {
        let answer = aws
            .ecs
            .describe_service_revisions()
            .set_service_revision_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(err("ecs", "DescribeServiceRevisions"))?;
        for r in answer.service_revisions() {
            if let (Some(arn), Some(td)) = (r.service_revision_arn(), r.task_definition()) {
                revisions.insert(arn.to_string(), td.to_string());
            }
        }
    }
    let mut out: Vec<ServiceDeployment> = briefs
        .iter()
        .map(|b| ServiceDeployment {
            arn: b.service_deployment_arn().unwrap_or_default().to_string(),
            status: b
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            task_definition: b
                .target_service_revision_arn()
                .and_then(|r| revisions.get(r).cloned()),
            created_at: secs(b.created_at()),
        })
        .collect();
    out.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    Ok(out)
}

/// Stops the running service deployment of `service` that deploys `task_definition` with a
/// rollback to the service's previous revision (StopServiceDeployment, stopType ROLLBACK);
/// answers its ARN. Finding it: ListServiceDeployments in PENDING/IN_PROGRESS, matched by the
/// revision (a deployment's id is not its service deployment's ARN).
pub async fn stop_with_rollback(
    aws: &Aws,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> Result<String, AwsError> {
    let running = service_deployments(
        aws,
        cluster,
        service,
        &[
            ecs::ServiceDeploymentStatus::Pending,
            ecs::ServiceDeploymentStatus::InProgress,
        ],
    )
    .await?;
    let Some(found) = running
        .iter()
        .find(|d| d.task_definition.as_deref() == Some(task_definition))
    else {
        return Err(AwsError::other(
            "ecs",
            "ListServiceDeployments",
            format!(
                "no service deployment of {service} deploying {} is in progress",
                crate::rollout::revision_of(task_definition)
            ),
        ));
    };
    aws.ecs
        .stop_service_deployment()
        .service_deployment_arn(&found.arn)
        .stop_type(ecs::StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .map_err(err("ecs", "StopServiceDeployment"))?;
    Ok(found.arn.clone())
}

/// Now as RFC 3339 (UTC), as the rollout tags hold it.
fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// The newest ACTIVE revisions of `family` (at most [`super::ecs::RECENT_REVISIONS`]), newest
/// first, each weighed for `stack`/`environment` and with its attributes. Calls: 1
/// ListTaskDefinitions, then [`described_revisions`].
pub async fn revision_records(
    aws: &Aws,
    family: &str,
    stack: &str,
    environment: &str,
) -> Result<Vec<(RevisionFacts, TaskDefinitionAttrs)>, AwsError> {
    let arns = super::ecs::recent_revisions(aws, family).await?;
    described_revisions(aws, &arns, stack, environment).await
}

/// Each revision of `arns` (gone ones left out) with its ownership for `stack`/`environment`,
/// deploy's record of a completed rollout, and its attributes. Calls: 1 DescribeTaskDefinition
/// (with tags) per revision, concurrently.
async fn described_revisions(
    aws: &Aws,
    arns: &[String],
    stack: &str,
    environment: &str,
) -> Result<Vec<(RevisionFacts, TaskDefinitionAttrs)>, AwsError> {
    let described = futures::future::try_join_all(
        arns.iter()
            .map(|arn| super::ecs::describe_task_definition(aws, arn)),
    )
    .await?;
    Ok(described
        .into_iter()
        .flatten()
        .map(|(arn, attrs, tags)| {
            let facts = RevisionFacts {
                owned: crate::model::Ownership::judge(&tags, stack, environment)
                    == crate::model::Ownership::Owned,
                completed_at: tags.get(TAG_ROLLOUT_COMPLETED).cloned(),
                arn,
            };
            (facts, attrs)
        })
        .collect())
}

/// Records on the revision that a rollout of it completed now (TagResource
/// `deploy:rollout-completed`): `rollback` returns to such revisions.
pub async fn record_completed(aws: &Aws, task_definition: &str) -> Result<(), AwsError> {
    let tag = Tags::from([(TAG_ROLLOUT_COMPLETED.to_string(), now_rfc3339())]);
    super::ecs::set_tags(aws, task_definition, &tag, &[]).await
}

/// Records on revision `task_definition` the config manifest version its tasks run
/// ([`TAG_CONFIG_MANIFEST`]). Calls: TagResource.
pub async fn record_config_manifest(
    aws: &Aws,
    task_definition: &str,
    version: &str,
) -> Result<(), AwsError> {
    let tag = Tags::from([(
        crate::model::TAG_CONFIG_MANIFEST.to_string(),
        version.to_string(),
    )]);
    super::ecs::set_tags(aws, task_definition, &tag, &[]).await
}

/// The config manifest version recorded on a revision, if any. Calls: DescribeTaskDefinition.
pub async fn recorded_config_manifest(
    aws: &Aws,
    task_definition: &str,
) -> Result<Option<String>, AwsError> {
    Ok(super::ecs::describe_task_definition(aws, task_definition)
        .await?
        .and_then(|(_, _, tags)| tags.get(crate::model::TAG_CONFIG_MANIFEST).cloned()))
}

/// What a revision refers to that no longer exists: its IAM roles, EFS access points, awslogs
/// log groups and Secrets Manager secrets. Calls: GetRole per role, DescribeAccessPoints per
/// access point, DescribeLogGroups per log group, DescribeSecret per secret.
pub async fn gone_references(
    aws: &Aws,
    attrs: &TaskDefinitionAttrs,
) -> Result<Vec<String>, AwsError> {
    let mut gone = Vec::new();
    for role in attrs.execution_role.iter().chain(&attrs.task_role) {
        let name = role.rsplit('/').next().unwrap_or(role);
        match aws.iam.get_role().role_name(name).send().await {
            Ok(_) => {}
            Err(e) => {
                let e = err("iam", "GetRole")(e);
                if e.code_is("NoSuchEntity") {
                    gone.push(format!("IAM role {name}"));
                } else {
                    return Err(e);
                }
            }
        }
    }
    let probe = crate::model::Address::new(crate::model::Kind::TaskDefinition, &attrs.family);
    for (volume, v) in &attrs.volumes {
        if let Some(ap) = &v.access_point {
            if super::efs::observe_access_point(aws, ap, &probe)
                .await?
                .is_none()
            {
                gone.push(format!("EFS access point {ap} (volume {volume})"));
            }
        }
    }
    let mut groups: Vec<&String> = attrs
        .containers
        .iter()
        .filter_map(|c| c.log.as_ref())
        .filter(|l| l.driver == "awslogs")
        .filter_map(|l| l.options.get("awslogs-group"))
        .collect();
    groups.sort();
    groups.dedup();
    for group in groups {
        if super::logs::find_log_group(aws, group, &probe)
            .await?
            .is_none()
        {
            gone.push(format!("log group {group}"));
        }
    }
    let mut secrets: Vec<String> = attrs
        .containers
        .iter()
        .flat_map(|c| c.secrets.values())
        .filter(|r| r.from.starts_with("arn:aws:secretsmanager:"))
        // valueFrom may carry `:json-key:version-stage:version-id` after the secret's ARN.
        .map(|r| r.from.split(':').take(7).collect::<Vec<_>>().join(":"))
        .collect();
    secrets.sort();
    secrets.dedup();
    for secret in secrets {
        if super::secrets::lookup_secret_arn(aws, &secret)
            .await
            .is_err()
        {
            gone.push(format!("secret {secret}"));
        }
    }
    Ok(gone)
}

/// Points `service` at `to` (UpdateService) and tags it `deploy:rolled-back = from REVISION at
/// TIME`; answers what a wait follows: the deployment the call started when its PRIMARY id is
/// new (`primary_before` is the one seen before the call).
pub async fn roll_service_back(
    aws: &Aws,
    state: &ServiceState,
    to: &str,
) -> Result<Followed, AwsError> {
    let answer = aws
        .ecs
        .update_service()
        .cluster(&state.cluster)
        .service(&state.name)
        .task_definition(to)
        .send()
        .await
        .map_err(err("ecs", "UpdateService"))?;
    let service = answer.service();
    let primary_before = state
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .map(|d| d.id.clone());
    let started = service
        .and_then(super::ecs::primary_deployment)
        .filter(|p| Some(&p.id) != primary_before.as_ref());
    if let Some(arn) = service.and_then(|s| s.service_arn()) {
        let from = format!(
            "from {} at {}",
            revision_of(&state.task_definition),
            now_rfc3339()
        );
        let tag = Tags::from([(TAG_ROLLED_BACK.to_string(), from)]);
        super::ecs::set_tags(aws, arn, &tag, &[]).await?;
    }
    Ok(Followed {
        address: state.address.clone(),
        cluster: state.cluster.clone(),
        service: state.name.clone(),
        deployment: started.as_ref().map(|d| d.id.clone()),
        task_definition: to.to_string(),
        desired: state.desired,
        since: started.and_then(|d| d.created_at),
        breaker_threshold: service
            .and_then(|s| s.deployment_configuration())
            .and_then(|d| d.deployment_circuit_breaker())
            .and_then(|b| b.threshold_configuration())
            .map(|t| {
                crate::rollout::breaker_threshold_of(
                    &format!("{} {}", t.r#type().as_str(), t.value()),
                    state.desired,
                )
            })
            .unwrap_or_else(|| crate::rollout::breaker_threshold(state.desired)),
    })
}

/// The ACTIVE revisions of `family`, newest first, for revision hygiene. Calls: ListTaskDefinitions;
/// only when there are more than `kept` of them, a DescribeTaskDefinition (with tags) each, to
/// know which are owned and which completed a rollout (otherwise nothing is deregistered and
/// the facts stay unread: not owned, no completion).
pub async fn revision_facts(
    aws: &Aws,
    family: &str,
    kept: usize,
    stack: &str,
    environment: &str,
) -> Result<Vec<RevisionFacts>, AwsError> {
    let arns = super::ecs::active_revisions(aws, family, None).await?;
    if arns.len() <= kept {
        return Ok(arns
            .into_iter()
            .map(|arn| RevisionFacts {
                arn,
                owned: false,
                completed_at: None,
            })
            .collect());
    }
    Ok(described_revisions(aws, &arns, stack, environment)
        .await?
        .into_iter()
        .map(|(facts, _)| facts)
        .collect())
}

/// Deregisters the revisions (DeregisterTaskDefinition each); one already gone is fine.
pub async fn deregister_revisions(aws: &Aws, arns: &[String]) -> Result<(), AwsError> {
    for arn in arns {
        aws.ecs
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(err("ecs", "DeregisterTaskDefinition"))?;
    }
    Ok(())
}
