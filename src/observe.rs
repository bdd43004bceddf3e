//! Reads what the plan needs from AWS, read-only and concurrently: the looked-up network,
//! the live counterpart of every desired resource, and whatever else carries this stack's
//! ownership tags (resources removed from the stack file, interrupted replacements).

use crate::aws::{
    cloudmap, ec2, ecs, efs, elbv2, elbv2_targets, iam, logs, secrets, tagging, Aws, AwsError,
};
use crate::diff::World;
use crate::model::{
    external_secret_key, Address, Attrs, Desired, Kind, Lookups, Observed, Ownership, TAG_ADDRESS,
};
use crate::spec::Stack;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};

/// How many read calls run at once.
pub const PARALLEL_READS: usize = 8;

/// Finds the VPC, the private subnets and the backend ALB, and the account.
pub async fn lookups(aws: &Aws, stack: &Stack) -> Result<Lookups, AwsError> {
    let (account_id, (vpc_id, vpc_cidr), mut load_balancer) = tokio::try_join!(
        aws.account_id(),
        ec2::lookup_vpc(aws, &stack.lookups.vpc.tags),
        elbv2::lookup_load_balancer(aws, &stack.lookups.load_balancer.name),
    )?;
    if load_balancer.vpc_id != vpc_id {
        return Err(AwsError {
            service: "elasticloadbalancing",
            operation: "DescribeLoadBalancers",
            address: None,
            code: Some("LookupFailed".into()),
            message: format!(
                "load balancer `{}` is in {}, not in the stack's VPC {vpc_id}",
                load_balancer.name, load_balancer.vpc_id
            ),
            request_id: None,
        });
    }
    // One read of the listeners serves the target counts and, for stacks with listener rules,
    // the HTTPS listener they are added to.
    let listeners = elbv2::listeners(aws, &load_balancer.arn).await?;
    if !stack.listener_rules.is_empty() {
        load_balancer.https_listener_arn = Some(
            elbv2_targets::https_listener(&listeners)
                .ok_or_else(|| elbv2_targets::no_https_listener(&load_balancer.arn))?,
        );
    }
    let account = account_id.as_str();
    let secret_arns = stream::iter(stack.external_secrets())
        .map(|(store, name)| async move {
            let arn = match store {
                "ssm" => secrets::lookup_parameter_arn(aws, account, &name).await?,
                _ => secrets::lookup_secret_arn(aws, &name).await?,
            };
            Ok::<_, AwsError>((external_secret_key(store, &name), arn))
        })
        .buffer_unordered(PARALLEL_READS)
        .try_collect::<BTreeMap<_, _>>();
    let (subnet_ids, secrets, targets_by_port) = tokio::try_join!(
        ec2::lookup_subnets(aws, &vpc_id, &stack.lookups.subnets.tags),
        secret_arns,
        elbv2::targets_by_port(aws, &listeners),
    )?;
    load_balancer.targets_by_port = targets_by_port;
    Ok(Lookups {
        account_id,
        region: aws.region.clone(),
        vpc_id,
        vpc_cidr,
        subnet_ids,
        load_balancer,
        secrets,
    })
}

/// Cluster name for a service's `cluster` attribute (an address of the stack, or a name).
fn cluster_name(cluster: &str, desired: &[Desired]) -> String {
    desired
        .iter()
        .find(|d| d.address.to_string() == cluster)
        .map(|d| d.attrs.aws_name().to_string())
        .unwrap_or_else(|| cluster.to_string())
}

async fn find(
    aws: &Aws,
    d: &Desired,
    desired: &[Desired],
    vpc_id: &str,
    stack: &Stack,
) -> Result<Vec<Observed>, AwsError> {
    let addr = &d.address;
    let one = |o: Option<Observed>| o.into_iter().collect::<Vec<_>>();
    Ok(match &d.attrs {
        Attrs::LogGroup(a) => one(logs::find_log_group(aws, &a.name, addr).await?),
        Attrs::IamRole(a) => one(iam::find_role(aws, &a.name, addr).await?),
        Attrs::SecurityGroup(a) => ec2::find_security_groups(aws, vpc_id, &a.name, addr).await?,
        Attrs::EcsCluster(a) => one(ecs::find_cluster(aws, &a.name, addr).await?),
        Attrs::TaskDefinition(a) => {
            one(
                ecs::find_task_definition(aws, &a.family, addr, &stack.stack, &stack.environment)
                    .await?,
            )
        }
        Attrs::EcsService(a) => {
            let cluster = cluster_name(&a.cluster, desired);
            one(ecs::find_service(aws, &cluster, &a.name, addr).await?)
        }
        Attrs::Secret(a) => one(secrets::find_secret(aws, &a.name, addr).await?),
        Attrs::TargetGroup(a) => one(elbv2_targets::find_target_group(aws, &a.name, addr).await?),
        Attrs::ListenerRule(a) => {
            elbv2_targets::find_listener_rules(aws, &a.listener, a.priority, addr).await?
        }
        Attrs::ServiceDiscoveryNamespace(a) => {
            cloudmap::find_namespaces(aws, &a.name, vpc_id, addr).await?
        }
        Attrs::ServiceDiscoveryService(a) => {
            // The namespace by its DNS name (the service's `namespace` is its address; the
            // lookup that gives a cluster's name from its address gives this too).
            let namespace = cluster_name(&a.namespace, desired);
            cloudmap::find_services(aws, &namespace, &a.name, addr).await?
        }
        Attrs::EfsFileSystem(a) => one(efs::find_file_system(aws, &a.creation_token, addr).await?),
        Attrs::EfsMountTargets(a) => {
            // Found through their file system: its creation token, or the id as written.
            let fs = desired
                .iter()
                .find(|d| d.address.to_string() == a.file_system)
                .map(|d| d.attrs.aws_name().to_string())
                .unwrap_or_else(|| a.file_system.clone());
            one(efs::find_mount_targets(aws, &fs, addr).await?)
        }
        Attrs::EfsAccessPoint(a) => efs::find_access_points(aws, &a.name, addr).await?,
    })
    .map(|mut list: Vec<Observed>| {
        for o in &mut list {
            o.address = d.address.clone();
        }
        list
    })
}

/// Observes the live state for `desired`.
pub async fn observe(
    aws: &Aws,
    stack: &Stack,
    lookups: &Lookups,
    desired: &[Desired],
) -> Result<World, AwsError> {
    let found_fut = stream::iter(desired.iter())
        .map(|d| async move {
            find(aws, d, desired, &lookups.vpc_id, stack)
                .await
                .map(|l| (d.address.clone(), l))
        })
        .buffer_unordered(PARALLEL_READS)
        .try_collect::<Vec<_>>();
    let role_path = format!("/deploy/{}/", stack.stack);
    let (found, owned_arns, role_names) = tokio::try_join!(
        found_fut,
        tagging::owned_arns(aws, &stack.stack, &stack.environment),
        iam::list_roles_under_path(aws, &role_path),
    )?;
    let found: BTreeMap<Address, Vec<Observed>> = found.into_iter().collect();

    // What carries our tags but was not found through a desired address.
    let known_ids: BTreeSet<String> = found.values().flatten().map(|o| o.id.clone()).collect();
    let known_families: BTreeSet<String> = found
        .values()
        .flatten()
        .filter_map(|o| match &o.attrs {
            Attrs::TaskDefinition(t) => Some(t.family.clone()),
            _ => None,
        })
        .chain(desired.iter().filter_map(|d| match &d.attrs {
            Attrs::TaskDefinition(t) => Some(t.family.clone()),
            _ => None,
        }))
        .collect();
    let known_roles: BTreeSet<String> = desired
        .iter()
        .filter(|d| d.address.kind == Kind::IamRole)
        .map(|d| d.attrs.aws_name().to_string())
        .collect();
    let mut extra: Vec<(Kind, String)> = Vec::new();
    let mut families_seen = BTreeSet::new();
    for arn in &owned_arns {
        let Some((kind, id)) = tagging::classify_arn(arn) else {
            continue;
        };
        match kind {
            Kind::TaskDefinition => {
                let family = task_family(&id);
                if !known_families.contains(&family) && families_seen.insert(family.clone()) {
                    extra.push((kind, family));
                }
            }
            Kind::LogGroup | Kind::EcsCluster => {
                if !found
                    .values()
                    .flatten()
                    .any(|o| o.id == id || o.attrs.aws_name() == id)
                {
                    extra.push((kind, id));
                }
            }
            _ => {
                if !known_ids.contains(&id) {
                    extra.push((kind, id));
                }
            }
        }
    }
    for name in role_names {
        if !known_roles.contains(&name) {
            extra.push((Kind::IamRole, name));
        }
    }
    let owned_elsewhere: Vec<Observed> = stream::iter(extra)
        .map(
            |(kind, id)| async move { observe_by_id(aws, stack, &lookups.vpc_id, kind, &id).await },
        )
        .buffer_unordered(PARALLEL_READS)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .filter(|o| o.ownership(&stack.stack, &stack.environment) == Ownership::Owned)
        .collect();

    // The revisions services run, to compare by content.
    let mut revisions = BTreeMap::new();
    let tds: BTreeMap<String, crate::model::TaskDefinitionAttrs> = found
        .values()
        .flatten()
        .chain(owned_elsewhere.iter())
        .filter_map(|o| match &o.attrs {
            Attrs::TaskDefinition(t) => Some((o.id.clone(), t.clone())),
            _ => None,
        })
        .collect();
    let wanted: BTreeSet<String> = found
        .values()
        .flatten()
        .chain(owned_elsewhere.iter())
        .filter_map(|o| match &o.attrs {
            Attrs::EcsService(s) => Some(s.task_definition.clone()),
            _ => None,
        })
        .collect();
    let to_describe: Vec<String> = wanted
        .into_iter()
        .filter(|arn| {
            if let Some(t) = tds.get(arn) {
                revisions.insert(arn.clone(), t.clone());
                false
            } else {
                true
            }
        })
        .collect();
    let described = stream::iter(to_describe)
        .map(|arn| async move { ecs::describe_task_definition(aws, &arn).await })
        .buffer_unordered(PARALLEL_READS)
        .try_collect::<Vec<_>>()
        .await?;
    for (arn, attrs, _) in described.into_iter().flatten() {
        revisions.insert(arn, attrs);
    }

    Ok(World {
        found,
        owned_elsewhere,
        revisions,
    })
}

/// `arn:aws:ecs:r:a:task-definition/FAMILY:REV` → FAMILY.
fn task_family(id: &str) -> String {
    let tail = id.rsplit('/').next().unwrap_or(id);
    tail.rsplit_once(':')
        .map(|(f, _)| f)
        .unwrap_or(tail)
        .to_string()
}

/// Reads one resource found by tag, addressed by its `deploy:address` tag.
async fn observe_by_id(
    aws: &Aws,
    stack: &Stack,
    vpc_id: &str,
    kind: Kind,
    id: &str,
) -> Result<Option<Observed>, AwsError> {
    let placeholder = Address::new(kind, id);
    let found = match kind {
        Kind::LogGroup => logs::find_log_group(aws, id, &placeholder).await?,
        Kind::IamRole => iam::find_role(aws, id, &placeholder).await?,
        Kind::SecurityGroup => ec2::observe_security_group(aws, id, &placeholder).await?,
        Kind::EcsCluster => ecs::find_cluster(aws, id, &placeholder).await?,
        Kind::TaskDefinition => {
            ecs::find_task_definition(aws, id, &placeholder, &stack.stack, &stack.environment)
                .await?
        }
        Kind::EcsService => {
            // arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME
            let mut parts = id.rsplit('/');
            let (Some(name), Some(cluster)) = (parts.next(), parts.next()) else {
                return Ok(None);
            };
            ecs::find_service(aws, cluster, name, &placeholder).await?
        }
        Kind::Secret => secrets::find_secret(aws, id, &placeholder).await?,
        Kind::TargetGroup => elbv2_targets::find_target_group(aws, id, &placeholder).await?,
        Kind::ListenerRule => elbv2_targets::observe_listener_rule(aws, id, &placeholder).await?,
        Kind::ServiceDiscoveryNamespace => {
            cloudmap::observe_namespace(aws, id, vpc_id, &placeholder).await?
        }
        Kind::ServiceDiscoveryService => {
            cloudmap::observe_service(aws, cloudmap::service_id_of(id), &placeholder).await?
        }
        Kind::EfsFileSystem => efs::observe_file_system_by_id(aws, id, &placeholder).await?,
        Kind::EfsMountTargets => efs::find_mount_targets(aws, id, &placeholder).await?,
        Kind::EfsAccessPoint => efs::observe_access_point(aws, id, &placeholder).await?,
    };
    Ok(found.map(|mut o| {
        o.address = o
            .all_tags
            .get(TAG_ADDRESS)
            .and_then(|a| a.parse::<Address>().ok())
            .filter(|a| a.kind == kind)
            .unwrap_or_else(|| Address::new(kind, o.attrs.aws_name().replace(['/', ':'], "_")));
        o
    }))
}
