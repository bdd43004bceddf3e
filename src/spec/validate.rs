//! Semantic checks of a parsed stack: references, Fargate sizes, ports, CIDRs, names and
//! limits. All of them run offline; every problem is collected and located.

use super::{LoadedStack, RuleSpec, SpecError};
use crate::model::Address;
use std::net::IpAddr;

/// CPU units → the memory sizes (MiB) Fargate accepts with it.
pub fn fargate_memory_options(cpu: i64) -> Option<Vec<i64>> {
    let range = |from: i64, to: i64, step: i64| (from..=to).step_by(step as usize).collect();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => return None,
    })
}

pub fn check(loaded: &LoadedStack) -> Vec<SpecError> {
    let s = &loaded.stack;
    let mut errs = Vec::new();
    let mut err = |path: String, msg: String| errs.push(loaded.error_at(&path, msg));

    if !is_slug(&s.stack) {
        err(
            "stack".into(),
            "must be 1-32 lowercase letters, digits or '-'".into(),
        );
    }
    if !super::environments::is_environment_name(&s.environment) {
        err(
            "environment".into(),
            "must be 1-63 lowercase letters, digits or '-', not at either end".into(),
        );
    }
    if !(1..=100).contains(&s.keep_revisions) {
        err(
            "keep_revisions".into(),
            "1-100 (how many revisions of each family stay registered)".into(),
        );
    }
    super::environments::check(loaded, &mut err);
    if let Some(r) = &s.region {
        if !is_region(r) {
            err(
                "region".into(),
                format!("`{r}` is not an AWS region name like us-west-2"),
            );
        }
    }
    for (k, v) in &s.tags {
        if crate::model::is_managed_tag(k) || k.starts_with("aws:") {
            err(
                format!("tags.{k}"),
                "tag keys starting with `deploy:` or `aws:` are reserved".into(),
            );
        }
        if k.len() > 128 || v.len() > 256 {
            err(
                format!("tags.{k}"),
                "tag keys are at most 128 characters, values 256".into(),
            );
        }
    }
    if s.lookups.vpc.tags.is_empty() {
        err(
            "lookups.vpc.tags".into(),
            "name at least one tag to find the VPC by".into(),
        );
    }
    if s.lookups.subnets.tags.is_empty() {
        err(
            "lookups.subnets.tags".into(),
            "name at least one tag to find the subnets by".into(),
        );
    }

    check_vars(&s.vars, "vars", &mut err);

    for (key, sec) in &s.secrets {
        let p = format!("secrets.{key}");
        let valid_name = !sec.name.is_empty()
            && sec.name.len() <= 512
            && sec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !valid_name {
            err(
                format!("{p}.name"),
                "a Secrets Manager name is 1-512 letters, digits or /_+=.@-".into(),
            );
        }
        if !crate::model::PASSWORD_LENGTHS.contains(&sec.generate.length) {
            err(
                format!("{p}.generate.length"),
                "a generated value is 8 to 4096 characters long".into(),
            );
        }
        if sec.rotation < 0 {
            err(format!("{p}.rotation"), "rotation counts up from 0".into());
        }
        check_generate(
            &sec.generate,
            sec.rotation,
            &format!("{p}.generate"),
            &mut err,
        );
    }

    for (key, lg) in &s.log_groups {
        let p = format!("log_groups.{key}");
        if lg.name.is_empty()
            || lg.name.len() > 512
            || !lg
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
        {
            err(
                format!("{p}.name"),
                "log group names are 1-512 characters of a-z, A-Z, 0-9, '_', '-', '/', '.', '#'"
                    .into(),
            );
        }
        if let Some(d) = lg.retention_days {
            const ALLOWED: [i32; 22] = [
                1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                2557, 2922, 3288, 3653,
            ];
            if !ALLOWED.contains(&d) {
                err(
                    format!("{p}.retention_days"),
                    format!(
                        "{d} is not a retention CloudWatch Logs accepts ({})",
                        ALLOWED.map(|x| x.to_string()).join(", ")
                    ),
                );
            }
        }
    }

    for (key, role) in &s.iam_roles {
        let p = format!("iam_roles.{key}");
        // The longest region names have 14 characters; check against the stack's own when set.
        let full = super::role_aws_name(role, s.region.as_deref().unwrap_or("ap-southeast-4"));
        if full.len() > 64
            || !role
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        {
            err(format!("{p}.name"), format!("role name `{full}` (region appended) must be at most 64 characters of a-z, A-Z, 0-9 and +=,.@_-"));
        }
        if !role.assumed_by.ends_with(".amazonaws.com") {
            err(
                format!("{p}.assumed_by"),
                "name a service principal, e.g. ecs-tasks.amazonaws.com".into(),
            );
        }
        if let Some(path) = &role.path {
            if !(path.starts_with('/') && path.ends_with('/')) {
                err(
                    format!("{p}.path"),
                    "an IAM path starts and ends with '/'".into(),
                );
            }
        }
        for (pname, stmts) in &role.policies {
            if pname == super::build::SECRETS_POLICY {
                err(
                    format!("{p}.policies.{pname}"),
                    "this policy name is reserved: deploy writes it with read access to exactly \
                     the secrets the role's task definitions use"
                        .into(),
                );
            }
            if stmts.is_empty() {
                err(
                    format!("{p}.policies.{pname}"),
                    "a policy needs at least one statement".into(),
                );
            }
            for (i, st) in stmts.iter().enumerate() {
                let sp = format!("{p}.policies.{pname}.{i}");
                if st.actions.is_empty() {
                    err(format!("{sp}.actions"), "list at least one action".into());
                }
                for a in &st.actions {
                    if a != "*" && !a.contains(':') {
                        err(
                            format!("{sp}.actions"),
                            format!("`{a}` is not an IAM action (service:Action)"),
                        );
                    }
                }
                if st.resources.is_empty() {
                    err(
                        format!("{sp}.resources"),
                        "list at least one resource".into(),
                    );
                }
                for r in &st.resources {
                    if r == "*" || r.starts_with("arn:") {
                        continue;
                    }
                    match r.parse::<Address>() {
                        Ok(a) if stack_defines(loaded, &a) => {}
                        Ok(a) => err(
                            format!("{sp}.resources"),
                            format!("`{a}` is not defined in this stack"),
                        ),
                        Err(_) => err(
                            format!("{sp}.resources"),
                            format!("`{r}` is neither an ARN, `*`, nor an address of this stack"),
                        ),
                    }
                }
            }
        }
        for m in &role.managed_policies {
            if !m.starts_with("arn:") {
                err(
                    format!("{p}.managed_policies"),
                    format!("`{m}` is not a policy ARN"),
                );
            }
        }
    }

    for (key, sg) in &s.security_groups {
        let p = format!("security_groups.{key}");
        if sg.name.is_empty() || sg.name.len() > 255 || sg.name.starts_with("sg-") {
            err(
                format!("{p}.name"),
                "group names are 1-255 characters and may not start with sg-".into(),
            );
        }
        if sg.description.is_empty() || sg.description.len() > 255 {
            err(
                format!("{p}.description"),
                "a description of 1-255 characters is required".into(),
            );
        }
        for (dir, rules, peer_key) in [
            ("ingress", &sg.ingress, "from"),
            ("egress", &sg.egress, "to"),
        ] {
            for (i, r) in rules.iter().enumerate() {
                check_rule(
                    loaded,
                    &format!("{p}.{dir}.{i}"),
                    dir,
                    peer_key,
                    r,
                    &mut err,
                );
            }
        }
    }

    for (key, c) in &s.clusters {
        if c.name.is_empty() || c.name.len() > 255 {
            err(
                format!("clusters.{key}.name"),
                "cluster names are 1-255 characters".into(),
            );
        }
    }

    for (key, td) in &s.task_definitions {
        let p = format!("task_definitions.{key}");
        match fargate_memory_options(td.cpu) {
            None => err(
                format!("{p}.cpu"),
                format!(
                    "{} is not a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192, 16384)",
                    td.cpu
                ),
            ),
            Some(mems) if !mems.contains(&td.memory) => err(
                format!("{p}.memory"),
                format!(
                    "Fargate does not offer {} MiB with {} CPU units; valid: {}",
                    td.memory,
                    td.cpu,
                    mems.iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(_) => {}
        }
        if !s.iam_roles.contains_key(&td.execution_role) {
            err(
                format!("{p}.execution_role"),
                format!("no iam_roles.{} in this stack", td.execution_role),
            );
        }
        if let Some(r) = &td.task_role {
            if !s.iam_roles.contains_key(r) {
                err(
                    format!("{p}.task_role"),
                    format!("no iam_roles.{r} in this stack"),
                );
            }
        }
        if let Some(g) = td.ephemeral_storage_gib {
            if !(21..=200).contains(&g) {
                err(
                    format!("{p}.ephemeral_storage_gib"),
                    "Fargate ephemeral storage is 21-200 GiB".into(),
                );
            }
        }
        if td.cpu_architecture != "X86_64" && td.cpu_architecture != "ARM64" {
            err(format!("{p}.cpu_architecture"), "X86_64 or ARM64".into());
        }
        if td.containers.is_empty() {
            err(
                format!("{p}.containers"),
                "a task needs at least one container".into(),
            );
        }
        let (mut cpu_sum, mut mem_sum) = (0, 0);
        let mut ports = std::collections::BTreeSet::new();
        for (cname, c) in &td.containers {
            let cp = format!("{p}.containers.{cname}");
            if c.image.trim().is_empty() {
                err(format!("{cp}.image"), "an image is required".into());
            } else if !c.image.contains(':') && !c.image.contains('@')
                || c.image.ends_with(":latest")
            {
                err(
                    format!("{cp}.image"),
                    format!(
                        "pin `{}` to a version tag or digest (no implicit or explicit :latest)",
                        c.image
                    ),
                );
            }
            cpu_sum += c.cpu.unwrap_or(0);
            mem_sum += c.memory_reservation.unwrap_or(0);
            if let Some(m) = c.memory_reservation {
                if m < 6 {
                    err(format!("{cp}.memory_reservation"), "at least 6 MiB".into());
                }
            }
            for (i, port) in c.ports.iter().enumerate() {
                if !(1..=65535).contains(port) {
                    err(
                        format!("{cp}.ports.{i}"),
                        format!("port {port} is out of range 1-65535"),
                    );
                } else if !ports.insert(*port) {
                    err(format!("{cp}.ports.{i}"), format!("port {port} is used twice in this task (awsvpc shares one network namespace)"));
                }
            }
            if let Some(lg) = &c.log_group {
                if !s.log_groups.contains_key(lg) {
                    err(
                        format!("{cp}.log_group"),
                        format!("no log_groups.{lg} in this stack"),
                    );
                }
            }
            if (!c.files.is_empty() || !c.secret_files.is_empty()) && c.entry_point.is_none() {
                err(format!("{cp}.entry_point"), "`files` are delivered by a start script that then runs the image's program: name it here (e.g. /bin/prometheus)".into());
            }
            for path in c.files.keys() {
                if !path.starts_with('/') || path.contains('\'') || path.contains('\n') {
                    err(
                        format!("{cp}.files.{path}"),
                        "container paths must be absolute and contain no quote or newline".into(),
                    );
                }
            }
            for k in c.environment.keys() {
                if k.starts_with("DEPLOY_FILE_") {
                    err(
                        format!("{cp}.environment.{k}"),
                        "DEPLOY_FILE_* variables carry delivered files and are reserved".into(),
                    );
                }
                // A literal secret here is lint rule DL001 (refused at load).
            }
            for (k, r) in &c.secrets {
                let sp = format!("{cp}.secrets.{k}");
                if c.environment.contains_key(k) {
                    err(
                        sp.clone(),
                        "also set under environment: a variable comes from one place".into(),
                    );
                }
                let sources = [&r.secret, &r.secrets_manager, &r.ssm]
                    .iter()
                    .filter(|x| x.is_some())
                    .count();
                if sources != 1 {
                    err(
                        sp.clone(),
                        "name exactly one source: `secret` (a key under secrets:), \
                         `secrets_manager` (a name or ARN) or `ssm` (a parameter name or ARN)"
                            .into(),
                    );
                }
                if let Some(key) = &r.secret {
                    if !s.secrets.contains_key(key) {
                        err(
                            format!("{sp}.secret"),
                            format!("no secret `{key}` under secrets:"),
                        );
                    }
                }
                if r.ssm.is_some() && r.json_key.is_some() {
                    err(
                        format!("{sp}.json_key"),
                        "json_key applies to Secrets Manager secrets only".into(),
                    );
                }
                for (field, v) in [("secrets_manager", &r.secrets_manager), ("ssm", &r.ssm)] {
                    if let Some(v) = v {
                        if v.is_empty() || v.contains(char::is_whitespace) {
                            err(
                                format!("{sp}.{field}"),
                                "a secret name or ARN has no spaces".into(),
                            );
                        }
                    }
                }
            }
            if let Some(h) = &c.health_check {
                let hp = format!("{cp}.health_check");
                for (field, v, lo, hi) in [
                    ("interval", h.interval, 5, 300),
                    ("timeout", h.timeout, 2, 60),
                    ("retries", h.retries, 1, 10),
                    ("start_period", h.start_period, 0, 300),
                ] {
                    if !(lo..=hi).contains(&v) {
                        err(
                            format!("{hp}.{field}"),
                            format!("{v} is outside ECS's range {lo}-{hi}"),
                        );
                    }
                }
                if h.timeout >= h.interval {
                    err(
                        format!("{hp}.timeout"),
                        "the timeout must be shorter than the interval".into(),
                    );
                }
            }
        }
        if cpu_sum > td.cpu {
            err(
                format!("{p}.containers"),
                format!(
                    "container CPU reservations add up to {cpu_sum}, more than the task's {}",
                    td.cpu
                ),
            );
        }
        if mem_sum > td.memory {
            err(format!("{p}.containers"), format!("container memory reservations add up to {mem_sum} MiB, more than the task's {}", td.memory));
        }
    }

    let ignorable = ["desired_count", "task_definition", "tags"];
    for (key, svc) in &s.services {
        let p = format!("services.{key}");
        if !s.clusters.contains_key(&svc.cluster) {
            err(
                format!("{p}.cluster"),
                format!("no clusters.{} in this stack", svc.cluster),
            );
        }
        if !s.task_definitions.contains_key(&svc.task_definition) {
            err(
                format!("{p}.task_definition"),
                format!("no task_definitions.{} in this stack", svc.task_definition),
            );
        }
        if svc.security_groups.is_empty() {
            err(
                format!("{p}.security_groups"),
                "name at least one security group of this stack".into(),
            );
        }
        for (i, g) in svc.security_groups.iter().enumerate() {
            if !s.security_groups.contains_key(g) {
                err(
                    format!("{p}.security_groups.{i}"),
                    format!("no security_groups.{g} in this stack"),
                );
            }
        }
        if !(0..=1000).contains(&svc.desired_count) {
            err(format!("{p}.desired_count"), "0-1000".into());
        }
        let d = &svc.deployment;
        if !(0..=100).contains(&d.minimum_healthy_percent) {
            err(
                format!("{p}.deployment.minimum_healthy_percent"),
                "0-100".into(),
            );
        }
        if !(100..=200).contains(&d.maximum_percent) {
            err(format!("{p}.deployment.maximum_percent"), "100-200".into());
        }
        if let Some(t) = &d.circuit_breaker.threshold {
            let at = format!("{p}.deployment.circuit_breaker.threshold");
            match t.kind.as_str() {
                "COUNT" | "BOUNDED_PERCENT" | "UNBOUNDED_PERCENT" => {}
                other => err(
                    format!("{at}.type"),
                    format!("`{other}`: one of COUNT, BOUNDED_PERCENT, UNBOUNDED_PERCENT"),
                ),
            }
            let most = if t.kind == "COUNT" { 200 } else { 100 };
            if !(1..=most).contains(&t.value) {
                err(format!("{at}.value"), format!("1-{most}"));
            }
        }
        for (i, a) in svc.ignore_changes.iter().enumerate() {
            if !ignorable.contains(&a.as_str()) {
                err(
                    format!("{p}.ignore_changes.{i}"),
                    format!("`{a}` cannot be ignored; one of: {}", ignorable.join(", ")),
                );
            }
        }
    }

    super::lb_discovery::check(loaded, &mut err);

    for (i, imp) in s.imports.iter().enumerate() {
        let p = format!("imports.{i}");
        match imp.address.parse::<Address>() {
            Ok(a) if stack_defines(loaded, &a) => {}
            Ok(a) => err(
                format!("{p}.address"),
                format!("`{a}` is not defined in this stack"),
            ),
            Err(e) => err(format!("{p}.address"), e),
        }
        if imp.id.trim().is_empty() {
            err(format!("{p}.id"), "an id is required".into());
        }
    }
    errs.extend(super::efs::check(loaded));
    errs.extend(crate::lint::check_suppressions_spec(loaded));
    super::reload::check(loaded, &mut errs);
    super::history::check(loaded, &mut errs);
    errs
}

fn check_rule(
    loaded: &LoadedStack,
    p: &str,
    dir: &str,
    peer_key: &str,
    r: &RuleSpec,
    err: &mut impl FnMut(String, String),
) {
    let s = &loaded.stack;
    if !["tcp", "udp", "icmp", "all"].contains(&r.protocol.as_str()) {
        err(format!("{p}.protocol"), "tcp, udp, icmp or all".into());
    }
    match (r.port, &r.ports) {
        (Some(_), Some(_)) => err(
            format!("{p}.ports"),
            "give `port` or `ports`, not both".into(),
        ),
        (Some(port), None) if !(1..=65535).contains(&port) => err(
            format!("{p}.port"),
            format!("port {port} is out of range 1-65535"),
        ),
        (None, Some(range)) if parse_port_range(range).is_none() => err(
            format!("{p}.ports"),
            format!("`{range}` is not a range FROM-TO within 1-65535"),
        ),
        (None, None) if r.protocol != "all" => err(
            p.to_string(),
            "a rule needs `port` or `ports` (or protocol: all)".into(),
        ),
        _ => {}
    }
    let wrong_peer = if dir == "ingress" { &r.to } else { &r.from };
    if wrong_peer.is_some() {
        let bad = if dir == "ingress" { "to" } else { "from" };
        err(
            format!("{p}.{bad}"),
            format!("{dir} rules name their peer with `{peer_key}`"),
        );
    }
    let peer = if dir == "ingress" { &r.from } else { &r.to };
    match (&r.cidr, peer) {
        (Some(_), Some(_)) => err(
            p.to_string(),
            format!("give `cidr` or `{peer_key}`, not both"),
        ),
        (None, None) => err(
            p.to_string(),
            format!("a rule needs `cidr` or `{peer_key}`"),
        ),
        (Some(cidr), None) => {
            if cidr == super::build::VPC_CIDR {
                // The looked-up VPC's range: private by definition.
            } else if parse_cidr(cidr).is_none() {
                err(
                    format!("{p}.cidr"),
                    format!("`{cidr}` is not a CIDR block like 10.0.0.0/16, or `vpc` (the looked-up VPC's range)"),
                );
            }
            // Ingress from the whole internet is lint rule DL020 (refused at load).
        }
        (None, Some(g)) => {
            if g != "load_balancer" && !s.security_groups.contains_key(g) {
                err(
                    format!("{p}.{peer_key}"),
                    format!("`{g}` is neither a security group of this stack nor `load_balancer`"),
                );
            }
        }
    }
}

/// Template values are rendered into config files that travel in task definitions: a
/// literal secret there is refused just as in a container's environment.
fn check_vars(
    vars: &std::collections::BTreeMap<String, serde_json::Value>,
    path: &str,
    err: &mut impl FnMut(String, String),
) {
    fn walk(name: &str, v: &serde_json::Value, path: &str, err: &mut impl FnMut(String, String)) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(k, v, &format!("{path}.{k}"), err);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(name, v, &format!("{path}.{i}"), err);
                }
            }
            serde_json::Value::String(value) => {
                // Names of variables (`PROMETHEUS_PASSWORD`) and file paths that say where a
                // secret will be found are not secrets.
                let pointer = value.starts_with('/')
                    || (value.starts_with(|c: char| c.is_ascii_uppercase())
                        && value
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
                if pointer {
                    return;
                }
                if let Some(what) = literal_secret(name, value) {
                    err(path.to_string(), literal_secret_message(what));
                }
            }
            _ => {}
        }
    }
    for (k, v) in vars {
        walk(k, v, &format!("{path}.{k}"), err);
    }
}

/// How to store a secret instead of writing it into the stack (the value is never repeated).
pub fn literal_secret_message(what: &str) -> String {
    format!(
        "this looks like a literal secret ({what}); secrets never go into the stack file, \
         the task definition or a plan. Store it in AWS Secrets Manager \
         (aws secretsmanager create-secret --name NAME --secret-string …) or as an SSM \
         SecureString parameter, and give it to the container under `secrets:` by name or ARN"
    )
}

/// Why an environment variable looks like a secret written into the stack, if it does: by
/// its name (password, token, webhook, routing key…) or by the shape of its value (a Slack
/// webhook URL, a PagerDuty routing key, a private key, credentials in a URL).
pub fn literal_secret(name: &str, value: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    const SECRET_NAMES: [&str; 9] = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "WEBHOOK",
        "ROUTING_KEY",
    ];
    if !value.is_empty() && SECRET_NAMES.iter().any(|n| upper.contains(n)) {
        return Some("the variable's name says it holds a secret");
    }
    if value.contains("hooks.slack.com/services/") {
        return Some("a Slack webhook URL");
    }
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if value.len() == 32 && value.chars().all(|c| c.is_ascii_hexdigit()) && upper.contains("KEY") {
        return Some("a PagerDuty-style routing key");
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if !scheme.is_empty()
            && authority.contains('@')
            && authority.split('@').next().is_some_and(|u| u.contains(':'))
        {
            return Some("a URL with a password in it");
        }
    }
    None
}

pub fn parse_port_range(s: &str) -> Option<(i32, i32)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (i32, i32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    ((1..=65535).contains(&a) && (1..=65535).contains(&b) && a <= b).then_some((a, b))
}

/// Parses `ADDR/LEN`; returns it normalized, or None when malformed or host bits are set.
pub fn parse_cidr(s: &str) -> Option<String> {
    let (addr, len) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    let ok = match ip {
        IpAddr::V4(v4) => len <= 32 && (len == 32 || u32::from(v4) & (u32::MAX >> len) == 0),
        IpAddr::V6(v6) => len <= 128 && (len == 128 || u128::from(v6) & (u128::MAX >> len) == 0),
    };
    ok.then(|| s.to_string())
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts.last().unwrap().chars().all(|c| c.is_ascii_digit())
}

/// True when the stack declares a resource at this address.
pub fn stack_defines(loaded: &LoadedStack, a: &Address) -> bool {
    use crate::model::Kind;
    let s = &loaded.stack;
    match a.kind {
        Kind::LogGroup => s.log_groups.contains_key(&a.name),
        Kind::IamRole => s.iam_roles.contains_key(&a.name),
        Kind::SecurityGroup => s.security_groups.contains_key(&a.name),
        Kind::EcsCluster => s.clusters.get(&a.name).is_some_and(|c| !c.existing),
        Kind::TaskDefinition => s.task_definitions.contains_key(&a.name),
        Kind::EcsService => s.services.contains_key(&a.name),
        Kind::Secret => s.secrets.contains_key(&a.name),
        Kind::EfsFileSystem | Kind::EfsMountTargets | Kind::EfsAccessPoint => {
            super::efs::defines(s, a)
        }
        Kind::AmpWorkspace => super::history::defines(s, a),
        _ => super::lb_discovery::defines(s, a).unwrap_or(false),
    }
}

/// The format parameters of `secrets.KEY.generate`: each format's own fields, nothing else,
/// and a generation line that fits a tag (it is the `deploy:generated` tag's value).
fn check_generate(
    g: &super::GenerateSpec,
    rotation: i64,
    p: &str,
    err: &mut impl FnMut(String, String),
) {
    use super::SecretFormatSpec as F;
    let format = match g.format {
        F::Password => "password",
        F::BasicAuth => "basic_auth",
        F::Tls => "tls",
    };
    let misplaced = |field: &str, err: &mut dyn FnMut(String, String)| {
        err(
            format!("{p}.{field}"),
            format!("`{field}` does not apply to format {format}"),
        )
    };
    if g.format != F::BasicAuth && g.username.is_some() {
        misplaced("username", err);
    }
    if g.format != F::Tls {
        if !g.names.is_empty() {
            misplaced("names", err);
        }
        if g.validity_days.is_some() {
            misplaced("validity_days", err);
        }
    }
    match g.format {
        F::Password => {}
        F::BasicAuth => match &g.username {
            None => err(
                format!("{p}.username"),
                "format basic_auth needs a username".into(),
            ),
            Some(u)
                if u.is_empty()
                    || !u
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c)) =>
            {
                err(
                    format!("{p}.username"),
                    "a user name is letters, digits or _.@- (no `:`, which basic auth \
                     reserves)"
                        .into(),
                )
            }
            Some(_) => {}
        },
        F::Tls => {
            if g.names.is_empty() {
                err(
                    format!("{p}.names"),
                    "format tls needs the DNS names the certificate is for".into(),
                );
            }
            for (i, n) in g.names.iter().enumerate() {
                let ip = n.parse::<std::net::IpAddr>().is_ok();
                let dns = !n.is_empty()
                    && n.len() <= 253
                    && n.split('.').all(|l| {
                        !l.is_empty()
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !ip && !dns {
                    err(
                        format!("{p}.names[{i}]"),
                        "a DNS name (letters, digits, - and .; no wildcard) or an IP address"
                            .into(),
                    );
                }
            }
            if let Some(d) = g.validity_days {
                if !crate::model::VALIDITY_DAYS.contains(&d) {
                    err(
                        format!("{p}.validity_days"),
                        "a certificate is valid for 1 to 3650 days".into(),
                    );
                }
            }
        }
    }
    let line = g.generation(rotation).encode();
    if line.len() > crate::model::MAX_GENERATION_LEN || !crate::model::tag_safe(&line) {
        err(
            p.to_string(),
            format!(
                "the generation settings must fit the deploy:generated tag ({} characters at \
                 most, names included): use fewer or shorter names",
                crate::model::MAX_GENERATION_LEN
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_pairs() {
        assert!(fargate_memory_options(256).unwrap().contains(&512));
        assert!(!fargate_memory_options(256).unwrap().contains(&4096));
        assert!(fargate_memory_options(300).is_none());
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr("10.0.0.0/16").is_some());
        assert!(parse_cidr("10.0.0.1/16").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nope").is_none());
        assert!(parse_cidr("::/0").is_some());
    }

    #[test]
    fn literal_secrets_are_recognised_and_plain_settings_are_not() {
        assert!(literal_secret("GF_SECURITY_ADMIN_PASSWORD", "hunter2").is_some());
        assert!(
            literal_secret("SLACK_URL", "https://hooks.slack.com/services/T0/B0/XXXX").is_some()
        );
        assert!(literal_secret("PD_ROUTING_KEY", "0123456789abcdef0123456789abcdef").is_some());
        assert!(literal_secret("DB_URL", "postgres://app:s3cret@db:5432/app").is_some());
        assert!(literal_secret("TLS", "-----BEGIN RSA PRIVATE KEY-----\nabc").is_some());
        assert!(literal_secret("LOG_LEVEL", "info").is_none());
        assert!(literal_secret("DB_URL", "postgres://db:5432/app").is_none());
        assert!(literal_secret("TOKEN_TTL", "").is_none());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("1000-2000"), Some((1000, 2000)));
        assert_eq!(parse_port_range("2000-1000"), None);
        assert_eq!(parse_port_range("0-10"), None);
    }
}
