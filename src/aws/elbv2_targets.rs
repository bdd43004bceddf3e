//! ELBv2 resources the stack owns on the backend's existing ALB: target groups (Grafana's tasks
//! register in one) and rules on the ALB's HTTPS listener that forward to them. The ALB and its
//! listeners are looked up, never changed: only rules carrying this stack's tags are modified
//! or deleted, and a priority held by any other rule is a conflict for the planner.
//!
//! A target group is found by name; `Observed.id` is its ARN. A rule is found on its listener by
//! its priority or its `deploy:address` tag; `Observed.id` is its ARN.

use super::{err, found, gone_is_ok, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, ListenerRuleAttrs, Observed, RuleConditions, Tags, TargetGroupAttrs,
    TargetHealthCheck, TAG_ADDRESS,
};
use aws_sdk_elasticloadbalancingv2::types as elb;
use std::collections::BTreeMap;

const SERVICE: &str = "elbv2";
/// The target group attribute holding the drain time.
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// DescribeTags takes at most this many ARNs per call.
const TAGS_PER_CALL: usize = 20;

fn elb_tags(tags: &Tags) -> Vec<elb::Tag> {
    super::tag_list(tags, |k, v| elb::Tag::builder().key(k).value(v).build())
}

/// ARN → tags: DescribeTags in batches of [`TAGS_PER_CALL`], run concurrently.
async fn tags_of(aws: &Aws, arns: &[String]) -> Result<BTreeMap<String, Tags>, AwsError> {
    let answers = futures::future::try_join_all(arns.chunks(TAGS_PER_CALL).map(|chunk| {
        aws.elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
    }))
    .await
    .map_err(err(SERVICE, "DescribeTags"))?;
    let mut out = BTreeMap::new();
    for d in answers.iter().flat_map(|res| res.tag_descriptions()) {
        if let Some(arn) = d.resource_arn() {
            let tags: Tags = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect();
            out.insert(arn.to_string(), tags);
        }
    }
    Ok(out)
}

/// The HTTPS listener (port 443) of the load balancer `lb_arn`: DescribeListeners. None is an
/// error with code `LookupFailed`: listener rules need it, and deploy never creates it.
pub async fn lookup_https_listener(aws: &Aws, lb_arn: &str) -> Result<String, AwsError> {
    let listeners = super::elbv2::listeners(aws, lb_arn).await?;
    https_listener(&listeners).ok_or_else(|| no_https_listener(lb_arn))
}

/// The ARN of the port-443 listener among `listeners` (what [`super::elbv2::listeners`]
/// read), for callers that already have them.
pub fn https_listener(listeners: &[elb::Listener]) -> Option<String> {
    listeners
        .iter()
        .find(|l| l.port() == Some(443))
        .and_then(|l| l.listener_arn().map(str::to_string))
}

/// The lookup failure when the load balancer has no HTTPS listener for the rules.
pub fn no_https_listener(lb_arn: &str) -> AwsError {
    AwsError::lookup_failed(SERVICE, "DescribeListeners", format!(
            "load balancer {lb_arn} has no listener on port 443, which the stack's listener rules are added to"
        ))
}

// ---------------------------------------------------------------------------------------------
// Target groups
// ---------------------------------------------------------------------------------------------

fn target_group_attrs(tg: &elb::TargetGroup, delay: i32, all_tags: &Tags) -> TargetGroupAttrs {
    TargetGroupAttrs {
        name: tg.target_group_name().unwrap_or_default().to_string(),
        protocol: tg
            .protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        port: tg.port().unwrap_or_default(),
        target_type: tg
            .target_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        vpc_id: tg.vpc_id().unwrap_or_default().to_string(),
        health_check: TargetHealthCheck {
            protocol: tg
                .health_check_protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            path: tg.health_check_path().unwrap_or("/").to_string(),
            matcher: tg
                .matcher()
                .and_then(|m| m.http_code())
                .unwrap_or("200")
                .to_string(),
            interval_seconds: tg.health_check_interval_seconds().unwrap_or(30),
            timeout_seconds: tg.health_check_timeout_seconds().unwrap_or(5),
            healthy_threshold: tg.healthy_threshold_count().unwrap_or(5),
            unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or(2),
        },
        deregistration_delay_seconds: delay,
        tags: user_tags(all_tags),
    }
}

/// A target group with its deregistration delay, before its tags are read.
struct TargetGroupRead {
    group: elb::TargetGroup,
    delay: i32,
}

impl TargetGroupRead {
    fn arn(&self) -> String {
        self.group
            .target_group_arn()
            .unwrap_or_default()
            .to_string()
    }

    fn observed(&self, all_tags: Tags, address: &Address) -> Observed {
        Observed {
            address: address.clone(),
            id: self.arn(),
            attrs: Attrs::TargetGroup(target_group_attrs(&self.group, self.delay, &all_tags)),
            all_tags,
            handles: BTreeMap::new(),
        }
    }
}

/// The target group named or with ARN `name_or_arn` and its deregistration delay, or `None`.
/// Calls: DescribeTargetGroups, DescribeTargetGroupAttributes.
async fn read_target_group(
    aws: &Aws,
    name_or_arn: &str,
    address: &Address,
) -> Result<Option<TargetGroupRead>, AwsError> {
    let req = aws.elbv2.describe_target_groups();
    // One name a call: a name that does not exist fails the whole call.
    let req = if name_or_arn.starts_with("arn:") {
        req.target_group_arns(name_or_arn)
    } else {
        req.names(name_or_arn)
    };
    let answer = req.send().await;
    let Some(out) = found(answer.map_err(|e| err(SERVICE, "DescribeTargetGroups")(e).at(address)))?
    else {
        return Ok(None);
    };
    let Some(group) = out.target_groups().first().cloned() else {
        return Ok(None);
    };
    let arn = group.target_group_arn().unwrap_or_default().to_string();
    let attrs = aws
        .elbv2
        .describe_target_group_attributes()
        .target_group_arn(&arn)
        .send()
        .await
        .map_err(|e| err(SERVICE, "DescribeTargetGroupAttributes")(e).at(address))?;
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value()?.parse().ok())
        // ELBv2's default when the attribute is not reported.
        .unwrap_or(300);
    Ok(Some(TargetGroupRead { group, delay }))
}

/// The target group named or with ARN `name_or_arn`, or `None`. Calls: DescribeTargetGroups,
/// DescribeTargetGroupAttributes, DescribeTags.
pub async fn find_target_group(
    aws: &Aws,
    name_or_arn: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let Some(read) = read_target_group(aws, name_or_arn, address).await? else {
        return Ok(None);
    };
    let arn = read.arn();
    let all_tags = tags_of(aws, std::slice::from_ref(&arn))
        .await
        .map_err(|e| e.at(address))?
        .remove(&arn)
        .unwrap_or_default();
    Ok(Some(read.observed(all_tags, address)))
}

/// What [`find_target_groups_and_rules`] found: the target group of each address (`None`:
/// absent), and the rules that matter to each listener rule address.
pub type TargetGroupsAndRules = (
    BTreeMap<Address, Option<Observed>>,
    BTreeMap<Address, Vec<Observed>>,
);

/// Every target group of `target_groups` (name, address) as [`find_target_group`] finds it,
/// and for every rule of `rules` (priority, address) on the listener `listener` resolves to
/// what [`find_listener_rules`] finds, with the tags of all of them read together: the target
/// groups (DescribeTargetGroups and DescribeTargetGroupAttributes each, at once) and the
/// listener's rules (DescribeRules, once `listener` is known) are read concurrently, then one
/// DescribeTags per 20 ARNs. `listener` is awaited only when there are rules.
pub async fn find_target_groups_and_rules(
    aws: &Aws,
    target_groups: &[(String, Address)],
    listener: impl std::future::Future<Output = Result<String, AwsError>>,
    rules: &[(i32, Address)],
) -> Result<TargetGroupsAndRules, AwsError> {
    let groups = futures::future::try_join_all(
        target_groups
            .iter()
            .map(|(name, address)| read_target_group(aws, name, address)),
    );
    let listener_rules = async {
        let Some((_, first)) = rules.first() else {
            return Ok((String::new(), Vec::new()));
        };
        let listener = listener.await?;
        match describe_rules(aws, &listener).await {
            Ok(r) => Ok((listener, r)),
            Err(e) if e.is_not_found() => Ok((listener, Vec::new())),
            Err(e) => Err(e.at(first)),
        }
    };
    let (groups, (listener, listed)) = futures::try_join!(groups, listener_rules)?;
    let mut arns: Vec<String> = groups.iter().flatten().map(TargetGroupRead::arn).collect();
    arns.extend(
        listed
            .iter()
            .filter_map(|r| r.rule_arn().map(str::to_string)),
    );
    let first = target_groups
        .first()
        .map(|(_, a)| a)
        .or(rules.first().map(|(_, a)| a));
    let mut tags = tags_of(aws, &arns).await.map_err(|e| match first {
        Some(a) => e.at(a),
        None => e,
    })?;
    let found_groups = target_groups
        .iter()
        .zip(&groups)
        .map(|((_, address), read)| {
            let o = read.as_ref().map(|r| {
                let t = tags.get(&r.arn()).cloned().unwrap_or_default();
                r.observed(t, address)
            });
            (address.clone(), o)
        })
        .collect();
    let tagged = with_tags(listed, &mut tags);
    let found_rules = rules
        .iter()
        .map(|(priority, address)| {
            (
                address.clone(),
                rules_at(&listener, &tagged, *priority, address),
            )
        })
        .collect();
    Ok((found_groups, found_rules))
}

fn health_check_matcher(h: &TargetHealthCheck) -> elb::Matcher {
    elb::Matcher::builder().http_code(&h.matcher).build()
}

async fn set_deregistration_delay(aws: &Aws, arn: &str, seconds: i32) -> Result<(), AwsError> {
    aws.elbv2
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            elb::TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(err(SERVICE, "ModifyTargetGroupAttributes"))?;
    Ok(())
}

/// CreateTargetGroup with every health check setting and all tags, then
/// ModifyTargetGroupAttributes for the deregistration delay. Returns the ARN.
pub async fn create_target_group(
    aws: &Aws,
    a: &TargetGroupAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let op = "CreateTargetGroup";
    let h = &a.health_check;
    let out = aws
        .elbv2
        .create_target_group()
        .name(&a.name)
        .protocol(elb::ProtocolEnum::from(a.protocol.as_str()))
        .port(a.port)
        .vpc_id(&a.vpc_id)
        .target_type(elb::TargetTypeEnum::from(a.target_type.as_str()))
        .health_check_enabled(true)
        .health_check_protocol(elb::ProtocolEnum::from(h.protocol.as_str()))
        .health_check_port("traffic-port")
        .health_check_path(&h.path)
        .health_check_interval_seconds(h.interval_seconds)
        .health_check_timeout_seconds(h.timeout_seconds)
        .healthy_threshold_count(h.healthy_threshold)
        .unhealthy_threshold_count(h.unhealthy_threshold)
        .matcher(health_check_matcher(h))
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(err(SERVICE, op))?;
    let arn = out
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .ok_or_else(|| AwsError::other(SERVICE, op, "no target group ARN in the answer"))?
        .to_string();
    set_deregistration_delay(aws, &arn, a.deregistration_delay_seconds).await?;
    Ok(arn)
}

/// Health check (ModifyTargetGroup), deregistration delay (ModifyTargetGroupAttributes) and
/// user tags, each only when changed. Protocol, port, target type and VPC cannot change in
/// place: that is an error (the planner replaces instead).
pub async fn update_target_group(
    aws: &Aws,
    arn: &str,
    before: &TargetGroupAttrs,
    after: &TargetGroupAttrs,
) -> Result<(), AwsError> {
    let fixed = |t: &TargetGroupAttrs| {
        (
            t.protocol.clone(),
            t.port,
            t.target_type.clone(),
            t.vpc_id.clone(),
        )
    };
    if fixed(before) != fixed(after) {
        return Err(AwsError::other(
            SERVICE,
            "ModifyTargetGroup",
            format!("protocol, port, target type and VPC of target group {} cannot change in place; it must be replaced", before.name),
        ));
    }
    if before.health_check != after.health_check {
        let h = &after.health_check;
        aws.elbv2
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_enabled(true)
            .health_check_protocol(elb::ProtocolEnum::from(h.protocol.as_str()))
            .health_check_port("traffic-port")
            .health_check_path(&h.path)
            .health_check_interval_seconds(h.interval_seconds)
            .health_check_timeout_seconds(h.timeout_seconds)
            .healthy_threshold_count(h.healthy_threshold)
            .unhealthy_threshold_count(h.unhealthy_threshold)
            .matcher(health_check_matcher(h))
            .send()
            .await
            .map_err(err(SERVICE, "ModifyTargetGroup"))?;
    }
    if before.deregistration_delay_seconds != after.deregistration_delay_seconds {
        set_deregistration_delay(aws, arn, after.deregistration_delay_seconds).await?;
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, arn, &set, &remove).await
}

/// DeleteTargetGroup; already gone is success.
pub async fn delete_target_group(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    gone_is_ok(
        aws.elbv2
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteTargetGroup")),
    )
}

// ---------------------------------------------------------------------------------------------
// Listener rules
// ---------------------------------------------------------------------------------------------

/// Normalizes a described rule: conditions from the typed configs (or the legacy `Values`),
/// the forward target from `TargetGroupArn` or a single-group `ForwardConfig`.
fn rule_attrs(listener: &str, r: &elb::Rule, all_tags: &Tags) -> ListenerRuleAttrs {
    let mut conditions = RuleConditions::default();
    for c in r.conditions() {
        match c.field() {
            Some("host-header") => {
                let typed = c
                    .host_header_config()
                    .map(|h| h.values())
                    .unwrap_or_default();
                let values = if typed.is_empty() { c.values() } else { typed };
                conditions.host_headers.extend(values.iter().cloned());
            }
            Some("path-pattern") => {
                let typed = c
                    .path_pattern_config()
                    .map(|p| p.values())
                    .unwrap_or_default();
                let values = if typed.is_empty() { c.values() } else { typed };
                conditions.path_patterns.extend(values.iter().cloned());
            }
            _ => {}
        }
    }
    let target_group = r
        .actions()
        .iter()
        .find(|a| a.r#type() == Some(&elb::ActionTypeEnum::Forward))
        .and_then(|a| {
            a.target_group_arn().map(str::to_string).or_else(|| {
                match a.forward_config().map(|f| f.target_groups()) {
                    Some([one]) => one.target_group_arn().map(str::to_string),
                    _ => None,
                }
            })
        })
        .unwrap_or_default();
    let priority: i32 = r.priority().and_then(|p| p.parse().ok()).unwrap_or(0);
    ListenerRuleAttrs {
        name: ListenerRuleAttrs::name_for(priority),
        listener: listener.to_string(),
        priority,
        conditions,
        target_group,
        tags: user_tags(all_tags),
    }
}

/// Every non-default rule of `listener`. Calls: DescribeRules (pages).
async fn describe_rules(aws: &Aws, listener: &str) -> Result<Vec<elb::Rule>, AwsError> {
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .elbv2
            .describe_rules()
            .listener_arn(listener)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(err(SERVICE, "DescribeRules"))?;
        rules.extend(
            out.rules()
                .iter()
                .filter(|r| r.is_default() != Some(true) && r.priority() != Some("default"))
                .cloned(),
        );
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(rules),
        }
    }
}

/// Every non-default rule of `listener` with its tags. Calls: DescribeRules (pages),
/// DescribeTags (20 rules a call).
async fn listener_rules(aws: &Aws, listener: &str) -> Result<Vec<(elb::Rule, Tags)>, AwsError> {
    let rules = describe_rules(aws, listener).await?;
    let arns: Vec<String> = rules
        .iter()
        .filter_map(|r| r.rule_arn().map(str::to_string))
        .collect();
    let mut tags = tags_of(aws, &arns).await?;
    Ok(with_tags(rules, &mut tags))
}

/// The priority and tags of every non-default rule of `listener`. Calls: DescribeRules
/// (pages), DescribeTags (one per 20 rules).
pub async fn rule_priorities(aws: &Aws, listener: &str) -> Result<Vec<(i64, Tags)>, AwsError> {
    Ok(listener_rules(aws, listener)
        .await?
        .into_iter()
        .filter_map(|(r, tags)| Some((r.priority()?.parse().ok()?, tags)))
        .collect())
}

/// Each rule with its tags, taken from `tags` (by rule ARN).
fn with_tags(rules: Vec<elb::Rule>, tags: &mut BTreeMap<String, Tags>) -> Vec<(elb::Rule, Tags)> {
    rules
        .into_iter()
        .map(|r| {
            let t = r
                .rule_arn()
                .and_then(|a| tags.remove(a))
                .unwrap_or_default();
            (r, t)
        })
        .collect()
}

fn observed_rule(listener: &str, r: &elb::Rule, all_tags: Tags, address: &Address) -> Observed {
    Observed {
        address: address.clone(),
        id: r.rule_arn().unwrap_or_default().to_string(),
        attrs: Attrs::ListenerRule(rule_attrs(listener, r, &all_tags)),
        all_tags,
        handles: BTreeMap::new(),
    }
}

/// The rules of `listener` that matter to the rule at `address`: the one holding `priority`
/// (ours or not: someone else's is a conflict) and any carrying `address` as its
/// `deploy:address` tag (ours after a priority change, or another stack's). A listener that
/// is gone has no rules.
pub async fn find_listener_rules(
    aws: &Aws,
    listener: &str,
    priority: i32,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let rules = match listener_rules(aws, listener).await {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Ok(vec![]),
        Err(e) => return Err(e.at(address)),
    };
    Ok(rules_at(listener, &rules, priority, address))
}

/// Of a listener's rules, those that matter to the rule at `address`: the one holding
/// `priority` and any carrying `address` as its `deploy:address` tag.
fn rules_at(
    listener: &str,
    rules: &[(elb::Rule, Tags)],
    priority: i32,
    address: &Address,
) -> Vec<Observed> {
    let wanted = priority.to_string();
    let me = address.to_string();
    rules
        .iter()
        .filter(|(r, tags)| {
            r.priority() == Some(wanted.as_str())
                || tags.get(TAG_ADDRESS).map(String::as_str) == Some(me.as_str())
        })
        .map(|(r, tags)| observed_rule(listener, r, tags.clone(), address))
        .collect()
}

/// The listener ARN a rule ARN belongs to:
/// `…:listener-rule/app/LB/LBID/LISTENERID/RULEID` → `…:listener/app/LB/LBID/LISTENERID`.
pub fn listener_of_rule(rule_arn: &str) -> Option<String> {
    let (head, _rule_id) = rule_arn.rsplit_once('/')?;
    Some(head.replacen(":listener-rule/", ":listener/", 1))
}

/// The rule with ARN `arn`, or `None`. Calls: DescribeRules, DescribeTags.
pub async fn observe_listener_rule(
    aws: &Aws,
    arn: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let answer = aws.elbv2.describe_rules().rule_arns(arn).send().await;
    let Some(out) = found(answer.map_err(|e| err(SERVICE, "DescribeRules")(e).at(address)))? else {
        return Ok(None);
    };
    let Some(rule) = out.rules().first() else {
        return Ok(None);
    };
    let listener = listener_of_rule(arn).unwrap_or_default();
    let tags = tags_of(aws, &[arn.to_string()])
        .await
        .map_err(|e| e.at(address))?
        .remove(arn)
        .unwrap_or_default();
    Ok(Some(observed_rule(&listener, rule, tags, address)))
}

fn rule_conditions(c: &RuleConditions) -> Vec<elb::RuleCondition> {
    let mut out = Vec::new();
    if !c.host_headers.is_empty() {
        out.push(
            elb::RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    elb::HostHeaderConditionConfig::builder()
                        .set_values(Some(c.host_headers.iter().cloned().collect()))
                        .build(),
                )
                .build(),
        );
    }
    if !c.path_patterns.is_empty() {
        out.push(
            elb::RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(
                    elb::PathPatternConditionConfig::builder()
                        .set_values(Some(c.path_patterns.iter().cloned().collect()))
                        .build(),
                )
                .build(),
        );
    }
    out
}

fn forward(target_group_arn: &str) -> elb::Action {
    elb::Action::builder()
        .r#type(elb::ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

/// CreateRule on the listener with its conditions, a forward to the target group (raw ARN)
/// and all tags. A priority taken meanwhile fails with `PriorityInUse` (never overwritten).
/// Returns the rule ARN.
pub async fn create_listener_rule(
    aws: &Aws,
    a: &ListenerRuleAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let op = "CreateRule";
    let out = aws
        .elbv2
        .create_rule()
        .listener_arn(&a.listener)
        .priority(a.priority)
        .set_conditions(Some(rule_conditions(&a.conditions)))
        .actions(forward(&a.target_group))
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(err(SERVICE, op))?;
    out.rules()
        .first()
        .and_then(|r| r.rule_arn())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other(SERVICE, op, "no rule ARN in the answer"))
}

/// Priority (SetRulePriorities), conditions and target (ModifyRule) and user tags, each only
/// when changed. The listener cannot change in place (the planner replaces instead).
pub async fn update_listener_rule(
    aws: &Aws,
    arn: &str,
    before: &ListenerRuleAttrs,
    after: &ListenerRuleAttrs,
) -> Result<(), AwsError> {
    if before.listener != after.listener {
        return Err(AwsError::other(
            SERVICE,
            "ModifyRule",
            "a rule cannot move to another listener in place; it must be replaced",
        ));
    }
    if before.priority != after.priority {
        aws.elbv2
            .set_rule_priorities()
            .rule_priorities(
                elb::RulePriorityPair::builder()
                    .rule_arn(arn)
                    .priority(after.priority)
                    .build(),
            )
            .send()
            .await
            .map_err(err(SERVICE, "SetRulePriorities"))?;
    }
    if (&before.conditions, &before.target_group) != (&after.conditions, &after.target_group) {
        aws.elbv2
            .modify_rule()
            .rule_arn(arn)
            .set_conditions(Some(rule_conditions(&after.conditions)))
            .actions(forward(&after.target_group))
            .send()
            .await
            .map_err(err(SERVICE, "ModifyRule"))?;
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, arn, &set, &remove).await
}

/// DeleteRule (this rule only; the listener and its other rules stay); already gone is
/// success.
pub async fn delete_listener_rule(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    gone_is_ok(
        aws.elbv2
            .delete_rule()
            .rule_arn(arn)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteRule")),
    )
}

/// AddTags / RemoveTags on a target group or rule ARN, each only when needed.
pub async fn set_tags(
    aws: &Aws,
    arn: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.elbv2
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(err(SERVICE, "AddTags"))?;
    }
    if !remove.is_empty() {
        aws.elbv2
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err(SERVICE, "RemoveTags"))?;
    }
    Ok(())
}

/// Every listener rule in the account and region that carries a deploy address tag, whichever
/// its stack (the tagging API does not list rules on every implementation): for finding what
/// stacks own without their stack files. Calls: DescribeLoadBalancers (paged), then per load
/// balancer DescribeListeners, per listener DescribeRules and DescribeTags.
pub async fn tagged_rules_everywhere(aws: &Aws) -> Result<Vec<Observed>, AwsError> {
    let pages: Vec<_> = aws
        .elbv2
        .describe_load_balancers()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("elbv2", "DescribeLoadBalancers"))?;
    let lbs: Vec<String> = pages
        .iter()
        .flat_map(|p| p.load_balancers())
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .collect();
    let listeners =
        futures::future::try_join_all(lbs.iter().map(|lb| super::elbv2::listeners(aws, lb)))
            .await?;
    let listener_arns: Vec<String> = listeners
        .iter()
        .flatten()
        .filter_map(|l| l.listener_arn().map(str::to_string))
        .collect();
    let rules = futures::future::try_join_all(
        listener_arns
            .iter()
            .map(|l| async move { Ok::<_, AwsError>((l, listener_rules(aws, l).await?)) }),
    )
    .await?;
    Ok(rules
        .into_iter()
        .flat_map(|(listener, rules)| {
            rules.into_iter().filter_map(move |(r, tags)| {
                let address = tags
                    .get(TAG_ADDRESS)
                    .and_then(|a| a.parse::<Address>().ok())
                    .filter(|a| a.kind == crate::model::Kind::ListenerRule)?;
                Some(observed_rule(listener, &r, tags.clone(), &address))
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_arn_names_its_listener() {
        assert_eq!(
            listener_of_rule("arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee").as_deref(),
            Some("arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/alb/50dc6c495c0c9188/f2f7dc8efc522ab2")
        );
    }
}
