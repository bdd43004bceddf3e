//! Cloud Map (AWS service discovery): the private DNS namespace the monitoring services get
//! stable names in (`prometheus.monitoring.internal`) and the discovery services ECS registers
//! their tasks under. Grafana's data sources point at those names instead of task IPs.
//!
//! Namespaces are created and changed asynchronously: the call answers with an operation id,
//! polled with GetOperation until it succeeds or fails (bounded by [`OPERATION_TIMEOUT`]).
//! A namespace is found by name; `Observed.id` is its id (`ns-…`). A discovery service is
//! found by name inside its namespace; `Observed.id` is its ARN (what ECS's
//! `serviceRegistries` take), `handles["id"]` its id (`srv-…`).

use super::{err, found, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, DiscoveryNamespaceAttrs, DiscoveryServiceAttrs, Observed, Tags,
};
use aws_sdk_servicediscovery::types as sd;
use aws_smithy_types::error::operation::BuildError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SERVICE: &str = "servicediscovery";

/// How long an asynchronous namespace operation may take before apply gives up on it.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a delete keeps retrying `ResourceInUse` (ECS deregisters a deleted service's
/// instances, and a namespace's services go, a little after the call that removed them).
pub const IN_USE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(2);

/// A request that could not be built (a required field missing) as an [`AwsError`].
fn invalid(op: &'static str) -> impl Fn(BuildError) -> AwsError {
    move |e| AwsError::other(SERVICE, op, format!("invalid request: {e}"))
}

fn sd_tags(tags: &Tags) -> Result<Vec<sd::Tag>, BuildError> {
    tags.iter()
        .map(|(k, v)| sd::Tag::builder().key(k).value(v).build())
        .collect()
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<Tags, AwsError> {
    let out = aws
        .servicediscovery
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(err(SERVICE, "ListTagsForResource"))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// The tags of `arn` when it is known ahead (so they are read beside the resource itself),
/// `None` when it is not or the resource is gone. Calls: ListTagsForResource when known.
async fn tags_if_known(
    aws: &Aws,
    arn: Option<&str>,
    address: &Address,
) -> Result<Option<Tags>, AwsError> {
    match arn {
        Some(arn) => found(list_tags(aws, arn).await.map_err(|e| e.at(address))),
        None => Ok(None),
    }
}

/// Waits for an asynchronous operation: GetOperation every [`POLL`] (the first right away)
/// until SUCCESS (returns its targets) or FAIL (an error with Cloud Map's code and message).
async fn wait_for_operation(
    aws: &Aws,
    operation: &'static str,
    id: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    let deadline = Instant::now() + OPERATION_TIMEOUT;
    loop {
        let out = aws
            .servicediscovery
            .get_operation()
            .operation_id(id)
            .send()
            .await
            .map_err(err(SERVICE, "GetOperation"))?;
        let op = out.operation().ok_or_else(|| {
            AwsError::other(SERVICE, "GetOperation", "no operation in the answer")
        })?;
        match op.status() {
            Some(sd::OperationStatus::Success) => {
                return Ok(op
                    .targets()
                    .map(|t| {
                        t.iter()
                            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default())
            }
            Some(sd::OperationStatus::Fail) => {
                return Err(AwsError {
                    service: SERVICE,
                    operation,
                    address: None,
                    code: op.error_code().map(str::to_string),
                    message: op
                        .error_message()
                        .unwrap_or("the operation failed")
                        .to_string(),
                    request_id: None,
                })
            }
            _ if Instant::now() >= deadline => {
                return Err(AwsError::other(
                    SERVICE,
                    operation,
                    format!(
                        "operation {id} did not finish within {} s",
                        OPERATION_TIMEOUT.as_secs()
                    ),
                ))
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------------

/// A private DNS namespace as ListNamespaces lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSummary {
    pub name: String,
    pub id: String,
    pub arn: String,
}

/// Every private DNS namespace of the account: ListNamespaces filtered by type (re-applied
/// here, since not every implementation honours it), every page. One listing serves every
/// namespace and discovery service of a stack.
pub async fn private_namespaces(aws: &Aws) -> Result<Vec<NamespaceSummary>, AwsError> {
    let filter = sd::NamespaceFilter::builder()
        .name(sd::NamespaceFilterName::Type)
        .values("DNS_PRIVATE")
        .condition(sd::FilterCondition::Eq)
        .build()
        .map_err(|e| AwsError::other(SERVICE, "ListNamespaces", e.to_string()))?;
    let pages: Vec<_> = aws
        .servicediscovery
        .list_namespaces()
        .filters(filter)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err(SERVICE, "ListNamespaces"))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.namespaces())
        .filter(|n| n.r#type() == Some(&sd::NamespaceType::DnsPrivate))
        .filter_map(|n| {
            Some(NamespaceSummary {
                name: n.name()?.to_string(),
                id: n.id()?.to_string(),
                arn: n.arn()?.to_string(),
            })
        })
        .collect())
}

/// Private DNS namespaces named `name`: (id, arn). Calls: ListNamespaces.
async fn namespaces_named(aws: &Aws, name: &str) -> Result<Vec<(String, String)>, AwsError> {
    Ok(private_namespaces(aws)
        .await?
        .into_iter()
        .filter(|n| n.name == name)
        .map(|n| (n.id, n.arn))
        .collect())
}

/// The namespace with id `id`, or `None`. Calls: GetNamespace, ListTagsForResource.
///
/// `vpc_id` is what the namespace is taken to serve: Cloud Map does not say which VPC a
/// private namespace resolves in (that is on its Route 53 hosted zone), so the stack's looked-up
/// VPC is recorded and the attribute is an identity, never compared.
pub async fn observe_namespace(
    aws: &Aws,
    id: &str,
    vpc_id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    observe_namespace_with(aws, id, None, vpc_id, address).await
}

/// [`observe_namespace`]; with its ARN known (from ListNamespaces) its tags are read at the
/// same time as the namespace.
async fn observe_namespace_with(
    aws: &Aws,
    id: &str,
    arn: Option<&str>,
    vpc_id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let get = async {
        let answer = aws.servicediscovery.get_namespace().id(id).send().await;
        found(answer.map_err(|e| err(SERVICE, "GetNamespace")(e).at(address)))
    };
    let known_tags = tags_if_known(aws, arn, address);
    let (out, known_tags) = futures::try_join!(get, known_tags)?;
    let Some(ns) = out.as_ref().and_then(|o| o.namespace()) else {
        return Ok(None);
    };
    let arn = ns.arn().unwrap_or_default().to_string();
    let all_tags = match known_tags {
        Some(t) => t,
        None => list_tags(aws, &arn).await.map_err(|e| e.at(address))?,
    };
    let hosted_zone = ns
        .properties()
        .and_then(|p| p.dns_properties())
        .and_then(|d| d.hosted_zone_id())
        .unwrap_or_default()
        .to_string();
    Ok(Some(Observed {
        address: address.clone(),
        id: id.to_string(),
        attrs: Attrs::ServiceDiscoveryNamespace(DiscoveryNamespaceAttrs {
            name: ns.name().unwrap_or_default().to_string(),
            description: ns.description().unwrap_or_default().to_string(),
            vpc_id: vpc_id.to_string(),
            tags: user_tags(&all_tags),
        }),
        all_tags,
        handles: BTreeMap::from([
            ("arn".to_string(), arn),
            ("hosted_zone_id".to_string(), hosted_zone),
        ]),
    }))
}

/// Every private DNS namespace named `name` (several only if made in several VPCs). Calls:
/// ListNamespaces, then GetNamespace and ListTagsForResource for each.
pub async fn find_namespaces(
    aws: &Aws,
    name: &str,
    vpc_id: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let listed = private_namespaces(aws).await.map_err(|e| e.at(address))?;
    find_namespaces_in(aws, &listed, name, vpc_id, address).await
}

/// [`find_namespaces`] among namespaces already listed by [`private_namespaces`]: GetNamespace
/// and ListTagsForResource for each one named `name`, all at once.
pub async fn find_namespaces_in(
    aws: &Aws,
    listed: &[NamespaceSummary],
    name: &str,
    vpc_id: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let found = futures::future::try_join_all(
        listed
            .iter()
            .filter(|n| n.name == name)
            .map(|n| observe_namespace_with(aws, &n.id, Some(&n.arn), vpc_id, address)),
    )
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// CreatePrivateDnsNamespace with all tags, then waits for the operation. Returns the id.
/// The request id makes a retried create idempotent.
pub async fn create_namespace(
    aws: &Aws,
    attrs: &DiscoveryNamespaceAttrs,
    tags: &Tags,
    request_id: &str,
) -> Result<String, AwsError> {
    let op = "CreatePrivateDnsNamespace";
    let out = aws
        .servicediscovery
        .create_private_dns_namespace()
        .name(&attrs.name)
        .vpc(&attrs.vpc_id)
        .set_description((!attrs.description.is_empty()).then(|| attrs.description.clone()))
        .set_tags(Some(sd_tags(tags).map_err(invalid(op))?))
        .creator_request_id(request_id)
        .send()
        .await
        .map_err(err(SERVICE, op))?;
    let op_id = out
        .operation_id()
        .ok_or_else(|| AwsError::other(SERVICE, op, "no operation id in the answer"))?;
    let targets = wait_for_operation(aws, op, op_id).await?;
    if let Some(id) = targets.get("NAMESPACE") {
        return Ok(id.clone());
    }
    namespaces_named(aws, &attrs.name)
        .await?
        .into_iter()
        .next()
        .map(|(id, _)| id)
        .ok_or_else(|| AwsError::other(SERVICE, op, "the new namespace was not found"))
}

/// Description (UpdatePrivateDnsNamespace, waited for) and user tags.
pub async fn update_namespace(
    aws: &Aws,
    id: &str,
    arn: &str,
    before: &DiscoveryNamespaceAttrs,
    after: &DiscoveryNamespaceAttrs,
) -> Result<(), AwsError> {
    if before.description != after.description {
        let op = "UpdatePrivateDnsNamespace";
        let out = aws
            .servicediscovery
            .update_private_dns_namespace()
            .id(id)
            .namespace(
                sd::PrivateDnsNamespaceChange::builder()
                    .description(&after.description)
                    .build(),
            )
            .send()
            .await
            .map_err(err(SERVICE, op))?;
        if let Some(op_id) = out.operation_id() {
            wait_for_operation(aws, op, op_id).await?;
        }
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, arn, &set, &remove).await
}

/// DeleteNamespace, waited for; already gone is success; `ResourceInUse` (services still
/// there) is retried for up to [`IN_USE_TIMEOUT`].
pub async fn delete_namespace(aws: &Aws, id: &str) -> Result<(), AwsError> {
    let op = "DeleteNamespace";
    let deadline = Instant::now() + IN_USE_TIMEOUT;
    loop {
        match aws.servicediscovery.delete_namespace().id(id).send().await {
            Ok(out) => {
                if let Some(op_id) = out.operation_id() {
                    wait_for_operation(aws, op, op_id).await?;
                }
                return Ok(());
            }
            Err(e) => {
                let e = err(SERVICE, op)(e);
                if e.is_not_found() {
                    return Ok(());
                }
                if !e.code_is("ResourceInUse") || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery services
// ---------------------------------------------------------------------------------------------

/// `arn:…:service/srv-…` → `srv-…`.
pub fn service_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The discovery service with id `id`, or `None`. Calls: GetService, ListTagsForResource.
pub async fn observe_service(
    aws: &Aws,
    id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    observe_service_with(aws, id, None, address).await
}

/// [`observe_service`]; with its ARN known (from ListServices) its tags are read at the same
/// time as the service.
async fn observe_service_with(
    aws: &Aws,
    id: &str,
    arn: Option<&str>,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let get = async {
        let answer = aws.servicediscovery.get_service().id(id).send().await;
        found(answer.map_err(|e| err(SERVICE, "GetService")(e).at(address)))
    };
    let known_tags = tags_if_known(aws, arn, address);
    let (out, known_tags) = futures::try_join!(get, known_tags)?;
    let Some(s) = out.as_ref().and_then(|o| o.service()) else {
        return Ok(None);
    };
    let arn = s.arn().unwrap_or_default().to_string();
    let all_tags = match known_tags {
        Some(t) => t,
        None => list_tags(aws, &arn).await.map_err(|e| e.at(address))?,
    };
    let dns = s.dns_config();
    let record = dns.and_then(|d| d.dns_records().first());
    Ok(Some(Observed {
        address: address.clone(),
        id: arn,
        attrs: Attrs::ServiceDiscoveryService(DiscoveryServiceAttrs {
            name: s.name().unwrap_or_default().to_string(),
            namespace: s.namespace_id().unwrap_or_default().to_string(),
            description: s.description().unwrap_or_default().to_string(),
            record_type: record
                .map(|r| r.r#type().as_str().to_string())
                .unwrap_or_default(),
            ttl: record.map(|r| r.ttl()).unwrap_or_default(),
            routing_policy: dns
                .and_then(|d| d.routing_policy())
                .map(|p| p.as_str().to_string())
                // AWS's default when a DNS config names none.
                .unwrap_or_else(|| "MULTIVALUE".into()),
            // Cloud Map always uses 1 now (the field is deprecated and may be left out).
            #[allow(deprecated)]
            failure_threshold: s
                .health_check_custom_config()
                .and_then(|h| h.failure_threshold())
                .unwrap_or(1),
            tags: user_tags(&all_tags),
        }),
        all_tags,
        handles: BTreeMap::from([("id".to_string(), id.to_string())]),
    }))
}

/// The services named `name` in the private namespaces named `namespace` (ListNamespaces,
/// ListServices filtered by namespace id, then GetService and ListTagsForResource for each).
pub async fn find_services(
    aws: &Aws,
    namespace: &str,
    name: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let listed = private_namespaces(aws).await.map_err(|e| e.at(address))?;
    find_services_in(aws, &listed, namespace, name, address).await
}

/// [`find_services`] among namespaces already listed by [`private_namespaces`]: ListServices
/// for each namespace named `namespace`, then GetService and ListTagsForResource for each
/// service named `name`, all at once.
pub async fn find_services_in(
    aws: &Aws,
    listed: &[NamespaceSummary],
    namespace: &str,
    name: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let per_namespace = listed
        .iter()
        .filter(|n| n.name == namespace)
        .map(|ns| async move {
            let filter = sd::ServiceFilter::builder()
                .name(sd::ServiceFilterName::NamespaceId)
                .values(&ns.id)
                .condition(sd::FilterCondition::Eq)
                .build()
                .map_err(|e| AwsError::other(SERVICE, "ListServices", e.to_string()))?;
            let pages: Vec<_> = aws
                .servicediscovery
                .list_services()
                .filters(filter)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| err(SERVICE, "ListServices")(e).at(address))?;
            let services: Vec<(String, Option<String>)> = pages
                .iter()
                .flat_map(|p| p.services())
                .filter(|s| s.name() == Some(name))
                .filter_map(|s| Some((s.id()?.to_string(), s.arn().map(str::to_string))))
                .collect();
            let observed = futures::future::try_join_all(
                services
                    .iter()
                    .map(|(id, arn)| observe_service_with(aws, id, arn.as_deref(), address)),
            )
            .await?;
            // The filter is re-applied: not every implementation honours it.
            Ok::<_, AwsError>(
            observed
                .into_iter()
                .flatten()
                .filter(|o| {
                    matches!(&o.attrs, Attrs::ServiceDiscoveryService(a) if a.namespace == ns.id)
                })
                .collect::<Vec<_>>(),
        )
        });
    Ok(futures::future::try_join_all(per_namespace)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// ECS reports task health to Cloud Map through a custom health check. Its failure threshold
/// is deprecated (Cloud Map always uses 1) but still accepted; it is sent as the model says.
#[allow(deprecated)]
fn custom_health_check(failure_threshold: i32) -> sd::HealthCheckCustomConfig {
    sd::HealthCheckCustomConfig::builder()
        .failure_threshold(failure_threshold)
        .build()
}

fn dns_records(attrs: &DiscoveryServiceAttrs) -> Result<Vec<sd::DnsRecord>, BuildError> {
    Ok(vec![sd::DnsRecord::builder()
        .r#type(sd::RecordType::from(attrs.record_type.as_str()))
        .ttl(attrs.ttl)
        .build()?])
}

/// CreateService (DNS A records, routing policy, custom health check) with all tags; `attrs`
/// is raw (`namespace` is the namespace id). Returns the service ARN.
pub async fn create_service(
    aws: &Aws,
    attrs: &DiscoveryServiceAttrs,
    tags: &Tags,
    request_id: &str,
) -> Result<String, AwsError> {
    let op = "CreateService";
    let dns = sd::DnsConfig::builder()
        .routing_policy(sd::RoutingPolicy::from(attrs.routing_policy.as_str()))
        .set_dns_records(Some(dns_records(attrs).map_err(invalid(op))?))
        .build()
        .map_err(|e| AwsError::other(SERVICE, op, e.to_string()))?;
    let out = aws
        .servicediscovery
        .create_service()
        .name(&attrs.name)
        .namespace_id(&attrs.namespace)
        .set_description((!attrs.description.is_empty()).then(|| attrs.description.clone()))
        .dns_config(dns)
        .health_check_custom_config(custom_health_check(attrs.failure_threshold))
        .set_tags(Some(sd_tags(tags).map_err(invalid(op))?))
        .creator_request_id(request_id)
        .send()
        .await
        .map_err(err(SERVICE, op))?;
    out.service()
        .and_then(|s| s.arn())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other(SERVICE, op, "no service ARN in the answer"))
}

/// TTL and description in place (UpdateService always carries the DNS records: Cloud Map
/// deletes those an update leaves out), then user tags.
pub async fn update_service(
    aws: &Aws,
    arn: &str,
    before: &DiscoveryServiceAttrs,
    after: &DiscoveryServiceAttrs,
) -> Result<(), AwsError> {
    if (before.ttl, &before.description) != (after.ttl, &after.description) {
        let op = "UpdateService";
        let change = sd::ServiceChange::builder()
            .description(&after.description)
            .dns_config(
                sd::DnsConfigChange::builder()
                    .set_dns_records(Some(dns_records(after).map_err(invalid(op))?))
                    .build()
                    .map_err(|e| AwsError::other(SERVICE, op, e.to_string()))?,
            )
            .build();
        let out = aws
            .servicediscovery
            .update_service()
            .id(service_id_of(arn))
            .service(change)
            .send()
            .await
            .map_err(err(SERVICE, op))?;
        if let Some(op_id) = out.operation_id() {
            wait_for_operation(aws, op, op_id).await?;
        }
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, arn, &set, &remove).await
}

/// DeleteService; already gone is success; `ResourceInUse` (instances ECS has not
/// deregistered yet) is retried for up to [`IN_USE_TIMEOUT`].
pub async fn delete_service(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    let deadline = Instant::now() + IN_USE_TIMEOUT;
    loop {
        match aws
            .servicediscovery
            .delete_service()
            .id(service_id_of(arn))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => {
                let e = err(SERVICE, "DeleteService")(e);
                if e.is_not_found() {
                    return Ok(());
                }
                if !e.code_is("ResourceInUse") || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// TagResource / UntagResource on a namespace or service ARN, each only when needed.
pub async fn set_tags(
    aws: &Aws,
    arn: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.servicediscovery
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sd_tags(tags).map_err(invalid("TagResource"))?))
            .send()
            .await
            .map_err(err(SERVICE, "TagResource"))?;
    }
    if !remove.is_empty() {
        aws.servicediscovery
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err(SERVICE, "UntagResource"))?;
    }
    Ok(())
}
/// The ARNs of every Cloud Map service in the account and region (the tagging API does not
/// list them on every implementation): for finding what a stack owns without its stack file.
/// Calls: ListServices (paged).
pub async fn all_service_arns(aws: &Aws) -> Result<Vec<String>, AwsError> {
    let pages: Vec<_> = aws
        .servicediscovery
        .list_services()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err(SERVICE, "ListServices"))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.services())
        .filter_map(|s| s.arn().map(str::to_string))
        .collect())
}
