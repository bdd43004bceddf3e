//! The stack sections that put Grafana behind the backend's ALB (`target_groups`,
//! `listener_rules`) and give the monitoring services stable names in the VPC
//! (`service_discovery_namespaces`, `service_discovery_services`), with the service fields that
//! use them: their schema, their semantic checks and the desired resources built from them.
//!
//! One file so these kinds stay a self-contained addition to the spec.

use super::{LoadedStack, ServiceSpec, Stack};
use crate::model::{
    Address, Attrs, Desired, DiscoveryNamespaceAttrs, DiscoveryServiceAttrs, Kind,
    ListenerRuleAttrs, Lookups, RuleConditions, ServiceLoadBalancer, Tags, TargetGroupAttrs,
    TargetHealthCheck,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The var a namespace's name defaults to: the templates (Grafana's data sources) build
/// `https://prometheus.NAMESPACE:9090` from it, so both must say the same.
pub const NAMESPACE_VAR: &str = "vars.service_discovery.namespace";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupSpec {
    /// At most 32 characters (letters, digits, '-').
    pub name: String,
    pub port: i64,
    /// `HTTPS` (default: the ALB talks TLS to the targets too) or `HTTP`.
    #[serde(default = "https")]
    pub protocol: String,
    #[serde(default)]
    pub health_check: HealthCheckTargetSpec,
    /// Seconds a deregistering target drains (ELBv2's default is 300).
    #[serde(default = "three_hundred")]
    pub deregistration_delay: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckTargetSpec {
    #[serde(default = "slash")]
    pub path: String,
    /// Defaults to the target group's protocol.
    pub protocol: Option<String>,
    #[serde(default = "ok_code")]
    pub matcher: String,
    #[serde(default = "thirty")]
    pub interval: i64,
    #[serde(default = "five")]
    pub timeout: i64,
    #[serde(default = "five")]
    pub healthy_threshold: i64,
    #[serde(default = "two")]
    pub unhealthy_threshold: i64,
}

impl Default for HealthCheckTargetSpec {
    fn default() -> Self {
        HealthCheckTargetSpec {
            path: slash(),
            protocol: None,
            matcher: ok_code(),
            interval: thirty(),
            timeout: five(),
            healthy_threshold: five(),
            unhealthy_threshold: two(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerRuleSpec {
    /// 1-50000, unique on the listener (a priority held by a rule not ours is a conflict).
    pub priority: i64,
    #[serde(default)]
    pub host_headers: Vec<String>,
    #[serde(default)]
    pub path_patterns: Vec<String>,
    /// Key of a target group of this stack.
    pub target_group: String,
    /// The priority was derived for an environment (not written): the plan may move it along
    /// the environment's sequence when a rule not ours holds it (see `crate::priorities`).
    #[serde(skip)]
    pub movable: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryNamespaceSpec {
    /// The DNS domain; defaults to `vars.service_discovery.namespace` and must equal it when
    /// both are given.
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The namespace is not this environment's: looked up by name and used, never changed
    /// (what environments other than the stack's own do with the shared namespace).
    #[serde(default)]
    pub existing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryServiceSpec {
    /// The DNS label: tasks answer at `NAME.NAMESPACE`.
    pub name: String,
    /// Key of a namespace of this stack.
    pub namespace: String,
    #[serde(default)]
    pub description: String,
    /// TTL of the A records, seconds.
    #[serde(default = "ten")]
    pub ttl: i64,
    #[serde(default = "multivalue")]
    pub routing_policy: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLoadBalancerSpec {
    /// Key of a target group of this stack.
    pub target_group: String,
    /// The container of the service's task definition that receives the traffic.
    pub container: String,
    pub port: i64,
}

fn https() -> String {
    "HTTPS".into()
}
fn slash() -> String {
    "/".into()
}
fn ok_code() -> String {
    "200".into()
}
fn multivalue() -> String {
    "MULTIVALUE".into()
}
fn three_hundred() -> i64 {
    300
}
fn thirty() -> i64 {
    30
}
fn ten() -> i64 {
    10
}
fn five() -> i64 {
    5
}
fn two() -> i64 {
    2
}

/// `vars.service_discovery.namespace`, when the stack sets it.
fn namespace_var(stack: &Stack) -> Option<String> {
    namespace_var_in(&stack.vars)
}

fn namespace_var_in(vars: &BTreeMap<String, serde_json::Value>) -> Option<String> {
    vars.get("service_discovery")?
        .get("namespace")?
        .as_str()
        .map(str::to_string)
}

/// The DNS name of namespace `ns`: its `name`, else [`NAMESPACE_VAR`].
pub fn namespace_name(stack: &Stack, ns: &DiscoveryNamespaceSpec) -> String {
    ns.name
        .clone()
        .or_else(|| namespace_var(stack))
        .unwrap_or_default()
}

/// [`namespace_name`] given the stack's `vars`.
pub fn namespace_name_in(
    vars: &BTreeMap<String, serde_json::Value>,
    ns: &DiscoveryNamespaceSpec,
) -> String {
    ns.name
        .clone()
        .or_else(|| namespace_var_in(vars))
        .unwrap_or_default()
}

/// What an `existing` namespace is known by before its lookup (`validate`, and the read of
/// the live state that starts before the lookups end).
pub fn namespace_placeholder(name: &str) -> String {
    format!("<lookup:namespace:{name}>")
}

/// The desired target groups, listener rules, namespaces and discovery services.
pub fn build(stack: &Stack, lookups: &Lookups, tags: &Tags) -> Vec<Desired> {
    let plain = |kind, name: &str, attrs| Desired {
        address: Address::new(kind, name),
        attrs,
        ignore: BTreeSet::new(),
        restart_loses: None,
    };
    let mut out = Vec::new();
    for (key, ns) in stack
        .service_discovery_namespaces
        .iter()
        .filter(|(_, ns)| !ns.existing)
    {
        out.push(plain(
            Kind::ServiceDiscoveryNamespace,
            key,
            Attrs::ServiceDiscoveryNamespace(DiscoveryNamespaceAttrs {
                name: namespace_name(stack, ns),
                description: ns.description.clone(),
                vpc_id: lookups.vpc_id.clone(),
                tags: tags.clone(),
            }),
        ));
    }
    for (key, svc) in &stack.service_discovery_services {
        out.push(plain(
            Kind::ServiceDiscoveryService,
            key,
            Attrs::ServiceDiscoveryService(DiscoveryServiceAttrs {
                name: svc.name.clone(),
                namespace: match stack.service_discovery_namespaces.get(&svc.namespace) {
                    // A namespace not this environment's is referred to by its id.
                    Some(ns) if ns.existing => {
                        let name = namespace_name(stack, ns);
                        lookups
                            .namespaces
                            .get(&name)
                            .cloned()
                            .unwrap_or_else(|| namespace_placeholder(&name))
                    }
                    _ => Address::new(Kind::ServiceDiscoveryNamespace, &svc.namespace).to_string(),
                },
                description: svc.description.clone(),
                record_type: "A".into(),
                ttl: svc.ttl,
                routing_policy: svc.routing_policy.clone(),
                // A custom health check (ECS reports task health); Cloud Map only uses 1.
                failure_threshold: 1,
                tags: tags.clone(),
            }),
        ));
    }
    for (key, tg) in &stack.target_groups {
        let h = &tg.health_check;
        out.push(plain(
            Kind::TargetGroup,
            key,
            Attrs::TargetGroup(TargetGroupAttrs {
                name: tg.name.clone(),
                protocol: tg.protocol.clone(),
                port: tg.port as i32,
                target_type: "ip".into(),
                vpc_id: lookups.vpc_id.clone(),
                health_check: TargetHealthCheck {
                    protocol: h.protocol.clone().unwrap_or_else(|| tg.protocol.clone()),
                    path: h.path.clone(),
                    matcher: h.matcher.clone(),
                    interval_seconds: h.interval as i32,
                    timeout_seconds: h.timeout as i32,
                    healthy_threshold: h.healthy_threshold as i32,
                    unhealthy_threshold: h.unhealthy_threshold as i32,
                },
                deregistration_delay_seconds: tg.deregistration_delay as i32,
                tags: tags.clone(),
            }),
        ));
    }
    let listener = lookups
        .load_balancer
        .https_listener_arn
        .clone()
        .unwrap_or_else(|| "<lookup:load_balancer.https_listener_arn>".into());
    for (key, rule) in &stack.listener_rules {
        out.push(plain(
            Kind::ListenerRule,
            key,
            Attrs::ListenerRule(ListenerRuleAttrs {
                name: ListenerRuleAttrs::name_for(rule.priority as i32),
                listener: listener.clone(),
                priority: rule.priority as i32,
                conditions: RuleConditions {
                    host_headers: rule.host_headers.iter().cloned().collect(),
                    path_patterns: rule.path_patterns.iter().cloned().collect(),
                },
                target_group: Address::new(Kind::TargetGroup, &rule.target_group).to_string(),
                tags: tags.clone(),
            }),
        ));
    }
    out
}

/// A service's target groups and registries as the model holds them (addresses).
pub fn service_links(svc: &ServiceSpec) -> (BTreeSet<ServiceLoadBalancer>, BTreeSet<String>) {
    let lbs = svc
        .load_balancers
        .iter()
        .map(|lb| ServiceLoadBalancer {
            target_group: Address::new(Kind::TargetGroup, &lb.target_group).to_string(),
            container_name: lb.container.clone(),
            container_port: lb.port as i32,
        })
        .collect();
    let registries = svc
        .service_registries
        .iter()
        .map(|r| Address::new(Kind::ServiceDiscoveryService, r).to_string())
        .collect();
    (lbs, registries)
}

/// Whether the stack declares `a` (for kinds of this file; `None` for other kinds).
pub fn defines(stack: &Stack, a: &Address) -> Option<bool> {
    Some(match a.kind {
        Kind::TargetGroup => stack.target_groups.contains_key(&a.name),
        Kind::ListenerRule => stack.listener_rules.contains_key(&a.name),
        Kind::ServiceDiscoveryNamespace => stack
            .service_discovery_namespaces
            .get(&a.name)
            .is_some_and(|ns| !ns.existing),
        Kind::ServiceDiscoveryService => stack.service_discovery_services.contains_key(&a.name),
        _ => return None,
    })
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_dns_label)
}

/// ELBv2's matcher: codes 200-499, as `200`, `200,202` or `200-299`.
fn is_matcher(s: &str) -> bool {
    s.split(',').all(|part| {
        let codes: Vec<&str> = part.split('-').collect();
        codes.len() <= 2
            && codes
                .iter()
                .all(|c| c.parse::<u16>().is_ok_and(|n| (200..=499).contains(&n)))
    })
}

/// The semantic checks of these sections and of the service fields that use them.
pub fn check(loaded: &LoadedStack, err: &mut impl FnMut(String, String)) {
    let s = &loaded.stack;
    for (key, tg) in &s.target_groups {
        let p = format!("target_groups.{key}");
        let n = &tg.name;
        if n.is_empty()
            || n.len() > 32
            || n.starts_with('-')
            || n.ends_with('-')
            || n.starts_with("internal-")
            || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            err(
                format!("{p}.name"),
                "a target group name is 1-32 letters, digits or '-' (not at either end, not starting with `internal-`)".into(),
            );
        }
        if !(1..=65535).contains(&tg.port) {
            err(format!("{p}.port"), "a port is 1-65535".into());
        }
        if !["HTTP", "HTTPS"].contains(&tg.protocol.as_str()) {
            err(format!("{p}.protocol"), "HTTP or HTTPS".into());
        }
        let h = &tg.health_check;
        let hp = format!("{p}.health_check");
        if !h.path.starts_with('/') || h.path.len() > 1024 {
            err(
                format!("{hp}.path"),
                "a path starting with '/', at most 1024 characters".into(),
            );
        }
        if let Some(proto) = &h.protocol {
            if !["HTTP", "HTTPS"].contains(&proto.as_str()) {
                err(format!("{hp}.protocol"), "HTTP or HTTPS".into());
            }
        }
        if !is_matcher(&h.matcher) {
            err(
                format!("{hp}.matcher"),
                "HTTP codes 200-499: `200`, `200,202` or `200-299`".into(),
            );
        }
        for (field, v, lo, hi) in [
            ("interval", h.interval, 5, 300),
            ("timeout", h.timeout, 2, 120),
            ("healthy_threshold", h.healthy_threshold, 2, 10),
            ("unhealthy_threshold", h.unhealthy_threshold, 2, 10),
        ] {
            if !(lo..=hi).contains(&v) {
                err(
                    format!("{hp}.{field}"),
                    format!("{v} is outside ELBv2's range {lo}-{hi}"),
                );
            }
        }
        if h.timeout >= h.interval {
            err(
                format!("{hp}.timeout"),
                "the timeout must be shorter than the interval".into(),
            );
        }
        if !(0..=3600).contains(&tg.deregistration_delay) {
            err(format!("{p}.deregistration_delay"), "0-3600 seconds".into());
        }
    }

    let mut priorities: BTreeMap<i64, &str> = BTreeMap::new();
    for (key, rule) in &s.listener_rules {
        let p = format!("listener_rules.{key}");
        if !(1..=50000).contains(&rule.priority) {
            err(format!("{p}.priority"), "a priority is 1-50000".into());
        } else if let Some(other) = priorities.insert(rule.priority, key) {
            err(
                format!("{p}.priority"),
                format!("listener_rules.{other} has the same priority"),
            );
        }
        let values = rule.host_headers.len() + rule.path_patterns.len();
        if values == 0 {
            err(
                p.clone(),
                "name at least one condition: host_headers and/or path_patterns".into(),
            );
        } else if values > 5 {
            err(
                p.clone(),
                "a rule takes at most 5 condition values in all".into(),
            );
        }
        for (i, h) in rule.host_headers.iter().enumerate() {
            let ok = !h.is_empty()
                && h.len() <= 128
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.*?_".contains(c));
            if !ok {
                err(
                    format!("{p}.host_headers.{i}"),
                    "a host name of letters, digits and -.*?_, at most 128 characters".into(),
                );
            }
        }
        for (i, path) in rule.path_patterns.iter().enumerate() {
            if path.is_empty() || path.len() > 128 {
                err(
                    format!("{p}.path_patterns.{i}"),
                    "a path pattern is 1-128 characters".into(),
                );
            }
        }
        if !s.target_groups.contains_key(&rule.target_group) {
            err(
                format!("{p}.target_group"),
                format!("no target_groups.{} in this stack", rule.target_group),
            );
        }
    }

    let var = namespace_var(s);
    for (key, ns) in &s.service_discovery_namespaces {
        let p = format!("service_discovery_namespaces.{key}");
        match (&ns.name, &var) {
            (None, None) => err(
                p.clone(),
                format!("give a `name`, or set {NAMESPACE_VAR} (the templates use it)"),
            ),
            (Some(n), Some(v)) if n != v => err(
                format!("{p}.name"),
                format!("`{n}` differs from {NAMESPACE_VAR} (`{v}`), which the templates point Grafana at"),
            ),
            _ => {}
        }
        let name = namespace_name(s, ns);
        if !name.is_empty() && !is_dns_name(&name) {
            err(
                format!("{p}.name"),
                format!("`{name}` is not a DNS name like monitoring.internal"),
            );
        }
        if ns.description.len() > 1024 {
            err(format!("{p}.description"), "at most 1024 characters".into());
        }
    }

    for (key, svc) in &s.service_discovery_services {
        let p = format!("service_discovery_services.{key}");
        if !is_dns_label(&svc.name) {
            err(
                format!("{p}.name"),
                "a DNS label: 1-63 lowercase letters, digits or '-'".into(),
            );
        }
        if !s.service_discovery_namespaces.contains_key(&svc.namespace) {
            err(
                format!("{p}.namespace"),
                format!(
                    "no service_discovery_namespaces.{} in this stack",
                    svc.namespace
                ),
            );
        }
        if !(0..=2_147_483_647).contains(&svc.ttl) {
            err(format!("{p}.ttl"), "0-2147483647 seconds".into());
        }
        if !["MULTIVALUE", "WEIGHTED"].contains(&svc.routing_policy.as_str()) {
            err(
                format!("{p}.routing_policy"),
                "MULTIVALUE or WEIGHTED".into(),
            );
        }
    }

    for (key, svc) in &s.services {
        let p = format!("services.{key}");
        let td = s.task_definitions.get(&svc.task_definition);
        for (i, lb) in svc.load_balancers.iter().enumerate() {
            let lp = format!("{p}.load_balancers.{i}");
            if !s.target_groups.contains_key(&lb.target_group) {
                err(
                    format!("{lp}.target_group"),
                    format!("no target_groups.{} in this stack", lb.target_group),
                );
            }
            if let Some(td) = td {
                match td.containers.get(&lb.container) {
                    None => err(
                        format!("{lp}.container"),
                        format!(
                            "task_definitions.{} has no container `{}`",
                            svc.task_definition, lb.container
                        ),
                    ),
                    Some(c) if !c.ports.contains(&lb.port) => err(
                        format!("{lp}.port"),
                        format!(
                            "container `{}` does not map port {} (its ports: {:?})",
                            lb.container, lb.port, c.ports
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        if let Some(g) = svc.health_check_grace_period_seconds {
            if svc.load_balancers.is_empty() {
                err(
                    format!("{p}.health_check_grace_period_seconds"),
                    "only with load_balancers".into(),
                );
            }
            if !(0..=2_147_483_647).contains(&g) {
                err(
                    format!("{p}.health_check_grace_period_seconds"),
                    "0-2147483647 seconds".into(),
                );
            }
        }
        if svc.service_registries.len() > 1 {
            err(
                format!("{p}.service_registries"),
                "ECS takes one service registry per service".into(),
            );
        }
        for (i, r) in svc.service_registries.iter().enumerate() {
            if !s.service_discovery_services.contains_key(r) {
                err(
                    format!("{p}.service_registries.{i}"),
                    format!("no service_discovery_services.{r} in this stack"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const REFERENCE: &str = include_str!("../../stacks/monitoring.yaml");

    /// The reference stack has the sections (Grafana behind the ALB, Prometheus by name).
    fn reference() -> String {
        REFERENCE.to_string()
    }

    fn errors(text: &str) -> Vec<String> {
        let loaded = super::super::parse(Path::new("s.yaml"), text).unwrap();
        match loaded.validate() {
            Ok(()) => vec![],
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{}: {}", e.path, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn the_sections_validate_and_build() {
        let text = reference();
        assert_eq!(errors(&text), Vec::<String>::new());
        let loaded = super::super::parse(Path::new("s.yaml"), &text).unwrap();
        let built = build(
            &loaded.stack,
            &Lookups::placeholders("us-west-2"),
            &Tags::new(),
        );
        let ns = built
            .iter()
            .find_map(|d| match &d.attrs {
                Attrs::ServiceDiscoveryNamespace(a) => Some(a.name.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(ns, "monitoring.internal", "the name comes from the var");
        let hc = built
            .iter()
            .find_map(|d| match &d.attrs {
                Attrs::TargetGroup(a) => Some(a.health_check.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            (hc.protocol.as_str(), hc.matcher.as_str()),
            ("HTTPS", "200")
        );
    }

    #[test]
    fn bad_values_are_located() {
        let text = reference()
            .replace("priority: 100", "priority: 50001")
            .replace(
                "  monitoring:\n    description: Stable",
                "  monitoring:\n    name: other.internal\n    description: Stable",
            )
            .replace(
                "name: monitoring-grafana",
                "name: monitoring-grafana-far-too-long-a-name",
            )
            .replace("    namespace: monitoring\n", "    namespace: nope\n");
        let e = errors(&text);
        for want in [
            "listener_rules.grafana.priority",
            "service_discovery_namespaces.monitoring.name",
            "target_groups.grafana.name",
            "service_discovery_services.prometheus.namespace",
        ] {
            assert!(e.iter().any(|m| m.starts_with(want)), "{want} in {e:?}");
        }
    }

    #[test]
    fn a_rule_needs_a_condition_and_a_service_a_known_container() {
        let text = reference()
            .replace("    host_headers: [grafana.showcase.example.com]\n", "")
            .replace(
                "    service_registries: [prometheus]\n",
                "    service_registries: [prometheus]\n    load_balancers: [{ target_group: grafana, container: grafana, port: 3000 }]\n",
            );
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|m| m.starts_with("listener_rules.grafana: name at least one condition")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("services.prometheus.load_balancers.0.container")),
            "{e:?}"
        );
        assert!(!e.iter().any(|m| m.contains("service_registries")), "{e:?}");
    }

    #[test]
    fn matchers() {
        assert!(is_matcher("200"));
        assert!(is_matcher("200-299"));
        assert!(is_matcher("200,202"));
        assert!(!is_matcher("600"));
        assert!(!is_matcher("ok"));
    }
}
