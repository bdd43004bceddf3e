//! Turns a validated stack plus its looked-up values into the desired resources: names
//! resolved, policies canonical, templates rendered and wired into the task definitions.

use super::{LoadedStack, RoleSpec, RuleSpec, SecretRefSpec, SpecError, SpecErrors, Stack};
use crate::model::{
    canonical_policy, external_secret_key, Address, Attrs, Container, Desired, EcsClusterAttrs,
    EcsServiceAttrs, HealthCheck, IamRoleAttrs, Kind, LogConfig, LogGroupAttrs, Lookups, Peer,
    PortMapping, Rule, SecretAttrs, SecretRef, SecurityGroupAttrs, Tags, TaskDefinitionAttrs,
    TAG_DISPOSABLE, TAG_ENV, TAG_STACK,
};
use crate::render::{deliver_files, RenderContext, Templates};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The inline policy deploy writes on an execution role whose task definitions use secrets:
/// read access to exactly those secrets and parameters, nothing else.
pub const SECRETS_POLICY: &str = "deploy-secrets";

/// A rule's `cidr` that stands for the looked-up VPC's primary IPv4 range.
pub const VPC_CIDR: &str = "vpc";

/// The tags that mark a resource as this stack's.
pub fn ownership_tags(stack: &Stack) -> Tags {
    [
        (TAG_STACK.to_string(), stack.stack.clone()),
        (TAG_ENV.to_string(), stack.environment.clone()),
        (TAG_DISPOSABLE.to_string(), stack.disposable.to_string()),
    ]
    .into()
}

/// IAM is global while stacks are regional: role names carry the region so the same stack
/// in two regions never shares (or fights over) a role.
pub fn role_aws_name(role: &RoleSpec, region: &str) -> String {
    format!("{}-{region}", role.name)
}

/// Ids that follow from names alone (role ARNs, log group names, cluster names), so
/// `validate` and `render` can show the exact requests before anything exists, and apply
/// starts from them.
pub fn deterministic_ids(s: &Stack, lookups: &Lookups) -> BTreeMap<Address, String> {
    let mut refs = BTreeMap::new();
    for (k, r) in &s.iam_roles {
        let path = r
            .path
            .clone()
            .unwrap_or_else(|| format!("/deploy/{}/", s.stack));
        refs.insert(
            Address::new(Kind::IamRole, k),
            format!(
                "arn:aws:iam::{}:role{path}{}",
                lookups.account_id,
                role_aws_name(r, &lookups.region)
            ),
        );
    }
    for (k, g) in &s.log_groups {
        refs.insert(Address::new(Kind::LogGroup, k), g.name.clone());
    }
    for (k, c) in &s.clusters {
        refs.insert(Address::new(Kind::EcsCluster, k), c.name.clone());
    }
    refs
}

fn role_path(stack: &Stack, role: &RoleSpec) -> String {
    role.path
        .clone()
        .unwrap_or_else(|| format!("/deploy/{}/", stack.stack))
}

/// What a policy statement's resource of the stack file becomes: an address of the stack
/// turned into its ARN (a pattern when the ARN is not known before the resource exists),
/// anything else as written.
pub fn statement_resource(stack: &Stack, lookups: &Lookups, resource: &str) -> String {
    resource
        .parse::<Address>()
        .ok()
        .and_then(|a| resource_arn(stack, lookups, &a))
        .unwrap_or_else(|| resource.to_string())
}

/// ARN of a resource of this stack, for IAM policy statements.
fn resource_arn(stack: &Stack, lookups: &Lookups, a: &Address) -> Option<String> {
    let (region, account) = (&lookups.region, &lookups.account_id);
    Some(match a.kind {
        Kind::LogGroup => format!(
            "arn:aws:logs:{region}:{account}:log-group:{}:*",
            stack.log_groups.get(&a.name)?.name
        ),
        Kind::IamRole => {
            let r = stack.iam_roles.get(&a.name)?;
            format!(
                "arn:aws:iam::{account}:role{}{}",
                role_path(stack, r),
                role_aws_name(r, region)
            )
        }
        Kind::EcsCluster => format!(
            "arn:aws:ecs:{region}:{account}:cluster/{}",
            stack.clusters.get(&a.name)?.name
        ),
        Kind::TaskDefinition => format!(
            "arn:aws:ecs:{region}:{account}:task-definition/{}:*",
            stack.task_definitions.get(&a.name)?.family
        ),
        Kind::EcsService => {
            let s = stack.services.get(&a.name)?;
            let cluster = &stack.clusters.get(&s.cluster)?.name;
            format!(
                "arn:aws:ecs:{region}:{account}:service/{cluster}/{}",
                s.name
            )
        }
        Kind::SecurityGroup => format!("arn:aws:ec2:{region}:{account}:security-group/*"),
        // Secrets Manager appends six random characters to the name: the form AWS documents
        // for naming one secret in a policy before it exists.
        Kind::Secret => format!(
            "arn:aws:secretsmanager:{region}:{account}:secret:{}-??????",
            stack.secrets.get(&a.name)?.name
        ),
        // Their ARNs carry ids AWS picks: not known before they exist.
        Kind::TargetGroup
        | Kind::ListenerRule
        | Kind::ServiceDiscoveryNamespace
        | Kind::ServiceDiscoveryService => return None,
        Kind::EfsFileSystem | Kind::EfsMountTargets | Kind::EfsAccessPoint => {
            return super::efs::resource_arn(stack, lookups, a)
        }
        Kind::S3Bucket => format!("arn:aws:s3:::{}", super::reload::bucket_of(stack, lookups)?),
        Kind::AmpWorkspace => return super::history::resource_arn(stack, lookups, a),
    })
}

/// The ARN of an SSM parameter named by name or ARN.
fn ssm_parameter_arn(lookups: &Lookups, name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_string();
    }
    format!(
        "arn:aws:ssm:{}:{}:parameter/{}",
        lookups.region,
        lookups.account_id,
        name.trim_start_matches('/')
    )
}

/// Where a container secret is read from: an address of this stack, or the ARN the lookup
/// found (a marked placeholder under `validate`, which looks nothing up).
fn secret_source(r: &SecretRefSpec, lookups: &Lookups) -> SecretRef {
    let looked_up = |store: &str, name: &str| {
        let key = external_secret_key(store, name);
        lookups
            .secrets
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("<lookup:{key}>"))
    };
    let from = match (&r.secret, &r.secrets_manager, &r.ssm) {
        (Some(key), _, _) => Address::new(Kind::Secret, key).to_string(),
        (None, Some(name), _) => looked_up("secretsmanager", name),
        (None, None, Some(name)) => ssm_parameter_arn(lookups, name),
        (None, None, None) => String::new(),
    };
    SecretRef {
        from,
        json_key: r.json_key.clone(),
    }
}

/// The [`SECRETS_POLICY`] document for execution role `role_key`: GetSecretValue on the
/// secrets and GetParameters on the parameters its task definitions' containers use. `None`
/// when they use none.
fn secrets_policy(stack: &Stack, lookups: &Lookups, role_key: &str) -> Option<Value> {
    let mut secrets = BTreeSet::new();
    let mut parameters = BTreeSet::new();
    let refs = stack
        .task_definitions
        .values()
        .filter(|td| td.execution_role == role_key)
        .flat_map(|td| td.containers.values())
        .flat_map(|c| c.secrets.values());
    for r in refs {
        if r.ssm.is_some() {
            parameters.insert(secret_source(r, lookups).from);
        } else if let Some(key) = &r.secret {
            secrets.extend(resource_arn(
                stack,
                lookups,
                &Address::new(Kind::Secret, key),
            ));
        } else {
            secrets.insert(secret_source(r, lookups).from);
        }
    }
    let mut statements = Vec::new();
    if !secrets.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets,
        }));
    }
    if !parameters.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": parameters,
        }));
    }
    (!statements.is_empty())
        .then(|| canonical_policy(&json!({"Version": "2012-10-17", "Statement": statements})))
}

/// A rendered `.json` file (a dashboard) travels compact: whitespace is most of its bytes,
/// and the task definition has 64 KiB for everything. Key order is kept; the plan shows it
/// pretty again. Anything that does not parse is left as rendered.
fn compact_json(path: &str, text: String) -> String {
    if !path.ends_with(".json") {
        return text;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => serde_json::to_string(&v).expect("JSON value serializes"),
        Err(_) => text,
    }
}

/// A file rendered from a template for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Key of the task definition in the stack.
    pub task: String,
    pub container: String,
    /// Absolute path inside the container.
    pub path: String,
    pub template: String,
    pub content: String,
}

/// What the stack wants: its resources and the files rendered into them.
#[derive(Debug, Clone)]
pub struct Built {
    pub desired: Vec<Desired>,
    pub files: Vec<RenderedFile>,
}

impl Built {
    /// Warnings for rendered files that scrape through the load balancer on a port whose
    /// target group has several targets: each scrape reaches a different task, so their
    /// counters mix and rates jump. Per-task discovery avoids it.
    pub fn scrape_warnings(&self, lookups: &Lookups) -> Vec<String> {
        let lb = &lookups.load_balancer;
        let mut out = Vec::new();
        for (port, n) in &lb.targets_by_port {
            let address = format!("{}:{port}", lb.dns_name);
            for f in self.files.iter().filter(|f| f.content.contains(&address)) {
                if *n > 1 {
                    out.push(format!(
                        "{} ({}) scrapes {address}, and load balancer `{}` forwards port {port} to \
                         {n} targets: each scrape reaches one of them, so their counters mix. Scrape \
                         each task instead (vars.backend.discovery: dns with the backend's Cloud Map \
                         name in vars.backend.dns_name)",
                        f.path, f.template, lb.name
                    ));
                }
            }
        }
        out
    }
}

/// Every resource the stack wants, in declaration order by kind. Template and delivery
/// problems come back located at the field that names the template.
pub fn build_desired(
    loaded: &LoadedStack,
    lookups: &Lookups,
    templates: &Templates,
) -> Result<Built, SpecErrors> {
    let s = &loaded.stack;
    let region = lookups.region.as_str();
    let tags = s.tags.clone();
    let mut out = Vec::new();
    let mut rendered = Vec::new();
    let mut errors = Vec::new();
    let plain = |kind, name: &str, attrs| Desired {
        address: Address::new(kind, name),
        attrs,
        ignore: BTreeSet::new(),
        restart_loses: None,
    };

    for (key, sec) in &s.secrets {
        out.push(plain(
            Kind::Secret,
            key,
            Attrs::Secret(SecretAttrs {
                name: sec.name.clone(),
                description: sec.description.clone(),
                value: sec.generate.generation(sec.rotation).encode(),
                tags: tags.clone(),
            }),
        ));
    }

    for (key, lg) in &s.log_groups {
        out.push(plain(
            Kind::LogGroup,
            key,
            Attrs::LogGroup(LogGroupAttrs {
                name: lg.name.clone(),
                retention_days: lg.retention_days,
                tags: tags.clone(),
            }),
        ));
    }

    for (key, role) in &s.iam_roles {
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": role.assumed_by},
                "Action": "sts:AssumeRole",
            }],
        });
        let mut inline = BTreeMap::new();
        for (pname, stmts) in &role.policies {
            let statements: Vec<Value> = stmts
                .iter()
                .map(|st| {
                    let resources: Vec<String> = st
                        .resources
                        .iter()
                        .map(|r| statement_resource(s, lookups, r))
                        .collect();
                    json!({
                        "Effect": format!("{:?}", st.effect),
                        "Action": st.actions,
                        "Resource": resources,
                    })
                })
                .collect();
            let doc = json!({"Version": "2012-10-17", "Statement": statements});
            inline.insert(pname.clone(), canonical_policy(&doc));
        }
        if let Some(doc) = secrets_policy(s, lookups, key) {
            inline.insert(SECRETS_POLICY.to_string(), doc);
        }
        if let Some(doc) = super::reload::task_role_policy(s, lookups, key) {
            inline.insert(super::reload::RELOAD_POLICY.to_string(), doc);
        }
        if let Some(doc) = super::history::task_role_policy(s, lookups, key) {
            inline.insert(super::history::POLICY.to_string(), doc);
        }
        out.push(plain(
            Kind::IamRole,
            key,
            Attrs::IamRole(IamRoleAttrs {
                name: role_aws_name(role, region),
                path: role_path(s, role),
                description: role.description.clone(),
                assume_role_policy: canonical_policy(&trust),
                inline_policies: inline,
                managed_policy_arns: role.managed_policies.iter().cloned().collect(),
                tags: tags.clone(),
            }),
        ));
    }

    for (key, sg) in &s.security_groups {
        let rules = |list: &[RuleSpec], ingress: bool| -> BTreeSet<Rule> {
            list.iter()
                .flat_map(|r| rule_models(r, ingress, lookups))
                .collect()
        };
        out.push(plain(
            Kind::SecurityGroup,
            key,
            Attrs::SecurityGroup(SecurityGroupAttrs {
                name: sg.name.clone(),
                description: sg.description.clone(),
                vpc_id: lookups.vpc_id.clone(),
                ingress: rules(&sg.ingress, true),
                egress: rules(&sg.egress, false),
                tags: tags.clone(),
            }),
        ));
    }

    for (key, c) in s.clusters.iter().filter(|(_, c)| !c.existing) {
        out.push(plain(
            Kind::EcsCluster,
            key,
            Attrs::EcsCluster(EcsClusterAttrs {
                name: c.name.clone(),
                container_insights: if c.container_insights {
                    "enabled"
                } else {
                    "disabled"
                }
                .into(),
                tags: tags.clone(),
            }),
        ));
    }

    let ctx = RenderContext {
        stack: s.stack.clone(),
        environment: s.environment.clone(),
        region: region.to_string(),
        vars: s.vars.clone(),
        lookups: lookups.clone(),
        history: super::history::scope(s, region),
    };
    let mut fingerprints = BTreeMap::new();
    let config_bucket = super::reload::bucket_of(s, lookups);
    let mut bucket_files = BTreeMap::new();
    for (key, td) in &s.task_definitions {
        let mut containers = Vec::new();
        let mut shared_volumes = BTreeSet::new();
        for (cname, c) in &td.containers {
            let cpath = format!("task_definitions.{key}.containers.{cname}");
            let mut files = BTreeMap::new();
            for (path, template) in &c.files {
                match templates.render(template, &ctx) {
                    Ok(text) => {
                        let text = compact_json(path, text);
                        for name in crate::render::secrets_in(&text) {
                            if !c.secrets.contains_key(&name) {
                                errors.push(loaded.error_at(
                                    &format!("{cpath}.files.{path}"),
                                    format!(
                                        "{template} uses secret(\"{name}\"), which is not under this container's secrets"
                                    ),
                                ));
                            }
                        }
                        rendered.push(RenderedFile {
                            task: key.clone(),
                            container: cname.clone(),
                            path: path.clone(),
                            template: template.clone(),
                            content: text.clone(),
                        });
                        files.insert(path.clone(), text);
                    }
                    // An error inside the template is located there; one without a line
                    // (no such template, or one that cannot be read) is the stack's naming
                    // of it, located at the stack's field.
                    Err(e) => errors.push(match e.line {
                        Some(line) => SpecError {
                            file: e.template.clone().into(),
                            line,
                            column: 0,
                            path: format!("{cpath}.files.{path}"),
                            message: e.message.clone(),
                        },
                        None => loaded.error_at(
                            &format!("{cpath}.files.{path}"),
                            format!("template {template:?}: {}", e.message),
                        ),
                    }),
                }
            }
            for (path, var) in &c.secret_files {
                if !c.secrets.contains_key(var) {
                    errors.push(loaded.error_at(
                        &format!("{cpath}.secret_files.{path}"),
                        format!("`{var}` is not under this container's secrets"),
                    ));
                }
                files.insert(path.clone(), crate::render::secret_marker(var));
            }
            if let Some(r) = &c.reload {
                bucket_files.extend(super::reload::take_reloaded(
                    &td.family, cname, &r.dir, &mut files,
                ));
                shared_volumes.insert(super::reload::volume_name(cname));
            }
            let (entry_point, command, mut environment) = if files.is_empty() {
                (
                    c.entry_point.iter().cloned().collect(),
                    c.args.clone(),
                    BTreeMap::new(),
                )
            } else {
                let program = c.entry_point.clone().unwrap_or_default();
                match deliver_files(&files, &program, &c.args) {
                    Ok(d) => (d.entry_point, d.command, d.environment),
                    Err(e) => {
                        errors.push(loaded.error_at(&format!("{cpath}.files"), e.to_string()));
                        continue;
                    }
                }
            };
            environment.extend(c.environment.clone());
            environment.extend(super::history::container_environment(s, c));
            containers.push(Container {
                name: cname.clone(),
                image: c.image.clone(),
                essential: c.essential,
                cpu: c.cpu.unwrap_or(0) as i32,
                memory_reservation: c.memory_reservation.map(|m| m as i32),
                user: c.user.clone(),
                readonly_root_filesystem: c.readonly_root_filesystem,
                capabilities_drop: c.linux_parameters.capabilities.drop.clone(),
                entry_point,
                command,
                environment,
                secrets: c
                    .secrets
                    .iter()
                    .map(|(k, r)| (k.clone(), secret_source(r, lookups)))
                    .collect(),
                port_mappings: c
                    .ports
                    .iter()
                    .map(|p| PortMapping {
                        container_port: *p as i32,
                        protocol: "tcp".into(),
                    })
                    .collect(),
                log: c.log_group.as_ref().map(|lg| LogConfig {
                    driver: "awslogs".into(),
                    options: [
                        (
                            "awslogs-group".to_string(),
                            Address::new(Kind::LogGroup, lg).to_string(),
                        ),
                        ("awslogs-region".to_string(), region.to_string()),
                        (
                            "awslogs-stream-prefix".to_string(),
                            c.stream_prefix.clone().unwrap_or_else(|| cname.clone()),
                        ),
                    ]
                    .into(),
                }),
                health_check: c.health_check.as_ref().map(|h| HealthCheck {
                    command: vec!["CMD-SHELL".into(), h.command.clone()],
                    interval: h.interval as i32,
                    timeout: h.timeout as i32,
                    retries: h.retries as i32,
                    start_period: h.start_period as i32,
                }),
                mount_points: super::efs::mount_points(c),
                depends_on: BTreeMap::new(),
            });
            if let (Some(r), Some(container)) = (&c.reload, containers.last_mut()) {
                super::reload::wire_container(container, &r.dir);
            }
        }
        if let (Some(bucket), true) = (&config_bucket, super::reload::reloads(td)) {
            let log = containers.iter().find_map(|c| c.log.clone()).map(|mut l| {
                l.options.insert(
                    "awslogs-stream-prefix".into(),
                    super::reload::SIDECAR.into(),
                );
                l
            });
            let source = |r: &SecretRefSpec| secret_source(r, lookups);
            match super::reload::sidecar(s, td, bucket, templates, &ctx, &source, log) {
                Ok((sidecar, (path, script))) => {
                    // Its script is a rendered file like the others (`deploy render` writes it).
                    rendered.push(RenderedFile {
                        task: key.clone(),
                        container: sidecar.name.clone(),
                        path,
                        template: super::reload::SIDECAR_TEMPLATE.to_string(),
                        content: script,
                    });
                    containers.push(sidecar)
                }
                Err(e) => errors.push(loaded.error_at(
                    &format!("task_definitions.{key}.containers"),
                    format!("the config sidecar: {e}"),
                )),
            }
        }
        let attrs = TaskDefinitionAttrs {
            family: td.family.clone(),
            cpu: td.cpu.to_string(),
            memory: td.memory.to_string(),
            network_mode: "awsvpc".into(),
            requires_compatibilities: ["FARGATE".to_string()].into(),
            execution_role: Some(Address::new(Kind::IamRole, &td.execution_role).to_string()),
            task_role: td
                .task_role
                .as_ref()
                .map(|r| Address::new(Kind::IamRole, r).to_string()),
            ephemeral_storage_gib: td.ephemeral_storage_gib.map(|g| g as i32),
            cpu_architecture: td.cpu_architecture.clone(),
            containers,
            tags: tags.clone(),
            volumes: super::efs::task_volumes(td),
            shared_volumes,
        };
        fingerprints.insert(
            key.clone(),
            format!(
                "{}@{}",
                Address::new(Kind::TaskDefinition, key),
                attrs.content_hash()
            ),
        );
        out.push(Desired {
            address: Address::new(Kind::TaskDefinition, key),
            attrs: Attrs::TaskDefinition(attrs),
            ignore: BTreeSet::new(),
            restart_loses: td.restart_loses.clone(),
        });
    }

    out.extend(super::history::desired(s, &tags));
    out.extend(super::reload::bucket_desired(
        s,
        lookups,
        &tags,
        bucket_files,
    ));

    for (key, svc) in &s.services {
        let cluster = match s.clusters.get(&svc.cluster) {
            Some(c) if c.existing => c.name.clone(),
            _ => Address::new(Kind::EcsCluster, &svc.cluster).to_string(),
        };
        let restart_loses = s
            .task_definitions
            .get(&svc.task_definition)
            .and_then(|td| td.restart_loses.clone());
        out.push(Desired {
            address: Address::new(Kind::EcsService, key),
            attrs: Attrs::EcsService(EcsServiceAttrs {
                name: svc.name.clone(),
                cluster,
                task_definition: fingerprints
                    .get(&svc.task_definition)
                    .cloned()
                    .unwrap_or_default(),
                desired_count: svc.desired_count as i32,
                launch_type: "FARGATE".into(),
                platform_version: "LATEST".into(),
                subnets: lookups.subnet_ids.iter().cloned().collect(),
                security_groups: svc
                    .security_groups
                    .iter()
                    .map(|g| Address::new(Kind::SecurityGroup, g).to_string())
                    .collect(),
                assign_public_ip: svc.assign_public_ip,
                circuit_breaker: true,
                circuit_breaker_rollback: true,
                breaker_threshold: svc
                    .deployment
                    .circuit_breaker
                    .threshold
                    .as_ref()
                    .map(|t| format!("{} {}", t.kind, t.value))
                    .unwrap_or_else(|| crate::model::DEFAULT_BREAKER_THRESHOLD.to_string()),
                breaker_reset_on_healthy_task: svc.deployment.circuit_breaker.reset_on_healthy_task,
                minimum_healthy_percent: svc.deployment.minimum_healthy_percent as i32,
                maximum_percent: svc.deployment.maximum_percent as i32,
                enable_execute_command: svc.enable_execute_command,
                propagate_tags: "SERVICE".into(),
                tags: tags.clone(),
                load_balancers: super::lb_discovery::service_links(svc).0,
                health_check_grace_period_seconds: svc
                    .health_check_grace_period_seconds
                    .unwrap_or(0) as i32,
                service_registries: super::lb_discovery::service_links(svc).1,
            }),
            ignore: svc.ignore_changes.iter().cloned().collect(),
            restart_loses,
        });
    }

    out.extend(super::lb_discovery::build(s, lookups, &tags));
    out.extend(super::efs::build(s, lookups, &tags));

    if errors.is_empty() {
        Ok(Built {
            desired: out,
            files: rendered,
        })
    } else {
        Err(SpecErrors(errors))
    }
}

/// One stack rule → the normalized rules it stands for (`load_balancer` may mean several
/// groups).
fn rule_models(r: &RuleSpec, ingress: bool, lookups: &Lookups) -> Vec<Rule> {
    let (protocol, from_port, to_port) = if r.protocol == "all" {
        ("-1".to_string(), -1, -1)
    } else {
        let (a, b) = match (r.port, &r.ports) {
            (Some(p), _) => (p as i32, p as i32),
            (None, Some(range)) => super::validate::parse_port_range(range).unwrap_or((0, 0)),
            (None, None) => (-1, -1),
        };
        (r.protocol.clone(), a, b)
    };
    let peer_name = if ingress { &r.from } else { &r.to };
    let peers: Vec<Peer> = match (&r.cidr, peer_name) {
        (Some(c), _) if c == VPC_CIDR => vec![Peer::Cidr(lookups.vpc_cidr.clone())],
        (Some(c), _) => vec![Peer::Cidr(c.clone())],
        (None, Some(g)) if g == "load_balancer" => lookups
            .load_balancer
            .security_groups
            .iter()
            .map(|id| Peer::Group(id.clone()))
            .collect(),
        (None, Some(g)) => vec![Peer::Group(
            Address::new(Kind::SecurityGroup, g).to_string(),
        )],
        (None, None) => vec![],
    };
    peers
        .into_iter()
        .map(|peer| Rule {
            protocol: protocol.clone(),
            from_port,
            to_port,
            peer,
            description: r.description.clone(),
        })
        .collect()
}
