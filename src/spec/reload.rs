//! Wires containers' `reload` files through the config bucket: which rendered files leave the
//! task definition, the volume and start order they need, the config sidecar of their task, the
//! task role's access to its own files, and the bucket itself. (The bucket's layout and the
//! sidecar script's protocol are `render::reload`'s; the S3 calls are `aws::s3`'s.)

use super::{LoadedStack, SpecError, Stack, TaskDefinitionSpec};
use crate::model::{
    canonical_policy, Address, Attrs, Container, Desired, HealthCheck, Kind, LogConfig, Lookups,
    MountPoint, S3BucketAttrs, SecretRef, Tags,
};
use crate::render::reload::{
    bucket_name, bucket_policy, files_prefix, manifest_key, status_prefix,
};
use crate::render::{deliver_files, RenderContext, Templates};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The sidecar's container name in every task with `reload` containers.
pub const SIDECAR: &str = "config";
/// Where the sidecar sees each reloading container's volume: `/config/CONTAINER`.
pub const SIDECAR_DIR: &str = "/config";
/// The template of the sidecar's loop (templates/reloader.sh).
pub const SIDECAR_TEMPLATE: &str = "reloader.sh";
/// The inline policy deploy writes on a task role whose tasks run the sidecar.
pub const RELOAD_POLICY: &str = "deploy-config";

/// Docker's default capabilities but CHOWN and DAC_OVERRIDE: what the sidecar drops.
pub const SIDECAR_DROPS: [&str; 12] = [
    "AUDIT_WRITE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The servers the sidecar knows how to reload.
pub const SERVERS: [&str; 2] = ["prometheus", "alertmanager"];

/// The name of the task volume a reloading container shares with the sidecar.
pub fn volume_name(container: &str) -> String {
    format!("config-{container}")
}

/// The stack's config bucket name, `None` without a `config_bucket` section.
pub fn bucket_of(stack: &Stack, lookups: &Lookups) -> Option<String> {
    stack.config_bucket.as_ref()?;
    Some(bucket_name(
        &stack.stack,
        &stack.environment,
        &lookups.account_id,
        &lookups.region,
    ))
}

/// Whether any container of `td` reloads.
pub fn reloads(td: &TaskDefinitionSpec) -> bool {
    td.containers.values().any(|c| c.reload.is_some())
}

/// Takes the files a reloading container gets from the bucket out of `files` (container path
/// → rendered content): those under its `reload.dir` with no secret in them. Returns them as
/// bucket file keys `FAMILY/CONTAINER/PATH-UNDER-DIR` → content.
pub fn take_reloaded(
    family: &str,
    container: &str,
    dir: &str,
    files: &mut BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let moving: Vec<String> = files
        .iter()
        .filter(|(path, content)| {
            path.starts_with(&prefix) && crate::render::secrets_in(content).is_empty()
        })
        .map(|(path, _)| path.clone())
        .collect();
    moving
        .into_iter()
        .filter_map(|path| {
            let content = files.remove(&path)?;
            Some((
                format!("{family}/{container}/{}", &path[prefix.len()..]),
                content,
            ))
        })
        .collect()
}

/// The reloading container's side of the wiring: its volume at `dir`, and it starts only once
/// the sidecar's first fetch is done (healthy), so it never runs on no config.
pub fn wire_container(container: &mut Container, dir: &str) {
    container.mount_points.push(MountPoint {
        volume: volume_name(&container.name),
        path: dir.trim_end_matches('/').to_string(),
        read_only: false,
    });
    container
        .depends_on
        .insert(SIDECAR.to_string(), "HEALTHY".to_string());
}

/// The config sidecar of task definition `td`: the rendered reloader script run by `sh` in the
/// stock image, each reloading container's volume at `/config/CONTAINER`, the servers to
/// reload, and the credentials for it from the servers' own secrets. Not essential: if it
/// stops, the servers keep running on the files they have.
#[allow(clippy::too_many_arguments)]
pub fn sidecar(
    stack: &Stack,
    td: &TaskDefinitionSpec,
    bucket: &str,
    templates: &Templates,
    ctx: &RenderContext,
    secret_source: &dyn Fn(&super::SecretRefSpec) -> SecretRef,
    log: Option<LogConfig>,
) -> Result<(Container, (String, String)), String> {
    let config = stack
        .config_bucket
        .as_ref()
        .ok_or("`reload` needs the stack's `config_bucket` section")?;
    let script = templates
        .render(SIDECAR_TEMPLATE, ctx)
        .map_err(|e| format!("template {SIDECAR_TEMPLATE}: {}", e.message))?;
    let script_path = format!("/tmp/deploy/{SIDECAR_TEMPLATE}");
    let files = [(script_path.clone(), script.clone())].into();
    let delivery = deliver_files(
        &files,
        "/bin/sh",
        &[format!("/tmp/deploy/{SIDECAR_TEMPLATE}")],
    )
    .map_err(|e| e.to_string())?;
    let mut environment = delivery.environment;
    let mut targets = Vec::new();
    let mut owners = Vec::new();
    let mut secrets = BTreeMap::new();
    let mut mount_points = Vec::new();
    let mut auth_user = None;
    for (name, c) in &td.containers {
        let Some(r) = &c.reload else { continue };
        mount_points.push(MountPoint {
            volume: volume_name(name),
            path: format!("{SIDECAR_DIR}/{name}"),
            read_only: false,
        });
        if let Some(user) = &c.user {
            owners.push(format!("{name}={user}"));
        }
        let Some(server) = &r.server else { continue };
        let port = c.ports.first().copied().unwrap_or_default();
        targets.push(format!("{server}=https://localhost:{port}"));
        auth_user = r.user.clone();
        for (var, from) in [
            ("RELOAD_PASSWORD", &r.password),
            ("RELOAD_CA_CERT", &r.ca_cert),
        ] {
            if let Some(spec) = from.as_ref().and_then(|v| c.secrets.get(v)) {
                secrets.insert(var.to_string(), secret_source(spec));
            }
        }
    }
    environment.extend([
        ("CONFIG_BUCKET".to_string(), bucket.to_string()),
        ("CONFIG_MANIFEST".to_string(), manifest_key(&td.family)),
        ("CONFIG_PREFIX".to_string(), files_prefix(&td.family)),
        ("CONFIG_DIR".to_string(), SIDECAR_DIR.to_string()),
        ("POLL_SECONDS".to_string(), config.poll_seconds.to_string()),
    ]);
    if !targets.is_empty() {
        environment.insert("RELOAD_TARGETS".into(), targets.join(" "));
        environment.insert("RELOAD_USER".into(), auth_user.unwrap_or_default());
    }
    if !owners.is_empty() {
        environment.insert("CONFIG_OWNERS".into(), owners.join(" "));
    }
    let container = Container {
        name: SIDECAR.to_string(),
        image: config.sidecar_image.clone(),
        essential: false,
        cpu: 0,
        memory_reservation: Some(32),
        // root: it hands each volume to its server's user (`CONFIG_OWNERS`); it has no port.
        user: None,
        entry_point: delivery.entry_point,
        command: delivery.command,
        environment,
        secrets,
        port_mappings: vec![],
        log,
        health_check: Some(HealthCheck {
            command: vec![
                "CMD-SHELL".into(),
                format!("test -f {SIDECAR_DIR}/.deploy-ready"),
            ],
            interval: 5,
            timeout: 2,
            retries: 3,
            start_period: 60,
        }),
        mount_points,
        depends_on: BTreeMap::new(),
        // It writes /tmp and its own /config: the root stays writable.
        readonly_root_filesystem: false,
        // Root keeps only what handing the volumes over takes: CHOWN, and DAC_OVERRIDE to
        // write into them once they are the servers' (Fargate cannot add a capability back
        // after `ALL`, so the rest of Docker's default set is named).
        capabilities_drop: SIDECAR_DROPS.iter().map(|c| c.to_string()).collect(),
    };
    Ok((container, (script_path, script)))
}

/// The [`RELOAD_POLICY`] document of task role `role_key`: read its tasks' files and
/// manifests, write their status objects; `None` when none of its tasks reload.
pub fn task_role_policy(stack: &Stack, lookups: &Lookups, role_key: &str) -> Option<Value> {
    let bucket = bucket_of(stack, lookups)?;
    let arn = format!("arn:aws:s3:::{bucket}");
    let families: Vec<&str> = stack
        .task_definitions
        .values()
        .filter(|td| td.task_role.as_deref() == Some(role_key) && reloads(td))
        .map(|td| td.family.as_str())
        .collect();
    if families.is_empty() {
        return None;
    }
    let read: Vec<String> = families
        .iter()
        .flat_map(|f| {
            [
                format!("{arn}/{}*", files_prefix(f)),
                format!("{arn}/{}", manifest_key(f)),
            ]
        })
        .collect();
    let report: Vec<String> = families
        .iter()
        .map(|f| format!("{arn}/{}*", status_prefix(f)))
        .collect();
    Some(canonical_policy(&json!({
        "Version": "2012-10-17",
        "Statement": [
            // HeadObject is authorized as GetObject.
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": read},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": report},
        ],
    })))
}

/// The config bucket as the stack wants it, holding `files` (bucket file key → content).
pub fn bucket_desired(
    stack: &Stack,
    lookups: &Lookups,
    tags: &Tags,
    files: BTreeMap<String, String>,
) -> Option<Desired> {
    let name = bucket_of(stack, lookups)?;
    Some(Desired {
        address: Address::new(Kind::S3Bucket, "config"),
        attrs: Attrs::S3Bucket(S3BucketAttrs {
            policy: bucket_policy(&name),
            name,
            versioning: true,
            encryption: Some("AES256".into()),
            public_access_blocked: true,
            tags: tags.clone(),
            files,
        }),
        ignore: Default::default(),
        restart_loses: None,
    })
}

/// Checks of `reload` sections and the `config_bucket` section, located.
pub fn check(loaded: &LoadedStack, errs: &mut Vec<SpecError>) {
    let s = &loaded.stack;
    let mut err = |path: String, msg: String| errs.push(loaded.error_at(&path, msg));
    if let Some(c) = &s.config_bucket {
        if !(5..=3600).contains(&c.poll_seconds) {
            err(
                "config_bucket.poll_seconds".into(),
                "5-3600 seconds between checks of the bucket".into(),
            );
        }
        if c.sidecar_image.trim().is_empty() || !c.sidecar_image.contains(':') {
            err(
                "config_bucket.sidecar_image".into(),
                "name a stock image pinned by tag or digest (e.g. public.ecr.aws/aws-cli/aws-cli:2.27.50)"
                    .into(),
            );
        }
    }
    for (key, td) in &s.task_definitions {
        let mut servers = Vec::new();
        for (name, c) in &td.containers {
            let path = format!("task_definitions.{key}.containers.{name}");
            if name == SIDECAR && reloads(td) {
                err(
                    path.clone(),
                    format!("`{SIDECAR}` is the config sidecar's name in a task with `reload` containers"),
                );
            }
            let Some(r) = &c.reload else { continue };
            let at = format!("{path}.reload");
            if s.config_bucket.is_none() {
                err(
                    at.clone(),
                    "`reload` needs the stack's `config_bucket` section (the bucket and the sidecar image)".into(),
                );
            }
            if td.task_role.is_none() {
                err(
                    at.clone(),
                    "`reload` needs the task definition's `task_role` (the sidecar reads the bucket with it)".into(),
                );
            }
            let dir = r.dir.trim_end_matches('/');
            if !dir.starts_with('/') || dir.len() < 2 || dir.contains("..") {
                err(format!("{at}.dir"), "an absolute directory, not `/`".into());
            }
            if !c.files.keys().any(|p| p.starts_with(&format!("{dir}/"))) {
                err(
                    format!("{at}.dir"),
                    format!("none of this container's `files` is under {dir}"),
                );
            }
            if c.user.is_none() {
                err(
                    format!("{path}.user"),
                    "a reloading container needs `user` (uid[:gid]): the sidecar hands the shared volume to it".into(),
                );
            }
            if let Some(server) = &r.server {
                if !SERVERS.contains(&server.as_str()) {
                    err(
                        format!("{at}.server"),
                        format!("one of {} (or leave it out)", SERVERS.join(", ")),
                    );
                }
                if c.ports.is_empty() {
                    err(
                        format!("{at}.server"),
                        "the container needs a port to be reloaded on".into(),
                    );
                }
                for (field, value) in [
                    ("user", &r.user),
                    ("password", &r.password),
                    ("ca_cert", &r.ca_cert),
                ] {
                    match value {
                        None => err(
                            format!("{at}.{field}"),
                            "required with `server` (the reload call uses TLS and basic auth)"
                                .into(),
                        ),
                        Some(v) if field != "user" && !c.secrets.contains_key(v) => err(
                            format!("{at}.{field}"),
                            format!("`{v}` is not under this container's secrets"),
                        ),
                        _ => {}
                    }
                }
                servers.push((name, r));
            }
        }
        if let [(_, a), rest @ ..] = servers.as_slice() {
            if rest.iter().any(|(_, b)| b.user != a.user) {
                err(
                    format!("task_definitions.{key}.containers"),
                    "the reloaded servers of one task share one reload user".into(),
                );
            }
        }
    }
}
