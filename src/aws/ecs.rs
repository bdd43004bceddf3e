//! ECS adapter: clusters, task definitions and services.
//!
//! It exists so that the rest of the tool sees ECS only through the normalized model: what is
//! read comes back in exactly the shape the stack would have asked for it (AWS-filled defaults
//! folded away), so a plan made right after an apply is empty. Task definitions get special care
//! because they are immutable and versioned: a family's revisions are searched for the one this
//! stack owns, a re-run apply reuses the revision an interrupted run already registered, and
//! `destroy` deregisters only the revisions that carry this stack's tags.
//!
//! Everything here takes and returns raw AWS ids (cluster names, ARNs, group ids).

use super::{err, tag_list, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, Container, EcsClusterAttrs, EcsServiceAttrs, EfsVolume, HealthCheck,
    LogConfig, MountPoint, Observed, Ownership, PortMapping, SecretRef, Tags, TaskDefinitionAttrs,
    TAG_APPLIED,
};
use crate::rollout::Deployment;
use aws_sdk_ecs::types as ecs;
use aws_smithy_types::error::operation::BuildError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SERVICE: &str = "ecs";

/// How long [`delete_service`] waits for a deleted service to leave the DRAINING state.
pub const DELETE_SERVICE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How often [`delete_service`] asks whether the service is gone.
pub const DELETE_SERVICE_POLL: Duration = Duration::from_secs(5);
/// How many of a family's newest ACTIVE revisions are searched for this stack's revision.
pub const RECENT_REVISIONS: usize = 10;

/// The ECS defaults that DescribeServices fills in when a service was created without them.
const DEFAULT_MAXIMUM_PERCENT: i32 = 200;
const DEFAULT_MINIMUM_HEALTHY_PERCENT: i32 = 100;
/// ECS's own health check defaults (seconds, count), filled in when a field was left out.
const DEFAULT_HEALTH_INTERVAL: i32 = 30;
const DEFAULT_HEALTH_TIMEOUT: i32 = 5;
const DEFAULT_HEALTH_RETRIES: i32 = 3;

/// An SDK request that could not be built (a required field is empty) as an [`AwsError`].
fn invalid(op: &'static str) -> impl Fn(BuildError) -> AwsError {
    move |e| AwsError::other(SERVICE, op, format!("invalid request: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

fn tags_from(list: &[ecs::Tag]) -> Tags {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn ecs_tags(tags: &Tags) -> Vec<ecs::Tag> {
    tag_list(tags, |k, v| ecs::Tag::builder().key(k).value(v).build())
}

/// The tags a create call carries: the caller's (ownership tags) plus the user tags in the
/// attributes, so observing right after the create finds the attributes' tags.
fn create_tags(user: &Tags, tags: &Tags) -> Tags {
    let mut all = tags.clone();
    all.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// Adds and removes tags on any ECS resource ARN (cluster, service, task definition revision).
/// Calls: TagResource when `tags` is not empty, UntagResource when `remove` is not empty.
pub async fn set_tags(
    aws: &Aws,
    arn: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.ecs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(ecs_tags(tags)))
            .send()
            .await
            .map_err(err(SERVICE, "TagResource"))?;
    }
    if !remove.is_empty() {
        aws.ecs
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err(SERVICE, "UntagResource"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

/// The ACTIVE cluster called `name`, or `None`. Calls: DescribeClusters (include TAGS, SETTINGS).
pub async fn find_cluster(
    aws: &Aws,
    name: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let out = aws
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ecs::ClusterField::Tags)
        .include(ecs::ClusterField::Settings)
        .send()
        .await
        .map_err(|e| err(SERVICE, "DescribeClusters")(e).at(address))?;
    let Some(cluster) = out.clusters().iter().find(|c| c.status() == Some("ACTIVE")) else {
        return Ok(None);
    };
    let arn = cluster.cluster_arn().unwrap_or_default().to_string();
    let all_tags = tags_from(cluster.tags());
    let container_insights = cluster
        .settings()
        .iter()
        .find(|s| s.name() == Some(&ecs::ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .unwrap_or("disabled")
        .to_string();
    let attrs = EcsClusterAttrs {
        name: cluster.cluster_name().unwrap_or(name).to_string(),
        container_insights,
        tags: user_tags(&all_tags),
    };
    Ok(Some(Observed {
        address: address.clone(),
        id: arn,
        attrs: Attrs::EcsCluster(attrs),
        all_tags,
        handles: BTreeMap::new(),
    }))
}

fn insights_setting(value: &str) -> ecs::ClusterSetting {
    ecs::ClusterSetting::builder()
        .name(ecs::ClusterSettingName::ContainerInsights)
        .value(value)
        .build()
}

/// Creates a cluster with its Container Insights setting and all its tags in one call; returns
/// its ARN. Calls: CreateCluster.
pub async fn create_cluster(
    aws: &Aws,
    attrs: &EcsClusterAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let out = aws
        .ecs
        .create_cluster()
        .cluster_name(&attrs.name)
        .settings(insights_setting(&attrs.container_insights))
        .set_tags(Some(ecs_tags(&create_tags(&attrs.tags, tags))))
        .send()
        .await
        .map_err(err(SERVICE, "CreateCluster"))?;
    out.cluster()
        .and_then(|c| c.cluster_arn())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other(SERVICE, "CreateCluster", "no cluster ARN in the answer"))
}

/// Changes what changed. Calls: UpdateCluster (settings) when Container Insights changed;
/// TagResource / UntagResource when user tags changed.
///
/// UpdateCluster rather than UpdateClusterSettings: both take the same `settings` on AWS, and
/// UpdateCluster is the one every emulator implements too.
pub async fn update_cluster(
    aws: &Aws,
    arn: &str,
    before: &EcsClusterAttrs,
    after: &EcsClusterAttrs,
) -> Result<(), AwsError> {
    if before.name != after.name {
        return Err(AwsError::other(
            SERVICE,
            "UpdateCluster",
            format!(
                "a cluster cannot be renamed in place ({} → {}); it must be replaced",
                before.name, after.name
            ),
        ));
    }
    if before.container_insights != after.container_insights {
        aws.ecs
            .update_cluster()
            .cluster(arn)
            .settings(insights_setting(&after.container_insights))
            .send()
            .await
            .map_err(err(SERVICE, "UpdateCluster"))?;
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, arn, &set, &remove).await
}

/// Deletes a cluster; one that is already gone is fine. Calls: DeleteCluster.
pub async fn delete_cluster(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    match aws.ecs.delete_cluster().cluster(arn).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = err(SERVICE, "DeleteCluster")(e);
            if e.code_is("ClusterNotFoundException") {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Task definitions
// ---------------------------------------------------------------------------------------------

/// Host port sent with each port mapping: under `awsvpc` (and `host`) ECS requires it to equal
/// the container port, and fills it in that way when left out, so it is sent explicitly.
fn host_port(network_mode: &str, container_port: i32) -> Option<i32> {
    matches!(network_mode, "awsvpc" | "host").then_some(container_port)
}

/// Every tag a registration carries: user tags of the attributes over the caller's tags.
fn registration_tags(attrs: &TaskDefinitionAttrs, tags: &Tags) -> Tags {
    create_tags(&attrs.tags, tags)
}

/// The RegisterTaskDefinition request body, in the ECS API's own JSON shape, exactly as
/// [`register_task_definition`] sends it (a test captures the SDK's request body and compares).
/// `render` writes it and `validate` measures its size against ECS's 64 KiB limit.
pub fn register_request_json(attrs: &TaskDefinitionAttrs, tags: &Tags) -> Value {
    let mut body = Map::new();
    body.insert("family".into(), json!(attrs.family));
    if let Some(r) = &attrs.task_role {
        body.insert("taskRoleArn".into(), json!(r));
    }
    if let Some(r) = &attrs.execution_role {
        body.insert("executionRoleArn".into(), json!(r));
    }
    if !attrs.network_mode.is_empty() {
        body.insert("networkMode".into(), json!(attrs.network_mode));
    }
    let containers: Vec<Value> = attrs
        .containers
        .iter()
        .map(|c| container_json(c, &attrs.network_mode))
        .collect();
    body.insert("containerDefinitions".into(), Value::Array(containers));
    if !attrs.requires_compatibilities.is_empty() {
        body.insert(
            "requiresCompatibilities".into(),
            json!(attrs.requires_compatibilities),
        );
    }
    if !attrs.cpu.is_empty() {
        body.insert("cpu".into(), json!(attrs.cpu));
    }
    if !attrs.memory.is_empty() {
        body.insert("memory".into(), json!(attrs.memory));
    }
    let all_tags = registration_tags(attrs, tags);
    if !all_tags.is_empty() {
        let list: Vec<Value> = all_tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        body.insert("tags".into(), Value::Array(list));
    }
    if let Some(gib) = attrs.ephemeral_storage_gib {
        body.insert("ephemeralStorage".into(), json!({ "sizeInGiB": gib }));
    }
    if !attrs.volumes.is_empty() {
        let volumes: Vec<Value> = attrs
            .volumes
            .iter()
            .map(|(name, v)| {
                let mut auth = Map::new();
                if let Some(ap) = &v.access_point {
                    auth.insert("accessPointId".into(), json!(ap));
                }
                auth.insert("iam".into(), json!("ENABLED"));
                json!({"name": name, "efsVolumeConfiguration": {
                    "fileSystemId": v.file_system,
                    "transitEncryption": "ENABLED",
                    "authorizationConfig": auth,
                }})
            })
            .collect();
        body.insert("volumes".into(), Value::Array(volumes));
    }
    if !attrs.shared_volumes.is_empty() {
        let list = body
            .entry("volumes")
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(list) = list {
            list.extend(attrs.shared_volumes.iter().map(|n| json!({ "name": n })));
        }
    }
    if !attrs.cpu_architecture.is_empty() {
        body.insert(
            "runtimePlatform".into(),
            json!({"cpuArchitecture": attrs.cpu_architecture, "operatingSystemFamily": "LINUX"}),
        );
    }
    Value::Object(body)
}

fn container_json(c: &Container, network_mode: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    m.insert("image".into(), json!(c.image));
    m.insert("cpu".into(), json!(c.cpu));
    if let Some(mr) = c.memory_reservation {
        m.insert("memoryReservation".into(), json!(mr));
    }
    if !c.port_mappings.is_empty() {
        let ports: Vec<Value> = c
            .port_mappings
            .iter()
            .map(|p| {
                let mut pm = Map::new();
                pm.insert("containerPort".into(), json!(p.container_port));
                if let Some(h) = host_port(network_mode, p.container_port) {
                    pm.insert("hostPort".into(), json!(h));
                }
                pm.insert("protocol".into(), json!(p.protocol));
                Value::Object(pm)
            })
            .collect();
        m.insert("portMappings".into(), Value::Array(ports));
    }
    m.insert("essential".into(), json!(c.essential));
    if !c.entry_point.is_empty() {
        m.insert("entryPoint".into(), json!(c.entry_point));
    }
    if !c.command.is_empty() {
        m.insert("command".into(), json!(c.command));
    }
    if !c.environment.is_empty() {
        let env: Vec<Value> = c
            .environment
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        m.insert("environment".into(), Value::Array(env));
    }
    if !c.secrets.is_empty() {
        let secrets: Vec<Value> = c
            .secrets
            .iter()
            .map(|(k, r)| json!({"name": k, "valueFrom": r.value_from(&r.from)}))
            .collect();
        m.insert("secrets".into(), Value::Array(secrets));
    }
    if let Some(u) = &c.user {
        m.insert("user".into(), json!(u));
    }
    if c.readonly_root_filesystem {
        m.insert("readonlyRootFilesystem".into(), json!(true));
    }
    if !c.capabilities_drop.is_empty() {
        m.insert(
            "linuxParameters".into(),
            json!({"capabilities": {"drop": c.capabilities_drop}}),
        );
    }
    if !c.mount_points.is_empty() {
        let mounts: Vec<Value> = c
            .mount_points
            .iter()
            .map(|p| json!({"sourceVolume": p.volume, "containerPath": p.path, "readOnly": p.read_only}))
            .collect();
        m.insert("mountPoints".into(), Value::Array(mounts));
    }
    if !c.depends_on.is_empty() {
        let list: Vec<Value> = c
            .depends_on
            .iter()
            .map(|(name, condition)| json!({"containerName": name, "condition": condition}))
            .collect();
        m.insert("dependsOn".into(), Value::Array(list));
    }
    if let Some(log) = &c.log {
        let mut l = Map::new();
        l.insert("logDriver".into(), json!(log.driver));
        if !log.options.is_empty() {
            l.insert("options".into(), json!(log.options));
        }
        m.insert("logConfiguration".into(), Value::Object(l));
    }
    if let Some(h) = &c.health_check {
        m.insert(
            "healthCheck".into(),
            json!({
                "command": h.command,
                "interval": h.interval,
                "timeout": h.timeout,
                "retries": h.retries,
                "startPeriod": h.start_period,
            }),
        );
    }
    Value::Object(m)
}

/// The SDK container definitions, field for field what [`container_json`] writes. (Errors are
/// SDK build errors: a required field left empty.)
fn sdk_containers(
    attrs: &TaskDefinitionAttrs,
) -> Result<Vec<ecs::ContainerDefinition>, BuildError> {
    attrs
        .containers
        .iter()
        .map(|c| {
            let mut b = ecs::ContainerDefinition::builder()
                .name(&c.name)
                .image(&c.image)
                .cpu(c.cpu)
                .set_memory_reservation(c.memory_reservation)
                .essential(c.essential)
                .set_user(c.user.clone());
            if c.readonly_root_filesystem {
                b = b.readonly_root_filesystem(true);
            }
            if !c.capabilities_drop.is_empty() {
                b = b.linux_parameters(
                    ecs::LinuxParameters::builder()
                        .capabilities(
                            ecs::KernelCapabilities::builder()
                                .set_drop(Some(c.capabilities_drop.clone()))
                                .build(),
                        )
                        .build(),
                );
            }
            for p in &c.port_mappings {
                b = b.port_mappings(
                    ecs::PortMapping::builder()
                        .container_port(p.container_port)
                        .set_host_port(host_port(&attrs.network_mode, p.container_port))
                        .protocol(ecs::TransportProtocol::from(p.protocol.as_str()))
                        .build(),
                );
            }
            if !c.entry_point.is_empty() {
                b = b.set_entry_point(Some(c.entry_point.clone()));
            }
            if !c.command.is_empty() {
                b = b.set_command(Some(c.command.clone()));
            }
            for (k, v) in &c.environment {
                b = b.environment(ecs::KeyValuePair::builder().name(k).value(v).build());
            }
            for (k, r) in &c.secrets {
                b = b.secrets(
                    ecs::Secret::builder()
                        .name(k)
                        .value_from(r.value_from(&r.from))
                        .build()?,
                );
            }
            for p in &c.mount_points {
                b = b.mount_points(
                    ecs::MountPoint::builder()
                        .source_volume(&p.volume)
                        .container_path(&p.path)
                        .read_only(p.read_only)
                        .build(),
                );
            }
            for (name, condition) in &c.depends_on {
                b = b.depends_on(
                    ecs::ContainerDependency::builder()
                        .container_name(name)
                        .condition(ecs::ContainerCondition::from(condition.as_str()))
                        .build()?,
                );
            }
            if let Some(log) = &c.log {
                let mut l = ecs::LogConfiguration::builder()
                    .log_driver(ecs::LogDriver::from(log.driver.as_str()));
                for (k, v) in &log.options {
                    l = l.options(k, v);
                }
                b = b.log_configuration(l.build()?);
            }
            if let Some(h) = &c.health_check {
                b = b.health_check(
                    ecs::HealthCheck::builder()
                        .set_command(Some(h.command.clone()))
                        .interval(h.interval)
                        .timeout(h.timeout)
                        .retries(h.retries)
                        .start_period(h.start_period)
                        .build()?,
                );
            }
            Ok(b.build())
        })
        .collect()
}

/// Normalizes a described task definition into the model: ECS-filled fields (cpu 0 is kept as
/// sent, `hostPort`, `mountPoints`, `volumesFrom`, `compatibilities`…) are dropped or folded
/// to what the stack would have written.
fn task_definition_attrs(td: &ecs::TaskDefinition, all_tags: &Tags) -> TaskDefinitionAttrs {
    let containers = td
        .container_definitions()
        .iter()
        .map(|c| Container {
            name: c.name().unwrap_or_default().to_string(),
            image: c.image().unwrap_or_default().to_string(),
            essential: c.essential().unwrap_or(true),
            cpu: c.cpu(),
            memory_reservation: c.memory_reservation(),
            user: c.user().map(str::to_string),
            readonly_root_filesystem: c.readonly_root_filesystem().unwrap_or(false),
            capabilities_drop: c
                .linux_parameters()
                .and_then(|l| l.capabilities())
                .map(|k| k.drop().to_vec())
                .unwrap_or_default(),
            entry_point: c.entry_point().to_vec(),
            command: c.command().to_vec(),
            environment: c
                .environment()
                .iter()
                .filter_map(|kv| {
                    Some((
                        kv.name()?.to_string(),
                        kv.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
            secrets: c
                .secrets()
                .iter()
                .map(|s| {
                    (
                        s.name().to_string(),
                        SecretRef::parse_value_from(s.value_from()),
                    )
                })
                .collect(),
            port_mappings: c
                .port_mappings()
                .iter()
                .filter_map(|p| {
                    Some(PortMapping {
                        container_port: p.container_port()?,
                        protocol: p
                            .protocol()
                            .map(|p| p.as_str().to_ascii_lowercase())
                            .unwrap_or_else(|| "tcp".into()),
                    })
                })
                .collect(),
            log: c.log_configuration().map(|l| LogConfig {
                driver: l.log_driver().as_str().to_string(),
                options: l
                    .options()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            }),
            health_check: c.health_check().map(|h| HealthCheck {
                command: h.command().to_vec(),
                interval: h.interval().unwrap_or(DEFAULT_HEALTH_INTERVAL),
                timeout: h.timeout().unwrap_or(DEFAULT_HEALTH_TIMEOUT),
                retries: h.retries().unwrap_or(DEFAULT_HEALTH_RETRIES),
                start_period: h.start_period().unwrap_or(0),
            }),
            mount_points: c
                .mount_points()
                .iter()
                .map(|p| MountPoint {
                    volume: p.source_volume().unwrap_or_default().to_string(),
                    path: p.container_path().unwrap_or_default().to_string(),
                    read_only: p.read_only().unwrap_or(false),
                })
                .collect(),
            depends_on: c
                .depends_on()
                .iter()
                .map(|d| {
                    (
                        d.container_name().to_string(),
                        d.condition().as_str().to_string(),
                    )
                })
                .collect(),
        })
        .collect();
    TaskDefinitionAttrs {
        family: td.family().unwrap_or_default().to_string(),
        cpu: td.cpu().unwrap_or_default().to_string(),
        memory: td.memory().unwrap_or_default().to_string(),
        network_mode: td
            .network_mode()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
        requires_compatibilities: td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        execution_role: td.execution_role_arn().map(str::to_string),
        task_role: td.task_role_arn().map(str::to_string),
        ephemeral_storage_gib: td.ephemeral_storage().map(|e| e.size_in_gib()),
        cpu_architecture: td
            .runtime_platform()
            .and_then(|r| r.cpu_architecture())
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        containers,
        tags: user_tags(all_tags),
        // EFS volumes only (the stack makes no other kind). Root directory, port and the
        // always-ENABLED transit encryption and IAM authorization are not modelled.
        volumes: td
            .volumes()
            .iter()
            .filter_map(|v| {
                let efs = v.efs_volume_configuration()?;
                Some((
                    v.name()?.to_string(),
                    EfsVolume {
                        file_system: efs.file_system_id().to_string(),
                        access_point: efs
                            .authorization_config()
                            .and_then(|a| a.access_point_id())
                            .map(str::to_string),
                    },
                ))
            })
            .collect(),
        // Task-scoped volumes: neither EFS nor a host path (none the stack makes).
        shared_volumes: td
            .volumes()
            .iter()
            .filter(|v| v.efs_volume_configuration().is_none() && v.host().is_none())
            .filter_map(|v| v.name().map(str::to_string))
            .collect(),
    }
}

/// One revision, normalized: (revision ARN, attributes with raw role ARNs, all tags). A missing
/// family or revision (ECS answers ClientException) is `None`. Works for INACTIVE revisions too.
/// Calls: DescribeTaskDefinition (include TAGS).
pub async fn describe_task_definition(
    aws: &Aws,
    arn_or_family_revision: &str,
) -> Result<Option<(String, TaskDefinitionAttrs, Tags)>, AwsError> {
    Ok(describe_revision(aws, arn_or_family_revision)
        .await?
        .map(|(arn, attrs, tags, _)| (arn, attrs, tags)))
}

/// [`describe_task_definition`] and whether the revision is ACTIVE.
async fn describe_revision(
    aws: &Aws,
    arn_or_family_revision: &str,
) -> Result<Option<(String, TaskDefinitionAttrs, Tags, bool)>, AwsError> {
    let out = match aws
        .ecs
        .describe_task_definition()
        .task_definition(arn_or_family_revision)
        .include(ecs::TaskDefinitionField::Tags)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let e = err(SERVICE, "DescribeTaskDefinition")(e);
            return if e.code_is("ClientException") {
                Ok(None)
            } else {
                Err(e)
            };
        }
    };
    let Some(td) = out.task_definition() else {
        return Ok(None);
    };
    let all_tags = tags_from(out.tags());
    let arn = td.task_definition_arn().unwrap_or_default().to_string();
    let active = td.status() == Some(&ecs::TaskDefinitionStatus::Active);
    Ok(Some((
        arn,
        task_definition_attrs(td, &all_tags),
        all_tags,
        active,
    )))
}

/// `family` and revision number of a revision ARN (`…:task-definition/family:12`).
pub(crate) fn family_and_revision(arn: &str) -> Option<(&str, u32)> {
    let tail = arn.rsplit_once("task-definition/")?.1;
    let (family, rev) = tail.rsplit_once(':')?;
    Some((family, rev.parse().ok()?))
}

/// The newest ACTIVE revision ARNs of exactly `family`, newest first, at most
/// [`RECENT_REVISIONS`]. One ListTaskDefinitions call in the usual case; more pages only while
/// other families sharing the prefix (`family-2`, which sort first under DESC) fill them.
pub(crate) async fn recent_revisions(aws: &Aws, family: &str) -> Result<Vec<String>, AwsError> {
    active_revisions(aws, family, Some(RECENT_REVISIONS)).await
}

/// The ACTIVE revision ARNs of exactly `family`, newest first: at most `most`, or all of them
/// (revision hygiene) when `None`.
pub(crate) async fn active_revisions(
    aws: &Aws,
    family: &str,
    most: Option<usize>,
) -> Result<Vec<String>, AwsError> {
    let mut found: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = aws
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(ecs::TaskDefinitionStatus::Active)
            .sort(ecs::SortOrder::Desc)
            .set_max_results(most.map(|m| m as i32))
            .set_next_token(token)
            .send()
            .await
            .map_err(err(SERVICE, "ListTaskDefinitions"))?;
        found.extend(
            out.task_definition_arns()
                .iter()
                .filter(|a| family_and_revision(a).is_some_and(|(f, _)| f == family))
                .cloned(),
        );
        token = out.next_token().map(str::to_string);
        if most.is_some_and(|m| found.len() >= m) || token.is_none() {
            break;
        }
    }
    // Sorted here too: the answer's order is the service's promise, not ours to rely on.
    found.sort_by_key(|a| std::cmp::Reverse(family_and_revision(a).map_or(0, |(_, r)| r)));
    if let Some(m) = most {
        found.truncate(m);
    }
    Ok(found)
}

/// The revision of `family` this stack owns: the newest ACTIVE revision carrying (stack,
/// environment) ownership tags among the [`RECENT_REVISIONS`] newest; when none of them is
/// owned, the newest one (so the planner reports the conflict); `None` when the family has no
/// ACTIVE revision. `handles["revisions"]` holds the comma-joined ACTIVE revision ARNs seen.
/// Calls: 1 DescribeTaskDefinition (the family's latest ACTIVE revision), and when that one is
/// not owned, 1 ListTaskDefinitions + k DescribeTaskDefinition of the other revisions (newest
/// first, stopping at the first owned one).
pub async fn find_task_definition(
    aws: &Aws,
    family: &str,
    address: &Address,
    stack: &str,
    environment: &str,
) -> Result<Option<Observed>, AwsError> {
    // DescribeTaskDefinition of the bare family answers its latest ACTIVE revision: when that
    // one is ours (the usual case) it is the answer, in one call. Otherwise the newest
    // revisions are listed and read, as below.
    let latest = describe_revision(aws, family)
        .await
        .map_err(|e| e.at(address))?;
    let mut latest = latest.filter(|(arn, _, _, active)| {
        *active && family_and_revision(arn).is_some_and(|(f, _)| f == family)
    });
    if let Some((arn, attrs, all_tags, _)) = &latest {
        if Ownership::judge(all_tags, stack, environment) == Ownership::Owned {
            return Ok(Some(Observed {
                address: address.clone(),
                handles: BTreeMap::from([("revisions".to_string(), arn.clone())]),
                id: arn.clone(),
                attrs: Attrs::TaskDefinition(attrs.clone()),
                all_tags: all_tags.clone(),
            }));
        }
    }
    let arns = recent_revisions(aws, family)
        .await
        .map_err(|e| e.at(address))?;
    let mut newest = None;
    let mut chosen = None;
    for arn in &arns {
        // The latest revision was read above: not again.
        let already = latest
            .take_if(|(a, ..)| a == arn)
            .map(|(a, attrs, tags, _)| (a, attrs, tags));
        let found = match already {
            Some(found) => Some(found),
            None => describe_task_definition(aws, arn)
                .await
                .map_err(|e| e.at(address))?,
        };
        let Some(found) = found else {
            continue; // deregistered between the list and the describe
        };
        if Ownership::judge(&found.2, stack, environment) == Ownership::Owned {
            chosen = Some(found);
            break;
        }
        if newest.is_none() {
            newest = Some(found);
        }
    }
    Ok(chosen.or(newest).map(|(arn, attrs, all_tags)| Observed {
        address: address.clone(),
        id: arn,
        attrs: Attrs::TaskDefinition(attrs),
        all_tags,
        handles: BTreeMap::from([("revisions".to_string(), arns.join(","))]),
    }))
}

/// Registers a revision with all its tags in the call and returns its ARN, unless one of the
/// family's [`RECENT_REVISIONS`] newest ACTIVE revisions is owned by (stack, environment), is
/// tagged `deploy:applied = applied_hash` and has exactly these attributes: that one is reused,
/// so an apply that is interrupted and re-run does not register duplicates.
///
/// The body sent is [`register_request_json`]`(attrs, tags)` with `deploy:applied` set to
/// `applied_hash` when `tags` lacks it.
/// Calls: 1 ListTaskDefinitions + k DescribeTaskDefinition (stopping at a match) +
/// RegisterTaskDefinition when nothing matched.
pub async fn register_task_definition(
    aws: &Aws,
    attrs: &TaskDefinitionAttrs,
    tags: &Tags,
    applied_hash: &str,
    stack: &str,
    environment: &str,
) -> Result<String, AwsError> {
    for arn in recent_revisions(aws, &attrs.family).await? {
        let Some((arn, seen, all_tags)) = describe_task_definition(aws, &arn).await? else {
            continue;
        };
        if Ownership::judge(&all_tags, stack, environment) == Ownership::Owned
            && all_tags.get(TAG_APPLIED).map(String::as_str) == Some(applied_hash)
            && &seen == attrs
        {
            return Ok(arn);
        }
    }
    let mut tags = tags.clone();
    tags.entry(TAG_APPLIED.to_string())
        .or_insert_with(|| applied_hash.to_string());
    let op = "RegisterTaskDefinition";
    let mut req = aws
        .ecs
        .register_task_definition()
        .family(&attrs.family)
        .set_task_role_arn(attrs.task_role.clone())
        .set_execution_role_arn(attrs.execution_role.clone())
        .set_container_definitions(Some(sdk_containers(attrs).map_err(invalid(op))?));
    if !attrs.network_mode.is_empty() {
        req = req.network_mode(ecs::NetworkMode::from(attrs.network_mode.as_str()));
    }
    for c in &attrs.requires_compatibilities {
        req = req.requires_compatibilities(ecs::Compatibility::from(c.as_str()));
    }
    if !attrs.cpu.is_empty() {
        req = req.cpu(&attrs.cpu);
    }
    if !attrs.memory.is_empty() {
        req = req.memory(&attrs.memory);
    }
    let all_tags = registration_tags(attrs, &tags);
    if !all_tags.is_empty() {
        req = req.set_tags(Some(ecs_tags(&all_tags)));
    }
    if let Some(gib) = attrs.ephemeral_storage_gib {
        req = req.ephemeral_storage(ecs::EphemeralStorage::builder().size_in_gib(gib).build());
    }
    for (name, v) in &attrs.volumes {
        let auth = ecs::EfsAuthorizationConfig::builder()
            .set_access_point_id(v.access_point.clone())
            .iam(ecs::EfsAuthorizationConfigIam::Enabled)
            .build();
        let efs = ecs::EfsVolumeConfiguration::builder()
            .file_system_id(&v.file_system)
            .transit_encryption(ecs::EfsTransitEncryption::Enabled)
            .authorization_config(auth)
            .build()
            .map_err(invalid(op))?;
        req = req.volumes(
            ecs::Volume::builder()
                .name(name)
                .efs_volume_configuration(efs)
                .build(),
        );
    }
    for name in &attrs.shared_volumes {
        req = req.volumes(ecs::Volume::builder().name(name).build());
    }
    if !attrs.cpu_architecture.is_empty() {
        req = req.runtime_platform(
            ecs::RuntimePlatform::builder()
                .cpu_architecture(ecs::CpuArchitecture::from(attrs.cpu_architecture.as_str()))
                .operating_system_family(ecs::OsFamily::Linux)
                .build(),
        );
    }
    let out = req.send().await.map_err(err(SERVICE, op))?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other(SERVICE, op, "no task definition ARN in the answer"))
}

/// Deregisters every ACTIVE revision of `family` that carries (stack, environment) ownership
/// tags and returns their ARNs; revisions made by hand or by another stack stay ACTIVE.
/// Calls: ListTaskDefinitions (every page) + one DescribeTaskDefinition per revision +
/// one DeregisterTaskDefinition per owned revision.
pub async fn deregister_owned_revisions(
    aws: &Aws,
    family: &str,
    stack: &str,
    environment: &str,
) -> Result<Vec<String>, AwsError> {
    let pages = aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(ecs::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(err(SERVICE, "ListTaskDefinitions"))?;
    let mut done = Vec::new();
    for arn in pages
        .into_iter()
        .filter(|a| family_and_revision(a).is_some_and(|(f, _)| f == family))
    {
        let Some((arn, _, tags)) = describe_task_definition(aws, &arn).await? else {
            continue;
        };
        if Ownership::judge(&tags, stack, environment) != Ownership::Owned {
            continue;
        }
        aws.ecs
            .deregister_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .map_err(err(SERVICE, "DeregisterTaskDefinition"))?;
        done.push(arn);
    }
    Ok(done)
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

fn cluster_name_of(arn_or_name: &str) -> &str {
    arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
}

/// Normalizes a described service; absent deployment settings take ECS's defaults.
fn service_attrs(s: &ecs::Service, cluster: &str, all_tags: &Tags) -> EcsServiceAttrs {
    let vpc = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let deployment = s.deployment_configuration();
    let breaker = deployment.and_then(|d| d.deployment_circuit_breaker());
    EcsServiceAttrs {
        name: s.service_name().unwrap_or_default().to_string(),
        cluster: s
            .cluster_arn()
            .map(cluster_name_of)
            .unwrap_or_else(|| cluster_name_of(cluster))
            .to_string(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        desired_count: s.desired_count(),
        launch_type: s
            .launch_type()
            .map(|l| l.as_str().to_string())
            .unwrap_or_default(),
        platform_version: s.platform_version().unwrap_or("LATEST").to_string(),
        subnets: vpc
            .map(|v| v.subnets().iter().cloned().collect())
            .unwrap_or_default(),
        security_groups: vpc
            .map(|v| v.security_groups().iter().cloned().collect())
            .unwrap_or_default(),
        assign_public_ip: vpc.and_then(|v| v.assign_public_ip())
            == Some(&ecs::AssignPublicIp::Enabled),
        circuit_breaker: breaker.is_some_and(|b| b.enable()),
        circuit_breaker_rollback: breaker.is_some_and(|b| b.rollback()),
        // Absent means ECS's defaults (moto leaves them out until an update sets them).
        breaker_threshold: breaker
            .and_then(|b| b.threshold_configuration())
            .map(|t| format!("{} {}", t.r#type().as_str(), t.value()))
            .unwrap_or_else(|| crate::model::DEFAULT_BREAKER_THRESHOLD.to_string()),
        breaker_reset_on_healthy_task: breaker
            .and_then(|b| b.reset_on_healthy_task())
            .unwrap_or(true),
        minimum_healthy_percent: deployment
            .and_then(|d| d.minimum_healthy_percent())
            .unwrap_or(DEFAULT_MINIMUM_HEALTHY_PERCENT),
        maximum_percent: deployment
            .and_then(|d| d.maximum_percent())
            .unwrap_or(DEFAULT_MAXIMUM_PERCENT),
        enable_execute_command: s.enable_execute_command(),
        propagate_tags: s
            .propagate_tags()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "NONE".into()),
        tags: user_tags(all_tags),
        load_balancers: s
            .load_balancers()
            .iter()
            .map(|lb| crate::model::ServiceLoadBalancer {
                target_group: lb.target_group_arn().unwrap_or_default().to_string(),
                container_name: lb.container_name().unwrap_or_default().to_string(),
                container_port: lb.container_port().unwrap_or_default(),
            })
            .collect(),
        health_check_grace_period_seconds: s.health_check_grace_period_seconds().unwrap_or(0),
        service_registries: s
            .service_registries()
            .iter()
            .filter_map(|r| r.registry_arn().map(str::to_string))
            .collect(),
    }
}

fn sdk_load_balancers(a: &EcsServiceAttrs) -> Vec<ecs::LoadBalancer> {
    a.load_balancers
        .iter()
        .map(|lb| {
            ecs::LoadBalancer::builder()
                .target_group_arn(&lb.target_group)
                .container_name(&lb.container_name)
                .container_port(lb.container_port)
                .build()
        })
        .collect()
}

fn sdk_registries(a: &EcsServiceAttrs) -> Vec<ecs::ServiceRegistry> {
    a.service_registries
        .iter()
        .map(|arn| ecs::ServiceRegistry::builder().registry_arn(arn).build())
        .collect()
}

/// Most services one DescribeServices takes.
pub const SERVICES_PER_CALL: usize = 10;

/// The services of `cluster` named in `names` that are not INACTIVE, by name (a missing one,
/// or every one when the cluster is missing, is absent). One DescribeServices (include TAGS)
/// per [`SERVICES_PER_CALL`] names, run concurrently.
async fn describe_services(
    aws: &Aws,
    cluster: &str,
    names: &[String],
) -> Result<BTreeMap<String, ecs::Service>, AwsError> {
    let answers = futures::future::join_all(names.chunks(SERVICES_PER_CALL).map(|chunk| {
        aws.ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ecs::ServiceField::Tags)
            .send()
    }))
    .await;
    let mut by_name = BTreeMap::new();
    for answer in answers {
        let out = match answer {
            Ok(out) => out,
            Err(e) => {
                let e = err(SERVICE, "DescribeServices")(e);
                if e.code_is("ClusterNotFoundException") {
                    continue;
                }
                return Err(e);
            }
        };
        for s in out.services() {
            if s.status() == Some("INACTIVE") {
                continue;
            }
            if let Some(name) = s.service_name() {
                by_name.insert(name.to_string(), s.clone());
            }
        }
    }
    Ok(by_name)
}

/// DescribeServices for one service: `None` when it (or its cluster) is missing or INACTIVE.
async fn describe_service(
    aws: &Aws,
    cluster: &str,
    name: &str,
) -> Result<Option<ecs::Service>, AwsError> {
    Ok(describe_services(aws, cluster, &[name.to_string()])
        .await?
        .remove(name))
}

/// The service as the model sees it. `handles["task_definition_arn"]` is the revision it
/// runs, `handles["status"]` its status, `handles["primary_deployment"]` its PRIMARY
/// deployment's id.
fn observed_service(s: &ecs::Service, cluster: &str, address: &Address) -> Observed {
    let all_tags = tags_from(s.tags());
    let attrs = service_attrs(s, cluster, &all_tags);
    let mut handles = BTreeMap::new();
    handles.insert(
        "task_definition_arn".to_string(),
        attrs.task_definition.clone(),
    );
    handles.insert(
        "status".to_string(),
        s.status().unwrap_or_default().to_string(),
    );
    if let Some(d) = primary_deployment(s) {
        // Whether an update starts a deployment is told by the answer's PRIMARY id.
        handles.insert("primary_deployment".to_string(), d.id);
    }
    // Revisions any deployment runs: revision hygiene never deregisters them.
    let in_use: Vec<&str> = s
        .deployments()
        .iter()
        .filter_map(|d| d.task_definition())
        .collect();
    handles.insert("deployment_revisions".to_string(), in_use.join(","));
    // A rollout under way (the plan says so: ECS goes on with it whatever the plan does).
    if let Some(d) = s
        .deployments()
        .iter()
        .find(|d| d.rollout_state() == Some(&ecs::DeploymentRolloutState::InProgress))
    {
        handles.insert(
            "rollout_in_progress".to_string(),
            format!(
                "deployment {} of {}",
                d.id().unwrap_or_default(),
                crate::rollout::revision_of(d.task_definition().unwrap_or_default())
            ),
        );
    }
    Observed {
        address: address.clone(),
        id: s.service_arn().unwrap_or_default().to_string(),
        attrs: Attrs::EcsService(attrs),
        all_tags,
        handles,
    }
}

/// The service `name` in `cluster` (a name or ARN), or `None` when missing or INACTIVE (a
/// DRAINING one is returned: it still holds its name). Calls: DescribeServices (include TAGS).
pub async fn find_service(
    aws: &Aws,
    cluster: &str,
    name: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let wanted = [(name.to_string(), address.clone())];
    let mut found = find_services(aws, cluster, &wanted).await?;
    Ok(found.remove(address).flatten())
}

/// For each (name, address) in `wanted`, the service `name` in `cluster` as [`find_service`]
/// finds it; every address has an entry. One DescribeServices per 10 services.
pub async fn find_services(
    aws: &Aws,
    cluster: &str,
    wanted: &[(String, Address)],
) -> Result<BTreeMap<Address, Option<Observed>>, AwsError> {
    let Some((_, first)) = wanted.first() else {
        return Ok(BTreeMap::new());
    };
    let names: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let found = describe_services(aws, cluster, &names)
        .await
        .map_err(|e| e.at(first))?;
    Ok(wanted
        .iter()
        .map(|(name, address)| {
            let o = found
                .get(name)
                .map(|s| observed_service(s, cluster, address));
            (address.clone(), o)
        })
        .collect())
}

fn network_configuration(a: &EcsServiceAttrs) -> Result<ecs::NetworkConfiguration, BuildError> {
    let vpc = ecs::AwsVpcConfiguration::builder()
        .set_subnets(Some(a.subnets.iter().cloned().collect()))
        .set_security_groups(Some(a.security_groups.iter().cloned().collect()))
        .assign_public_ip(if a.assign_public_ip {
            ecs::AssignPublicIp::Enabled
        } else {
            ecs::AssignPublicIp::Disabled
        })
        .build()?;
    Ok(ecs::NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

fn deployment_configuration(a: &EcsServiceAttrs) -> ecs::DeploymentConfiguration {
    ecs::DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            ecs::DeploymentCircuitBreaker::builder()
                .enable(a.circuit_breaker)
                .rollback(a.circuit_breaker_rollback)
                .reset_on_healthy_task(a.breaker_reset_on_healthy_task)
                .set_threshold_configuration(breaker_threshold(&a.breaker_threshold))
                .build(),
        )
        .maximum_percent(a.maximum_percent)
        .minimum_healthy_percent(a.minimum_healthy_percent)
        .build()
}

/// `TYPE VALUE` as the API's threshold configuration (validated by the stack's checks).
fn breaker_threshold(text: &str) -> Option<ecs::ThresholdConfiguration> {
    let (kind, value) = text.split_once(' ')?;
    ecs::ThresholdConfiguration::builder()
        .r#type(ecs::ThresholdType::from(kind))
        .value(value.parse().ok()?)
        .build()
        .ok()
}

fn deployment_differs(a: &EcsServiceAttrs, b: &EcsServiceAttrs) -> bool {
    (
        a.circuit_breaker,
        a.circuit_breaker_rollback,
        &a.breaker_threshold,
        a.breaker_reset_on_healthy_task,
        a.minimum_healthy_percent,
        a.maximum_percent,
    ) != (
        b.circuit_breaker,
        b.circuit_breaker_rollback,
        &b.breaker_threshold,
        b.breaker_reset_on_healthy_task,
        b.minimum_healthy_percent,
        b.maximum_percent,
    )
}

fn network_differs(a: &EcsServiceAttrs, b: &EcsServiceAttrs) -> bool {
    (&a.subnets, &a.security_groups, a.assign_public_ip)
        != (&b.subnets, &b.security_groups, b.assign_public_ip)
}

/// Creates a service with all its tags in the call and returns its ARN. `attrs` is raw: cluster
/// name, task definition ARN, security group ids (always named: ECS would otherwise pick the
/// VPC's default group). `client_token` makes a retried create idempotent.
///
/// The answer is checked: if the service came back without the deployment settings, ECS
/// Exec flag or health check grace period asked for, one UpdateService sets them (never
/// happens on AWS, which applies them at create; some emulators only honour them on update).
/// Calls: CreateService (+ UpdateService only in that case).
pub async fn create_service(
    aws: &Aws,
    attrs: &EcsServiceAttrs,
    tags: &Tags,
    client_token: &str,
) -> Result<(String, Option<Deployment>), AwsError> {
    let op = "CreateService";
    let mut req = aws
        .ecs
        .create_service()
        .cluster(&attrs.cluster)
        .service_name(&attrs.name)
        .task_definition(&attrs.task_definition)
        .desired_count(attrs.desired_count)
        .network_configuration(network_configuration(attrs).map_err(invalid(op))?)
        .deployment_configuration(deployment_configuration(attrs))
        .enable_execute_command(attrs.enable_execute_command)
        .propagate_tags(ecs::PropagateTags::from(attrs.propagate_tags.as_str()))
        .set_tags(Some(ecs_tags(&create_tags(&attrs.tags, tags))))
        .client_token(client_token);
    if !attrs.launch_type.is_empty() {
        req = req.launch_type(ecs::LaunchType::from(attrs.launch_type.as_str()));
    }
    if !attrs.platform_version.is_empty() {
        req = req.platform_version(&attrs.platform_version);
    }
    if !attrs.load_balancers.is_empty() {
        req = req.set_load_balancers(Some(sdk_load_balancers(attrs)));
    }
    if attrs.health_check_grace_period_seconds != 0 {
        req = req.health_check_grace_period_seconds(attrs.health_check_grace_period_seconds);
    }
    if !attrs.service_registries.is_empty() {
        req = req.set_service_registries(Some(sdk_registries(attrs)));
    }
    let out = req.send().await.map_err(err(SERVICE, op))?;
    let service = out
        .service()
        .ok_or_else(|| AwsError::other(SERVICE, op, "no service in the answer"))?;
    let arn = service
        .service_arn()
        .ok_or_else(|| AwsError::other(SERVICE, op, "no service ARN in the answer"))?
        .to_string();
    // The deployment this call started: apply follows it, not "the service looks stable".
    let started = primary_deployment(service);
    let got = service_attrs(service, &attrs.cluster, &Tags::new());
    let grace_lost =
        got.health_check_grace_period_seconds != attrs.health_check_grace_period_seconds;
    if deployment_differs(&got, attrs)
        || got.enable_execute_command != attrs.enable_execute_command
        || grace_lost
    {
        let mut fix = aws
            .ecs
            .update_service()
            .cluster(&attrs.cluster)
            .service(&attrs.name)
            .deployment_configuration(deployment_configuration(attrs))
            .enable_execute_command(attrs.enable_execute_command)
            .force_new_deployment(false);
        if grace_lost {
            fix = fix.health_check_grace_period_seconds(attrs.health_check_grace_period_seconds);
        }
        fix.send().await.map_err(err(SERVICE, "UpdateService"))?;
    }
    Ok((arn, started))
}

/// The PRIMARY deployment of a service as an answer describes it.
pub fn primary_deployment(service: &ecs::Service) -> Option<Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .map(super::ecs_rollouts::deployment)
}

/// Changes a service in place: one UpdateService carrying only the changed fields (task
/// definition, desired count, network, deployment settings, ECS Exec, tag propagation,
/// platform version; never a forced deployment), then user tag changes.
/// Calls: UpdateService when a field other than tags changed; TagResource / UntagResource when
/// user tags changed, preceded by DescribeServices (for the ARN) when no UpdateService ran.
/// Name, cluster and launch type cannot change in place: that is an error (replace instead).
pub async fn update_service(
    aws: &Aws,
    cluster: &str,
    name: &str,
    before: &EcsServiceAttrs,
    after: &EcsServiceAttrs,
    restart: bool,
) -> Result<Option<Deployment>, AwsError> {
    let op = "UpdateService";
    for (what, b, a) in [
        ("name", &before.name, &after.name),
        ("cluster", &before.cluster, &after.cluster),
        ("launch_type", &before.launch_type, &after.launch_type),
    ] {
        if b != a {
            return Err(AwsError::other(
                SERVICE,
                op,
                format!("{what} of service {name} cannot change in place ({b} → {a}); it must be replaced"),
            ));
        }
    }
    let mut req = aws
        .ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .force_new_deployment(restart);
    // A restart alone (new tasks read a rotated secret) is a change too.
    let mut changed = restart;
    if before.task_definition != after.task_definition {
        req = req.task_definition(&after.task_definition);
        changed = true;
    }
    if before.desired_count != after.desired_count {
        req = req.desired_count(after.desired_count);
        changed = true;
    }
    if network_differs(before, after) {
        req = req.network_configuration(network_configuration(after).map_err(invalid(op))?);
        changed = true;
    }
    if deployment_differs(before, after) {
        req = req.deployment_configuration(deployment_configuration(after));
        changed = true;
    }
    if before.enable_execute_command != after.enable_execute_command {
        req = req.enable_execute_command(after.enable_execute_command);
        changed = true;
    }
    if before.propagate_tags != after.propagate_tags {
        req = req.propagate_tags(ecs::PropagateTags::from(after.propagate_tags.as_str()));
        changed = true;
    }
    if before.platform_version != after.platform_version {
        req = req.platform_version(&after.platform_version);
        changed = true;
    }
    // UpdateService takes the full lists: an empty list detaches them all.
    if before.load_balancers != after.load_balancers {
        req = req.set_load_balancers(Some(sdk_load_balancers(after)));
        changed = true;
    }
    if before.health_check_grace_period_seconds != after.health_check_grace_period_seconds {
        req = req.health_check_grace_period_seconds(after.health_check_grace_period_seconds);
        changed = true;
    }
    if before.service_registries != after.service_registries {
        req = req.set_service_registries(Some(sdk_registries(after)));
        changed = true;
    }
    let mut arn = None;
    let mut primary = None;
    if changed {
        let out = req.send().await.map_err(err(SERVICE, op))?;
        arn = out
            .service()
            .and_then(|s| s.service_arn())
            .map(str::to_string);
        primary = out.service().and_then(primary_deployment);
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    if set.is_empty() && remove.is_empty() {
        return Ok(primary);
    }
    let arn = match arn {
        Some(a) => a,
        None => describe_service(aws, cluster, name)
            .await?
            .and_then(|s| s.service_arn().map(str::to_string))
            .ok_or_else(|| {
                AwsError::other(
                    SERVICE,
                    "DescribeServices",
                    format!("service {name} not found"),
                )
            })?,
    };
    set_tags(aws, &arn, &set, &remove).await?;
    Ok(primary)
}

/// Scales the service to 0, deletes it (force) and waits until DescribeServices shows it
/// INACTIVE or missing, polling every [`DELETE_SERVICE_POLL`] for at most
/// [`DELETE_SERVICE_TIMEOUT`]. A service that is already gone is fine.
/// Calls: UpdateService + DeleteService + n DescribeServices (the first right away).
pub async fn delete_service(aws: &Aws, cluster: &str, name: &str) -> Result<(), AwsError> {
    let gone = |e: &AwsError| {
        e.code_is("ServiceNotFoundException") || e.code_is("ClusterNotFoundException")
    };
    // Not active = already deleted or draining: go straight to waiting.
    let not_active = |e: &AwsError| e.code_is("ServiceNotActiveException");
    if let Err(e) = aws
        .ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(0)
        .send()
        .await
    {
        let e = err(SERVICE, "UpdateService")(e);
        if gone(&e) {
            return Ok(());
        }
        if !not_active(&e) {
            return Err(e);
        }
    }
    if let Err(e) = aws
        .ecs
        .delete_service()
        .cluster(cluster)
        .service(name)
        .force(true)
        .send()
        .await
    {
        let e = err(SERVICE, "DeleteService")(e);
        if gone(&e) {
            return Ok(());
        }
        if !not_active(&e) {
            return Err(e);
        }
    }
    let deadline = Instant::now() + DELETE_SERVICE_TIMEOUT;
    loop {
        match describe_service(aws, cluster, name).await? {
            None => return Ok(()),
            Some(s) if Instant::now() >= deadline => {
                return Err(AwsError::other(
                    SERVICE,
                    "DeleteService",
                    format!(
                        "service {name} is still {} after {} s; its tasks may not be stopping",
                        s.status().unwrap_or("present"),
                        DELETE_SERVICE_TIMEOUT.as_secs()
                    ),
                ))
            }
            Some(_) => tokio::time::sleep(DELETE_SERVICE_POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn container() -> Container {
        Container {
            name: "prometheus".into(),
            image: "prom/prometheus:v2.53.4".into(),
            essential: true,
            cpu: 0,
            memory_reservation: None,
            user: None,
            readonly_root_filesystem: false,
            capabilities_drop: vec![],
            entry_point: vec!["/bin/prometheus".into()],
            command: vec![],
            environment: BTreeMap::new(),
            secrets: BTreeMap::new(),
            port_mappings: vec![PortMapping {
                container_port: 9090,
                protocol: "tcp".into(),
            }],
            log: None,
            health_check: None,
            mount_points: vec![],
            depends_on: BTreeMap::new(),
        }
    }

    fn attrs() -> TaskDefinitionAttrs {
        TaskDefinitionAttrs {
            family: "prom-task".into(),
            cpu: "256".into(),
            memory: "512".into(),
            network_mode: "awsvpc".into(),
            requires_compatibilities: BTreeSet::from(["FARGATE".to_string()]),
            execution_role: None,
            task_role: None,
            ephemeral_storage_gib: None,
            cpu_architecture: String::new(),
            containers: vec![container()],
            tags: Tags::new(),
            volumes: BTreeMap::new(),
            shared_volumes: Default::default(),
        }
    }

    #[test]
    fn request_json_omits_absent_fields_and_sets_host_port_under_awsvpc() {
        let v = register_request_json(&attrs(), &Tags::new());
        let o = v.as_object().unwrap();
        for absent in [
            "taskRoleArn",
            "executionRoleArn",
            "tags",
            "ephemeralStorage",
            "runtimePlatform",
        ] {
            assert!(!o.contains_key(absent), "{absent} should be omitted");
        }
        let c = &v["containerDefinitions"][0];
        assert_eq!(c["portMappings"][0]["hostPort"], 9090);
        assert!(c.get("command").is_none());
        assert!(c.get("environment").is_none());
        let mut bridge = attrs();
        bridge.network_mode = "bridge".into();
        let v = register_request_json(&bridge, &Tags::new());
        assert!(v["containerDefinitions"][0]["portMappings"][0]
            .get("hostPort")
            .is_none());
    }

    #[test]
    fn request_tags_merge_user_tags_over_caller_tags() {
        let mut a = attrs();
        a.tags.insert("team".into(), "platform".into());
        let tags = Tags::from([("deploy:stack".to_string(), "monitoring".to_string())]);
        let v = register_request_json(&a, &tags);
        assert_eq!(
            v["tags"],
            json!([{"key": "deploy:stack", "value": "monitoring"}, {"key": "team", "value": "platform"}])
        );
    }

    #[test]
    fn revision_arns_parse() {
        assert_eq!(
            family_and_revision("arn:aws:ecs:us-west-2:1:task-definition/prom-task:12"),
            Some(("prom-task", 12))
        );
        assert_eq!(family_and_revision("prom-task"), None);
        assert_eq!(
            cluster_name_of("arn:aws:ecs:us-west-2:1:cluster/monitoring"),
            "monitoring"
        );
        assert_eq!(cluster_name_of("monitoring"), "monitoring");
    }
}
