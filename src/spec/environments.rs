//! Environments: one stack file, many copies side by side in one account and region.
//!
//! `--env NAME` (else the stack's own `environment`) selects the environment; [`select`]
//! resolves the loaded stack for it before anything else reads it, so every later step (checks,
//! build, observe, policy) sees plain names and never needs to know about environments.
//!
//! The naming rule: the stack's own environment (its `environment:`, the *home* environment)
//! keeps every name as written, so an existing deployment is never renamed. Any other
//! environment E gets E in every name the stack gives: `NAME-E` for resource names, E as a
//! path segment for secret names, `LABEL-E` in the first label of a DNS name (one wildcard
//! certificate covers every environment's Grafana). A name longer than its AWS limit is cut
//! and ends with six hex characters of a hash of the whole name, so it stays unique. DNS names
//! the stack defines (listener rule hosts, Cloud Map `SERVICE.NAMESPACE` names) are rewritten
//! wherever they are written whole: in `vars`, container environments and arguments, and the
//! names of generated certificates. The Cloud Map namespace is shared: the home environment
//! owns it, the others register their own services in it.
//!
//! Pure: no AWS call, no SDK type.

use super::{LoadedStack, SpecErrors, Stack};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What an entry of `environments:` (a name, or a pattern with `*`) gives the environments it
/// matches; anything left out comes from the rest of the stack.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    pub protected: Option<bool>,
    pub disposable: Option<bool>,
    /// `72h`, `30m`, `7d`: how long after each apply the environment expires.
    pub ttl: Option<String>,
    /// Merged over the stack's `vars` (mappings key by key, anything else replaced).
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Service key → desired count.
    #[serde(default)]
    pub desired_counts: BTreeMap<String, i64>,
    /// Log group key → retention in days.
    #[serde(default)]
    pub retention_days: BTreeMap<String, i32>,
    /// Listener rule key → its host headers (instead of the derived ones). The hosts written
    /// elsewhere in the stack (GF_SERVER_ROOT_URL, certificate names) follow.
    #[serde(default)]
    pub hosts: BTreeMap<String, Vec<String>>,
}

/// Characters of the hash that ends a shortened name.
pub const HASH_LEN: usize = 6;
/// ELBv2 target group names.
pub const TARGET_GROUP_LIMIT: usize = 32;
/// IAM role names are 64; deploy appends `-REGION` (at most 15 characters today).
pub const ROLE_BASE_LIMIT: usize = 64 - 16;
/// EFS creation tokens (and the access point names built like them).
pub const EFS_TOKEN_LIMIT: usize = 64;
/// One DNS label.
pub const DNS_LABEL_LIMIT: usize = 63;
/// ECS cluster, service and task family names.
pub const ECS_NAME_LIMIT: usize = 255;
/// EC2 security group names.
pub const SECURITY_GROUP_LIMIT: usize = 255;
/// CloudWatch Logs group names and Secrets Manager names.
pub const LOG_GROUP_LIMIT: usize = 512;
pub const SECRET_NAME_LIMIT: usize = 512;
/// Listener rule priorities of other environments: the home priority plus this many per slot.
pub const PRIORITY_STRIDE: i64 = 10;
/// ELBv2 listener rule priorities are 1-50000.
pub const MAX_PRIORITY: i64 = 50000;

/// An environment name: 1-63 lowercase letters, digits or '-', not at either end (it ends up
/// in DNS labels and tag values).
pub fn is_environment_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DNS_LABEL_LIMIT
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..HASH_LEN]
        .to_string()
}

/// `name`, or when longer than `limit`: its first characters and a hash of all of it.
pub fn fit(name: &str, limit: usize) -> String {
    if name.len() <= limit {
        return name.to_string();
    }
    let mut keep = limit - HASH_LEN - 1;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    let head = name[..keep].trim_end_matches(['-', '.', '/']);
    format!("{head}-{}", short_hash(name))
}

/// `base-env` within `limit`.
pub fn suffixed(base: &str, env: &str, limit: usize) -> String {
    fit(&format!("{base}-{env}"), limit)
}

/// A secret name with the environment as a path segment: after the first segment
/// (`monitoring/pr-1/grafana/admin`), or in front of a name without one (`pr-1/admin`). The
/// name never ends in the environment: Secrets Manager appends `-` and six characters to
/// ARNs, and a name ending like that confuses lookups by partial ARN.
pub fn secret_name(base: &str, env: &str) -> String {
    let name = match base.split_once('/') {
        Some((first, rest)) => format!("{first}/{env}/{rest}"),
        None => format!("{env}/{base}"),
    };
    fit(&name, SECRET_NAME_LIMIT)
}

/// A DNS name with the environment in its first label: `grafana-pr-1.example.com`.
pub fn host_name(host: &str, env: &str) -> String {
    match host.split_once('.') {
        Some((first, rest)) => format!("{}.{rest}", suffixed(first, env, DNS_LABEL_LIMIT)),
        None => suffixed(host, env, DNS_LABEL_LIMIT),
    }
}

/// The listener rule priority of `env` for a rule the home environment has at `home`: one
/// slot per environment, picked by a hash of its name, within 1-50000.
pub fn rule_priority(home: i64, env: &str) -> i64 {
    // Every priority congruent to `home` modulo the stride, but `home` itself.
    let slots = (MAX_PRIORITY / PRIORITY_STRIDE - 1) as u64;
    let digest = Sha256::digest(env.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (home - 1 + PRIORITY_STRIDE * (1 + (n % slots) as i64)) % MAX_PRIORITY + 1
}

/// The priority after `p` in an environment's sequence: the next one congruent modulo the
/// stride, wrapping within 1-50000.
pub fn next_priority(p: i64) -> i64 {
    (p - 1 + PRIORITY_STRIDE) % MAX_PRIORITY + 1
}

/// The first priority from `derived` on (by [`next_priority`]) that `held` does not hold by a
/// rule not this one (`held`: priority → whether it is this rule's). `None` when every one is
/// held.
pub fn allocate_priority(derived: i64, held: &BTreeMap<i64, bool>) -> Option<i64> {
    let mut p = derived;
    for _ in 0..MAX_PRIORITY / PRIORITY_STRIDE {
        if held.get(&p).is_none_or(|ours| *ours) {
            return Some(p);
        }
        p = next_priority(p);
    }
    None
}

/// Whether `name` matches `pattern` (`*` stands for any characters).
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    if !name.ends_with(last) {
        return false;
    }
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The key of `environments:` that applies to `env`: its own name, else the matching pattern
/// with the most characters besides `*`. Two equally specific patterns are an error.
pub fn entry_for<'a>(stack: &'a Stack, env: &str) -> Result<Option<&'a str>, String> {
    if let Some((k, _)) = stack.environments.get_key_value(env) {
        return Ok(Some(k));
    }
    let mut best: Option<(&str, usize)> = None;
    let mut tie: Option<&str> = None;
    for k in stack.environments.keys().filter(|k| k.contains('*')) {
        if !matches(k, env) {
            continue;
        }
        let weight = k.chars().filter(|&c| c != '*').count();
        match best {
            Some((_, w)) if w > weight => {}
            Some((_, w)) if w == weight => tie = Some(k),
            _ => {
                best = Some((k, weight));
                tie = None;
            }
        }
    }
    if let (Some((b, _)), Some(t)) = (best, tie) {
        return Err(format!(
            "environment `{env}` matches both `{b}` and `{t}`, equally specific: make one of them more specific"
        ));
    }
    Ok(best.map(|(k, _)| k))
}

/// Resolves `loaded` for environment `env` (else the stack's own): the entry of
/// `environments:` that matches it is applied, and for any environment but the stack's own,
/// every name is derived by the naming rule (see the module comment).
pub fn select(loaded: &mut LoadedStack, env: Option<&str>) -> Result<(), SpecErrors> {
    let home = loaded.stack.environment.clone();
    let target = env.unwrap_or(&home).to_string();
    if !is_environment_name(&target) {
        // Located at the stack's `environment`, the name --env stands in for.
        return Err(SpecErrors(vec![loaded.error_at(
            "environment",
            format!(
                "--env `{target}` is not an environment name: 1-63 lowercase letters, digits or '-', not at either end"
            ),
        )]));
    }
    let entry = entry_for(&loaded.stack, &target)
        .map_err(|m| SpecErrors(vec![loaded.error_at("environments", m)]))?;
    let spec = entry
        .and_then(|k| loaded.stack.environments.get(k))
        .cloned()
        .unwrap_or_default();
    let entry_path = entry.map(|k| format!("environments.{k}"));
    if let Err((field, m)) = apply_overrides(&mut loaded.stack, &spec) {
        let path = format!("{}.{field}", entry_path.unwrap_or_default());
        return Err(SpecErrors(vec![loaded.error_at(&path, m)]));
    }
    if target != home {
        rename(&mut loaded.stack, &target, &spec);
    }
    loaded
        .stack
        .imports
        .retain(|i| i.environment.as_deref().unwrap_or(&home) == target);
    loaded.stack.environment = target;
    Ok(())
}

fn apply_overrides(s: &mut Stack, e: &EnvironmentSpec) -> Result<(), (String, String)> {
    if let Some(p) = e.protected {
        s.protected = p;
    }
    if let Some(d) = e.disposable {
        s.disposable = d;
    }
    if e.ttl.is_some() {
        s.ttl = e.ttl.clone();
    }
    for (k, v) in &e.vars {
        merge(s.vars.entry(k.clone()).or_insert(Value::Null), v);
    }
    for (k, n) in &e.desired_counts {
        let svc = s.services.get_mut(k).ok_or_else(|| {
            (
                format!("desired_counts.{k}"),
                format!("no services.{k} in this stack"),
            )
        })?;
        svc.desired_count = *n;
    }
    for (k, days) in &e.retention_days {
        let g = s.log_groups.get_mut(k).ok_or_else(|| {
            (
                format!("retention_days.{k}"),
                format!("no log_groups.{k} in this stack"),
            )
        })?;
        g.retention_days = Some(*days);
    }
    for k in e.hosts.keys() {
        if !s.listener_rules.contains_key(k) {
            return Err((
                format!("hosts.{k}"),
                format!("no listener_rules.{k} in this stack"),
            ));
        }
    }
    Ok(())
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// Every name of `s` for environment `env` (not the stack's own).
fn rename(s: &mut Stack, env: &str, e: &EnvironmentSpec) {
    // DNS names first, from the names as written: what free text says is rewritten to them.
    let mut hosts: Vec<(String, String)> = Vec::new();
    for (key, rule) in &mut s.listener_rules {
        let new: Vec<String> = match e.hosts.get(key) {
            Some(given) => given.clone(),
            None => rule
                .host_headers
                .iter()
                .map(|h| host_name(h, env))
                .collect(),
        };
        for (old, new) in rule.host_headers.iter().zip(&new) {
            hosts.push((old.clone(), new.clone()));
        }
        rule.host_headers = new;
        rule.priority = rule_priority(rule.priority, env);
        rule.movable = true;
    }
    for svc in s.service_discovery_services.values_mut() {
        let ns = s
            .service_discovery_namespaces
            .get(&svc.namespace)
            .map(|ns| super::lb_discovery::namespace_name_in(&s.vars, ns));
        let new = suffixed(&svc.name, env, DNS_LABEL_LIMIT);
        if let Some(ns) = ns.filter(|n| !n.is_empty()) {
            hosts.push((format!("{}.{ns}", svc.name), format!("{new}.{ns}")));
        }
        svc.name = new;
    }
    // Longest first, so a name is never rewritten through a shorter one it contains.
    hosts.sort_by_key(|(old, _)| std::cmp::Reverse(old.len()));
    let rewrite = |text: &str| rewrite_hosts(text, &hosts);

    for ns in s.service_discovery_namespaces.values_mut() {
        ns.existing = true;
    }
    for v in s.vars.values_mut() {
        rewrite_value(v, &rewrite);
    }
    for g in s.log_groups.values_mut() {
        g.name = suffixed(&g.name, env, LOG_GROUP_LIMIT);
    }
    for r in s.iam_roles.values_mut() {
        r.name = suffixed(&r.name, env, ROLE_BASE_LIMIT);
    }
    for g in s.security_groups.values_mut() {
        g.name = suffixed(&g.name, env, SECURITY_GROUP_LIMIT);
    }
    for c in s.clusters.values_mut().filter(|c| !c.existing) {
        c.name = suffixed(&c.name, env, ECS_NAME_LIMIT);
    }
    for td in s.task_definitions.values_mut() {
        td.family = suffixed(&td.family, env, ECS_NAME_LIMIT);
        for c in td.containers.values_mut() {
            for v in c.environment.values_mut() {
                *v = rewrite(v);
            }
            for a in &mut c.args {
                *a = rewrite(a);
            }
        }
    }
    for svc in s.services.values_mut() {
        svc.name = suffixed(&svc.name, env, ECS_NAME_LIMIT);
    }
    for secret in s.secrets.values_mut() {
        secret.name = secret_name(&secret.name, env);
        for n in &mut secret.generate.names {
            *n = rewrite(n);
        }
    }
    for tg in s.target_groups.values_mut() {
        tg.name = suffixed(&tg.name, env, TARGET_GROUP_LIMIT);
    }
    for fs in s.file_systems.values_mut() {
        if let Some(n) = &fs.name {
            fs.name = Some(suffixed(n, env, 256));
        }
    }
}

fn rewrite_value(v: &mut Value, rewrite: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = rewrite(s),
        Value::Array(a) => a.iter_mut().for_each(|v| rewrite_value(v, rewrite)),
        Value::Object(o) => o.values_mut().for_each(|v| rewrite_value(v, rewrite)),
        _ => {}
    }
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// `text` with each DNS name of `hosts` (old → new) replaced where it stands whole (not as a
/// part of a longer name).
pub fn rewrite_hosts(text: &str, hosts: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < text.len() {
        let at_start = i == 0 || !text[..i].chars().next_back().is_some_and(is_host_char);
        if at_start {
            for (old, new) in hosts {
                if text[i..].starts_with(old.as_str()) {
                    let after = &text[i + old.len()..];
                    // Whole unless a name character follows (a dot ending a sentence does not
                    // continue the name).
                    let continues = |c: char| {
                        is_host_char(c) && (c != '.' || after[1..].starts_with(is_host_char))
                    };
                    let whole = !after.chars().next().is_some_and(continues);
                    if whole {
                        out.push_str(new);
                        i += old.len();
                        continue 'outer;
                    }
                }
            }
        }
        let c = text[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The checks of `environments:` (every entry, not only the selected one's).
pub fn check(loaded: &LoadedStack, err: &mut impl FnMut(String, String)) {
    let s = &loaded.stack;
    for (key, e) in &s.environments {
        let p = format!("environments.{key}");
        let literal: String = key.chars().filter(|&c| c != '*').collect();
        if key.is_empty()
            || key.len() > DNS_LABEL_LIMIT
            || !literal
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            err(
                p.clone(),
                "an environment name, or a pattern of one with `*` (e.g. `pr-*`)".into(),
            );
        }
        if let Some(ttl) = &e.ttl {
            if let Err(m) = crate::cli::parse_duration(ttl) {
                err(format!("{p}.ttl"), m);
            }
        }
        if e.protected == Some(true) && e.disposable == Some(true) {
            err(
                p.clone(),
                "protected and disposable at once: a protected environment keeps its data".into(),
            );
        }
        for k in e.desired_counts.keys() {
            if !s.services.contains_key(k) {
                err(
                    format!("{p}.desired_counts.{k}"),
                    format!("no services.{k} in this stack"),
                );
            }
        }
        for (k, days) in &e.retention_days {
            if !s.log_groups.contains_key(k) {
                err(
                    format!("{p}.retention_days.{k}"),
                    format!("no log_groups.{k} in this stack"),
                );
            }
            if *days < 1 {
                err(format!("{p}.retention_days.{k}"), "at least 1 day".into());
            }
        }
        for k in e.hosts.keys() {
            if !s.listener_rules.contains_key(k) {
                err(
                    format!("{p}.hosts.{k}"),
                    format!("no listener_rules.{k} in this stack"),
                );
            }
        }
    }
    if let Some(ttl) = &s.ttl {
        if let Err(m) = crate::cli::parse_duration(ttl) {
            err("ttl".into(), m);
        }
    }
    if s.protected && s.disposable {
        err(
            "protected".into(),
            format!(
                "environment `{}` is both protected and disposable: a protected environment keeps its data",
                s.environment
            ),
        );
    }
}

/// The names by which two environments of one stack could get in each other's way: for each
/// AWS namespace (kind), every name the environment would use.
pub fn names_of(s: &Stack, region: &str) -> BTreeMap<&'static str, Vec<(String, String)>> {
    let mut out: BTreeMap<&'static str, Vec<(String, String)>> = BTreeMap::new();
    let mut add = |kind: &'static str, address: String, name: String| {
        out.entry(kind).or_default().push((name, address));
    };
    for (k, g) in &s.log_groups {
        add("log group", format!("log_groups.{k}"), g.name.clone());
    }
    for (k, r) in &s.iam_roles {
        add(
            "IAM role",
            format!("iam_roles.{k}"),
            super::role_aws_name(r, region),
        );
    }
    for (k, g) in &s.security_groups {
        add(
            "security group",
            format!("security_groups.{k}"),
            g.name.clone(),
        );
    }
    for (k, c) in s.clusters.iter().filter(|(_, c)| !c.existing) {
        add("ECS cluster", format!("clusters.{k}"), c.name.clone());
    }
    for (k, td) in &s.task_definitions {
        add(
            "task family",
            format!("task_definitions.{k}"),
            td.family.clone(),
        );
    }
    for (k, svc) in &s.services {
        let cluster = s.clusters.get(&svc.cluster).map(|c| c.name.clone());
        add(
            "ECS service",
            format!("services.{k}"),
            format!("{}/{}", cluster.unwrap_or_default(), svc.name),
        );
    }
    for (k, secret) in &s.secrets {
        add("secret", format!("secrets.{k}"), secret.name.clone());
    }
    for (k, tg) in &s.target_groups {
        add(
            "target group",
            format!("target_groups.{k}"),
            tg.name.clone(),
        );
    }
    for (k, r) in &s.listener_rules {
        add(
            "listener rule priority",
            format!("listener_rules.{k}"),
            r.priority.to_string(),
        );
        for h in &r.host_headers {
            add("host", format!("listener_rules.{k}"), h.clone());
        }
    }
    for (k, svc) in &s.service_discovery_services {
        add(
            "Cloud Map service",
            format!("service_discovery_services.{k}"),
            format!("{}/{}", svc.namespace, svc.name),
        );
    }
    for k in s.file_systems.keys() {
        add(
            "EFS creation token",
            format!("file_systems.{k}"),
            super::efs::efs_token(s, k),
        );
    }
    for k in s.access_points.keys() {
        add(
            "EFS access point",
            format!("access_points.{k}"),
            super::efs::efs_token(s, k),
        );
    }
    out
}

/// The environments `validate --env` compares the selected one with: the stack's own and
/// every one `environments:` names (patterns cannot be listed).
pub fn known_environments(s: &Stack) -> Vec<String> {
    let mut out = vec![s.environment.clone()];
    out.extend(
        s.environments
            .keys()
            .filter(|k| !k.contains('*') && **k != s.environment)
            .cloned(),
    );
    out
}

/// Where the names of `a` and `b` (two environments of one stack) are equal: one message per
/// shared name, empty when they share none.
pub fn collisions(a: &Stack, b: &Stack, region: &str) -> Vec<String> {
    let (na, nb) = (names_of(a, region), names_of(b, region));
    let mut out = Vec::new();
    for (kind, names) in &na {
        let Some(others) = nb.get(kind) else { continue };
        for (name, address) in names {
            if let Some((_, other)) = others.iter().find(|(n, _)| n == name) {
                out.push(format!(
                    "{kind} `{name}`: {address} of environment `{}` and {other} of environment `{}` would be the same",
                    a.environment, b.environment
                ));
            }
        }
    }
    out
}

/// Where environment `env` of the stack `raw` (as loaded, before [`select`]) would share a
/// name with the stack's own environment or one `environments:` names: one message each.
pub fn clashes(raw: &LoadedStack, env: Option<&str>) -> Result<Vec<String>, SpecErrors> {
    let resolve = |e: &str| {
        let mut l = raw.clone();
        select(&mut l, Some(e)).map(|()| l.stack)
    };
    let env = env.unwrap_or(&raw.stack.environment);
    let region = raw.stack.region.as_deref().unwrap_or("<region>");
    let selected = resolve(env)?;
    let mut out = Vec::new();
    for other in known_environments(&raw.stack) {
        if other != env {
            out.extend(collisions(&selected, &resolve(&other)?, region));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const REFERENCE: &str = include_str!("../../stacks/monitoring.yaml");

    fn for_env(env: &str) -> Stack {
        let mut loaded = super::super::parse(Path::new("s.yaml"), REFERENCE).unwrap();
        select(&mut loaded, Some(env)).unwrap();
        loaded.validate().unwrap();
        loaded.stack
    }

    #[test]
    fn names_are_suffixed_and_fit_their_limits() {
        assert_eq!(
            suffixed("monitoring-grafana", "pr-123", 32),
            "monitoring-grafana-pr-123"
        );
        let long = "e".repeat(40);
        let tg = suffixed("monitoring-grafana", &long, TARGET_GROUP_LIMIT);
        assert_eq!(tg.len(), 32, "{tg}");
        assert!(tg.starts_with("monitoring-grafana-eeee"), "{tg}");
        // The hash is of the whole name: two long names cut alike still differ.
        let other = suffixed("monitoring-grafana", &format!("{}f", "e".repeat(39)), 32);
        assert_ne!(tg, other);
        assert_eq!(fit("short", 32), "short");
        assert_eq!(
            secret_name("monitoring/grafana/admin-password", "pr-1"),
            "monitoring/pr-1/grafana/admin-password"
        );
        assert_eq!(secret_name("admin", "pr-1"), "pr-1/admin");
        assert_eq!(
            host_name("grafana.showcase.example.com", "pr-1"),
            "grafana-pr-1.showcase.example.com"
        );
        let host = host_name("grafana.showcase.example.com", &"x".repeat(63));
        assert_eq!(host.split('.').next().unwrap().len(), 63, "{host}");
    }

    #[test]
    fn priorities_stay_in_range_and_differ_from_home() {
        for env in ["pr-1", "pr-2", "staging", &"z".repeat(63)] {
            let p = rule_priority(100, env);
            assert!((1..=50000).contains(&p) && p != 100, "{env}: {p}");
            assert_eq!((p - 100) % PRIORITY_STRIDE, 0);
        }
        assert_eq!(rule_priority(100, "pr-1"), rule_priority(100, "pr-1"));
        assert!((1..=50000).contains(&rule_priority(49999, "pr-1")));
    }

    #[test]
    fn a_held_priority_moves_along_the_sequence() {
        let mut held = BTreeMap::new();
        assert_eq!(allocate_priority(110, &held), Some(110));
        held.insert(110, false);
        held.insert(120, false);
        assert_eq!(allocate_priority(110, &held), Some(130));
        // Our own rule where it is: it stays.
        held.insert(130, true);
        assert_eq!(allocate_priority(110, &held), Some(130));
        assert_eq!(next_priority(49995), 5);
    }

    #[test]
    fn patterns_match_and_the_most_specific_wins() {
        assert!(matches("pr-*", "pr-123"));
        assert!(!matches("pr-*", "staging"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxcyyb"));
        let text = REFERENCE.replace(
            "environments:\n",
            "environments:\n  \"*\": { ttl: 7d }\n  pr-9: { ttl: 1h }\n",
        );
        let stack = super::super::parse(Path::new("s.yaml"), &text)
            .unwrap()
            .stack;
        assert_eq!(entry_for(&stack, "pr-9").unwrap(), Some("pr-9"));
        assert_eq!(entry_for(&stack, "pr-10").unwrap(), Some("pr-*"));
        assert_eq!(entry_for(&stack, "staging").unwrap(), Some("*"));
        let text = REFERENCE.replace("environments:\n", "environments:\n  \"p*-1\": {}\n");
        let stack = super::super::parse(Path::new("s.yaml"), &text)
            .unwrap()
            .stack;
        assert!(entry_for(&stack, "pr-1").unwrap_err().contains("equally"));
    }

    #[test]
    fn hosts_are_rewritten_only_where_they_stand_whole() {
        let hosts = vec![(
            "grafana.showcase.example.com".to_string(),
            "grafana-pr-1.showcase.example.com".to_string(),
        )];
        assert_eq!(
            rewrite_hosts("https://grafana.showcase.example.com/", &hosts),
            "https://grafana-pr-1.showcase.example.com/"
        );
        assert_eq!(
            rewrite_hosts("other-grafana.showcase.example.com", &hosts),
            "other-grafana.showcase.example.com"
        );
        assert_eq!(
            rewrite_hosts("grafana.showcase.example.com.au", &hosts),
            "grafana.showcase.example.com.au"
        );
        assert_eq!(
            rewrite_hosts("See grafana.showcase.example.com.", &hosts),
            "See grafana-pr-1.showcase.example.com."
        );
    }

    #[test]
    fn the_home_environment_keeps_its_names() {
        let home = for_env("production");
        let text = REFERENCE;
        let plain = super::super::parse(Path::new("s.yaml"), text)
            .unwrap()
            .stack;
        assert_eq!(names_of(&home, "us-west-2"), names_of(&plain, "us-west-2"));
        assert!(home.protected);
    }

    #[test]
    fn another_environment_shares_no_name_and_reaches_every_name() {
        let pr = for_env("pr-123");
        let home = for_env("production");
        assert_eq!(collisions(&pr, &home, "us-west-2"), Vec::<String>::new());
        assert!(pr.disposable && !pr.protected);
        assert_eq!(pr.ttl.as_deref(), Some("72h"));
        let grafana = &pr.task_definitions["grafana"].containers["grafana"];
        assert_eq!(
            grafana.environment["GF_SERVER_ROOT_URL"],
            "https://grafana-pr-123.showcase.example.com/"
        );
        assert_eq!(
            pr.listener_rules["grafana"].host_headers,
            vec!["grafana-pr-123.showcase.example.com".to_string()]
        );
        assert_eq!(
            pr.secrets["grafana_tls"].generate.names,
            vec!["grafana-pr-123.showcase.example.com", "localhost"]
        );
        assert_eq!(
            pr.secrets["prometheus_tls"].generate.names,
            vec!["prometheus-pr-123.monitoring.internal", "localhost"]
        );
        assert_eq!(
            pr.vars["service_discovery"]["prometheus_host"],
            "prometheus-pr-123.monitoring.internal"
        );
        // The namespace is shared: same name, owned by the stack's own environment.
        assert_eq!(
            pr.vars["service_discovery"]["namespace"],
            "monitoring.internal"
        );
        assert!(pr.service_discovery_namespaces["monitoring"].existing);
        assert_eq!(
            pr.secrets["grafana_admin"].name,
            "monitoring/pr-123/grafana/admin-password"
        );
        // External secrets are shared.
        assert_eq!(pr.external_secrets(), home.external_secrets());
    }

    #[test]
    fn a_long_environment_name_stays_within_every_limit() {
        let env = "feature-a-very-long-branch-name-for-test"; // 40 characters
        assert_eq!(env.len(), 40);
        let s = for_env(env);
        for g in s.target_groups.values() {
            assert!(g.name.len() <= 32, "{}", g.name);
        }
        for r in s.iam_roles.values() {
            let name = super::super::role_aws_name(r, "ap-southeast-2");
            assert!(name.len() <= 64, "{name}");
        }
        for k in s.file_systems.keys().chain(s.access_points.keys()) {
            let t = super::super::efs::efs_token(&s, k);
            assert!(t.len() <= EFS_TOKEN_LIMIT, "{t}");
        }
        for svc in s.service_discovery_services.values() {
            assert!(svc.name.len() <= DNS_LABEL_LIMIT, "{}", svc.name);
        }
        for r in s.listener_rules.values() {
            for h in &r.host_headers {
                assert!(h.split('.').all(|l| l.len() <= 63), "{h}");
            }
        }
        assert_eq!(
            collisions(&s, &for_env("production"), "us-west-2"),
            Vec::<String>::new()
        );
    }
}
