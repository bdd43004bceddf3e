//! Amazon EFS: the file systems that keep Grafana's database and plugins across task restarts,
//! their mount targets (one per looked-up subnet) and access points (a POSIX identity and root
//! directory for the task).
//!
//! - File systems are found by creation token (`STACK-ENVIRONMENT-KEY`), which also makes a
//!   retried CreateFileSystem idempotent; all tags go in the create call. `Observed.id` is the
//!   file system id.
//! - Mount targets cannot carry tags: they are owned through their file system. Their observed
//!   tags are the file system's ownership tags, and the hash of what was applied to them is kept
//!   on the file system under [`TAG_MOUNT_TARGETS_APPLIED`]. `Observed.id` is
//!   `FS_ID/mount-targets` ([`mount_targets_id`]): distinct from the file system's own id, which
//!   the planner maps back to the file system's address.
//! - Access points are found by their `Name` tag; any change but tags replaces them.
//!
//! AWS creates and deletes these asynchronously (`creating` → `available`, `deleting` → gone):
//! every wait here polls with a bound. moto answers `available` at once and deletes at once;
//! nothing here relies on that.

use super::{err, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, EfsAccessPointAttrs, EfsFileSystemAttrs, EfsMountTargetsAttrs,
    Observed, Ownership, Tags, TAG_ADDRESS, TAG_APPLIED, TAG_ENV, TAG_STACK,
};
use aws_sdk_efs::types as efs;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SERVICE: &str = "efs";

/// The file system tag holding the applied hash of its mount targets (which cannot be tagged).
pub const TAG_MOUNT_TARGETS_APPLIED: &str = "deploy:mount-targets-applied";

/// The tag AWS shows as a file system's or access point's name.
const NAME_TAG: &str = "Name";

/// Polling of asynchronous state changes: every 2 s, at most 10 minutes (AWS usually takes
/// seconds for a file system, a minute or two for a mount target).
const POLL: Duration = Duration::from_secs(2);
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// The id of a file system's mount targets as one resource: `FS_ID/mount-targets`.
pub fn mount_targets_id(fs_id: &str) -> String {
    format!("{fs_id}/mount-targets")
}

/// The file system id in a [`mount_targets_id`] (or a plain file system id).
pub fn file_system_of(mount_targets_id: &str) -> &str {
    mount_targets_id
        .split_once('/')
        .map_or(mount_targets_id, |(fs, _)| fs)
}

/// What a mount target's security groups are shown as when they differ between subnets (the
/// model holds one set for all; this never equals a desired set, so an update follows).
pub const GROUPS_DIFFER: &str = "(differs between mount targets)";

/// The SDK's tags. (Building one fails only without a key or value, which every pair has.)
fn efs_tags(tags: &Tags) -> Vec<efs::Tag> {
    tags.iter()
        .filter_map(|(k, v)| efs::Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn tags_of(list: &[efs::Tag]) -> Tags {
    list.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn sleep_or_give_up(
    started: std::time::Instant,
    operation: &'static str,
    what: impl FnOnce() -> String,
) -> Result<(), AwsError> {
    if started.elapsed() > WAIT_LIMIT {
        return Err(AwsError {
            service: SERVICE,
            operation,
            address: None,
            code: Some("WaitTimeout".into()),
            message: format!("{} after {} s", what(), WAIT_LIMIT.as_secs()),
            request_id: None,
        });
    }
    tokio::time::sleep(POLL).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// File systems
// ---------------------------------------------------------------------------------------------

/// The file system with this creation token, if any (a `deleted` one counts as gone).
/// Calls: DescribeFileSystems. (Public so that one read serves both the file system and its
/// mount targets: see [`observe_file_system`] and [`observe_mount_targets`].)
pub async fn describe_by_token(
    aws: &Aws,
    token: &str,
) -> Result<Option<efs::FileSystemDescription>, AwsError> {
    let out = aws
        .efs
        .describe_file_systems()
        .creation_token(token)
        .send()
        .await
        .map_err(err(SERVICE, "DescribeFileSystems"))?;
    Ok(out
        .file_systems()
        .iter()
        .find(|f| {
            f.creation_token() == token && *f.life_cycle_state() != efs::LifeCycleState::Deleted
        })
        .cloned())
}

/// The file system with this id, if any. Calls: DescribeFileSystems.
async fn describe_by_id(
    aws: &Aws,
    id: &str,
) -> Result<Option<efs::FileSystemDescription>, AwsError> {
    match aws
        .efs
        .describe_file_systems()
        .file_system_id(id)
        .send()
        .await
        .map_err(err(SERVICE, "DescribeFileSystems"))
    {
        Ok(out) => Ok(out
            .file_systems()
            .iter()
            .find(|f| *f.life_cycle_state() != efs::LifeCycleState::Deleted)
            .cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Normalized attributes of a described file system. Calls: DescribeLifecycleConfiguration.
pub async fn observe_file_system(
    aws: &Aws,
    fs: &efs::FileSystemDescription,
    address: &Address,
) -> Result<Observed, AwsError> {
    let id = fs.file_system_id().to_string();
    let lifecycle = aws
        .efs
        .describe_lifecycle_configuration()
        .file_system_id(&id)
        .send()
        .await
        .map_err(|e| err(SERVICE, "DescribeLifecycleConfiguration")(e).at(address))?;
    let transition_to_ia = lifecycle
        .lifecycle_policies()
        .iter()
        .find_map(|p| p.transition_to_ia())
        .map(|t| t.as_str().to_string());
    let all_tags = tags_of(fs.tags());
    let mut tags = user_tags(&all_tags);
    let name = tags
        .remove(NAME_TAG)
        .or_else(|| fs.name().map(str::to_string))
        .unwrap_or_default();
    let mut handles = BTreeMap::new();
    if let Some(arn) = fs.file_system_arn() {
        handles.insert("arn".to_string(), arn.to_string());
    }
    Ok(Observed {
        address: address.clone(),
        id,
        attrs: Attrs::EfsFileSystem(EfsFileSystemAttrs {
            creation_token: fs.creation_token().to_string(),
            name,
            encrypted: fs.encrypted().unwrap_or(false),
            performance_mode: fs.performance_mode().as_str().to_string(),
            throughput_mode: fs
                .throughput_mode()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| "bursting".into()),
            transition_to_ia,
            tags,
        }),
        all_tags,
        handles,
    })
}

/// The file system with creation token `token`, normalized, or `None`.
/// Calls: DescribeFileSystems, DescribeLifecycleConfiguration when it exists.
pub async fn find_file_system(
    aws: &Aws,
    token: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    match describe_by_token(aws, token)
        .await
        .map_err(|e| e.at(address))?
    {
        Some(fs) => observe_file_system(aws, &fs, address).await.map(Some),
        None => Ok(None),
    }
}

/// The file system `id` (fs-…), normalized, or `None` (for resources found by tag and for
/// `import`, which may name the id or the creation token).
pub async fn observe_file_system_by_id(
    aws: &Aws,
    id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let fs = if id.starts_with("fs-") {
        describe_by_id(aws, id).await
    } else {
        describe_by_token(aws, id).await
    }
    .map_err(|e| e.at(address))?;
    match fs {
        Some(fs) => observe_file_system(aws, &fs, address).await.map(Some),
        None => Ok(None),
    }
}

/// Waits until the file system is `available` (a new one is `creating` for a few seconds;
/// mount targets and access points need it available). Calls: DescribeFileSystems, polled.
async fn wait_file_system_available(aws: &Aws, id: &str) -> Result<(), AwsError> {
    let started = std::time::Instant::now();
    loop {
        let state = describe_by_id(aws, id)
            .await?
            .map(|f| f.life_cycle_state().clone());
        match state {
            Some(efs::LifeCycleState::Available) => return Ok(()),
            Some(efs::LifeCycleState::Error) => {
                return Err(AwsError::other(
                    SERVICE,
                    "DescribeFileSystems",
                    format!("file system {id} is in state error"),
                ))
            }
            s => {
                sleep_or_give_up(started, "DescribeFileSystems", || {
                    format!("file system {id} is still {s:?}, not available")
                })
                .await?
            }
        }
    }
}

fn lifecycle_policies(transition_to_ia: &Option<String>) -> Vec<efs::LifecyclePolicy> {
    transition_to_ia
        .iter()
        .map(|t| {
            efs::LifecyclePolicy::builder()
                .transition_to_ia(efs::TransitionToIaRules::from(t.as_str()))
                .build()
        })
        .collect()
}

async fn put_lifecycle(
    aws: &Aws,
    id: &str,
    transition_to_ia: &Option<String>,
) -> Result<(), AwsError> {
    aws.efs
        .put_lifecycle_configuration()
        .file_system_id(id)
        .set_lifecycle_policies(Some(lifecycle_policies(transition_to_ia)))
        .send()
        .await
        .map_err(err(SERVICE, "PutLifecycleConfiguration"))?;
    Ok(())
}

/// Creates the file system (encrypted, with all `tags` and the `Name` tag in the
/// CreateFileSystem call), waits until it is available and sets its lifecycle. A retried
/// create whose token already names a file system of this stack (the first attempt got
/// through) continues with that one. Returns the file system id.
/// Calls: CreateFileSystem, DescribeFileSystems (polled), PutLifecycleConfiguration if set.
pub async fn create_file_system(
    aws: &Aws,
    attrs: &EfsFileSystemAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let mut all = tags.clone();
    all.insert(NAME_TAG.into(), attrs.name.clone());
    let created = aws
        .efs
        .create_file_system()
        .creation_token(&attrs.creation_token)
        .encrypted(attrs.encrypted)
        .performance_mode(efs::PerformanceMode::from(attrs.performance_mode.as_str()))
        .throughput_mode(efs::ThroughputMode::from(attrs.throughput_mode.as_str()))
        .set_tags(Some(efs_tags(&all)))
        .send()
        .await
        .map_err(err(SERVICE, "CreateFileSystem"));
    let id = match created {
        Ok(out) => out.file_system_id().to_string(),
        Err(e) if e.code_is("FileSystemAlreadyExists") => {
            let existing = describe_by_token(aws, &attrs.creation_token).await?;
            let ours = existing.filter(|f| {
                let t = tags_of(f.tags());
                match (tags.get(TAG_STACK), tags.get(TAG_ENV)) {
                    (Some(s), Some(env)) => Ownership::judge(&t, s, env) == Ownership::Owned,
                    _ => false,
                }
            });
            match ours {
                Some(f) => f.file_system_id().to_string(),
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    wait_file_system_available(aws, &id).await?;
    if attrs.transition_to_ia.is_some() {
        put_lifecycle(aws, &id, &attrs.transition_to_ia).await?;
    }
    Ok(id)
}

/// Moves throughput mode, lifecycle, name and user tags from `before` to `after`. Encryption
/// and performance mode are fixed at creation: a difference there is an error, never a
/// replacement (that would delete the data).
/// Calls, each only when needed: UpdateFileSystem, PutLifecycleConfiguration, TagResource,
/// UntagResource.
pub async fn update_file_system(
    aws: &Aws,
    id: &str,
    before: &EfsFileSystemAttrs,
    after: &EfsFileSystemAttrs,
) -> Result<(), AwsError> {
    if before.encrypted != after.encrypted || before.performance_mode != after.performance_mode {
        return Err(AwsError::other(
            SERVICE,
            "UpdateFileSystem",
            format!(
                "file system {id} is encrypted={} {} but the stack wants encrypted={} {}; \
                 neither can change after creation. Copy the data to a new file system (a new \
                 key in file_systems) instead",
                before.encrypted, before.performance_mode, after.encrypted, after.performance_mode
            ),
        ));
    }
    if before.throughput_mode != after.throughput_mode {
        // Not implemented by moto 5.2.5 (answers 404); AWS allows one change a day.
        aws.efs
            .update_file_system()
            .file_system_id(id)
            .throughput_mode(efs::ThroughputMode::from(after.throughput_mode.as_str()))
            .send()
            .await
            .map_err(err(SERVICE, "UpdateFileSystem"))?;
    }
    if before.transition_to_ia != after.transition_to_ia {
        put_lifecycle(aws, id, &after.transition_to_ia).await?;
    }
    let (mut set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    let remove: Vec<String> = remove.into_iter().filter(|k| k != NAME_TAG).collect();
    if before.name != after.name {
        set.insert(NAME_TAG.into(), after.name.clone());
    }
    set_tags(aws, id, &set, &remove).await
}

/// Deletes the file system: first whatever mount targets it still has (AWS refuses to delete
/// a file system with mount targets), waiting until they are gone, then the file system,
/// waiting until it is gone so its creation token is free. Already gone is success.
/// Calls: DescribeMountTargets, DeleteMountTarget per target, DeleteFileSystem,
/// DescribeFileSystems (polled).
pub async fn delete_file_system(aws: &Aws, id: &str) -> Result<(), AwsError> {
    delete_mount_targets(aws, id).await?;
    match aws
        .efs
        .delete_file_system()
        .file_system_id(id)
        .send()
        .await
        .map_err(err(SERVICE, "DeleteFileSystem"))
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    }
    let started = std::time::Instant::now();
    while describe_by_id(aws, id).await?.is_some() {
        sleep_or_give_up(started, "DeleteFileSystem", || {
            format!("file system {id} is still deleting")
        })
        .await?;
    }
    Ok(())
}

/// Sets `tags` and removes the keys in `remove` on a file system or access point (by id):
/// TagResource and UntagResource, each only when it has something to do.
pub async fn set_tags(
    aws: &Aws,
    resource_id: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.efs
            .tag_resource()
            .resource_id(resource_id)
            .set_tags(Some(efs_tags(tags)))
            .send()
            .await
            .map_err(err(SERVICE, "TagResource"))?;
    }
    if !remove.is_empty() {
        aws.efs
            .untag_resource()
            .resource_id(resource_id)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err(SERVICE, "UntagResource"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Mount targets
// ---------------------------------------------------------------------------------------------

/// Every mount target of a file system as DescribeMountTargets lists it, `deleting` and
/// `deleted` ones too; none when the file system is gone. Calls: DescribeMountTargets (every
/// page).
async fn describe_mount_targets(
    aws: &Aws,
    fs_id: &str,
) -> Result<Vec<efs::MountTargetDescription>, AwsError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = match aws
            .efs
            .describe_mount_targets()
            .file_system_id(fs_id)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(err(SERVICE, "DescribeMountTargets"))
        {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(out),
            Err(e) => return Err(e),
        };
        out.extend(page.mount_targets().iter().cloned());
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(out),
        }
    }
}

/// A file system's mount targets that are not being deleted: (mount target id, subnet).
async fn list_mount_targets(aws: &Aws, fs_id: &str) -> Result<Vec<(String, String)>, AwsError> {
    Ok(describe_mount_targets(aws, fs_id)
        .await?
        .iter()
        .filter(|m| {
            !matches!(
                m.life_cycle_state(),
                efs::LifeCycleState::Deleted | efs::LifeCycleState::Deleting
            )
        })
        .map(|m| (m.mount_target_id().to_string(), m.subnet_id().to_string()))
        .collect())
}

async fn mount_target_groups(aws: &Aws, mt_id: &str) -> Result<BTreeSet<String>, AwsError> {
    let out = aws
        .efs
        .describe_mount_target_security_groups()
        .mount_target_id(mt_id)
        .send()
        .await
        .map_err(err(SERVICE, "DescribeMountTargetSecurityGroups"))?;
    Ok(out.security_groups().iter().cloned().collect())
}

/// The mount targets of the file system with creation token `token`, normalized, or `None`
/// when the file system does not exist or has none. Their tags are the file system's
/// ownership tags with [`TAG_MOUNT_TARGETS_APPLIED`] as the applied hash. Handles:
/// `mt:SUBNET` → mount target id, `sg:SUBNET` → its groups, comma-separated.
/// Calls: DescribeFileSystems, DescribeMountTargets, DescribeMountTargetSecurityGroups each.
pub async fn find_mount_targets(
    aws: &Aws,
    token_or_id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let fs = if token_or_id.starts_with("fs-") {
        describe_by_id(aws, file_system_of(token_or_id)).await
    } else {
        describe_by_token(aws, token_or_id).await
    }
    .map_err(|e| e.at(address))?;
    match fs {
        Some(fs) => observe_mount_targets(aws, &fs, address).await,
        None => Ok(None),
    }
}

/// The mount targets of a described file system, normalized as [`find_mount_targets`] gives
/// them. Calls: DescribeMountTargets, then DescribeMountTargetSecurityGroups for each, at once.
pub async fn observe_mount_targets(
    aws: &Aws,
    fs: &efs::FileSystemDescription,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let fs_id = fs.file_system_id().to_string();
    let targets = list_mount_targets(aws, &fs_id)
        .await
        .map_err(|e| e.at(address))?;
    if targets.is_empty() {
        return Ok(None);
    }
    let groups_of = futures::future::try_join_all(
        targets
            .iter()
            .map(|(mt_id, _)| mount_target_groups(aws, mt_id)),
    )
    .await
    .map_err(|e| e.at(address))?;
    let mut handles = BTreeMap::new();
    let mut subnets = BTreeSet::new();
    let mut group_sets = Vec::new();
    for ((mt_id, subnet), groups) in targets.iter().zip(groups_of) {
        handles.insert(format!("mt:{subnet}"), mt_id.clone());
        handles.insert(
            format!("sg:{subnet}"),
            groups.iter().cloned().collect::<Vec<_>>().join(","),
        );
        subnets.insert(subnet.clone());
        group_sets.push(groups);
    }
    let mut security_groups = group_sets[0].clone();
    if group_sets.iter().any(|g| g != &group_sets[0]) {
        security_groups = group_sets.iter().flatten().cloned().collect();
        security_groups.insert(GROUPS_DIFFER.to_string());
    }
    let fs_tags = tags_of(fs.tags());
    let mut all_tags: Tags = fs_tags
        .iter()
        .filter(|(k, _)| *k == TAG_STACK || *k == TAG_ENV)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(h) = fs_tags.get(TAG_MOUNT_TARGETS_APPLIED) {
        all_tags.insert(TAG_APPLIED.into(), h.clone());
    }
    if !all_tags.is_empty() {
        all_tags.insert(TAG_ADDRESS.into(), address.to_string());
    }
    Ok(Some(Observed {
        address: address.clone(),
        id: mount_targets_id(&fs_id),
        attrs: Attrs::EfsMountTargets(EfsMountTargetsAttrs {
            file_system: fs_id,
            subnets,
            security_groups,
        }),
        all_tags,
        handles,
    }))
}

/// Waits until every mount target of the file system is `available` and none is still being
/// deleted. Calls: DescribeMountTargets, polled.
async fn wait_mount_targets_settled(aws: &Aws, fs_id: &str) -> Result<(), AwsError> {
    let started = std::time::Instant::now();
    loop {
        let mut settled = true;
        for m in describe_mount_targets(aws, fs_id).await? {
            match m.life_cycle_state() {
                efs::LifeCycleState::Available | efs::LifeCycleState::Deleted => {}
                efs::LifeCycleState::Error => {
                    return Err(AwsError::other(
                        SERVICE,
                        "DescribeMountTargets",
                        format!("mount target {} is in state error", m.mount_target_id()),
                    ))
                }
                _ => settled = false,
            }
        }
        if settled {
            return Ok(());
        }
        sleep_or_give_up(started, "DescribeMountTargets", || {
            format!("the mount targets of {fs_id} are still changing")
        })
        .await?;
    }
}

async fn create_mount_target(
    aws: &Aws,
    fs_id: &str,
    subnet: &str,
    groups: &BTreeSet<String>,
) -> Result<(), AwsError> {
    aws.efs
        .create_mount_target()
        .file_system_id(fs_id)
        .subnet_id(subnet)
        .set_security_groups(Some(groups.iter().cloned().collect()))
        .send()
        .await
        .map_err(err(SERVICE, "CreateMountTarget"))?;
    Ok(())
}

/// Records the applied hash of the mount targets (from `tags`' [`TAG_APPLIED`]) on their file
/// system. Calls: TagResource.
pub async fn set_mount_targets_applied(
    aws: &Aws,
    mount_targets_id: &str,
    tags: &Tags,
) -> Result<(), AwsError> {
    let fs_id = file_system_of(mount_targets_id);
    match tags.get(TAG_APPLIED) {
        Some(h) => {
            let t = Tags::from([(TAG_MOUNT_TARGETS_APPLIED.to_string(), h.clone())]);
            set_tags(aws, fs_id, &t, &[]).await
        }
        None => Ok(()),
    }
}

/// Creates a mount target in every subnet of `attrs` (the file system must be available
/// first: this waits for it), waits until they are available and records the applied hash
/// on the file system. A subnet that already has one (a retried apply) is left as it is.
/// Returns the [`mount_targets_id`].
/// Calls: DescribeFileSystems (polled), DescribeMountTargets, CreateMountTarget per subnet,
/// DescribeMountTargets (polled), TagResource.
pub async fn create_mount_targets(
    aws: &Aws,
    attrs: &EfsMountTargetsAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let fs_id = attrs.file_system.as_str();
    wait_file_system_available(aws, fs_id).await?;
    let existing: BTreeSet<String> = list_mount_targets(aws, fs_id)
        .await?
        .into_iter()
        .map(|(_, subnet)| subnet)
        .collect();
    for subnet in attrs.subnets.difference(&existing) {
        create_mount_target(aws, fs_id, subnet, &attrs.security_groups).await?;
    }
    wait_mount_targets_settled(aws, fs_id).await?;
    set_mount_targets_applied(aws, fs_id, tags).await?;
    Ok(mount_targets_id(fs_id))
}

/// Converges the mount targets `id` ([`mount_targets_id`]): deletes those in subnets no longer
/// wanted (waiting until they are gone, as one per availability zone is allowed), creates the
/// missing ones and sets the security groups of the rest where they differ (`handles` from
/// [`find_mount_targets`]).
/// Calls: DeleteMountTarget, CreateMountTarget, ModifyMountTargetSecurityGroups as needed,
/// DescribeMountTargets (polled).
pub async fn update_mount_targets(
    aws: &Aws,
    id: &str,
    before: &EfsMountTargetsAttrs,
    after: &EfsMountTargetsAttrs,
    handles: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let fs_id = file_system_of(id);
    let mut deleted = false;
    for subnet in before.subnets.difference(&after.subnets) {
        if let Some(mt) = handles.get(&format!("mt:{subnet}")) {
            delete_mount_target(aws, mt).await?;
            deleted = true;
        }
    }
    if deleted {
        wait_mount_targets_settled(aws, fs_id).await?;
    }
    for subnet in after.subnets.difference(&before.subnets) {
        create_mount_target(aws, fs_id, subnet, &after.security_groups).await?;
    }
    for subnet in after.subnets.intersection(&before.subnets) {
        let (Some(mt), Some(groups)) = (
            handles.get(&format!("mt:{subnet}")),
            handles.get(&format!("sg:{subnet}")),
        ) else {
            continue;
        };
        let live: BTreeSet<String> = groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        if live != after.security_groups {
            aws.efs
                .modify_mount_target_security_groups()
                .mount_target_id(mt)
                .set_security_groups(Some(after.security_groups.iter().cloned().collect()))
                .send()
                .await
                .map_err(err(SERVICE, "ModifyMountTargetSecurityGroups"))?;
        }
    }
    wait_mount_targets_settled(aws, fs_id).await
}

async fn delete_mount_target(aws: &Aws, mt_id: &str) -> Result<(), AwsError> {
    super::gone_is_ok(
        aws.efs
            .delete_mount_target()
            .mount_target_id(mt_id)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteMountTarget")),
    )
}

/// Deletes every mount target of a file system (`id`: its id or [`mount_targets_id`]) and waits
/// until they are gone (their network interfaces hold the security groups). Already gone is
/// success. Calls: DescribeMountTargets, DeleteMountTarget per target, DescribeMountTargets
/// (polled).
pub async fn delete_mount_targets(aws: &Aws, id: &str) -> Result<(), AwsError> {
    let fs_id = file_system_of(id);
    let targets = list_mount_targets(aws, fs_id).await?;
    if targets.is_empty() {
        return Ok(());
    }
    for (mt, _) in &targets {
        delete_mount_target(aws, mt).await?;
    }
    let started = std::time::Instant::now();
    while !list_mount_targets(aws, fs_id).await?.is_empty() {
        sleep_or_give_up(started, "DeleteMountTarget", || {
            format!("the mount targets of {fs_id} are still deleting")
        })
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Access points
// ---------------------------------------------------------------------------------------------

fn access_point_attrs(ap: &efs::AccessPointDescription) -> (EfsAccessPointAttrs, Tags) {
    let all_tags = tags_of(ap.tags());
    let mut tags = user_tags(&all_tags);
    let name = tags
        .remove(NAME_TAG)
        .or_else(|| ap.name().map(str::to_string))
        .unwrap_or_default();
    let root = ap.root_directory();
    let info = root.and_then(|r| r.creation_info());
    let posix = ap.posix_user();
    (
        EfsAccessPointAttrs {
            name,
            file_system: ap.file_system_id().unwrap_or_default().to_string(),
            uid: posix.map(|p| p.uid()).unwrap_or_default(),
            gid: posix.map(|p| p.gid()).unwrap_or_default(),
            root_directory: root.and_then(|r| r.path()).unwrap_or("/").to_string(),
            owner_uid: info.map(|i| i.owner_uid()).unwrap_or_default(),
            owner_gid: info.map(|i| i.owner_gid()).unwrap_or_default(),
            permissions: info
                .map(|i| i.permissions().to_string())
                .unwrap_or_default(),
            tags,
        },
        all_tags,
    )
}

fn observed_access_point(ap: &efs::AccessPointDescription, address: &Address) -> Observed {
    let (attrs, all_tags) = access_point_attrs(ap);
    let mut handles = BTreeMap::new();
    if let Some(arn) = ap.access_point_arn() {
        handles.insert("arn".to_string(), arn.to_string());
    }
    Observed {
        address: address.clone(),
        id: ap.access_point_id().unwrap_or_default().to_string(),
        attrs: Attrs::EfsAccessPoint(attrs),
        all_tags,
        handles,
    }
}

fn ap_gone(ap: &efs::AccessPointDescription) -> bool {
    matches!(
        ap.life_cycle_state(),
        Some(efs::LifeCycleState::Deleted | efs::LifeCycleState::Deleting)
    )
}

/// The access points named `name` (their `Name` tag), normalized: several when a replacement
/// was interrupted. Calls: DescribeAccessPoints (every page of the region's access points).
pub async fn find_access_points(
    aws: &Aws,
    name: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .efs
            .describe_access_points()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| err(SERVICE, "DescribeAccessPoints")(e).at(address))?;
        for ap in page.access_points() {
            let named = ap
                .tags()
                .iter()
                .any(|t| t.key() == NAME_TAG && t.value() == name);
            if named && !ap_gone(ap) {
                found.push(observed_access_point(ap, address));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(found),
        }
    }
}

/// The access point `id` (fsap-…), normalized, or `None`. Calls: DescribeAccessPoints.
pub async fn observe_access_point(
    aws: &Aws,
    id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    match aws
        .efs
        .describe_access_points()
        .access_point_id(id)
        .send()
        .await
        .map_err(err(SERVICE, "DescribeAccessPoints"))
    {
        Ok(out) => Ok(out
            .access_points()
            .iter()
            .find(|ap| !ap_gone(ap))
            .map(|ap| observed_access_point(ap, address))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.at(address)),
    }
}

/// Creates the access point with all `tags` (ownership included) and its `Name` in the
/// CreateAccessPoint call, then waits until it is available. The client token is derived
/// from the tags and attributes, so a retried call returns the same access point.
/// Returns the access point id. Calls: CreateAccessPoint, DescribeAccessPoints (polled).
pub async fn create_access_point(
    aws: &Aws,
    attrs: &EfsAccessPointAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let op = "CreateAccessPoint";
    let invalid = |e: aws_smithy_types::error::operation::BuildError| {
        AwsError::other(SERVICE, op, e.to_string())
    };
    let mut all = tags.clone();
    all.insert(NAME_TAG.into(), attrs.name.clone());
    let token = crate::model::short_hash(&(attrs, &all));
    let out = aws
        .efs
        .create_access_point()
        .client_token(token)
        .file_system_id(&attrs.file_system)
        .posix_user(
            efs::PosixUser::builder()
                .uid(attrs.uid)
                .gid(attrs.gid)
                .build()
                .map_err(invalid)?,
        )
        .root_directory(
            efs::RootDirectory::builder()
                .path(&attrs.root_directory)
                .creation_info(
                    efs::CreationInfo::builder()
                        .owner_uid(attrs.owner_uid)
                        .owner_gid(attrs.owner_gid)
                        .permissions(&attrs.permissions)
                        .build()
                        .map_err(invalid)?,
                )
                .build(),
        )
        .set_tags(Some(efs_tags(&all)))
        .send()
        .await
        .map_err(err(SERVICE, op))?;
    let id = out
        .access_point_id()
        .ok_or_else(|| AwsError::other(SERVICE, op, "no access point id in the answer"))?
        .to_string();
    let started = std::time::Instant::now();
    loop {
        let seen = aws
            .efs
            .describe_access_points()
            .access_point_id(&id)
            .send()
            .await
            .map_err(err(SERVICE, "DescribeAccessPoints"))?;
        let state = seen
            .access_points()
            .first()
            .and_then(|a| a.life_cycle_state().cloned());
        match state {
            Some(efs::LifeCycleState::Available) | None => return Ok(id),
            Some(efs::LifeCycleState::Error) => {
                return Err(AwsError::other(
                    SERVICE,
                    "DescribeAccessPoints",
                    format!("access point {id} is in state error"),
                ))
            }
            Some(s) => {
                sleep_or_give_up(started, "DescribeAccessPoints", || {
                    format!("access point {id} is still {s:?}")
                })
                .await?
            }
        }
    }
}

/// Access points are immutable but for their tags: moves the user tags from `before` to
/// `after` (any other difference is planned as a replacement, never sent here).
/// Calls: TagResource, UntagResource, each only when needed.
pub async fn update_access_point(
    aws: &Aws,
    id: &str,
    before: &EfsAccessPointAttrs,
    after: &EfsAccessPointAttrs,
) -> Result<(), AwsError> {
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    let remove: Vec<String> = remove.into_iter().filter(|k| k != NAME_TAG).collect();
    set_tags(aws, id, &set, &remove).await
}

/// Deletes the access point (the files under its root directory stay on the file system).
/// Already gone is success. Calls: DeleteAccessPoint.
pub async fn delete_access_point(aws: &Aws, id: &str) -> Result<(), AwsError> {
    super::gone_is_ok(
        aws.efs
            .delete_access_point()
            .access_point_id(id)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteAccessPoint")),
    )
}
