//! Amazon S3: the stack's config bucket, through which rendered files reach running tasks
//! without a new task definition revision (see `render::reload` for the layout and
//! templates/reloader.sh for the sidecar that reads it).
//!
//! Publishing uploads only files whose content hash the current manifest does not already
//! hold, then writes a new manifest version naming every file's object version; an unchanged
//! set writes nothing. Restoring an earlier set (rollback) copies an older manifest version
//! over the current one: the sidecars fetch the files it names, by version id.

use super::{err, Aws, AwsError};
use crate::render::reload::{
    files_prefix, manifest_key, sha256_hex, status_prefix, Manifest, ManifestEntry,
    TASK_DEFINITION_METADATA,
};
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use std::collections::BTreeMap;

const SERVICE: &str = "s3";

fn other(operation: &'static str, message: String) -> AwsError {
    AwsError::other(SERVICE, operation, message)
}

/// The current manifest of `family` and its object version id; `None` before the first
/// publish. Calls: GetObject.
pub async fn read_manifest(
    aws: &Aws,
    bucket: &str,
    family: &str,
) -> Result<Option<(Manifest, String)>, AwsError> {
    let answer = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(manifest_key(family))
        .send()
        .await;
    let Some(out) = unless_absent(answer, "GetObject", "NoSuchKey")? else {
        return Ok(None);
    };
    let version = out.version_id().unwrap_or_default().to_string();
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| other("GetObject", format!("reading the manifest: {e}")))?
        .into_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let manifest = Manifest::parse(&text).map_err(|m| other("GetObject", m))?;
    Ok(Some((manifest, version)))
}

/// What a publish did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The manifest version the tasks ran before (`None`: the first publish); what a refused
    /// reload is rolled back to.
    pub previous_version: Option<String>,
    /// Paths uploaded (content changed or new), in path order.
    pub uploaded: Vec<String>,
    /// Paths the new manifest no longer names.
    pub removed: Vec<String>,
    /// The manifest version the sidecars will load (the current one when nothing changed).
    pub manifest_version: Option<String>,
    /// False when the files were already there: nothing was written.
    pub changed: bool,
}

/// Makes `files` (PATH → content) the files of `family`: uploads the changed ones, then a new
/// manifest version, tagged with the task definition revision's content hash it goes with.
/// Calls: GetObject (the manifest), PutObject per changed file and once for the manifest.
pub async fn publish(
    aws: &Aws,
    bucket: &str,
    family: &str,
    files: &BTreeMap<String, String>,
    task_definition_hash: &str,
) -> Result<Published, AwsError> {
    let (live, live_version) = read_manifest(aws, bucket, family)
        .await?
        .map_or((Manifest::default(), None), |(m, v)| (m, Some(v)));
    let changed: Vec<String> = live
        .changed(files)
        .into_iter()
        .map(str::to_string)
        .collect();
    let removed: Vec<String> = live
        .files
        .keys()
        .filter(|p| !files.contains_key(*p))
        .cloned()
        .collect();
    if changed.is_empty() && removed.is_empty() && live_version.is_some() {
        return Ok(Published {
            previous_version: live_version.clone(),
            uploaded: vec![],
            removed: vec![],
            manifest_version: live_version,
            changed: false,
        });
    }
    let mut next = Manifest::default();
    for (path, content) in files {
        let entry = if changed.contains(path) {
            let out = aws
                .s3
                .put_object()
                .bucket(bucket)
                .key(format!("{}{path}", files_prefix(family)))
                .body(ByteStream::from(content.as_bytes().to_vec()))
                .send()
                .await
                .map_err(err(SERVICE, "PutObject"))?;
            ManifestEntry {
                sha256: sha256_hex(content),
                version_id: version_or_null(out.version_id()),
            }
        } else {
            live.files[path].clone()
        };
        next.files.insert(path.clone(), entry);
    }
    let out = aws
        .s3
        .put_object()
        .bucket(bucket)
        .key(manifest_key(family))
        .metadata(TASK_DEFINITION_METADATA, task_definition_hash)
        .body(ByteStream::from(next.text().into_bytes()))
        .send()
        .await
        .map_err(err(SERVICE, "PutObject"))?;
    Ok(Published {
        previous_version: live_version,
        uploaded: changed,
        removed,
        manifest_version: Some(version_or_null(out.version_id())),
        changed: true,
    })
}

/// An unversioned bucket answers no version id; S3 then calls the one object version `null`.
fn version_or_null(v: Option<&str>) -> String {
    v.filter(|v| !v.is_empty()).unwrap_or("null").to_string()
}

/// The newest manifest version of `family` published with the task definition revision whose
/// content hash is `task_definition_hash` (what `deploy rollback` restores with that
/// revision). Calls: ListObjectVersions, HeadObject per version until found.
pub async fn manifest_version_for(
    aws: &Aws,
    bucket: &str,
    family: &str,
    task_definition_hash: &str,
) -> Result<Option<String>, AwsError> {
    let key = manifest_key(family);
    let out = aws
        .s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(&key)
        .send()
        .await
        .map_err(err(SERVICE, "ListObjectVersions"))?;
    let mut versions: Vec<_> = out
        .versions()
        .iter()
        .filter(|v| v.key() == Some(key.as_str()))
        .collect();
    // Newest first.
    versions.sort_by_key(|v| std::cmp::Reverse(v.last_modified().map(|t| t.as_nanos())));
    for v in versions {
        let Some(id) = v.version_id() else { continue };
        let head = aws
            .s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .version_id(id)
            .send()
            .await
            .map_err(err(SERVICE, "HeadObject"))?;
        let hash = head
            .metadata()
            .and_then(|m| m.get(TASK_DEFINITION_METADATA));
        if hash.map(String::as_str) == Some(task_definition_hash) {
            return Ok(Some(id.to_string()));
        }
    }
    Ok(None)
}

/// Makes manifest version `version_id` of `family` the current one again (its files are still
/// in the bucket under the versions it names): the sidecars load that set at their next poll.
/// Returns the new current version id. Calls: CopyObject.
pub async fn restore_manifest(
    aws: &Aws,
    bucket: &str,
    family: &str,
    version_id: &str,
) -> Result<String, AwsError> {
    let key = manifest_key(family);
    let out = aws
        .s3
        .copy_object()
        .bucket(bucket)
        .key(&key)
        .copy_source(format!(
            "{bucket}/{}?versionId={}",
            urlencoding::encode(&key),
            urlencoding::encode(version_id)
        ))
        .send()
        .await
        .map_err(err(SERVICE, "CopyObject"))?;
    Ok(version_or_null(out.version_id()))
}

pub use crate::reloads::ReloadStatus;

/// Every status object the sidecars of `family` wrote, by task id. Calls: ListObjectsV2,
/// GetObject per task.
pub async fn reload_statuses(
    aws: &Aws,
    bucket: &str,
    family: &str,
) -> Result<Vec<ReloadStatus>, AwsError> {
    let out = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(status_prefix(family))
        .send()
        .await
        .map_err(err(SERVICE, "ListObjectsV2"))?;
    let mut statuses = Vec::new();
    for object in out.contents() {
        let Some(key) = object.key() else { continue };
        let got = aws
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(err(SERVICE, "GetObject"))?;
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|e| other("GetObject", format!("reading {key}: {e}")))?
            .into_bytes();
        let status: ReloadStatus = serde_json::from_slice(&bytes)
            .map_err(|e| other("GetObject", format!("{key}: {e}")))?;
        statuses.push(status);
    }
    Ok(statuses)
}

/// The config bucket's settings as S3 reports them (what the stack promises: private,
/// encrypted, its policy, its tags; versioning is read by [`bucket_versioning`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BucketSettings {
    /// All four public access block settings on.
    pub public_access_blocked: bool,
    /// The default encryption algorithm (`AES256` for SSE-S3).
    pub encryption: Option<String>,
    /// Canonical policy document.
    pub policy: Option<serde_json::Value>,
    pub tags: crate::model::Tags,
}

/// Creates the config bucket with `attrs`' settings (public access blocked, SSE-S3 by default,
/// versioning on, the policy) and `tags`. The tags travel in CreateBucket (its configuration's
/// `Tags`), so no crash leaves the bucket unowned. Calls: CreateBucket, then those of
/// [`settle_settings`], PutBucketTagging.
pub async fn create_config_bucket(
    aws: &Aws,
    attrs: &crate::model::S3BucketAttrs,
    tags: &crate::model::Tags,
) -> Result<(), AwsError> {
    use aws_sdk_s3::types as t;
    let name = &attrs.name;
    let tag_set = s3_tags(tags);
    let mut configuration = t::CreateBucketConfiguration::builder().set_tags(Some(tag_set.clone()));
    // us-east-1 is the one region that takes no location constraint.
    if aws.region != "us-east-1" {
        configuration = configuration
            .location_constraint(t::BucketLocationConstraint::from(aws.region.as_str()));
    }
    aws.s3
        .create_bucket()
        .bucket(name)
        .create_bucket_configuration(configuration.build())
        .send()
        .await
        .map_err(err(SERVICE, "CreateBucket"))?;
    settle_settings(aws, attrs, false).await?;
    // Again, for S3 emulators that drop CreateBucket's tags (moto): idempotent on AWS.
    put_tag_set(aws, name, tag_set).await
}

/// `tags` as S3 takes them.
fn s3_tags(tags: &crate::model::Tags) -> Vec<aws_sdk_s3::types::Tag> {
    (tags.iter())
        .filter_map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

/// Replaces the bucket's whole tag set. Calls: PutBucketTagging.
async fn put_tag_set(
    aws: &Aws,
    name: &str,
    tag_set: Vec<aws_sdk_s3::types::Tag>,
) -> Result<(), AwsError> {
    aws.s3
        .put_bucket_tagging()
        .bucket(name)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .map_err(|e| other("PutBucketTagging", e.to_string()))?,
        )
        .send()
        .await
        .map_err(err(SERVICE, "PutBucketTagging"))?;
    Ok(())
}

/// Whether versioning is on. moto 5.2.5 answers GetBucketVersioning with the root element
/// `GetBucketVersioningResponse` where S3 has `VersioningConfiguration`, which the SDK cannot
/// parse: such an answer (an unparseable 200) is read for its `<Status>` element, the one
/// field both shapes share. Calls: GetBucketVersioning.
pub async fn bucket_versioning(aws: &Aws, name: &str) -> Result<bool, AwsError> {
    match aws.s3.get_bucket_versioning().bucket(name).send().await {
        Ok(out) => Ok(out.status() == Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled)),
        Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .unwrap_or_default();
            Ok(String::from_utf8_lossy(body).contains("<Status>Enabled</Status>"))
        }
        Err(e) => Err(AwsError::from_sdk(SERVICE, "GetBucketVersioning", e)),
    }
}

/// The config bucket's settings but versioning ([`bucket_versioning`]); `None` when no bucket
/// has that name. A setting S3 reports as absent reads as off. Calls: GetBucketTagging (its
/// NoSuchBucket says the bucket is absent), then GetPublicAccessBlock, GetBucketEncryption and
/// GetBucketPolicy at once.
pub async fn read_config_bucket(aws: &Aws, name: &str) -> Result<Option<BucketSettings>, AwsError> {
    let tags = match aws.s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) => {
            let e = AwsError::from_sdk(SERVICE, "GetBucketTagging", e);
            match e.code.as_deref() {
                Some("NoSuchBucket" | "NotFound") => return Ok(None),
                Some("NoSuchTagSet") => crate::model::Tags::new(),
                _ => return Err(e),
            }
        }
    };
    let (public_access_block, encryption, policy) = tokio::join!(
        aws.s3.get_public_access_block().bucket(name).send(),
        aws.s3.get_bucket_encryption().bucket(name).send(),
        aws.s3.get_bucket_policy().bucket(name).send(),
    );
    let public_access_blocked = unless_absent(
        public_access_block,
        "GetPublicAccessBlock",
        "NoSuchPublicAccessBlockConfiguration",
    )?
    .and_then(|out| out.public_access_block_configuration().cloned())
    .is_some_and(|c| {
        c.block_public_acls() == Some(true)
            && c.ignore_public_acls() == Some(true)
            && c.block_public_policy() == Some(true)
            && c.restrict_public_buckets() == Some(true)
    });
    let encryption = unless_absent(
        encryption,
        "GetBucketEncryption",
        "ServerSideEncryptionConfigurationNotFoundError",
    )?
    .and_then(|out| {
        out.server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_string())
    });
    let policy = unless_absent(policy, "GetBucketPolicy", "NoSuchBucketPolicy")?
        .and_then(|out| out.policy().and_then(|p| serde_json::from_str(p).ok()))
        .map(|p| crate::model::canonical_policy(&p));
    Ok(Some(BucketSettings {
        public_access_blocked,
        encryption,
        policy,
        tags,
    }))
}

/// A bucket read's answer; `None` when S3 answers `absent_code`, its way of saying the setting
/// was never made.
#[allow(clippy::result_large_err)] // the adapters' own error type, as everywhere in aws/
fn unless_absent<T, E, R>(
    result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    operation: &'static str,
    absent_code: &str,
) -> Result<Option<T>, AwsError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) => {
            let e = AwsError::from_sdk(SERVICE, operation, e);
            if e.code.as_deref() == Some(absent_code) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// The files of every family's current manifest, as the bucket kind's `files` attribute
/// (`FAMILY/PATH` → content). `known`: contents the caller has (the stack's files); a file the
/// manifest names with the same hash is taken from there. Calls: ListObjectsV2 (manifests),
/// GetObject per manifest and per file version whose content is not known.
pub async fn published_files(
    aws: &Aws,
    bucket: &str,
    known: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, AwsError> {
    published_files_once_known(aws, bucket, async { Ok(known.clone()) }).await
}

/// [`published_files`], with `known` still being worked out: the manifests are read
/// meanwhile, and only the choice of which files to download waits for it.
async fn published_files_once_known(
    aws: &Aws,
    bucket: &str,
    known: impl std::future::Future<Output = Result<BTreeMap<String, String>, AwsError>>,
) -> Result<BTreeMap<String, String>, AwsError> {
    let out = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("manifest/")
        .send()
        .await
        .map_err(err(SERVICE, "ListObjectsV2"))?;
    let families: Vec<&str> = (out.contents().iter())
        .filter_map(|o| o.key().and_then(|k| k.strip_prefix("manifest/")))
        .collect();
    let manifests = futures::future::try_join_all(
        (families.iter()).map(|family| read_manifest(aws, bucket, family)),
    )
    .await?;
    let known = known.await?;
    let mut files = BTreeMap::new();
    for (family, manifest) in families.iter().zip(manifests) {
        let Some((manifest, _)) = manifest else {
            continue;
        };
        for (path, entry) in &manifest.files {
            let key = format!("{family}/{path}");
            // A file whose content the caller already has (the hash the manifest names) is
            // not downloaded: only changed files are, for the plan's diff.
            if let Some(content) = known.get(&key).filter(|c| sha256_hex(c) == entry.sha256) {
                files.insert(key, content.clone());
                continue;
            }
            let got = aws
                .s3
                .get_object()
                .bucket(bucket)
                .key(format!("{}{path}", files_prefix(family)))
                .version_id(&entry.version_id)
                .send()
                .await
                .map_err(err(SERVICE, "GetObject"))?;
            let bytes = got
                .body
                .collect()
                .await
                .map_err(|e| other("GetObject", format!("reading {path}: {e}")))?
                .into_bytes();
            files.insert(key, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(files)
}

/// `FAMILY/PATH` → content split by family (PATH → content), as [`publish`] takes them.
pub fn files_by_family(
    files: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (key, content) in files {
        if let Some((family, path)) = key.split_once('/') {
            out.entry(family.to_string())
                .or_default()
                .insert(path.to_string(), content.clone());
        }
    }
    out
}

/// The config bucket as the kind sees it; `None` when no bucket has that name. `known`: the
/// stack's files for it (see [`published_files`]), awaited only once the manifests are read.
pub async fn observe_bucket(
    aws: &Aws,
    name: &str,
    address: &crate::model::Address,
    known: impl std::future::Future<Output = Result<BTreeMap<String, String>, AwsError>>,
) -> Result<Option<crate::model::Observed>, AwsError> {
    let Some(settings) = read_config_bucket(aws, name).await? else {
        return Ok(None);
    };
    let (versioning, files) = tokio::try_join!(
        bucket_versioning(aws, name),
        published_files_once_known(aws, name, known)
    )?;
    Ok(Some(crate::model::Observed {
        address: address.clone(),
        id: name.to_string(),
        attrs: crate::model::Attrs::S3Bucket(crate::model::S3BucketAttrs {
            name: name.to_string(),
            versioning,
            encryption: settings.encryption,
            public_access_blocked: settings.public_access_blocked,
            policy: settings.policy.unwrap_or(serde_json::Value::Null),
            tags: crate::model::user_tags(&settings.tags),
            files,
        }),
        all_tags: settings.tags,
        handles: BTreeMap::new(),
    }))
}

/// Creates the config bucket and publishes every family's files. Returns the bucket name and
/// what was published. Calls: see [`create_config_bucket`] and [`publish`].
pub async fn create_bucket(
    aws: &Aws,
    attrs: &crate::model::S3BucketAttrs,
    tags: &crate::model::Tags,
) -> Result<(String, Vec<(String, Published)>), AwsError> {
    create_config_bucket(aws, attrs, tags).await?;
    let mut published = Vec::new();
    for (family, files) in files_by_family(&attrs.files) {
        let p = publish(aws, &attrs.name, &family, &files, "").await?;
        published.push((family, p));
    }
    Ok((attrs.name.clone(), published))
}

/// Brings the bucket's settings to `after` and publishes the families whose files changed
/// (a family no longer wanted gets an empty manifest: its sidecars remove its files).
/// Calls: PutBucketPolicy, PutBucketEncryption, PutPublicAccessBlock, PutBucketVersioning as
/// needed (DeleteBucketPolicy when the stack wants none), and [`publish`] per changed family.
pub async fn update_bucket(
    aws: &Aws,
    before: &crate::model::S3BucketAttrs,
    after: &crate::model::S3BucketAttrs,
) -> Result<Vec<(String, Published)>, AwsError> {
    if before.policy != after.policy
        || before.encryption != after.encryption
        || before.public_access_blocked != after.public_access_blocked
        || before.versioning != after.versioning
    {
        settle_settings(aws, after, !before.policy.is_null()).await?;
    }
    let old = files_by_family(&before.files);
    let new = files_by_family(&after.files);
    let mut published = Vec::new();
    let empty = BTreeMap::new();
    for family in old
        .keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let want = new.get(family).unwrap_or(&empty);
        if old.get(family) != Some(want) {
            published.push((
                family.clone(),
                publish(aws, &after.name, family, want, "").await?,
            ));
        }
    }
    Ok(published)
}

/// Puts every setting of `attrs` on the bucket, each a whole-setting PUT: the public access
/// block, default encryption, versioning, and the policy (deleted when the stack wants none
/// and `had_policy`). Calls: PutPublicAccessBlock, PutBucketEncryption, PutBucketVersioning,
/// PutBucketPolicy or DeleteBucketPolicy.
async fn settle_settings(
    aws: &Aws,
    attrs: &crate::model::S3BucketAttrs,
    had_policy: bool,
) -> Result<(), AwsError> {
    use aws_sdk_s3::types as t;
    let name = &attrs.name;
    aws.s3
        .put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(
            t::PublicAccessBlockConfiguration::builder()
                .block_public_acls(attrs.public_access_blocked)
                .ignore_public_acls(attrs.public_access_blocked)
                .block_public_policy(attrs.public_access_blocked)
                .restrict_public_buckets(attrs.public_access_blocked)
                .build(),
        )
        .send()
        .await
        .map_err(err(SERVICE, "PutPublicAccessBlock"))?;
    if let Some(algorithm) = &attrs.encryption {
        let rule = t::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                t::ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(t::ServerSideEncryption::from(algorithm.as_str()))
                    .build()
                    .map_err(|e| other("PutBucketEncryption", e.to_string()))?,
            )
            .build();
        aws.s3
            .put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                t::ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(|e| other("PutBucketEncryption", e.to_string()))?,
            )
            .send()
            .await
            .map_err(err(SERVICE, "PutBucketEncryption"))?;
    }
    aws.s3
        .put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            t::VersioningConfiguration::builder()
                .status(if attrs.versioning {
                    t::BucketVersioningStatus::Enabled
                } else {
                    t::BucketVersioningStatus::Suspended
                })
                .build(),
        )
        .send()
        .await
        .map_err(err(SERVICE, "PutBucketVersioning"))?;
    if !attrs.policy.is_null() {
        aws.s3
            .put_bucket_policy()
            .bucket(name)
            .policy(attrs.policy.to_string())
            .send()
            .await
            .map_err(err(SERVICE, "PutBucketPolicy"))?;
    } else if had_policy {
        aws.s3
            .delete_bucket_policy()
            .bucket(name)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteBucketPolicy"))?;
    }
    Ok(())
}

/// Adds `tags` to the bucket's tag set (S3 replaces the whole set: read, merge, write).
/// Calls: GetBucketTagging, PutBucketTagging.
pub async fn merge_tags(aws: &Aws, name: &str, tags: &crate::model::Tags) -> Result<(), AwsError> {
    let mut all: crate::model::Tags = unless_absent(
        aws.s3.get_bucket_tagging().bucket(name).send().await,
        "GetBucketTagging",
        "NoSuchTagSet",
    )?
    .map(|out| {
        out.tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    })
    .unwrap_or_default();
    all.extend(tags.clone());
    put_tag_set(aws, name, s3_tags(&all)).await
}

/// Deletes the bucket with every object version and delete marker in it (S3 deletes only an
/// empty bucket). Calls: ListObjectVersions, DeleteObjects (up to 1000 a call), DeleteBucket.
pub async fn delete_bucket(aws: &Aws, name: &str) -> Result<(), AwsError> {
    use aws_sdk_s3::types as t;
    loop {
        let out = aws
            .s3
            .list_object_versions()
            .bucket(name)
            .send()
            .await
            .map_err(err(SERVICE, "ListObjectVersions"))?;
        let ids: Vec<t::ObjectIdentifier> = out
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                out.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(k, v)| {
                t::ObjectIdentifier::builder()
                    .key(k?)
                    .set_version_id(v.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            break;
        }
        for chunk in ids.chunks(1000) {
            aws.s3
                .delete_objects()
                .bucket(name)
                .delete(
                    t::Delete::builder()
                        .set_objects(Some(chunk.to_vec()))
                        .quiet(true)
                        .build()
                        .map_err(|e| other("DeleteObjects", e.to_string()))?,
                )
                .send()
                .await
                .map_err(err(SERVICE, "DeleteObjects"))?;
        }
    }
    aws.s3
        .delete_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(err(SERVICE, "DeleteBucket"))?;
    Ok(())
}
