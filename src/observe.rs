//! Reads what the plan needs from AWS, read-only: the looked-up network, the live counterpart
//! of every desired resource, and whatever else carries this stack's ownership tags (resources
//! removed from the stack file, interrupted replacements).
//!
//! A plan waits for AWS one round trip after another only where a read needs another's answer,
//! so every read starts as soon as what it needs is known: reads by name (roles, log groups,
//! secrets, clusters, services, task definitions, file systems, Cloud Map) start at once; the
//! security groups await only the VPC, the listener rules only the load balancer's listeners,
//! a file system's mount targets only its description. No global cap: the per-service budgets
//! in [`crate::aws::budget`] keep the burst under AWS's request rates. What AWS lets a read
//! batch without losing exactness is batched (security groups and their rules, services of a
//! cluster, log groups, ELB tags); the rest is read per resource, concurrently.

use crate::aws::{
    amp, cloudmap, ec2, ecs, efs, elbv2, elbv2_targets, iam, logs, s3, secrets, tagging, Aws,
    AwsError,
};
use crate::diff::World;
use crate::model::{
    aws_name_of, external_secret_key, Address, Attrs, Desired, Kind, LoadBalancer, Lookups,
    Observed, Ownership, TAG_ADDRESS,
};
use crate::render::Templates;
use crate::spec::{Built, LoadedStack, SpecErrors, Stack};
use aws_sdk_elasticloadbalancingv2::types::Listener;
use futures::future::{self, BoxFuture, FutureExt, Shared, TryFutureExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// A read whose answer several others wait for.
type Read<'a, T> = Shared<BoxFuture<'a, Result<T, AwsError>>>;

fn shared<'a, T: Clone + Send + Sync + 'a>(
    read: impl Future<Output = Result<T, AwsError>> + Send + 'a,
) -> Read<'a, T> {
    read.boxed().shared()
}

/// The lookups, each part a read of its own, so that what needs only one part waits only for
/// it.
struct LookupReads<'a> {
    /// The account (the config bucket's name holds it).
    account: Read<'a, String>,
    vpc: Read<'a, (String, String)>,
    /// The HTTPS listener the stack's rules go on (`None` when it has no rules).
    https_listener: Read<'a, Option<String>>,
    lookups: Read<'a, Lookups>,
    /// The config buckets' files as the real lookups render them, when the stack was named
    /// with placeholders (a prefetch): a bucket's read compares the live objects with these,
    /// so an unchanged file costs no GetObject.
    bucket_files: Option<Read<'a, BucketFiles>>,
}

/// Files of each config bucket by the bucket's address.
type BucketFiles = BTreeMap<Address, BTreeMap<String, String>>;

fn bucket_files(desired: &[Desired]) -> BucketFiles {
    desired
        .iter()
        .filter_map(|d| match &d.attrs {
            Attrs::S3Bucket(b) => Some((d.address.clone(), b.files.clone())),
            _ => None,
        })
        .collect()
}

/// The account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:…`).
fn account_of(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        .then(|| account.to_string())
}

impl<'a> LookupReads<'a> {
    /// Starts the lookups: the VPC and the load balancer at once; the subnets when the VPC is
    /// known; the listeners when the load balancer is, then the targets behind them. The
    /// account is the load balancer's (DescribeLoadBalancers lists only the caller's own), so
    /// it costs no call of its own.
    fn start(
        aws: &'a Aws,
        stack: &'a Stack,
        rendered: Option<(&'a LoadedStack, &'a Templates)>,
    ) -> LookupReads<'a> {
        let load_balancer: Read<'a, LoadBalancer> = shared(elbv2::lookup_load_balancer(
            aws,
            &stack.lookups.load_balancer.name,
        ));
        let vpc = shared(ec2::lookup_vpc(aws, &stack.lookups.vpc.tags));
        let account = shared(load_balancer.clone().and_then(move |lb| async move {
            match account_of(&lb.arn) {
                Some(account) => Ok(account),
                None => aws.account_id().await,
            }
        }));
        let listeners: Read<'a, Vec<Listener>> = shared(
            load_balancer
                .clone()
                .and_then(move |lb| async move { elbv2::listeners(aws, &lb.arn).await }),
        );
        let https_listener = {
            let (load_balancer, listeners) = (load_balancer.clone(), listeners.clone());
            shared(async move {
                if stack.listener_rules.is_empty() {
                    return Ok(None);
                }
                let (lb, listeners) = future::try_join(load_balancer, listeners).await?;
                elbv2_targets::https_listener(&listeners)
                    .map(Some)
                    .ok_or_else(|| elbv2_targets::no_https_listener(&lb.arn))
            })
        };
        let subnets = shared(vpc.clone().and_then(move |(vpc_id, _)| async move {
            ec2::lookup_subnets(aws, &vpc_id, &stack.lookups.subnets.tags).await
        }));
        let secret_arns = {
            let account = account.clone();
            let reads = future::join_all(stack.external_secrets().into_iter().map(
                move |(store, name)| {
                    let account = account.clone();
                    async move {
                        let (arn, parameter_type) = match store {
                            "ssm" => {
                                let account = account.await?;
                                let (arn, kind) =
                                    secrets::lookup_parameter(aws, &account, &name).await?;
                                (arn, Some(kind))
                            }
                            _ => (secrets::lookup_secret_arn(aws, &name).await?, None),
                        };
                        let key = external_secret_key(store, &name);
                        Ok::<_, AwsError>((key, arn, parameter_type.map(|t| (name, t))))
                    }
                },
            ));
            shared(async move { every_missing_secret_at_once(reads.await) })
        };
        let targets = shared(
            listeners
                .clone()
                .and_then(move |l| async move { elbv2::targets_by_port(aws, &l).await }),
        );
        let namespaces = shared(existing_namespaces(aws, stack));
        let account_read = account.clone();
        let lookups = {
            let (vpc, https_listener) = (vpc.clone(), https_listener.clone());
            shared(async move {
                let (
                    account_id,
                    (vpc_id, vpc_cidr),
                    mut lb,
                    https,
                    subnet_ids,
                    secrets,
                    targets,
                    namespaces,
                ) = tokio::try_join!(
                    account,
                    vpc,
                    load_balancer,
                    https_listener,
                    subnets,
                    secret_arns,
                    targets,
                    namespaces
                )?;
                if lb.vpc_id != vpc_id {
                    return Err(AwsError::lookup_failed(
                        "elasticloadbalancing",
                        "DescribeLoadBalancers",
                        format!(
                            "load balancer `{}` is in {}, not in the stack's VPC {vpc_id}",
                            lb.name, lb.vpc_id
                        ),
                    ));
                }
                lb.https_listener_arn = https;
                lb.targets_by_port = targets;
                Ok(Lookups {
                    account_id,
                    region: aws.region.clone(),
                    vpc_id,
                    vpc_cidr,
                    subnet_ids,
                    load_balancer: lb,
                    parameter_types: secrets
                        .iter()
                        .filter_map(|(_, _, parameter_type)| parameter_type.clone())
                        .collect(),
                    secrets: secrets
                        .into_iter()
                        .map(|(key, arn, _)| (key, arn))
                        .collect(),
                    namespaces,
                })
            })
        };
        let bucket_files = rendered.map(|(loaded, templates)| {
            shared(lookups.clone().map_ok(move |l| {
                // A stack that does not build with the real lookups fails later, with its
                // errors; meanwhile its buckets are read against the placeholder files.
                crate::spec::build_desired(loaded, &l, templates)
                    .map(|b| bucket_files(&b.desired))
                    .unwrap_or_default()
            }))
        });
        LookupReads {
            account: account_read,
            vpc,
            https_listener,
            lookups,
            bucket_files,
        }
    }

    /// Lookups already made (a saved plan's check reads the world against them).
    fn ready(lookups: &Lookups) -> LookupReads<'a> {
        let l = lookups.clone();
        LookupReads {
            account: shared(future::ok(l.account_id.clone())),
            vpc: shared(future::ok((l.vpc_id.clone(), l.vpc_cidr.clone()))),
            https_listener: shared(future::ok(l.load_balancer.https_listener_arn.clone())),
            lookups: shared(future::ok(l)),
            bucket_files: None,
        }
    }
}

/// The ids of the Cloud Map namespaces the stack uses without owning them (another
/// environment's, see [`crate::spec::environments`]): one ListNamespaces, none without such
/// namespaces. A missing one is an error naming who makes it.
async fn existing_namespaces(
    aws: &Aws,
    stack: &Stack,
) -> Result<BTreeMap<String, String>, AwsError> {
    let wanted: BTreeSet<String> = stack
        .service_discovery_namespaces
        .values()
        .filter(|ns| ns.existing)
        .map(|ns| crate::spec::namespace_name(stack, ns))
        .collect();
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    let listed = cloudmap::private_namespaces(aws).await?;
    let mut out = BTreeMap::new();
    for name in wanted {
        match listed.iter().find(|n| n.name == name) {
            Some(n) => {
                out.insert(name, n.id.clone());
            }
            None => {
                return Err(AwsError::lookup_failed("servicediscovery", "ListNamespaces", format!(
                        "the Cloud Map namespace `{name}` does not exist: environments share the one of the stack's own environment, so apply that environment first"
                    )))
            }
        }
    }
    Ok(out)
}

/// The DNS name of the namespace a discovery service's `namespace` stands for: an address of
/// `desired`, the id of a listed namespace, or an `existing` namespace's placeholder.
fn namespace_name_of(
    desired: &[Desired],
    listed: &[cloudmap::NamespaceSummary],
    reference: &str,
) -> String {
    if let Some(name) = reference
        .strip_prefix("<lookup:namespace:")
        .and_then(|r| r.strip_suffix('>'))
    {
        return name.to_string();
    }
    match listed.iter().find(|n| n.id == reference) {
        Some(n) => n.name.clone(),
        None => aws_name_of(desired, reference),
    }
}

/// Finds the VPC, the private subnets and the backend ALB, and the account.
pub async fn lookups(aws: &Aws, stack: &Stack) -> Result<Lookups, AwsError> {
    LookupReads::start(aws, stack, None).lookups.await
}

/// The lookups and the live state of `desired`, read together: reads of the live state do not
/// wait for lookups they do not need. `desired` may be built from placeholder lookups
/// ([`Lookups::placeholders`]): only names are read from it (see [`Prefetched`]).
async fn lookups_and_world(
    aws: &Aws,
    loaded: &LoadedStack,
    templates: &Templates,
    desired: &[Desired],
) -> Result<(Lookups, World), AwsError> {
    let stack = &loaded.stack;
    let reads = LookupReads::start(aws, stack, Some((loaded, templates)));
    tokio::try_join!(
        reads.lookups.clone(),
        read_world(aws, stack, &reads, desired)
    )
}

/// The stack's desired resources as named in `region`, to read their live state before the
/// lookups are known: `built` (made with `offline` placeholder lookups) when its region is
/// `region`, else the stack built again with placeholders for `region` (role names carry it).
pub fn names(
    loaded: &LoadedStack,
    offline: &Lookups,
    built: Built,
    region: &str,
    templates: &Templates,
) -> Result<Vec<Desired>, SpecErrors> {
    if offline.region == region {
        return Ok(built.desired);
    }
    Ok(crate::spec::build_desired(loaded, &Lookups::placeholders(region), templates)?.desired)
}

/// A plan's live state read ahead, while the lookups were made: the world of the stack as
/// named by the stack built from placeholder lookups, turned into the world of the real
/// desired state by [`Prefetched::world_for`].
pub struct Prefetched {
    /// What each address was found by ([`find_key`]).
    keys: BTreeMap<Address, String>,
    world: World,
}

impl Prefetched {
    /// The lookups, and the live state of `names`, read together.
    pub async fn read(
        aws: &Aws,
        loaded: &LoadedStack,
        templates: &Templates,
        names: Vec<Desired>,
    ) -> Result<(Lookups, Prefetched), AwsError> {
        let (lookups, world) = lookups_and_world(aws, loaded, templates, &names).await?;
        let keys = names
            .iter()
            .map(|d| (d.address.clone(), find_key(d, &names)))
            .collect();
        Ok((lookups, Prefetched { keys, world }))
    }

    /// The live state for `desired`. Found resources of addresses `desired` lacks (after
    /// `--target`) are kept as owned elsewhere when they are owned, as a read of `desired`
    /// alone would find them through their tags; an address of `desired` that was not read,
    /// or was read by another name, is read now.
    /// What the read ahead found at `address`.
    pub fn found(&self, address: &Address) -> &[Observed] {
        self.world
            .found
            .get(address)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub async fn world_for(
        &self,
        aws: &Aws,
        stack: &Stack,
        lookups: &Lookups,
        desired: &[Desired],
    ) -> Result<World, AwsError> {
        let World {
            found: read,
            mut owned_elsewhere,
            revisions,
        } = self.world.clone();
        let key_of = |address: &Address| {
            let key = self.keys.get(address)?;
            Some(crate::model::with_account(key, &lookups.account_id))
        };
        let stale: Vec<Desired> = desired
            .iter()
            .filter(|d| key_of(&d.address) != Some(find_key(d, desired)))
            .cloned()
            .collect();
        let wanted: BTreeSet<&Address> = desired.iter().map(|d| &d.address).collect();
        let mut found = BTreeMap::new();
        for (address, list) in read {
            if wanted.contains(&address) {
                found.insert(address, list);
            } else {
                owned_elsewhere.extend(
                    list.into_iter().filter(|o| {
                        o.ownership(&stack.stack, &stack.environment) == Ownership::Owned
                    }),
                );
            }
        }
        if !stale.is_empty() {
            let again = observe(aws, stack, lookups, &stale).await?;
            // Found again by its real name, a resource the read ahead met only by its tags
            // is the desired one, not one owned elsewhere.
            let ids: BTreeSet<(Kind, &str)> = (again.found.values().flatten())
                .map(|o| (o.attrs.kind(), o.id.as_str()))
                .collect();
            owned_elsewhere.retain(|o| !ids.contains(&(o.attrs.kind(), o.id.as_str())));
            found.extend(again.found);
        }
        Ok(World {
            found,
            owned_elsewhere,
            revisions,
        })
    }
}

/// Observes the live state for `desired`, with the lookups already made.
pub async fn observe(
    aws: &Aws,
    stack: &Stack,
    lookups: &Lookups,
    desired: &[Desired],
) -> Result<World, AwsError> {
    read_world(aws, stack, &LookupReads::ready(lookups), desired).await
}

/// What a resource is found by: everything [`read_world`] reads of a desired resource. Two
/// desired resources with the same address and key are found the same way.
fn find_key(d: &Desired, desired: &[Desired]) -> String {
    match &d.attrs {
        Attrs::EcsService(a) => format!("{}/{}", aws_name_of(desired, &a.cluster), a.name),
        Attrs::ServiceDiscoveryService(a) => {
            format!("{}/{}", aws_name_of(desired, &a.namespace), a.name)
        }
        Attrs::EfsMountTargets(a) => aws_name_of(desired, &a.file_system),
        Attrs::ListenerRule(a) => a.priority.to_string(),
        other => other.aws_name().to_string(),
    }
}

/// Found resources by the address they were read for.
type Found = Vec<(Address, Vec<Observed>)>;

fn one(address: &Address, o: Option<Observed>) -> (Address, Vec<Observed>) {
    (address.clone(), o.into_iter().collect())
}

/// Runs `read` for each of `items` at once.
async fn each<'b, T: 'b, F, Fut>(
    items: impl IntoIterator<Item = &'b T>,
    read: F,
) -> Result<Found, AwsError>
where
    F: Fn(&'b T) -> Fut,
    Fut: Future<Output = Result<(Address, Vec<Observed>), AwsError>>,
{
    future::try_join_all(items.into_iter().map(read)).await
}

/// Runs `find` (by AWS name) for each of `items` at once.
async fn each_by_name<'b, F, Fut>(
    items: impl IntoIterator<Item = &'b Desired>,
    find: F,
) -> Result<Found, AwsError>
where
    F: Fn(&'b str, &'b Address) -> Fut,
    Fut: Future<Output = Result<Option<Observed>, AwsError>>,
{
    each(items, |d| {
        let read = find(d.attrs.aws_name(), &d.address);
        async move { Ok(one(&d.address, read.await?)) }
    })
    .await
}

/// Reads the live state of `desired` (each read waits only for the lookups it needs), then what
/// the stack owns beyond it, then the task definition revisions its services run.
async fn read_world(
    aws: &Aws,
    stack: &Stack,
    reads: &LookupReads<'_>,
    desired: &[Desired],
) -> Result<World, AwsError> {
    let of_kind = |kind: Kind| desired.iter().filter(move |d| d.address.kind == kind);
    let named = |kind: Kind| -> Vec<(String, Address)> {
        of_kind(kind)
            .map(|d| (d.attrs.aws_name().to_string(), d.address.clone()))
            .collect()
    };

    let log_groups = async {
        let wanted = named(Kind::LogGroup);
        let found = logs::find_log_groups(aws, &wanted).await?;
        Ok::<Found, AwsError>(found.into_iter().map(|(a, o)| one(&a, o)).collect())
    };
    let roles = each_by_name(of_kind(Kind::IamRole), |name, a| {
        iam::find_role(aws, name, a)
    });
    let security_groups = async {
        let wanted = named(Kind::SecurityGroup);
        if wanted.is_empty() {
            return Ok(Found::new());
        }
        let (vpc_id, _) = reads.vpc.clone().await?;
        let found = ec2::find_security_groups_of_stack(aws, &vpc_id, &wanted).await?;
        Ok::<Found, AwsError>(found.into_iter().collect())
    };
    let clusters = each_by_name(of_kind(Kind::EcsCluster), |name, a| {
        ecs::find_cluster(aws, name, a)
    });
    let task_definitions = each(of_kind(Kind::TaskDefinition), |d| async move {
        let o = ecs::find_task_definition(
            aws,
            d.attrs.aws_name(),
            &d.address,
            &stack.stack,
            &stack.environment,
        )
        .await?;
        Ok(one(&d.address, o))
    });
    let services = async {
        let mut by_cluster: BTreeMap<String, Vec<(String, Address)>> = BTreeMap::new();
        for d in of_kind(Kind::EcsService) {
            if let Attrs::EcsService(a) = &d.attrs {
                by_cluster
                    .entry(aws_name_of(desired, &a.cluster))
                    .or_default()
                    .push((a.name.clone(), d.address.clone()));
            }
        }
        let per_cluster = future::try_join_all(
            by_cluster
                .iter()
                .map(|(cluster, wanted)| ecs::find_services(aws, cluster, wanted)),
        )
        .await?;
        Ok::<Found, AwsError>(
            per_cluster
                .into_iter()
                .flatten()
                .map(|(a, o)| one(&a, o))
                .collect(),
        )
    };
    let generated_secrets = each_by_name(of_kind(Kind::Secret), |name, a| {
        secrets::find_secret(aws, name, a)
    });
    let load_balancing = async {
        let target_groups = named(Kind::TargetGroup);
        let rules: Vec<(i32, Address)> = of_kind(Kind::ListenerRule)
            .filter_map(|d| match &d.attrs {
                Attrs::ListenerRule(a) => Some((a.priority, d.address.clone())),
                _ => None,
            })
            .collect();
        if target_groups.is_empty() && rules.is_empty() {
            return Ok(Found::new());
        }
        let https = reads.https_listener.clone();
        // Listener rules exist only in stacks with rules, whose lookups require the listener.
        let listener = async move {
            https.await?.ok_or_else(|| {
                AwsError::other("elbv2", "DescribeListeners", "no HTTPS listener looked up")
            })
        };
        let (groups, rules) =
            elbv2_targets::find_target_groups_and_rules(aws, &target_groups, listener, &rules)
                .await?;
        Ok::<Found, AwsError>(
            groups
                .into_iter()
                .map(|(a, o)| one(&a, o))
                .chain(rules)
                .collect(),
        )
    };
    let discovery = async {
        let namespaces: Vec<&Desired> = of_kind(Kind::ServiceDiscoveryNamespace).collect();
        let services: Vec<&Desired> = of_kind(Kind::ServiceDiscoveryService).collect();
        if namespaces.is_empty() && services.is_empty() {
            return Ok(Found::new());
        }
        let listed = cloudmap::private_namespaces(aws);
        let vpc = reads.vpc.clone();
        let (listed, (vpc_id, _)) = tokio::try_join!(listed, vpc)?;
        let (listed, vpc_id) = (&listed, &vpc_id);
        let (mut found, found_services) = tokio::try_join!(
            each(namespaces, |d| async move {
                let list = cloudmap::find_namespaces_in(
                    aws,
                    listed,
                    d.attrs.aws_name(),
                    vpc_id,
                    &d.address,
                )
                .await?;
                Ok((d.address.clone(), list))
            }),
            each(services, |d| async move {
                let Attrs::ServiceDiscoveryService(a) = &d.attrs else {
                    return Ok((d.address.clone(), vec![]));
                };
                // The namespace by its DNS name (the service's `namespace` is its address; the
                // lookup that gives a cluster's name from its address gives this too).
                let namespace = namespace_name_of(desired, listed, &a.namespace);
                let list = cloudmap::find_services_in(aws, listed, &namespace, &a.name, &d.address)
                    .await?;
                Ok((d.address.clone(), list))
            }),
        )?;
        found.extend(found_services);
        Ok::<Found, AwsError>(found)
    };
    let file_storage = read_file_storage(aws, desired);
    let buckets = each(of_kind(Kind::S3Bucket), |d| async move {
        // The files to compare the live ones with: as the real lookups render them when the
        // stack was named with placeholders (awaited only once the manifests are read).
        let known = async {
            let rendered = match &reads.bucket_files {
                Some(files) => files.clone().await?.remove(&d.address),
                None => None,
            };
            Ok(match (rendered, &d.attrs) {
                (Some(files), _) => files,
                (None, Attrs::S3Bucket(b)) => b.files.clone(),
                _ => Default::default(),
            })
        };
        // Named before the lookups ended (a prefetch), the name waits for the account.
        let name = crate::model::with_account(d.attrs.aws_name(), &reads.account.clone().await?);
        let o = s3::observe_bucket(aws, &name, &d.address, known).await?;
        Ok(one(&d.address, o))
    });

    // One ListWorkspaces (every page) serves every workspace of the stack.
    let workspaces = async {
        let wanted: Vec<&Desired> = of_kind(Kind::AmpWorkspace).collect();
        if wanted.is_empty() {
            return Ok::<Found, AwsError>(vec![]);
        }
        let listed = amp::list_workspaces(aws, &wanted[0].address).await?;
        Ok(wanted
            .into_iter()
            .map(|d| {
                let named = listed
                    .iter()
                    .filter(|o| o.attrs.aws_name() == d.attrs.aws_name())
                    .cloned()
                    .collect();
                (d.address.clone(), named)
            })
            .collect())
    };

    let role_path = format!("/deploy/{}/", stack.stack);
    let (lg, ro, sg, cl, td, sv, se, lb, di, fs, bu, ws, owned_arns, role_names) = tokio::try_join!(
        log_groups,
        roles,
        security_groups,
        clusters,
        task_definitions,
        services,
        generated_secrets,
        load_balancing,
        discovery,
        file_storage,
        buckets,
        workspaces,
        tagging::owned_arns(aws, &stack.stack, &stack.environment),
        iam::list_roles_under_path(aws, &role_path),
    )?;
    let mut found: BTreeMap<Address, Vec<Observed>> = desired
        .iter()
        .map(|d| (d.address.clone(), Vec::new()))
        .collect();
    for (address, list) in [lg, ro, sg, cl, td, sv, se, lb, di, fs, bu, ws]
        .into_iter()
        .flatten()
    {
        found
            .entry(address.clone())
            .or_default()
            .extend(list.into_iter().map(|mut o| {
                o.address = address.clone();
                o
            }));
    }

    let vpc_id = reads.vpc.clone().await?.0;
    let mut owned_elsewhere = read_owned_elsewhere(
        aws,
        stack,
        &vpc_id,
        desired,
        &found,
        &owned_arns,
        role_names,
    )
    .await?;
    adopt_missed(&mut found, &mut owned_elsewhere, desired);
    let revisions = read_revisions(aws, &found, &owned_elsewhere).await?;
    Ok(World {
        found,
        owned_elsewhere,
        revisions,
    })
}

/// Moves into `found` what the read by name missed but the read by tag found: an owned
/// resource carrying a desired address and that resource's name, where nothing was found for
/// the address. It is the desired resource itself, created between the two reads (the reads
/// run at once; an interrupted apply's last create may land in between). Left where it was,
/// the plan would create it again and delete it as removed from the stack.
fn adopt_missed(
    found: &mut BTreeMap<Address, Vec<Observed>>,
    owned_elsewhere: &mut Vec<Observed>,
    desired: &[Desired],
) {
    let names: BTreeMap<&Address, &str> = desired
        .iter()
        .map(|d| (&d.address, d.attrs.aws_name()))
        .collect();
    let (missed, rest): (Vec<Observed>, Vec<Observed>) =
        std::mem::take(owned_elsewhere).into_iter().partition(|o| {
            names.get(&o.address) == Some(&o.attrs.aws_name())
                && found.get(&o.address).is_some_and(Vec::is_empty)
        });
    *owned_elsewhere = rest;
    for o in missed {
        found.entry(o.address.clone()).or_default().push(o);
    }
}

/// File systems, their mount targets (one DescribeFileSystems per file system serves both)
/// and access points.
async fn read_file_storage(aws: &Aws, desired: &[Desired]) -> Result<Found, AwsError> {
    // Creation token of each file system the stack reads, and its description, read once.
    let token_of = |file_system: &str| aws_name_of(desired, file_system);
    let mut tokens: BTreeSet<String> = BTreeSet::new();
    for d in desired {
        match &d.attrs {
            Attrs::EfsFileSystem(a) => {
                tokens.insert(a.creation_token.clone());
            }
            Attrs::EfsMountTargets(a) if !token_of(&a.file_system).starts_with("fs-") => {
                tokens.insert(token_of(&a.file_system));
            }
            _ => {}
        }
    }
    let described: BTreeMap<String, Read<'_, Option<_>>> = tokens
        .into_iter()
        .map(|t| {
            let read = {
                let t = t.clone();
                shared(async move { efs::describe_by_token(aws, &t).await })
            };
            (t, read)
        })
        .collect();
    let described = &described;
    each(
        desired.iter().filter(|d| {
            matches!(
                d.address.kind,
                Kind::EfsFileSystem | Kind::EfsMountTargets | Kind::EfsAccessPoint
            )
        }),
        |d| async move {
            let at = |e: AwsError| e.at(&d.address);
            let list = match &d.attrs {
                Attrs::EfsFileSystem(a) => {
                    match described[&a.creation_token].clone().await.map_err(at)? {
                        Some(fs) => vec![efs::observe_file_system(aws, &fs, &d.address).await?],
                        None => vec![],
                    }
                }
                Attrs::EfsMountTargets(a) => {
                    // Found through their file system: its creation token, or the id as written.
                    let token = token_of(&a.file_system);
                    let o = match described.get(&token) {
                        Some(read) => match read.clone().await.map_err(at)? {
                            Some(fs) => efs::observe_mount_targets(aws, &fs, &d.address).await?,
                            None => None,
                        },
                        None => efs::find_mount_targets(aws, &token, &d.address).await?,
                    };
                    o.into_iter().collect()
                }
                Attrs::EfsAccessPoint(a) => {
                    efs::find_access_points(aws, &a.name, &d.address).await?
                }
                _ => vec![],
            };
            Ok((d.address.clone(), list))
        },
    )
    .await
}

/// What carries this stack's tags (or sits under its role path) but was not found through a
/// desired address, read by id at once; only what the stack owns is kept.
async fn read_owned_elsewhere(
    aws: &Aws,
    stack: &Stack,
    vpc_id: &str,
    desired: &[Desired],
    found: &BTreeMap<Address, Vec<Observed>>,
    owned_arns: &[String],
    role_names: Vec<String>,
) -> Result<Vec<Observed>, AwsError> {
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
    for arn in owned_arns {
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
    let read = future::try_join_all(extra.iter().map(|(kind, id)| {
        observe_by_id(aws, (&stack.stack, &stack.environment), vpc_id, *kind, id)
    }))
    .await?;
    Ok(read
        .into_iter()
        .flatten()
        .filter(|o| o.ownership(&stack.stack, &stack.environment) == Ownership::Owned)
        .collect())
}

/// Everything `stack`/`environment` owns in the account and region, found without its stack
/// file: by the ownership tags (the tagging API, the roles' IAM path) and, for the kinds the
/// tagging API may not list (listener rules, Cloud Map namespaces and services), by those
/// kinds' own list calls. Each is read by id and kept only when its tags say it is owned.
/// What a destroy without the stack file plans from.
pub async fn owned_without_stack(
    aws: &Aws,
    stack: &str,
    environment: &str,
) -> Result<World, AwsError> {
    let role_path = format!("/deploy/{stack}/");
    let listed = Address::new(Kind::AmpWorkspace, "listed");
    let (arns, roles, rules, namespaces, services, workspaces) = tokio::try_join!(
        tagging::owned_arns(aws, stack, environment),
        iam::list_roles_under_path(aws, &role_path),
        elbv2_targets::tagged_rules_everywhere(aws),
        cloudmap::private_namespaces(aws),
        cloudmap::all_service_arns(aws),
        // moto's tagging API does not list workspaces (kinds.rs): ListWorkspaces has the tags.
        amp::list_workspaces(aws, &listed),
    )?;
    // Task definitions are read per family (the latest revision; every revision is
    // deregistered with it).
    let mut wanted: BTreeSet<(Kind, String)> = arns
        .iter()
        .filter_map(|arn| tagging::classify_arn(arn))
        .filter(|(kind, _)| *kind != Kind::ListenerRule)
        .map(|(kind, id)| match kind {
            Kind::TaskDefinition => (kind, task_family(&id)),
            _ => (kind, id),
        })
        .collect();
    wanted.extend(roles.into_iter().map(|r| (Kind::IamRole, r)));
    wanted.extend(
        namespaces
            .into_iter()
            .map(|n| (Kind::ServiceDiscoveryNamespace, n.id)),
    );
    wanted.extend(
        services
            .into_iter()
            .map(|s| (Kind::ServiceDiscoveryService, s)),
    );
    // The mount targets of each file system are one resource, read through it.
    let file_systems: Vec<String> = wanted
        .iter()
        .filter(|(k, _)| *k == Kind::EfsFileSystem)
        .map(|(_, id)| id.clone())
        .collect();
    wanted.extend(
        file_systems
            .into_iter()
            .map(|fs| (Kind::EfsMountTargets, fs)),
    );
    let read = future::try_join_all(
        wanted
            .iter()
            .map(|(kind, id)| observe_by_id(aws, (stack, environment), "", *kind, id)),
    )
    .await?;
    let mut owned: Vec<Observed> = read
        .into_iter()
        .flatten()
        .chain(workspaces.into_iter().map(|mut o| {
            if let Some(a) = o.all_tags.get(TAG_ADDRESS).and_then(|a| a.parse().ok()) {
                o.address = a;
            }
            o
        }))
        .filter(|o| o.ownership(stack, environment) == Ownership::Owned)
        .collect();
    owned.extend(
        rules
            .into_iter()
            .filter(|o| o.ownership(stack, environment) == Ownership::Owned),
    );
    let revisions = read_revisions(aws, &BTreeMap::new(), &owned).await?;
    Ok(World {
        found: BTreeMap::new(),
        owned_elsewhere: owned,
        revisions,
    })
}

/// Every resource any stack owns in the account and region, with its tags, and the task
/// size and desired count of every ECS service among them: what `deploy ls` reports. Found
/// as [`owned_without_stack`] finds one environment's, across all stacks: the tagging API
/// (its answer carries the tags), the roles under `/deploy/` (GetRole each), the listener
/// rules and Cloud Map resources by their own list calls (their tags read with them);
/// services are read with their task definitions for the cost.
pub async fn everything_owned(
    aws: &Aws,
) -> Result<
    (
        Vec<(Kind, String, crate::model::Tags)>,
        Vec<(crate::model::Tags, f64, f64, i32)>,
    ),
    AwsError,
> {
    let (tagged, roles, rules, namespaces, services) = tokio::try_join!(
        tagging::all_owned(aws),
        iam::list_roles_under_path(aws, "/deploy/"),
        elbv2_targets::tagged_rules_everywhere(aws),
        cloudmap::private_namespaces(aws),
        cloudmap::all_service_arns(aws),
    )?;
    let mut out: Vec<(Kind, String, crate::model::Tags)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (arn, tags) in tagged {
        let Some((kind, id)) = tagging::classify_arn(&arn) else {
            continue;
        };
        // Revisions of one task definition family count once.
        let id = match kind {
            Kind::TaskDefinition => task_family(&id),
            _ => id,
        };
        if seen.insert((kind, id.clone())) {
            out.push((kind, id, tags));
        }
    }
    let by_id: Vec<(Kind, String)> = roles
        .into_iter()
        .map(|r| (Kind::IamRole, r))
        .chain(
            namespaces
                .into_iter()
                .map(|n| (Kind::ServiceDiscoveryNamespace, n.id)),
        )
        .chain(
            services
                .into_iter()
                .map(|s| (Kind::ServiceDiscoveryService, s)),
        )
        .filter(|k| !seen.contains(k))
        .collect();
    let read = future::try_join_all(
        by_id
            .iter()
            .map(|(kind, id)| observe_by_id(aws, ("", ""), "", *kind, id)),
    )
    .await?;
    let rules = rules.into_iter().map(Some);
    for o in read.into_iter().chain(rules).flatten() {
        if o.all_tags.contains_key(crate::model::TAG_STACK)
            && seen.insert((o.address.kind, o.id.clone()))
        {
            out.push((o.address.kind, o.id.clone(), o.all_tags.clone()));
        }
    }
    // The Fargate tasks: each service's desired count and its task definition's size.
    let service_arns: Vec<(String, crate::model::Tags)> = out
        .iter()
        .filter(|(k, _, _)| *k == Kind::EcsService)
        .map(|(_, id, tags)| (id.clone(), tags.clone()))
        .collect();
    let running = future::try_join_all(service_arns.into_iter().map(|(arn, tags)| async move {
        let Some(o) = observe_by_id(aws, ("", ""), "", Kind::EcsService, &arn).await? else {
            return Ok(None);
        };
        let Attrs::EcsService(s) = &o.attrs else {
            return Ok(None);
        };
        let Some((_, td, _)) = ecs::describe_task_definition(aws, &s.task_definition).await? else {
            return Ok(None);
        };
        let number = |v: &str| v.parse::<f64>().unwrap_or(0.0);
        Ok::<_, AwsError>(Some((
            tags,
            number(&td.cpu),
            number(&td.memory),
            s.desired_count,
        )))
    }))
    .await?;
    Ok((out, running.into_iter().flatten().collect()))
}

/// The revisions services run, to compare by content: those already read, and the others
/// read at once.
async fn read_revisions(
    aws: &Aws,
    found: &BTreeMap<Address, Vec<Observed>>,
    owned_elsewhere: &[Observed],
) -> Result<BTreeMap<String, crate::model::TaskDefinitionAttrs>, AwsError> {
    let observed = || found.values().flatten().chain(owned_elsewhere.iter());
    let tds: BTreeMap<&str, &crate::model::TaskDefinitionAttrs> = observed()
        .filter_map(|o| match &o.attrs {
            Attrs::TaskDefinition(t) => Some((o.id.as_str(), t)),
            _ => None,
        })
        .collect();
    let wanted: BTreeSet<&str> = observed()
        .filter_map(|o| match &o.attrs {
            Attrs::EcsService(s) => Some(s.task_definition.as_str()),
            _ => None,
        })
        .collect();
    let mut revisions = BTreeMap::new();
    let mut to_describe = Vec::new();
    for arn in wanted {
        match tds.get(arn) {
            Some(t) => {
                revisions.insert(arn.to_string(), (*t).clone());
            }
            None => to_describe.push(arn),
        }
    }
    let described = future::try_join_all(
        to_describe
            .into_iter()
            .map(|arn| ecs::describe_task_definition(aws, arn)),
    )
    .await?;
    for (arn, attrs, _) in described.into_iter().flatten() {
        revisions.insert(arn, attrs);
    }
    Ok(revisions)
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
    owner: (&str, &str),
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
            ecs::find_task_definition(aws, id, &placeholder, owner.0, owner.1).await?
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
        Kind::S3Bucket => {
            s3::observe_bucket(aws, id, &placeholder, future::ok(Default::default())).await?
        }
        Kind::AmpWorkspace => amp::observe_workspace(aws, id, &placeholder).await?,
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

/// The external secrets found, or — when some do not exist — one error naming every missing
/// one with the command that creates it (reads run at once: reporting only the first to
/// answer would name a different one from run to run, and make the user fix them one by one).
// AwsError is the adapters' error everywhere; boxing it for this one function buys nothing.
#[allow(clippy::result_large_err)]
fn every_missing_secret_at_once<T>(reads: Vec<Result<T, AwsError>>) -> Result<Vec<T>, AwsError> {
    let mut found = Vec::new();
    let mut missing: Vec<AwsError> = Vec::new();
    for read in reads {
        match read {
            Ok(pair) => found.push(pair),
            Err(e) if e.code_is("LookupFailed") => missing.push(e),
            Err(e) => return Err(e),
        }
    }
    match missing.len() {
        0 => Ok(found),
        1 => Err(missing.remove(0)),
        n => Err(AwsError::lookup_failed(
            "lookups",
            "ExternalSecrets",
            format!(
                "{n} secrets the stack refers to do not exist:\n  {}",
                missing
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    fn missing(what: &str) -> AwsError {
        AwsError::lookup_failed(
            "secretsmanager",
            "DescribeSecret",
            format!("{what} does not exist; create it"),
        )
    }

    #[test]
    fn every_missing_secret_is_named_at_once() {
        let found = ("secretsmanager:a".to_string(), "arn:a".to_string());
        assert_eq!(
            every_missing_secret_at_once(vec![Ok(found.clone())]).unwrap(),
            vec![found.clone()]
        );
        let one = every_missing_secret_at_once(vec![Ok(found.clone()), Err(missing("b"))]);
        assert_eq!(one.unwrap_err().message, "b does not exist; create it");
        let both = every_missing_secret_at_once(vec![
            Err(missing("b")),
            Ok(found.clone()),
            Err(missing("c")),
        ])
        .unwrap_err();
        assert!(both.code_is("LookupFailed"));
        assert_eq!(
            both.message,
            "2 secrets the stack refers to do not exist:\n  b does not exist; create it\n  c does not exist; create it"
        );
        // Any other failure is not hidden behind the missing ones.
        let mut denied = missing("d");
        denied.code = Some("AccessDeniedException".into());
        let other =
            every_missing_secret_at_once::<(String, String)>(vec![Err(missing("b")), Err(denied)]);
        assert!(other.unwrap_err().code_is("AccessDeniedException"));
    }

    use super::*;
    use crate::model::{EcsClusterAttrs, Tags};

    fn cluster(address: &str, name: &str) -> Observed {
        Observed {
            address: address.parse().unwrap(),
            id: format!("arn:aws:ecs:us-west-2:123456789012:cluster/{name}"),
            attrs: Attrs::EcsCluster(EcsClusterAttrs {
                name: name.into(),
                container_insights: "enabled".into(),
                tags: Tags::new(),
            }),
            all_tags: Tags::new(),
            handles: BTreeMap::new(),
        }
    }

    #[test]
    fn a_resource_found_only_by_tag_under_its_own_address_and_name_is_found() {
        let wanted = cluster("ecs_cluster.monitoring", "monitoring");
        let desired = vec![Desired {
            address: wanted.address.clone(),
            attrs: wanted.attrs.clone(),
            ignore: Default::default(),
            restart_loses: None,
        }];
        let mut found = BTreeMap::from([(wanted.address.clone(), vec![])]);
        // Same address, other name (renamed in the stack file): stays owned elsewhere.
        let renamed = cluster("ecs_cluster.monitoring", "old-monitoring");
        let mut elsewhere = vec![renamed.clone(), wanted.clone()];
        adopt_missed(&mut found, &mut elsewhere, &desired);
        assert_eq!(found[&wanted.address], vec![wanted.clone()]);
        assert_eq!(elsewhere, vec![renamed]);
        // Found by name already: nothing moves.
        let mut elsewhere = vec![wanted.clone()];
        adopt_missed(&mut found, &mut elsewhere, &desired);
        assert_eq!(elsewhere.len(), 1);
    }

    #[test]
    fn the_account_is_the_fifth_field_of_an_arn() {
        assert_eq!(
            account_of("arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/a/1")
                .as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_of("arn:aws:s3:::bucket"), None);
        assert_eq!(account_of("not an arn"), None);
    }
}
