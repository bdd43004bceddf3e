//! The lint rules over the stack file itself (task definitions, services, cluster, log
//! groups, security groups, IAM, EFS): each finding points at the field's line in the stack.

use super::{at_stack, unscopable, Finding, Input};
use crate::model::{kinds::KINDS, Address, Kind};
use crate::spec::{LoadedStack, StatementSpec};

fn address(kind: Kind, key: &str) -> String {
    Address::new(kind, key).to_string()
}

/// DL001 and DL020: what `validate` refused before lint existed, still refused at load.
pub fn refused_at_load(loaded: &LoadedStack) -> Vec<Finding> {
    let s = &loaded.stack;
    let mut out = Vec::new();
    for (t, td) in &s.task_definitions {
        for (c, spec) in &td.containers {
            for (k, v) in &spec.environment {
                if let Some(what) = crate::spec::literal_secret(k, v) {
                    // The value itself is never repeated.
                    out.push(at_stack(
                        loaded,
                        "DL001",
                        address(Kind::TaskDefinition, t),
                        &format!("task_definitions.{t}.containers.{c}.environment.{k}"),
                        crate::spec::literal_secret_message(what),
                    ));
                }
            }
        }
    }
    for (g, sg) in &s.security_groups {
        for (i, r) in sg.ingress.iter().enumerate() {
            if let Some(cidr) = r.cidr.as_deref().filter(|c| is_world(c)) {
                out.push(at_stack(
                    loaded,
                    "DL020",
                    address(Kind::SecurityGroup, g),
                    &format!("security_groups.{g}.ingress.{i}.cidr"),
                    format!(
                        "ingress from the whole internet ({cidr}) is refused: monitoring \
                         endpoints stay private; name the security group that needs access"
                    ),
                ));
            }
        }
    }
    out
}

fn is_world(cidr: &str) -> bool {
    cidr == "0.0.0.0/0" || cidr == "::/0"
}

/// Every stack rule.
pub fn stack(i: &Input<'_>) -> Vec<Finding> {
    let mut out = refused_at_load(i.loaded);
    task_definitions(i, &mut out);
    config_sidecar(i, &mut out);
    services_and_clusters(i, &mut out);
    security_groups(i, &mut out);
    iam(i, &mut out);
    out
}

fn task_definitions(i: &Input<'_>, out: &mut Vec<Finding>) {
    let s = &i.loaded.stack;
    for (t, td) in &s.task_definitions {
        let addr = address(Kind::TaskDefinition, t);
        let tp = format!("task_definitions.{t}");
        if td.task_role.as_deref() == Some(td.execution_role.as_str()) {
            out.push(i.at_stack(
                "DL007",
                addr.clone(),
                &format!("{tp}.task_role"),
                format!(
                    "task `{t}` runs its program with its execution role `{}`",
                    td.execution_role
                ),
            ));
        }
        for (v, vol) in &td.volumes {
            match vol.access_point.as_ref().and_then(|a| s.access_points.get(a).map(|ap| (a, ap))) {
                None => out.push(i.at_stack(
                    "DL029",
                    addr.clone(),
                    &format!("{tp}.volumes.{v}"),
                    format!("volume `{v}` of task `{t}` mounts file system `{}` without an access point", vol.file_system),
                )),
                Some((a, ap)) if ap.root_directory.trim_end_matches('/').is_empty() => out.push(i.at_stack(
                    "DL029",
                    addr.clone(),
                    &format!("access_points.{a}.root_directory"),
                    format!("access point `{a}` (volume `{v}` of task `{t}`) has the file system's root as its root directory"),
                )),
                Some(_) => {}
            }
        }
        for (c, spec) in &td.containers {
            let cp = format!("{tp}.containers.{c}");
            let who = format!("container `{c}` of task `{t}`");
            if !spec.readonly_root_filesystem {
                out.push(i.at_stack(
                    "DL002",
                    addr.clone(),
                    &cp,
                    format!("{who} has a writable root file system"),
                ));
            }
            match spec.user.as_deref().map(str::trim) {
                None => out.push(i.at_stack(
                    "DL003",
                    addr.clone(),
                    &cp,
                    format!(
                        "{who} runs as whatever user image {} defaults to",
                        spec.image
                    ),
                )),
                Some(u) if is_root(u) => out.push(i.at_stack(
                    "DL003",
                    addr.clone(),
                    &format!("{cp}.user"),
                    format!("{who} runs as root (`{u}`)"),
                )),
                Some(_) => {}
            }
            let drop = &spec.linux_parameters.capabilities.drop;
            if !drop.iter().any(|d| d.eq_ignore_ascii_case("ALL")) {
                out.push(i.at_stack(
                    "DL004",
                    addr.clone(),
                    &format!("{cp}.linux_parameters"),
                    format!(
                        "{who} keeps Linux capabilities (drop: [{}])",
                        drop.join(", ")
                    ),
                ));
            }
            if spec.log_group.is_none() {
                out.push(i.at_stack(
                    "DL005",
                    addr.clone(),
                    &cp,
                    format!("{who} has no log group: its output is lost"),
                ));
            }
            if let Some(why) = unpinned(&spec.image) {
                out.push(i.at_stack(
                    "DL006",
                    addr.clone(),
                    &format!("{cp}.image"),
                    format!("image {} of {who} {why}", spec.image),
                ));
            }
        }
    }
}

/// The `config` sidecar deploy adds to each task with reloading containers: one finding per
/// rule it breaks, at the stack's `config_bucket` section (address `config_bucket`), naming the
/// tasks that run it. It is what the container is built as (src/spec/reload.rs), not a spec.
fn config_sidecar(i: &Input<'_>, out: &mut Vec<Finding>) {
    let s = &i.loaded.stack;
    let Some(config) = &s.config_bucket else {
        return;
    };
    let tasks: Vec<&str> = (s.task_definitions.iter())
        .filter(|(_, td)| crate::spec::reload::reloads(td))
        .map(|(t, _)| t.as_str())
        .collect();
    if tasks.is_empty() {
        return;
    }
    let who = format!(
        "the config sidecar (container `{}` of task {})",
        crate::spec::reload::SIDECAR,
        tasks.join(", ")
    );
    let at =
        |rule, path: &str, message: String| i.at_stack(rule, "config_bucket".into(), path, message);
    out.push(at(
        "DL002",
        "config_bucket",
        format!("{who} has a writable root file system (it writes /tmp and its volumes)"),
    ));
    out.push(at(
        "DL003",
        "config_bucket",
        format!("{who} runs as root, to hand each shared volume to its server's user"),
    ));
    out.push(at(
        "DL004",
        "config_bucket",
        format!("{who} keeps Linux capabilities CHOWN and DAC_OVERRIDE (drops the rest of Docker's default set)"),
    ));
    if let Some(why) = unpinned(&config.sidecar_image) {
        out.push(at(
            "DL006",
            "config_bucket.sidecar_image",
            format!("image {} of {who} {why}", config.sidecar_image),
        ));
    }
}

/// `root`, uid 0, or either with a group.
fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    name == "root" || name == "0"
}

/// Why an image reference is not pinned, if it is not.
fn unpinned(image: &str) -> Option<&'static str> {
    if image.contains("@sha256:") {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("has no tag: it runs `latest`"),
        Some((_, "latest")) => Some("is tagged `latest`"),
        Some(_) => None,
    }
}

fn services_and_clusters(i: &Input<'_>, out: &mut Vec<Finding>) {
    let s = &i.loaded.stack;
    for (k, svc) in &s.services {
        if svc.assign_public_ip {
            out.push(i.at_stack(
                "DL012",
                address(Kind::EcsService, k),
                &format!("services.{k}.assign_public_ip"),
                format!("service `{k}` gives its tasks a public IP"),
            ));
        }
    }
    for (k, c) in &s.clusters {
        if !c.existing && !c.container_insights {
            out.push(i.at_stack(
                "DL014",
                address(Kind::EcsCluster, k),
                &format!("clusters.{k}.container_insights"),
                format!("cluster `{}` has Container Insights off", c.name),
            ));
        }
    }
    for (k, lg) in &s.log_groups {
        if lg.retention_days.is_none() {
            out.push(i.at_stack(
                "DL015",
                address(Kind::LogGroup, k),
                &format!("log_groups.{k}"),
                format!(
                    "log group {} keeps its logs forever (no retention_days)",
                    lg.name
                ),
            ));
        }
    }
}

fn security_groups(i: &Input<'_>, out: &mut Vec<Finding>) {
    let s = &i.loaded.stack;
    for (g, sg) in &s.security_groups {
        let addr = address(Kind::SecurityGroup, g);
        for (dir, rules) in [("ingress", &sg.ingress), ("egress", &sg.egress)] {
            for (n, r) in rules.iter().enumerate() {
                let p = format!("security_groups.{g}.{dir}.{n}");
                if r.description.trim().is_empty() {
                    out.push(i.at_stack(
                        "DL022",
                        addr.clone(),
                        &p,
                        format!("{dir} rule {n} of group `{g}` has no description"),
                    ));
                }
                let world = r.cidr.as_deref().is_some_and(is_world);
                if dir == "egress"
                    && world
                    && (r.protocol == "all" || r.ports.is_some() || r.port != Some(443))
                {
                    let what = match (&r.ports, r.port) {
                        (Some(range), _) => format!("ports {range}"),
                        (None, Some(port)) => format!("port {port}"),
                        (None, None) => "every port".to_string(),
                    };
                    out.push(i.at_stack(
                        "DL021",
                        addr.clone(),
                        &p,
                        format!("group `{g}` lets {what} out to the whole internet"),
                    ));
                }
            }
        }
        let named = |p: &Option<String>| p.as_deref() == Some(g.as_str());
        let used = s
            .services
            .values()
            .any(|svc| svc.security_groups.contains(g))
            || s.file_systems
                .values()
                .any(|f| f.mount_target_security_groups.contains(g))
            || s.security_groups.iter().any(|(other, o)| {
                other != g
                    && (o.ingress.iter().any(|r| named(&r.from))
                        || o.egress.iter().any(|r| named(&r.to)))
            });
        if !used {
            out.push(i.at_stack(
                "DL023",
                addr,
                &format!("security_groups.{g}"),
                format!(
                    "group `{g}` is used by no service, mount target or other group of the stack"
                ),
            ));
        }
    }
}

fn iam(i: &Input<'_>, out: &mut Vec<Finding>) {
    let s = &i.loaded.stack;
    for (r, role) in &s.iam_roles {
        let addr = address(Kind::IamRole, r);
        for (p, statements) in &role.policies {
            for (n, st) in statements.iter().enumerate() {
                if st.effect != crate::spec::Effect::Allow {
                    continue;
                }
                let sp = format!("iam_roles.{r}.policies.{p}.{n}");
                statement(
                    i,
                    &addr,
                    &format!("policy `{p}` of role `{r}`"),
                    &sp,
                    st,
                    out,
                );
            }
        }
    }
}

fn statement(
    i: &Input<'_>,
    addr: &str,
    what: &str,
    sp: &str,
    st: &StatementSpec,
    out: &mut Vec<Finding>,
) {
    for (j, a) in st.actions.iter().enumerate() {
        if a == "*" || a.ends_with(":*") {
            out.push(i.at_stack(
                "DL024",
                addr.to_string(),
                &format!("{sp}.actions.{j}"),
                format!("{what} allows `{a}`"),
            ));
        }
        let lower = a.to_ascii_lowercase();
        if lower == "iam:passrole" || lower == "iam:*" || lower == "*" {
            out.push(i.at_stack(
                "DL027",
                addr.to_string(),
                &format!("{sp}.actions.{j}"),
                format!("{what} allows iam:PassRole, which the stack cannot limit to ecs-tasks.amazonaws.com"),
            ));
        }
    }
    if let Some(k) = st.resources.iter().position(|r| r == "*") {
        let scopable: Vec<&str> = st
            .actions
            .iter()
            .map(String::as_str)
            .filter(|a| !a.ends_with('*') && !is_unscopable(a))
            .collect();
        if !scopable.is_empty() {
            let (known, unknown): (Vec<&str>, Vec<&str>) = scopable.iter().partition(|a| {
                a.split_once(':').is_some_and(|(s, _)| {
                    unscopable::SERVICES.contains(&s.to_ascii_lowercase().as_str())
                })
            });
            let mut parts = Vec::new();
            if !known.is_empty() {
                parts.push(format!(
                    "actions that take a resource ARN: {}",
                    known.join(", ")
                ));
            }
            if !unknown.is_empty() {
                parts.push(format!(
                    "actions of services deploy has no list for: {}",
                    unknown.join(", ")
                ));
            }
            out.push(i.at_stack(
                "DL025",
                addr.to_string(),
                &format!("{sp}.resources.{k}"),
                format!("{what} grants on `*` {}", parts.join("; ")),
            ));
        }
    }
    let stack_kinds: std::collections::BTreeSet<Kind> =
        i.built.desired.iter().map(|d| d.address.kind).collect();
    for (k, res) in st.resources.iter().enumerate() {
        let arn = crate::spec::statement_resource(&i.loaded.stack, i.lookups, res);
        // arn:PARTITION:SERVICE:REGION:ACCOUNT:PREFIX* (the account may be a placeholder
        // with a colon offline: only the service and the end are compared).
        let service = arn.split(':').nth(2).unwrap_or("");
        for info in KINDS.iter().filter(|info| stack_kinds.contains(&info.kind)) {
            let wildcard = format!(":{}*", info.tagging.arn_prefix);
            if arn.starts_with("arn:")
                && info.tagging.arn_service == service
                && arn.ends_with(&wildcard)
            {
                out.push(i.at_stack(
                    "DL026",
                    addr.to_string(),
                    &format!("{sp}.resources.{k}"),
                    format!(
                        "{what} names `{res}` as {arn}: every {} in the account and region, the other environments' included",
                        info.display_name
                    ),
                ));
            }
        }
    }
}

/// Whether an action takes no resource ARN (see [`unscopable`]).
pub fn is_unscopable(action: &str) -> bool {
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    unscopable::UNSCOPABLE.iter().any(|u| {
        u.split_once(':')
            .is_some_and(|(s, n)| s.eq_ignore_ascii_case(service) && n.eq_ignore_ascii_case(name))
    })
}
