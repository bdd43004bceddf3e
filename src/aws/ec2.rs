//! EC2: the network lookups (VPC, subnets) and the security groups the stack owns.
//!
//! Security groups are read as one group plus its rules from DescribeSecurityGroupRules, which
//! gives every rule on its own with its id. Rules are normalized (protocol names, ports of
//! "all traffic", empty descriptions) so that observing right after a create yields exactly the
//! attributes passed to the create, and every rule id is kept in `Observed.handles` so that
//! updates revoke by rule id (exact on AWS, no matching on descriptions).

use super::{err, tag_list, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, Observed, Peer, Rule, SecurityGroupAttrs, Tags, TAG_ADDRESS,
};
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup,
    SecurityGroupRule, SecurityGroupRuleRequest, SecurityGroupRuleUpdate, Tag, TagSpecification,
    UserIdGroupPair,
};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

/// How long `delete_security_group` keeps retrying while AWS answers `DependencyViolation`
/// (Fargate releases a stopped task's network interface only minutes later).
pub const DELETE_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest pause between two delete attempts.
const DELETE_MAX_PAUSE: Duration = Duration::from_secs(30);

/// Attempts for calls made right after CreateSecurityGroup, which AWS may briefly answer with
/// `InvalidGroup.NotFound` (eventual consistency of a new group id).
const NEW_GROUP_ATTEMPTS: u32 = 5;

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    let mut b = Filter::builder().name(name);
    for v in values {
        b = b.values(v);
    }
    b.build()
}

fn tag_filters(tags: &Tags) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| filter(&format!("tag:{k}"), [v.as_str()]))
        .collect()
}

fn describe_tags(tags: &Tags) -> String {
    let parts: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn lookup_failed(operation: &'static str, message: String) -> AwsError {
    AwsError::lookup_failed("ec2", operation, message)
}

fn ec2_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// The one VPC carrying all of `tags`, as (id, primary IPv4 range); none or several is an
/// error naming what was found.
pub async fn lookup_vpc(aws: &Aws, tags: &Tags) -> Result<(String, String), AwsError> {
    const OP: &str = "DescribeVpcs";
    if tags.is_empty() {
        return Err(lookup_failed(
            OP,
            "a VPC lookup needs at least one tag (e.g. Name)".into(),
        ));
    }
    let pages = aws
        .ec2
        .describe_vpcs()
        .set_filters(Some(tag_filters(tags)))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("ec2", OP))?;
    let mut vpcs: Vec<(String, String)> = pages
        .iter()
        .flat_map(|p| p.vpcs())
        .filter_map(|v| {
            Some((
                v.vpc_id()?.to_string(),
                v.cidr_block().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    vpcs.sort();
    vpcs.dedup();
    let ids: Vec<&str> = vpcs.iter().map(|(id, _)| id.as_str()).collect();
    match ids.len() {
        1 => Ok(vpcs.remove(0)),
        0 => Err(lookup_failed(
            OP,
            format!(
                "no VPC in {} has the tags {}",
                aws.region,
                describe_tags(tags)
            ),
        )),
        _ => Err(lookup_failed(
            OP,
            format!(
                "{} VPCs in {} have the tags {} ({}); the lookup must name exactly one",
                ids.len(),
                aws.region,
                describe_tags(tags),
                ids.join(", ")
            ),
        )),
    }
}

/// The ids (sorted) of the subnets of `vpc_id` carrying all of `tags`; none is an error.
pub async fn lookup_subnets(aws: &Aws, vpc_id: &str, tags: &Tags) -> Result<Vec<String>, AwsError> {
    const OP: &str = "DescribeSubnets";
    let mut filters = vec![filter("vpc-id", [vpc_id])];
    filters.extend(tag_filters(tags));
    let pages = aws
        .ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("ec2", OP))?;
    let mut ids: Vec<String> = pages
        .iter()
        .flat_map(|p| p.subnets())
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Err(lookup_failed(
            OP,
            format!(
                "no subnet of VPC {vpc_id} has the tags {}",
                describe_tags(tags)
            ),
        ));
    }
    Ok(ids)
}

/// Protocol as the model writes it: lower case, `tcp`/`udp`/`icmp` for 6/17/1, `-1` for all.
pub fn normalize_protocol(protocol: &str) -> String {
    match protocol.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "all" => "-1".into(),
        other => other.to_string(),
    }
}

/// Deterministic text naming one rule in one direction: the key of its rule id in
/// `Observed.handles`. Injective: the description comes last, JSON-quoted.
pub fn rule_key(direction: &str, rule: &Rule) -> String {
    let peer = match &rule.peer {
        Peer::Cidr(c) => format!("cidr:{c}"),
        Peer::Group(g) => format!("group:{g}"),
    };
    format!(
        "{direction}:{}:{}:{}:{peer}:{}",
        rule.protocol,
        rule.from_port,
        rule.to_port,
        serde_json::to_string(&rule.description).expect("a string serializes")
    )
}

/// One AWS rule in model form, with its direction and id; `Err` says why it cannot be read.
fn rule_from_aws(r: &SecurityGroupRule) -> Result<(bool, Rule, String), String> {
    let id = r.security_group_rule_id().unwrap_or_default().to_string();
    let protocol = normalize_protocol(r.ip_protocol().unwrap_or("-1"));
    let (from_port, to_port) = if protocol == "-1" {
        (-1, -1)
    } else {
        (r.from_port().unwrap_or(-1), r.to_port().unwrap_or(-1))
    };
    let peer = if let Some(c) = r.cidr_ipv4() {
        Peer::Cidr(c.to_string())
    } else if let Some(c) = r.cidr_ipv6() {
        Peer::Cidr(c.to_string())
    } else if let Some(p) = r.prefix_list_id() {
        Peer::Cidr(p.to_string())
    } else if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
        Peer::Group(g.to_string())
    } else {
        return Err(format!(
            "rule {id} of {} has no CIDR, prefix list or group peer",
            r.group_id().unwrap_or("?")
        ));
    };
    let rule = Rule {
        protocol,
        from_port,
        to_port,
        peer,
        description: r.description().unwrap_or("").to_string(),
    };
    Ok((r.is_egress().unwrap_or(false), rule, id))
}

/// All rules of the given groups, by group id: one paginated DescribeSecurityGroupRules per
/// [`FILTER_VALUES`] groups, run concurrently.
async fn rules_of(
    aws: &Aws,
    group_ids: &[String],
) -> Result<BTreeMap<String, Vec<SecurityGroupRule>>, AwsError> {
    let pages = futures::future::try_join_all(group_ids.chunks(FILTER_VALUES).map(|chunk| {
        aws.ec2
            .describe_security_group_rules()
            .filters(filter("group-id", chunk.iter().map(String::as_str)))
            .into_paginator()
            .send()
            .try_collect()
    }))
    .await
    .map_err(err("ec2", "DescribeSecurityGroupRules"))?;
    let mut by_group: BTreeMap<String, Vec<SecurityGroupRule>> = BTreeMap::new();
    for rule in pages
        .into_iter()
        .flatten()
        .flat_map(|p| p.security_group_rules.unwrap_or_default())
    {
        if let Some(g) = rule.group_id() {
            by_group.entry(g.to_string()).or_default().push(rule);
        }
    }
    Ok(by_group)
}

/// The description DescribeSecurityGroups shows for a group-peer rule. AWS gives the same one
/// in DescribeSecurityGroupRules; moto 5.2.5 leaves it out there, so an empty description of a
/// group-peer rule is filled from here (a no-op on AWS).
fn group_pair_description(group: &SecurityGroup, is_egress: bool, rule: &Rule) -> Option<String> {
    let Peer::Group(peer) = &rule.peer else {
        return None;
    };
    let perms = if is_egress {
        group.ip_permissions_egress()
    } else {
        group.ip_permissions()
    };
    perms
        .iter()
        .filter(|p| {
            normalize_protocol(p.ip_protocol().unwrap_or("-1")) == rule.protocol
                && (rule.protocol == "-1"
                    || (p.from_port() == Some(rule.from_port) && p.to_port() == Some(rule.to_port)))
        })
        .flat_map(|p| p.user_id_group_pairs())
        .find(|pair| pair.group_id() == Some(peer.as_str()))
        .and_then(|pair| pair.description())
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

fn unreadable_rule(message: String) -> AwsError {
    AwsError::other("ec2", "DescribeSecurityGroupRules", message)
}

fn observed_group(
    group: &SecurityGroup,
    rules: &[SecurityGroupRule],
    address: &Address,
) -> Result<Observed, String> {
    let id = group.group_id().unwrap_or_default().to_string();
    let all_tags = ec2_tags(group.tags());
    let mut ingress = BTreeSet::new();
    let mut egress = BTreeSet::new();
    let mut handles = BTreeMap::new();
    for r in rules {
        let (is_egress, mut rule, rule_id) = rule_from_aws(r)?;
        if rule.description.is_empty() {
            if let Some(d) = group_pair_description(group, is_egress, &rule) {
                rule.description = d;
            }
        }
        let direction = if is_egress { "egress" } else { "ingress" };
        handles.insert(rule_key(direction, &rule), rule_id);
        if is_egress {
            egress.insert(rule);
        } else {
            ingress.insert(rule);
        }
    }
    Ok(Observed {
        address: address.clone(),
        id,
        attrs: Attrs::SecurityGroup(SecurityGroupAttrs {
            name: group.group_name().unwrap_or_default().to_string(),
            description: group.description().unwrap_or_default().to_string(),
            vpc_id: group.vpc_id().unwrap_or_default().to_string(),
            ingress,
            egress,
            tags: user_tags(&all_tags),
        }),
        all_tags,
        handles,
    })
}

async fn describe_groups(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<SecurityGroup>, AwsError> {
    let pages = aws
        .ec2
        .describe_security_groups()
        .set_filters(Some(filters))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("ec2", "DescribeSecurityGroups"))?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.security_groups.unwrap_or_default())
        .collect())
}

async fn observe_groups(
    aws: &Aws,
    groups: Vec<SecurityGroup>,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let mut by_id: BTreeMap<String, SecurityGroup> = BTreeMap::new();
    for g in groups {
        if let Some(id) = g.group_id() {
            by_id.insert(id.to_string(), g);
        }
    }
    let ids: Vec<String> = by_id.keys().cloned().collect();
    let rules = rules_of(aws, &ids).await.map_err(|e| e.at(address))?;
    let mut observed = Vec::with_capacity(by_id.len());
    for (id, g) in &by_id {
        let own = rules.get(id).map(Vec::as_slice).unwrap_or(&[]);
        observed.push(observed_group(g, own, address).map_err(|m| unreadable_rule(m).at(address))?);
    }
    Ok(observed)
}

/// The groups of `vpc_id` named `name` or tagged with `deploy:address` = `address` (a
/// replacement carries a suffixed name), sorted by group id.
pub async fn find_security_groups(
    aws: &Aws,
    vpc_id: &str,
    name: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let wanted = [(name.to_string(), address.clone())];
    let mut found = find_security_groups_of_stack(aws, vpc_id, &wanted).await?;
    Ok(found.remove(address).unwrap_or_default())
}

/// Most values one EC2 filter takes.
const FILTER_VALUES: usize = 200;

/// For each (name, address) in `wanted`, the groups of `vpc_id` named `name` or tagged with
/// `deploy:address` = `address` (a replacement carries a suffixed name), sorted by group id;
/// every address has an entry. Three calls whatever the number of groups (up to 200): two
/// DescribeSecurityGroups run concurrently (by the names, by the address tags: EC2 ANDs
/// different filters, so one call cannot ask for both) and one DescribeSecurityGroupRules for
/// every group found (none when nothing is found).
pub async fn find_security_groups_of_stack(
    aws: &Aws,
    vpc_id: &str,
    wanted: &[(String, Address)],
) -> Result<BTreeMap<Address, Vec<Observed>>, AwsError> {
    let mut out: BTreeMap<Address, Vec<Observed>> = wanted
        .iter()
        .map(|(_, a)| (a.clone(), Vec::new()))
        .collect();
    let Some((_, first)) = wanted.first() else {
        return Ok(out);
    };
    let mut queries = Vec::new();
    for chunk in wanted.chunks(FILTER_VALUES) {
        let names = chunk.iter().map(|(n, _)| n.as_str());
        let addresses = chunk.iter().map(|(_, a)| a.to_string());
        queries.push(describe_groups(
            aws,
            vec![filter("vpc-id", [vpc_id]), filter("group-name", names)],
        ));
        queries.push(describe_groups(
            aws,
            vec![
                filter("vpc-id", [vpc_id]),
                filter(&format!("tag:{TAG_ADDRESS}"), addresses),
            ],
        ));
    }
    // Errors name the first group's address: the call was made for all of them.
    let answers = futures::future::try_join_all(queries)
        .await
        .map_err(|e| e.at(first))?;
    let mut by_id: BTreeMap<String, SecurityGroup> = BTreeMap::new();
    for g in answers.into_iter().flatten() {
        if let Some(id) = g.group_id() {
            by_id.insert(id.to_string(), g);
        }
    }
    let ids: Vec<String> = by_id.keys().cloned().collect();
    let rules = rules_of(aws, &ids).await.map_err(|e| e.at(first))?;
    for (id, g) in &by_id {
        let tagged = ec2_tags(g.tags()).get(TAG_ADDRESS).cloned();
        for (name, address) in wanted {
            let mine = g.group_name() == Some(name.as_str())
                || tagged.as_deref() == Some(address.to_string().as_str());
            if !mine {
                continue;
            }
            let own = rules.get(id).map(Vec::as_slice).unwrap_or(&[]);
            let o = observed_group(g, own, address).map_err(|m| unreadable_rule(m).at(address))?;
            out.entry(address.clone()).or_default().push(o);
        }
    }
    Ok(out)
}

/// One group by id; `None` when it does not exist. Two calls (DescribeSecurityGroups with a
/// group-id filter, DescribeSecurityGroupRules), one when it is absent.
pub async fn observe_security_group(
    aws: &Aws,
    id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    // A filter rather than GroupIds: a missing group is an empty answer, not an error.
    let groups = describe_groups(aws, vec![filter("group-id", [id])])
        .await
        .map_err(|e| e.at(address))?;
    Ok(observe_groups(aws, groups, address)
        .await?
        .into_iter()
        .next())
}

/// The IpPermission that authorizes exactly `rule`.
fn ip_permission(rule: &Rule) -> IpPermission {
    let description = (!rule.description.is_empty()).then(|| rule.description.clone());
    let mut b = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        b = b.from_port(rule.from_port).to_port(rule.to_port);
    }
    match &rule.peer {
        Peer::Group(g) => b.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(g)
                .set_description(description)
                .build(),
        ),
        Peer::Cidr(c) if c.starts_with("pl-") => b.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(c)
                .set_description(description)
                .build(),
        ),
        Peer::Cidr(c) if c.contains(':') => b.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(c)
                .set_description(description)
                .build(),
        ),
        Peer::Cidr(c) => b.ip_ranges(
            IpRange::builder()
                .cidr_ip(c)
                .set_description(description)
                .build(),
        ),
    }
    .build()
}

/// The full content of `rule` as ModifySecurityGroupRules wants it.
fn rule_request(rule: &Rule) -> SecurityGroupRuleRequest {
    let b = SecurityGroupRuleRequest::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port)
        .description(&rule.description);
    match &rule.peer {
        Peer::Group(g) => b.referenced_group_id(g),
        Peer::Cidr(c) if c.starts_with("pl-") => b.prefix_list_id(c),
        Peer::Cidr(c) if c.contains(':') => b.cidr_ipv6(c),
        Peer::Cidr(c) => b.cidr_ipv4(c),
    }
    .build()
}

/// Same protocol, ports and peer: AWS holds at most one such rule per direction.
/// The rules of `wanted` that no rule of `have` allows already.
fn rules_not_in<'a>(wanted: &'a BTreeSet<Rule>, have: &[Rule]) -> Vec<&'a Rule> {
    wanted
        .iter()
        .filter(|w| !have.iter().any(|h| same_target(h, w)))
        .collect()
}

fn same_target(a: &Rule, b: &Rule) -> bool {
    a.protocol == b.protocol
        && a.from_port == b.from_port
        && a.to_port == b.to_port
        && a.peer == b.peer
}

async fn authorize(aws: &Aws, id: &str, egress: bool, rules: &[&Rule]) -> Result<(), AwsError> {
    if rules.is_empty() {
        return Ok(());
    }
    let perms: Vec<IpPermission> = rules.iter().map(|r| ip_permission(r)).collect();
    if egress {
        aws.ec2
            .authorize_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map_err(err("ec2", "AuthorizeSecurityGroupEgress"))?;
    } else {
        aws.ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map_err(err("ec2", "AuthorizeSecurityGroupIngress"))?;
    }
    Ok(())
}

async fn revoke(aws: &Aws, id: &str, egress: bool, rule_ids: Vec<String>) -> Result<(), AwsError> {
    if rule_ids.is_empty() {
        return Ok(());
    }
    if egress {
        aws.ec2
            .revoke_security_group_egress()
            .group_id(id)
            .set_security_group_rule_ids(Some(rule_ids))
            .send()
            .await
            .map_err(err("ec2", "RevokeSecurityGroupEgress"))?;
    } else {
        aws.ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_security_group_rule_ids(Some(rule_ids))
            .send()
            .await
            .map_err(err("ec2", "RevokeSecurityGroupIngress"))?;
    }
    Ok(())
}

/// Retries `call` while AWS has not yet propagated a group it has just created.
async fn on_new_group<T, F, Fut>(mut call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.code_is("InvalidGroup.NotFound") && attempt < NEW_GROUP_ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Creates the group with its tags in the same call (never an untagged group, even after a
/// crash), revokes the default allow-all egress rule unless `attrs.egress` holds exactly it,
/// then authorizes the rules. Calls: CreateSecurityGroup, DescribeSecurityGroupRules (the
/// default rule's id), RevokeSecurityGroupEgress (when the default rule is unwanted),
/// AuthorizeSecurityGroupIngress / AuthorizeSecurityGroupEgress (each only when there are
/// rules to add). Returns the group id.
pub async fn create_security_group(
    aws: &Aws,
    attrs: &SecurityGroupAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let mut create = aws
        .ec2
        .create_security_group()
        .group_name(&attrs.name)
        .description(&attrs.description)
        .vpc_id(&attrs.vpc_id);
    if !tags.is_empty() {
        create = create.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .set_tags(Some(tag_list(tags, |k, v| {
                    Tag::builder().key(k).value(v).build()
                })))
                .build(),
        );
    }
    let out = create
        .send()
        .await
        .map_err(err("ec2", "CreateSecurityGroup"))?;
    let id = out
        .group_id()
        .ok_or_else(|| AwsError::other("ec2", "CreateSecurityGroup", "no group id in answer"))?
        .to_string();

    // The egress rules AWS added on its own (allow-all; also ::/0 in some IPv6 setups).
    let existing = on_new_group(|| rules_of(aws, std::slice::from_ref(&id))).await?;
    let mut present_egress: BTreeSet<Rule> = BTreeSet::new();
    let mut unwanted = Vec::new();
    for r in existing.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
        let (is_egress, rule, rule_id) = rule_from_aws(r).map_err(unreadable_rule)?;
        if !is_egress {
            continue;
        }
        if attrs.egress.contains(&rule) {
            present_egress.insert(rule);
        } else {
            unwanted.push(rule_id);
        }
    }
    on_new_group(|| revoke(aws, &id, true, unwanted.clone())).await?;

    let ingress: Vec<&Rule> = attrs.ingress.iter().collect();
    let egress: Vec<&Rule> = attrs
        .egress
        .iter()
        .filter(|r| !present_egress.contains(*r))
        .collect();
    on_new_group(|| authorize(aws, &id, false, &ingress)).await?;
    on_new_group(|| authorize(aws, &id, true, &egress)).await?;
    Ok(id)
}

/// Moves the group's rules and user tags from `before` to `after`. Rules added first, then the
/// rules whose only change is the description rewritten in place, then the rules gone revoked
/// by rule id (from `handles`), so the group never has fewer permissions than both sides share.
/// Calls, each only when needed: AuthorizeSecurityGroupIngress, AuthorizeSecurityGroupEgress,
/// ModifySecurityGroupRules (description changes), RevokeSecurityGroupIngress,
/// RevokeSecurityGroupEgress, CreateTags, DeleteTags. Name, description and VPC cannot change
/// in place (the planner replaces the group for those).
pub async fn update_security_group(
    aws: &Aws,
    id: &str,
    before: &SecurityGroupAttrs,
    after: &SecurityGroupAttrs,
    handles: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let mut to_add: [Vec<&Rule>; 2] = [vec![], vec![]];
    let mut to_revoke: [Vec<String>; 2] = [vec![], vec![]];
    let mut rewrites: Vec<SecurityGroupRuleUpdate> = vec![];
    for (i, (direction, b, a)) in [
        ("ingress", &before.ingress, &after.ingress),
        ("egress", &before.egress, &after.egress),
    ]
    .into_iter()
    .enumerate()
    {
        let handle = |rule: &Rule| handles.get(&rule_key(direction, rule)).cloned();
        let unknown = |rule: &Rule| {
            AwsError::other(
                "ec2",
                if direction == "ingress" {
                    "RevokeSecurityGroupIngress"
                } else {
                    "RevokeSecurityGroupEgress"
                },
                format!("no rule id known for {direction} rule `{rule}` of {id}"),
            )
        };
        let gone: Vec<&Rule> = b.difference(a).collect();
        for new in a.difference(b) {
            match gone.iter().find(|old| same_target(old, new)) {
                Some(old) => rewrites.push(
                    SecurityGroupRuleUpdate::builder()
                        .security_group_rule_id(handle(old).ok_or_else(|| unknown(old))?)
                        .security_group_rule(rule_request(new))
                        .build(),
                ),
                None => to_add[i].push(new),
            }
        }
        for old in gone {
            if !a.iter().any(|new| same_target(old, new)) {
                to_revoke[i].push(handle(old).ok_or_else(|| unknown(old))?);
            }
        }
    }
    authorize(aws, id, false, &to_add[0]).await?;
    authorize(aws, id, true, &to_add[1]).await?;
    if !rewrites.is_empty() {
        aws.ec2
            .modify_security_group_rules()
            .group_id(id)
            .set_security_group_rules(Some(rewrites))
            .send()
            .await
            .map_err(err("ec2", "ModifySecurityGroupRules"))?;
    }
    let [ingress_ids, egress_ids] = to_revoke;
    revoke(aws, id, false, ingress_ids).await?;
    revoke(aws, id, true, egress_ids).await?;

    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, id, &set, &remove).await
}

/// Authorizes the rules of `attrs` (ids resolved) that the group does not have yet: the rules
/// to groups created after it, which its creation had to leave out (two groups naming each
/// other). Rules present already (a peer that happened to exist in time, a re-run) are left.
/// Calls: DescribeSecurityGroupRules, AuthorizeSecurityGroupIngress / Egress when needed.
pub async fn authorize_missing_rules(
    aws: &Aws,
    id: &str,
    attrs: &SecurityGroupAttrs,
) -> Result<(), AwsError> {
    let existing = rules_of(aws, &[id.to_string()]).await?;
    let mut present: [Vec<Rule>; 2] = [vec![], vec![]];
    for r in existing.get(id).map(Vec::as_slice).unwrap_or(&[]) {
        let (is_egress, rule, _) = rule_from_aws(r).map_err(unreadable_rule)?;
        present[usize::from(is_egress)].push(rule);
    }
    // AWS calls a rule a duplicate whatever its description (and moto leaves group-peer
    // descriptions out of DescribeSecurityGroupRules): compare what the rules allow.
    let ingress = rules_not_in(&attrs.ingress, &present[0]);
    let egress = rules_not_in(&attrs.egress, &present[1]);
    authorize(aws, id, false, &ingress).await?;
    authorize(aws, id, true, &egress).await
}

/// Deletes the group. Its own rules naming other groups are revoked first, so that two groups
/// naming each other can both go (each delete waits only for the other's revocation). While
/// AWS answers `DependencyViolation` (a network interface or another group's rule still uses
/// it) the delete is retried with growing pauses for up to [`DELETE_DEPENDENCY_TIMEOUT`]. A
/// group already gone is success. Calls: DescribeSecurityGroupRules, Revoke* when it names
/// groups, DeleteSecurityGroup.
pub async fn delete_security_group(aws: &Aws, id: &str) -> Result<(), AwsError> {
    match rules_of(aws, &[id.to_string()]).await {
        Ok(existing) => {
            let mut to_revoke: [Vec<String>; 2] = [vec![], vec![]];
            for r in existing.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                let (is_egress, rule, rule_id) = rule_from_aws(r).map_err(unreadable_rule)?;
                if matches!(&rule.peer, Peer::Group(g) if g != id) {
                    to_revoke[usize::from(is_egress)].push(rule_id);
                }
            }
            let [ingress, egress] = to_revoke;
            revoke(aws, id, false, ingress).await?;
            revoke(aws, id, true, egress).await?;
        }
        Err(e) if e.code_is("InvalidGroup.NotFound") => return Ok(()),
        Err(e) => return Err(e),
    }
    let started = Instant::now();
    let mut pause = Duration::from_secs(5);
    loop {
        let result = aws
            .ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map_err(err("ec2", "DeleteSecurityGroup"));
        match result {
            Ok(_) => return Ok(()),
            Err(e) if e.code_is("InvalidGroup.NotFound") => return Ok(()),
            Err(e) if e.code_is("DependencyViolation") => {
                let waited = started.elapsed();
                if waited >= DELETE_DEPENDENCY_TIMEOUT {
                    let mut e = e;
                    e.message = format!(
                        "{} (still in use after {}s of retries; find what uses {id} with \
                         `aws ec2 describe-network-interfaces --filters Name=group-id,Values={id}`)",
                        e.message,
                        waited.as_secs()
                    );
                    return Err(e);
                }
                tokio::time::sleep(pause.min(DELETE_DEPENDENCY_TIMEOUT - waited)).await;
                pause = (pause * 2).min(DELETE_MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sets `tags` and removes the keys in `remove` on any EC2 resource: CreateTags and
/// DeleteTags, each only when it has something to do.
pub async fn set_tags(aws: &Aws, id: &str, tags: &Tags, remove: &[String]) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(tag_list(tags, |k, v| {
                Tag::builder().key(k).value(v).build()
            })))
            .send()
            .await
            .map_err(err("ec2", "CreateTags"))?;
    }
    if !remove.is_empty() {
        aws.ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(
                remove
                    .iter()
                    .map(|k| Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(err("ec2", "DeleteTags"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, from: i32, to: i32, peer: Peer, d: &str) -> Rule {
        Rule {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            peer,
            description: d.into(),
        }
    }

    #[test]
    fn protocols_normalize() {
        assert_eq!(normalize_protocol("6"), "tcp");
        assert_eq!(normalize_protocol("17"), "udp");
        assert_eq!(normalize_protocol("1"), "icmp");
        assert_eq!(normalize_protocol("-1"), "-1");
        assert_eq!(normalize_protocol("TCP"), "tcp");
        assert_eq!(normalize_protocol("50"), "50");
    }

    #[test]
    fn rule_keys_tell_rules_apart() {
        let a = rule("tcp", 443, 443, Peer::Cidr("0.0.0.0/0".into()), "");
        let b = rule("tcp", 443, 443, Peer::Group("0.0.0.0/0".into()), "");
        let c = rule("tcp", 443, 443, Peer::Cidr("0.0.0.0/0".into()), "x");
        let keys: BTreeSet<String> = [
            rule_key("ingress", &a),
            rule_key("egress", &a),
            rule_key("ingress", &b),
            rule_key("ingress", &c),
        ]
        .into();
        assert_eq!(keys.len(), 4);
        // Without the description's quoting these two would share the text `p:q:r`.
        assert_ne!(
            rule_key("ingress", &rule("tcp", 1, 1, Peer::Cidr("p".into()), "q:r")),
            rule_key("ingress", &rule("tcp", 1, 1, Peer::Cidr("p:q".into()), "r"))
        );
    }

    #[test]
    fn a_rule_read_from_aws_has_the_key_of_the_stack_rule_it_is() {
        use aws_sdk_ec2::types::ReferencedSecurityGroup;
        // AWS reports protocols by number and a missing description as none; the key observe
        // records for the live rule must still be the one an update looks up for the stack's.
        let live = |protocol: &str, egress: bool, peer: &str| {
            let r = SecurityGroupRule::builder()
                .security_group_rule_id("sgr-1")
                .group_id("sg-1")
                .ip_protocol(protocol)
                .from_port(9090)
                .to_port(9090)
                .is_egress(egress);
            let r = if peer.starts_with("sg-") {
                r.referenced_group_info(ReferencedSecurityGroup::builder().group_id(peer).build())
            } else {
                r.cidr_ipv4(peer)
            };
            rule_from_aws(&r.build()).unwrap()
        };
        let (egress, from_aws, id) = live("6", false, "sg-0abc");
        assert!(!egress);
        assert_eq!(id, "sgr-1");
        let stack = rule("tcp", 9090, 9090, Peer::Group("sg-0abc".into()), "");
        assert_eq!(rule_key("ingress", &from_aws), rule_key("ingress", &stack));
        let (egress, from_aws, _) = live("tcp", true, "10.0.0.0/16");
        assert!(egress);
        let stack = rule("tcp", 9090, 9090, Peer::Cidr("10.0.0.0/16".into()), "");
        assert_eq!(rule_key("egress", &from_aws), rule_key("egress", &stack));
        // A different port is a different rule.
        let other = rule("tcp", 9093, 9093, Peer::Cidr("10.0.0.0/16".into()), "");
        assert_ne!(rule_key("egress", &from_aws), rule_key("egress", &other));
    }
}
