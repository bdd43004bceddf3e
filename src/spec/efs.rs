//! The stack's EFS sections (`file_systems:`, `access_points:`, task `volumes:` and container
//! `mount_points:`): their checks and the desired resources they stand for. Kept apart from
//! validate.rs and build.rs so the storage kinds live in one place.
//!
//! One file system becomes two resources: `efs_file_system.KEY` (the data) and
//! `efs_mount_targets.KEY` (its mount targets in every looked-up subnet). Mount targets are a
//! kind of their own, not an attribute of the file system, because a file system kept by
//! `destroy` (it holds data) must still let go of the stack's security groups: its mount
//! targets use them, and AWS refuses to delete a group a mount target's network interface
//! uses. As a separate kind they are deleted with the rest while the file system stays.

use super::{LoadedStack, SpecError, Stack};
use crate::model::{
    Address, Attrs, Desired, EfsAccessPointAttrs, EfsFileSystemAttrs, EfsMountTargetsAttrs,
    EfsVolume, Kind, Lookups, MountPoint, Tags,
};
use std::collections::{BTreeMap, BTreeSet};

/// EFS's limit on creation tokens.
const MAX_TOKEN: usize = 64;

/// Lifecycle transitions EFS accepts for `TransitionToIA`.
pub const IA_TRANSITIONS: [&str; 9] = [
    "AFTER_1_DAY",
    "AFTER_7_DAYS",
    "AFTER_14_DAYS",
    "AFTER_30_DAYS",
    "AFTER_60_DAYS",
    "AFTER_90_DAYS",
    "AFTER_180_DAYS",
    "AFTER_270_DAYS",
    "AFTER_365_DAYS",
];

/// `STACK-ENVIRONMENT-KEY`: a file system's creation token and default name, an access
/// point's name. Stable across runs, so a retried create finds (or is) the same resource.
pub fn efs_token(stack: &Stack, key: &str) -> String {
    super::environments::fit(
        &format!("{}-{}-{key}", stack.stack, stack.environment),
        super::environments::EFS_TOKEN_LIMIT,
    )
}

/// The checks of the EFS sections, each problem located.
pub fn check(loaded: &LoadedStack) -> Vec<SpecError> {
    let s = &loaded.stack;
    let mut errs = Vec::new();
    let mut err = |path: String, msg: String| errs.push(loaded.error_at(&path, msg));

    for (key, fs) in &s.file_systems {
        let p = format!("file_systems.{key}");
        if efs_token(s, key).len() > MAX_TOKEN {
            err(
                p.clone(),
                format!(
                    "the creation token `{}` is longer than EFS's {MAX_TOKEN} characters; \
                     shorten the key",
                    efs_token(s, key)
                ),
            );
        }
        if !fs.encrypted {
            err(
                format!("{p}.encrypted"),
                "file systems are always encrypted at rest; remove `encrypted: false`".into(),
            );
        }
        if !["bursting", "elastic"].contains(&fs.throughput_mode.as_str()) {
            err(
                format!("{p}.throughput_mode"),
                "`bursting` or `elastic`".into(),
            );
        }
        if let Some(t) = &fs.transition_to_ia {
            if !IA_TRANSITIONS.contains(&t.as_str()) {
                err(
                    format!("{p}.transition_to_ia"),
                    format!("one of {}", IA_TRANSITIONS.join(", ")),
                );
            }
        }
        if let Some(n) = &fs.name {
            if n.is_empty() || n.len() > 256 {
                err(format!("{p}.name"), "1-256 characters".into());
            }
        }
        let groups = &fs.mount_target_security_groups;
        if groups.is_empty() || groups.len() > 5 {
            err(
                format!("{p}.mount_target_security_groups"),
                "name 1 to 5 security groups of this stack".into(),
            );
        }
        for (i, g) in groups.iter().enumerate() {
            if !s.security_groups.contains_key(g) {
                err(
                    format!("{p}.mount_target_security_groups.{i}"),
                    format!("no security_groups.{g} in this stack"),
                );
            }
        }
    }

    for (key, ap) in &s.access_points {
        let p = format!("access_points.{key}");
        if !s.file_systems.contains_key(&ap.file_system) {
            err(
                format!("{p}.file_system"),
                format!("no file_systems.{} in this stack", ap.file_system),
            );
        }
        let ids = [
            ("uid", Some(ap.uid)),
            ("gid", Some(ap.gid)),
            ("owner_uid", ap.owner_uid),
            ("owner_gid", ap.owner_gid),
        ];
        for (field, v) in ids {
            if v.is_some_and(|v| !(0..=u32::MAX as i64).contains(&v)) {
                err(format!("{p}.{field}"), "0 to 4294967295".into());
            }
        }
        let dir = &ap.root_directory;
        if !dir.starts_with('/') || dir.len() > 100 || dir.contains("//") {
            err(
                format!("{p}.root_directory"),
                "an absolute path of at most 100 characters, e.g. /grafana".into(),
            );
        }
        let octal = ap.permissions.chars().all(|c| ('0'..='7').contains(&c));
        if !octal || !(3..=4).contains(&ap.permissions.len()) {
            err(
                format!("{p}.permissions"),
                "an octal mode like 0750 (quote it in YAML)".into(),
            );
        }
    }

    for (tkey, td) in &s.task_definitions {
        let p = format!("task_definitions.{tkey}");
        for (vname, v) in &td.volumes {
            let vp = format!("{p}.volumes.{vname}");
            if !s.file_systems.contains_key(&v.file_system) {
                err(
                    format!("{vp}.file_system"),
                    format!("no file_systems.{} in this stack", v.file_system),
                );
            }
            if let Some(a) = &v.access_point {
                match s.access_points.get(a) {
                    None => err(
                        format!("{vp}.access_point"),
                        format!("no access_points.{a} in this stack"),
                    ),
                    Some(ap) if ap.file_system != v.file_system => err(
                        format!("{vp}.access_point"),
                        format!(
                            "access_points.{a} is on file system `{}`, not `{}`",
                            ap.file_system, v.file_system
                        ),
                    ),
                    Some(_) => {}
                }
            }
            if td.task_role.is_none() {
                err(
                    vp.clone(),
                    "EFS volumes use IAM authorization: the task definition needs a task_role \
                     allowed elasticfilesystem:ClientMount (and ClientWrite) on the file system"
                        .into(),
                );
            }
        }
        for (cname, c) in &td.containers {
            let mut paths = BTreeSet::new();
            for (i, m) in c.mount_points.iter().enumerate() {
                let mp = format!("{p}.containers.{cname}.mount_points.{i}");
                if !td.volumes.contains_key(&m.volume) {
                    err(
                        format!("{mp}.volume"),
                        format!("no volume `{}` in {p}.volumes", m.volume),
                    );
                }
                if !m.path.starts_with('/') || !paths.insert(m.path.clone()) {
                    err(
                        format!("{mp}.path"),
                        "an absolute path, mounted once per container".into(),
                    );
                }
            }
        }
    }
    errs
}

/// The desired file systems, their mount targets and the access points.
pub fn build(stack: &Stack, lookups: &Lookups, tags: &Tags) -> Vec<Desired> {
    let plain = |kind, name: &str, attrs| Desired {
        address: Address::new(kind, name),
        attrs,
        ignore: BTreeSet::new(),
        restart_loses: None,
    };
    let fs_address = |key: &str| Address::new(Kind::EfsFileSystem, key).to_string();
    let mut out = Vec::new();
    for (key, fs) in &stack.file_systems {
        let token = efs_token(stack, key);
        out.push(plain(
            Kind::EfsFileSystem,
            key,
            Attrs::EfsFileSystem(EfsFileSystemAttrs {
                name: fs.name.clone().unwrap_or_else(|| token.clone()),
                creation_token: token,
                encrypted: true,
                performance_mode: "generalPurpose".into(),
                throughput_mode: fs.throughput_mode.clone(),
                transition_to_ia: fs.transition_to_ia.clone(),
                tags: tags.clone(),
            }),
        ));
        out.push(plain(
            Kind::EfsMountTargets,
            key,
            Attrs::EfsMountTargets(EfsMountTargetsAttrs {
                file_system: fs_address(key),
                subnets: lookups.subnet_ids.iter().cloned().collect(),
                security_groups: fs
                    .mount_target_security_groups
                    .iter()
                    .map(|g| Address::new(Kind::SecurityGroup, g).to_string())
                    .collect(),
            }),
        ));
    }
    for (key, ap) in &stack.access_points {
        out.push(plain(
            Kind::EfsAccessPoint,
            key,
            Attrs::EfsAccessPoint(EfsAccessPointAttrs {
                name: efs_token(stack, key),
                file_system: fs_address(&ap.file_system),
                uid: ap.uid,
                gid: ap.gid,
                root_directory: ap.root_directory.clone(),
                owner_uid: ap.owner_uid.unwrap_or(ap.uid),
                owner_gid: ap.owner_gid.unwrap_or(ap.gid),
                permissions: ap.permissions.clone(),
                tags: tags.clone(),
            }),
        ));
    }
    out
}

/// A task definition's EFS volumes, file systems and access points as addresses.
pub fn task_volumes(td: &super::TaskDefinitionSpec) -> BTreeMap<String, EfsVolume> {
    td.volumes
        .iter()
        .map(|(name, v)| {
            (
                name.clone(),
                EfsVolume {
                    file_system: Address::new(Kind::EfsFileSystem, &v.file_system).to_string(),
                    access_point: v
                        .access_point
                        .as_ref()
                        .map(|a| Address::new(Kind::EfsAccessPoint, a).to_string()),
                },
            )
        })
        .collect()
}

/// A container's mount points.
pub fn mount_points(c: &super::ContainerSpec) -> Vec<MountPoint> {
    c.mount_points
        .iter()
        .map(|m| MountPoint {
            volume: m.volume.clone(),
            path: m.path.clone(),
            read_only: m.read_only,
        })
        .collect()
}

/// ARN patterns for IAM statements naming an EFS resource of this stack. The id AWS gives a
/// file system or access point is not known before it exists, so the pattern covers the
/// account and region (as security groups do); narrow it with the access point condition
/// once the id is known.
pub fn resource_arn(stack: &Stack, lookups: &Lookups, a: &Address) -> Option<String> {
    let (region, account) = (&lookups.region, &lookups.account_id);
    let what = match a.kind {
        Kind::EfsFileSystem | Kind::EfsMountTargets => {
            stack.file_systems.get(&a.name)?;
            "file-system"
        }
        Kind::EfsAccessPoint => {
            stack.access_points.get(&a.name)?;
            "access-point"
        }
        _ => return None,
    };
    Some(format!(
        "arn:aws:elasticfilesystem:{region}:{account}:{what}/*"
    ))
}

/// True when the stack declares this EFS address.
pub fn defines(stack: &Stack, a: &Address) -> bool {
    match a.kind {
        Kind::EfsFileSystem | Kind::EfsMountTargets => stack.file_systems.contains_key(&a.name),
        Kind::EfsAccessPoint => stack.access_points.contains_key(&a.name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::forces_replacement;
    use std::path::Path;

    const REFERENCE: &str = include_str!("../../stacks/monitoring.yaml");

    /// The reference stack: Grafana's file system, mount targets and access point.
    fn with_efs() -> LoadedStack {
        super::super::parse(Path::new("s.yaml"), REFERENCE).unwrap()
    }

    #[test]
    fn a_file_system_is_three_addresses_named_by_stack_environment_and_key() {
        let loaded = with_efs();
        assert!(check(&loaded).is_empty(), "{:?}", check(&loaded));
        let mut lookups = Lookups::placeholders("us-west-2");
        lookups.subnet_ids = vec!["subnet-b".into(), "subnet-a".into()];
        let built = build(&loaded.stack, &lookups, &Tags::new());
        let addresses: Vec<String> = built.iter().map(|d| d.address.to_string()).collect();
        assert_eq!(
            addresses,
            [
                "efs_file_system.grafana",
                "efs_mount_targets.grafana",
                "efs_access_point.grafana"
            ]
        );
        let Attrs::EfsFileSystem(fs) = &built[0].attrs else {
            panic!()
        };
        assert_eq!(fs.creation_token, "monitoring-production-grafana");
        assert!(fs.encrypted);
        assert_eq!(fs.throughput_mode, "bursting");
        let Attrs::EfsMountTargets(mt) = &built[1].attrs else {
            panic!()
        };
        assert_eq!(mt.subnets.len(), 2);
        assert_eq!(
            built[1].attrs.references(),
            BTreeSet::from([
                "efs_file_system.grafana".parse().unwrap(),
                "security_group.efs".parse().unwrap()
            ])
        );
        let Attrs::EfsAccessPoint(ap) = &built[2].attrs else {
            panic!()
        };
        assert_eq!((ap.owner_uid, ap.owner_gid), (472, 472));
    }

    #[test]
    fn data_stays_and_access_points_are_replaced() {
        assert!(Kind::EfsFileSystem.holds_data());
        assert!(!Kind::EfsAccessPoint.holds_data());
        assert!(!Kind::EfsMountTargets.holds_data());
        for attr in ["uid", "root_directory", "permissions", "file_system"] {
            assert!(forces_replacement(Kind::EfsAccessPoint, attr), "{attr}");
        }
        assert!(!forces_replacement(Kind::EfsAccessPoint, "tags"));
        // Nothing replaces a file system: that would delete its data.
        for attr in ["encrypted", "performance_mode", "throughput_mode", "name"] {
            assert!(!forces_replacement(Kind::EfsFileSystem, attr), "{attr}");
        }
    }
}
