//! Rendered files that reach running tasks through the stack's config bucket instead of the
//! task definition: a change to them is a reload, not a new revision and a restart.
//!
//! The bucket holds each file as `files/FAMILY/PATH` (versioned) and, per task definition
//! family, one manifest object `manifest/FAMILY` whose lines are `SHA256 VERSION_ID PATH`: the
//! consistent set the sidecar (templates/reloader.sh) fetches, by version id. An older version
//! of the manifest names older versions of the files, so restoring the files of an earlier
//! apply is copying that manifest version over the current one. Pure: no SDK here (the S3
//! calls are in `aws::s3`).

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Key of the manifest of task definition `family`.
pub fn manifest_key(family: &str) -> String {
    format!("manifest/{family}")
}

/// Key prefix of the files of task definition `family` (a manifest PATH follows it).
pub fn files_prefix(family: &str) -> String {
    format!("files/{family}/")
}

/// Key prefix of the status objects the sidecars of `family`'s tasks write
/// (`status/manifest/FAMILY/TASK_ID.json`).
pub fn status_prefix(family: &str) -> String {
    format!("status/{}/", manifest_key(family))
}

/// Object metadata key on each manifest version: the content hash of the task definition
/// revision it was published with (`TaskDefinitionAttrs::content_hash`), so a rollback to a
/// revision finds the files that went with it.
pub const TASK_DEFINITION_METADATA: &str = "deploy-task-definition";

/// Hex SHA-256 of a file's bytes (what `sha256sum` prints).
pub fn sha256_hex(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One file of a manifest: its content hash and the object version holding that content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub sha256: String,
    pub version_id: String,
}

/// A manifest: PATH (relative to the sidecar's config directory, `CONTAINER/…`) → entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub files: BTreeMap<String, ManifestEntry>,
}

impl Manifest {
    /// Parses the manifest text; a malformed line is an error naming it.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut files = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut parts = line.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(sha), Some(version), Some(path))
                    if sha.len() == 64 && !version.is_empty() && !path.is_empty() =>
                {
                    files.insert(
                        path.to_string(),
                        ManifestEntry {
                            sha256: sha.to_string(),
                            version_id: version.to_string(),
                        },
                    );
                }
                _ => return Err(format!("manifest line {}: {line:?}", n + 1)),
            }
        }
        Ok(Manifest { files })
    }

    /// The manifest text, one line per file in path order.
    pub fn text(&self) -> String {
        self.files
            .iter()
            .map(|(path, e)| format!("{} {} {path}\n", e.sha256, e.version_id))
            .collect()
    }

    /// The paths of `desired` (PATH → content) whose content this manifest does not already
    /// hold: the only files an apply uploads.
    pub fn changed<'a>(&self, desired: &'a BTreeMap<String, String>) -> Vec<&'a str> {
        desired
            .iter()
            .filter(|(path, content)| {
                self.files.get(*path).map(|e| e.sha256.as_str())
                    != Some(sha256_hex(content).as_str())
            })
            .map(|(path, _)| path.as_str())
            .collect()
    }
}

/// A path the manifest and the sidecar's shell loop can carry: relative, no `.`/`..` or empty
/// component, no space-free guarantee needed (PATH is the line's last field) but no line break.
pub fn check_manifest_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.contains('\n') || path.contains('\r') {
        return Err(format!("{path:?}: not a relative single-line path"));
    }
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!("{path:?}: empty, `.` or `..` component"));
    }
    Ok(())
}

/// The config bucket's name: `STACK-ENVIRONMENT-config-ACCOUNT-REGION` (bucket names are
/// global; the account and region keep two copies of a stack apart), lower-cased. Over S3's
/// 63 characters, `STACK-ENVIRONMENT` is cut and followed by 8 hex digits of its SHA-256, so
/// two long environments never share a bucket and the account and region stay whole. The cut
/// counts the account as 12 digits, so a name built with the account's placeholder becomes
/// the real name when the account is put in (see `model::with_account`).
pub fn bucket_name(stack: &str, environment: &str, account: &str, region: &str) -> String {
    const MAX: usize = 63;
    const ACCOUNT_DIGITS: usize = 12;
    let owner = format!("{stack}-{environment}").to_lowercase();
    let region = region.to_lowercase();
    let suffix_len = "-config-".len() + ACCOUNT_DIGITS + 1 + region.len();
    if owner.len() + suffix_len <= MAX {
        return format!("{owner}-config-{account}-{region}");
    }
    let hash = &sha256_hex(&owner)[..8];
    let keep = MAX.saturating_sub(suffix_len + 1 + hash.len());
    let cut: String = owner.chars().take(keep).collect();
    format!(
        "{}-{hash}-config-{account}-{region}",
        cut.trim_end_matches('-')
    )
}

/// The config bucket's policy: none. Nobody outside the account reaches the bucket (S3
/// admits another account only when the bucket's policy or ACLs grant it; ACLs are disabled
/// and public access is blocked), and inside it access is what IAM grants: the stack's task
/// roles get their own files (the `deploy-config` inline policy), the deploying principal what
/// the generated deploy policies give. A policy naming the deploying principal would lock out
/// the next operator or the CI role; a policy found on the bucket is drift, removed by apply.
/// A TLS-only statement (`aws:SecureTransport`) is left out: moto 5.2.5 evaluates bucket
/// policies without conditions, so any conditional Deny denies every object call there (see
/// the README); the SDK and the sidecar's CLI use HTTPS endpoints only.
pub fn bucket_policy(_bucket: &str) -> serde_json::Value {
    serde_json::Value::Null
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_names_changed_files_only() {
        let rules = "groups: []\n";
        let text = format!(
            "{} v7 prometheus/prometheus.yml\n{} v1 prometheus/rules/alerts.yml\n",
            sha256_hex("global: {}\n"),
            sha256_hex(rules)
        );
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.text(), text);
        assert_eq!(m.files["prometheus/prometheus.yml"].version_id, "v7");
        let desired: BTreeMap<String, String> = [
            ("prometheus/rules/alerts.yml".to_string(), rules.to_string()),
            (
                "prometheus/prometheus.yml".to_string(),
                "global: {scrape_interval: 5s}\n".to_string(),
            ),
            ("alertmanager/alertmanager.yml".to_string(), "x".to_string()),
        ]
        .into();
        assert_eq!(
            m.changed(&desired),
            ["alertmanager/alertmanager.yml", "prometheus/prometheus.yml"]
        );
        assert!(Manifest::parse("abc v1 x\n").is_err());
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn bucket_name_and_policy_name_only_the_stack() {
        let name = bucket_name("Monitoring", "production", "123456789012", "us-west-2");
        assert_eq!(name, "monitoring-production-config-123456789012-us-west-2");
        // A long environment keeps the account and region whole, and its own hash.
        let long = |env: &str| bucket_name("monitoring", env, "123456789012", "us-west-2");
        let a = long("feature-a-very-long-branch-name-for-test");
        let b = long("feature-a-very-long-branch-name-for-tests");
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert!(a.ends_with("-config-123456789012-us-west-2"), "{a}");
        assert_ne!(a, b);
        // Named before the lookups (the account's placeholder), the real name follows.
        let placeholder = crate::model::ACCOUNT_ID_PLACEHOLDER;
        let early = bucket_name(
            "monitoring",
            "feature-a-very-long-branch-name-for-test",
            placeholder,
            "us-west-2",
        );
        assert_eq!(crate::model::with_account(&early, "123456789012"), a);
        assert_eq!(bucket_policy(&name), serde_json::Value::Null);
    }

    #[test]
    fn paths_are_relative_and_plain() {
        assert!(check_manifest_path("prometheus/rules/alerts.yml").is_ok());
        for bad in ["/etc/x", "a/../b", "a//b", "a\nb", "./a"] {
            assert!(check_manifest_path(bad).is_err(), "{bad}");
        }
    }
}
