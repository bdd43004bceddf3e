//! Carries out one plan step against AWS: resolves the stack addresses in the desired
//! attributes to the ids known so far, then calls the adapter for that kind.

use super::{
    amp, cloudmap, ec2, ecs, ecs_rollouts, efs, elbv2_targets, iam, logs, s3, secrets, Aws,
    AwsError,
};
use crate::apply::wait::Watcher;
use crate::apply::{Provider, Refs};
use crate::model::{
    short_hash, Address, Attrs, Desired, EcsServiceAttrs, Observed, Peer, Rule, Tags,
};
use crate::plan::{Change, StepOp, RESTART_ATTR};
use crate::rollout::{ContainerLog, Deployment, Evidence, Followed, ServiceState, LOG_LINES};

pub struct AwsProvider {
    pub aws: Aws,
    pub stack: String,
    pub environment: String,
    /// Ownership tags (stack, environment) put on everything created or adopted.
    pub ownership: Tags,
    /// The service changes made so far, with the deployments they started (apply waits for
    /// them once the steps are done).
    pub started: std::sync::Mutex<Vec<Followed>>,
    /// The config files published so far, by family (apply waits for the tasks to load them).
    pub published: std::sync::Mutex<Vec<(String, s3::Published)>>,
    /// The environment's lock, checked before each step's first write (a holder that lost
    /// it makes no further change).
    pub lock: Option<std::sync::Arc<crate::lock::Held>>,
}

impl AwsProvider {
    /// Records a service change for the rollout wait.
    fn follow(&self, address: &str, a: &EcsServiceAttrs, started: Option<&Deployment>) {
        let followed = Followed {
            address: address.to_string(),
            cluster: a.cluster.clone(),
            service: a.name.clone(),
            deployment: started.map(|d| d.id.clone()),
            task_definition: a.task_definition.clone(),
            desired: a.desired_count,
            since: started.and_then(|d| d.created_at),
            breaker_threshold: crate::rollout::breaker_threshold_of(
                &a.breaker_threshold,
                a.desired_count,
            ),
        };
        if let Ok(mut list) = self.started.lock() {
            list.push(followed);
        }
    }

    fn note_published(&self, published: Vec<(String, s3::Published)>) {
        if let Ok(mut list) = self.published.lock() {
            list.extend(published);
        }
    }

    async fn set_managed_tags(&self, o: &Observed, d: &Desired) -> Result<(), AwsError> {
        let tags = d.managed_tags(&self.ownership);
        let aws = &self.aws;
        match &o.attrs {
            Attrs::LogGroup(a) => logs::set_tags(aws, &a.name, &tags, &[]).await,
            Attrs::IamRole(a) => iam::set_tags(aws, &a.name, &tags, &[]).await,
            Attrs::SecurityGroup(_) => ec2::set_tags(aws, &o.id, &tags, &[]).await,
            Attrs::EcsCluster(_) | Attrs::EcsService(_) | Attrs::TaskDefinition(_) => {
                ecs::set_tags(aws, &o.id, &tags, &[]).await
            }
            Attrs::Secret(_) => secrets::set_tags(aws, &o.id, &tags, &[]).await,
            Attrs::TargetGroup(_) | Attrs::ListenerRule(_) => {
                elbv2_targets::set_tags(aws, &o.id, &tags, &[]).await
            }
            Attrs::ServiceDiscoveryNamespace(_) => {
                let arn = o.handles.get("arn").cloned().unwrap_or_default();
                cloudmap::set_tags(aws, &arn, &tags, &[]).await
            }
            Attrs::ServiceDiscoveryService(_) => cloudmap::set_tags(aws, &o.id, &tags, &[]).await,
            Attrs::EfsFileSystem(_) | Attrs::EfsAccessPoint(_) => {
                efs::set_tags(aws, &o.id, &tags, &[]).await
            }
            Attrs::EfsMountTargets(_) => efs::set_mount_targets_applied(aws, &o.id, &tags).await,
            Attrs::S3Bucket(a) => s3::merge_tags(aws, &a.name, &tags).await,
            Attrs::AmpWorkspace(_) => {
                let arn = o.handles.get("arn").cloned().unwrap_or_default();
                amp::set_tags(aws, &arn, &tags, &[]).await
            }
        }
    }
}

/// A security group's desired rules without those naming groups of the stack that have no id
/// yet: the planner deferred them (two groups naming each other) to the group's
/// [`StepOp::AuthorizeDeferred`] step. Other kinds are returned as they are.
fn without_deferred_rules(attrs: &Attrs, refs: &Refs) -> Attrs {
    let mut out = attrs.clone();
    if let Attrs::SecurityGroup(g) = &mut out {
        let known = |r: &Rule| match &r.peer {
            Peer::Group(p) => p.parse::<Address>().map_or(true, |a| refs.contains_key(&a)),
            Peer::Cidr(_) => true,
        };
        g.ingress.retain(known);
        g.egress.retain(known);
    }
    out
}

/// Desired attributes with every address replaced by the id known for it; the error lists
/// the addresses that have no id yet.
pub fn resolve(attrs: &Attrs, refs: &Refs) -> Result<Attrs, String> {
    let mut missing = Vec::new();
    let mut out = attrs.clone();
    let lookup = |s: &str| -> Option<String> {
        let addr: Address = s.parse().ok()?;
        refs.get(&addr).cloned()
    };
    out.map_references(&|s| lookup(s));
    if let Attrs::EcsService(svc) = &mut out {
        // ECS takes a cluster by name or ARN; the live side is normalized to the name.
        if let Some((_, name)) = svc.cluster.split_once(":cluster/") {
            svc.cluster = name.to_string();
        }
        if let Some((td, _)) = svc.task_definition.split_once('@') {
            match lookup(td) {
                Some(arn) => svc.task_definition = arn,
                None => missing.push(td.to_string()),
            }
        }
    }
    for a in out.references() {
        missing.push(a.to_string());
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!("no id known for {}", missing.join(", ")))
    }
}

impl Provider for AwsProvider {
    async fn run(
        &self,
        op: StepOp,
        change: &Change,
        refs: &Refs,
    ) -> Result<Option<String>, AwsError> {
        let aws = &self.aws;
        let addr = change.address.to_string();
        if let Some(lock) = &self.lock {
            lock.check().await?;
        }
        tracing::debug!(address = %addr, op = ?op, action = ?change.action, "running step");
        match op {
            StepOp::Create | StepOp::CreateReplacement => {
                let d = desired_side(change, op)?;
                let mut attrs = resolve(&without_deferred_rules(&d.attrs, refs), refs)
                    .map_err(|m| AwsError::other("deploy", "ResolveReferences", m))?;
                let tags = d.create_tags(&self.ownership);
                let id = match &mut attrs {
                    Attrs::LogGroup(a) => logs::create_log_group(aws, a, &tags).await?,
                    Attrs::IamRole(a) => iam::create_role(aws, a, &tags).await?,
                    Attrs::SecurityGroup(a) => {
                        if op == StepOp::CreateReplacement {
                            // Group names are unique per VPC: the new group gets a suffix
                            // while the old one still exists.
                            a.name = format!("{}-{}", a.name, &short_hash(&tags)[..8]);
                        }
                        ec2::create_security_group(aws, a, &tags).await?
                    }
                    Attrs::EcsCluster(a) => ecs::create_cluster(aws, a, &tags).await?,
                    Attrs::TaskDefinition(a) => {
                        let hash = d.attrs.applied_hash(&d.ignore);
                        ecs::register_task_definition(
                            aws,
                            a,
                            &tags,
                            &hash,
                            &self.stack,
                            &self.environment,
                        )
                        .await?
                    }
                    Attrs::EcsService(a) => {
                        let token = short_hash(&(&self.stack, &self.environment, &addr, &tags));
                        let (arn, started) = ecs::create_service(aws, a, &tags, &token).await?;
                        self.follow(&addr, a, started.as_ref());
                        arn
                    }
                    Attrs::Secret(a) => secrets::create_secret(aws, a, &tags).await?,
                    Attrs::TargetGroup(a) => {
                        elbv2_targets::create_target_group(aws, a, &tags).await?
                    }
                    Attrs::ListenerRule(a) => {
                        elbv2_targets::create_listener_rule(aws, a, &tags).await?
                    }
                    Attrs::ServiceDiscoveryNamespace(a) => {
                        let token = short_hash(&(&self.stack, &self.environment, &addr, &tags));
                        cloudmap::create_namespace(aws, a, &tags, &token).await?
                    }
                    Attrs::ServiceDiscoveryService(a) => {
                        let token = short_hash(&(&self.stack, &self.environment, &addr, &tags));
                        cloudmap::create_service(aws, a, &tags, &token).await?
                    }
                    Attrs::EfsFileSystem(a) => efs::create_file_system(aws, a, &tags).await?,
                    Attrs::EfsMountTargets(a) => efs::create_mount_targets(aws, a, &tags).await?,
                    Attrs::EfsAccessPoint(a) => efs::create_access_point(aws, a, &tags).await?,
                    Attrs::S3Bucket(a) => {
                        let (name, published) = s3::create_bucket(aws, a, &tags).await?;
                        self.note_published(published);
                        name
                    }
                    Attrs::AmpWorkspace(a) => amp::create_workspace(aws, a, &tags).await?,
                };
                Ok(Some(id))
            }
            StepOp::Update => {
                let d = desired_side(change, op)?;
                let o = observed_side(change, op)?;
                let after = resolve(&d.attrs, refs)
                    .map_err(|m| AwsError::other("deploy", "ResolveReferences", m))?;
                match (&o.attrs, &after) {
                    (Attrs::LogGroup(b), Attrs::LogGroup(a)) => {
                        logs::update_log_group(aws, &b.name, b, a).await?
                    }
                    (Attrs::IamRole(b), Attrs::IamRole(a)) => {
                        iam::update_role(aws, &b.name, b, a).await?
                    }
                    (Attrs::SecurityGroup(b), Attrs::SecurityGroup(a)) => {
                        ec2::update_security_group(aws, &o.id, b, a, &o.handles).await?
                    }
                    (Attrs::EcsCluster(b), Attrs::EcsCluster(a)) => {
                        ecs::update_cluster(aws, &o.id, b, a).await?
                    }
                    (Attrs::EcsService(b), Attrs::EcsService(a)) => {
                        let mut a = a.clone();
                        for ignored in &d.ignore {
                            keep_live(&mut a, b, ignored);
                        }
                        let restart = change.attrs.iter().any(|c| c.name == RESTART_ATTR);
                        let primary =
                            ecs::update_service(aws, &b.cluster, &b.name, b, &a, restart).await?;
                        // A new PRIMARY id means the call started a deployment; the same one
                        // (a count or settings change) started none.
                        let before = o.handles.get("primary_deployment");
                        let started = primary.filter(|p| Some(&p.id) != before);
                        self.follow(&addr, &a, started.as_ref());
                    }
                    // Revisions are immutable: content changes are planned as new revisions,
                    // so an update here only adopts the revision (tags below).
                    (Attrs::TaskDefinition(_), Attrs::TaskDefinition(_)) => {}
                    (Attrs::Secret(b), Attrs::Secret(a)) => {
                        let mut a = a.clone();
                        if d.ignore.contains("value") {
                            a.value = b.value.clone();
                        }
                        secrets::update_secret(aws, &o.id, b, &a).await?
                    }
                    (Attrs::TargetGroup(b), Attrs::TargetGroup(a)) => {
                        elbv2_targets::update_target_group(aws, &o.id, b, a).await?
                    }
                    (Attrs::ListenerRule(b), Attrs::ListenerRule(a)) => {
                        elbv2_targets::update_listener_rule(aws, &o.id, b, a).await?
                    }
                    (Attrs::ServiceDiscoveryNamespace(b), Attrs::ServiceDiscoveryNamespace(a)) => {
                        let arn = o.handles.get("arn").cloned().unwrap_or_default();
                        cloudmap::update_namespace(aws, &o.id, &arn, b, a).await?
                    }
                    (Attrs::ServiceDiscoveryService(b), Attrs::ServiceDiscoveryService(a)) => {
                        cloudmap::update_service(aws, &o.id, b, a).await?
                    }
                    (Attrs::EfsFileSystem(b), Attrs::EfsFileSystem(a)) => {
                        efs::update_file_system(aws, &o.id, b, a).await?
                    }
                    (Attrs::EfsMountTargets(b), Attrs::EfsMountTargets(a)) => {
                        efs::update_mount_targets(aws, &o.id, b, a, &o.handles).await?
                    }
                    (Attrs::EfsAccessPoint(b), Attrs::EfsAccessPoint(a)) => {
                        efs::update_access_point(aws, &o.id, b, a).await?
                    }
                    (Attrs::S3Bucket(b), Attrs::S3Bucket(a)) => {
                        let published = s3::update_bucket(aws, b, a).await?;
                        self.note_published(published);
                    }
                    (Attrs::AmpWorkspace(b), Attrs::AmpWorkspace(a)) => {
                        let arn = o.handles.get("arn").cloned().unwrap_or_default();
                        amp::update_workspace(aws, &o.id, &arn, b, a).await?
                    }
                    _ => {
                        return Err(AwsError::other(
                            "deploy",
                            "Update",
                            "live and desired kinds differ",
                        )
                        .at(&addr));
                    }
                }
                self.set_managed_tags(o, d).await?;
                Ok(Some(o.id.clone()))
            }
            StepOp::AuthorizeDeferred => {
                let d = desired_side(change, op)?;
                let unresolved =
                    |m: String| AwsError::other("deploy", "ResolveReferences", m).at(&addr);
                let id = refs
                    .get(&change.address)
                    .ok_or_else(|| unresolved(format!("no id known for {addr}")))?;
                if let Attrs::SecurityGroup(a) = resolve(&d.attrs, refs).map_err(unresolved)? {
                    ec2::authorize_missing_rules(aws, id, &a)
                        .await
                        .map_err(|e| e.at(&addr))?;
                }
                Ok(None)
            }
            StepOp::Delete | StepOp::DeleteReplaced => {
                let o = observed_side(change, op)?;
                match &o.attrs {
                    Attrs::LogGroup(a) => logs::delete_log_group(aws, &a.name).await?,
                    Attrs::IamRole(a) => iam::delete_role(aws, &a.name).await?,
                    Attrs::SecurityGroup(_) => ec2::delete_security_group(aws, &o.id).await?,
                    Attrs::EcsCluster(_) => ecs::delete_cluster(aws, &o.id).await?,
                    Attrs::TaskDefinition(a) => {
                        ecs::deregister_owned_revisions(
                            aws,
                            &a.family,
                            &self.stack,
                            &self.environment,
                        )
                        .await?;
                    }
                    Attrs::EcsService(a) => ecs::delete_service(aws, &a.cluster, &a.name).await?,
                    Attrs::Secret(_) => secrets::delete_secret(aws, &o.id).await?,
                    Attrs::TargetGroup(_) => elbv2_targets::delete_target_group(aws, &o.id).await?,
                    Attrs::ListenerRule(_) => {
                        elbv2_targets::delete_listener_rule(aws, &o.id).await?
                    }
                    Attrs::ServiceDiscoveryNamespace(_) => {
                        cloudmap::delete_namespace(aws, &o.id).await?
                    }
                    Attrs::ServiceDiscoveryService(_) => {
                        cloudmap::delete_service(aws, &o.id).await?
                    }
                    Attrs::EfsFileSystem(_) => efs::delete_file_system(aws, &o.id).await?,
                    Attrs::EfsMountTargets(_) => efs::delete_mount_targets(aws, &o.id).await?,
                    Attrs::EfsAccessPoint(_) => efs::delete_access_point(aws, &o.id).await?,
                    Attrs::S3Bucket(a) => s3::delete_bucket(aws, &a.name).await?,
                    Attrs::AmpWorkspace(_) => amp::delete_workspace(aws, &o.id).await?,
                }
                Ok(None)
            }
        }
    }
}

/// The desired state the step's operation needs; an error (no panic) when the change lacks
/// it, as only a plan read from a file can.
#[allow(clippy::result_large_err)] // the provider's own error type, as everywhere in aws/
fn desired_side(change: &Change, op: StepOp) -> Result<&Desired, AwsError> {
    change
        .desired
        .as_ref()
        .ok_or_else(|| missing_side(change, op, "desired state"))
}

/// The live resource the step's operation needs (see [`desired_side`]).
#[allow(clippy::result_large_err)]
fn observed_side(change: &Change, op: StepOp) -> Result<&Observed, AwsError> {
    change
        .observed
        .as_ref()
        .ok_or_else(|| missing_side(change, op, "live resource"))
}

fn missing_side(change: &Change, op: StepOp, side: &str) -> AwsError {
    AwsError::other(
        "deploy",
        "Plan",
        format!("a {op:?} step needs a {side}, the plan has none"),
    )
    .at(change.address.to_string())
}

/// For an ignored attribute, the update sends the live value (so it is left alone).
fn keep_live(
    after: &mut crate::model::EcsServiceAttrs,
    live: &crate::model::EcsServiceAttrs,
    attr: &str,
) {
    match attr {
        "desired_count" => after.desired_count = live.desired_count,
        "task_definition" => after.task_definition = live.task_definition.clone(),
        "tags" => after.tags = live.tags.clone(),
        _ => {}
    }
}

impl Watcher for AwsProvider {
    /// One DescribeServices per cluster (10 services a call) per poll.
    async fn poll(&self, followed: &[Followed]) -> Result<Vec<ServiceState>, AwsError> {
        let services: Vec<(String, String, String)> = followed
            .iter()
            .map(|f| (f.address.clone(), f.cluster.clone(), f.service.clone()))
            .collect();
        ecs_rollouts::poll_clusters(&self.aws, &services).await
    }

    async fn roll_back(&self, f: &Followed) -> Result<String, AwsError> {
        ecs_rollouts::stop_with_rollback(&self.aws, &f.cluster, &f.service, &f.task_definition)
            .await
            .map_err(|e| e.at(&f.address))
    }

    /// The service read in full (tasks, targets, events), the stopped containers' awslogs
    /// settings from the revision, and their last log lines. A read that fails leaves its part
    /// out: the report is evidence, not a second failure.
    async fn evidence(&self, f: &Followed) -> Evidence {
        let Ok(state) =
            ecs_rollouts::service_state(&self.aws, &f.address, &f.cluster, &f.service).await
        else {
            return Evidence::default();
        };
        let mut evidence = Evidence::from_state(f, &state);
        let Ok(Some((_, revision, _))) =
            ecs::describe_task_definition(&self.aws, &f.task_definition).await
        else {
            return evidence;
        };
        for task in &evidence.stopped {
            for c in &task.containers {
                let Some(log) = revision
                    .containers
                    .iter()
                    .find(|rc| rc.name == c.name)
                    .and_then(|rc| rc.log.as_ref())
                    .filter(|l| l.driver == "awslogs")
                else {
                    continue;
                };
                let (Some(group), Some(prefix)) = (
                    log.options.get("awslogs-group"),
                    log.options.get("awslogs-stream-prefix"),
                ) else {
                    continue;
                };
                let stream = format!("{prefix}/{}/{}", c.name, task.id);
                if let Ok(lines) =
                    logs::last_lines(&self.aws, group, &stream, LOG_LINES as i32).await
                {
                    if !lines.is_empty() {
                        evidence.logs.push(ContainerLog {
                            task: task.id.clone(),
                            container: c.name.clone(),
                            log_group: group.clone(),
                            log_stream: stream,
                            lines,
                        });
                    }
                }
            }
        }
        evidence
    }
}
