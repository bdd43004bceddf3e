//! What an apply that published config files waits for: every running task of the services
//! that use them reporting the new file set loaded (the status objects the config sidecar
//! writes, see templates/reloader.sh). Pure: the S3 and ECS reads are the caller's.

use crate::model::{aws_name_of, Attrs, Desired};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a task's sidecar last reported (the object templates/reloader.sh writes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReloadStatus {
    pub task: String,
    pub manifest_version: String,
    /// `completed` or `failed`.
    pub result: String,
    #[serde(default)]
    pub error: String,
    /// Server name → its `NAME_config_last_reload_successful` value read after the reload
    /// (`None`: not readable).
    #[serde(default)]
    pub reload_successful: BTreeMap<String, Option<f64>>,
    pub at: String,
}

/// A service of the stack whose tasks load a family's files from the config bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadService {
    /// The config bucket's name.
    pub bucket: String,
    pub family: String,
    /// The service's address in the stack (`ecs_service.prometheus`).
    pub address: String,
    pub cluster: String,
    pub service: String,
}

/// The services of `desired` and the task definition family each runs, for the families with
/// files in the config bucket.
pub fn services_of_families(desired: &[Desired]) -> Vec<ReloadService> {
    let Some(bucket) = desired.iter().find_map(|d| match &d.attrs {
        Attrs::S3Bucket(b) => Some(b),
        _ => None,
    }) else {
        return vec![];
    };
    let families: Vec<&str> = bucket
        .files
        .keys()
        .filter_map(|k| k.split_once('/'))
        .map(|(family, _)| family)
        .collect();
    desired
        .iter()
        .filter_map(|d| match &d.attrs {
            Attrs::EcsService(s) => {
                let td = s.task_definition.split('@').next().unwrap_or_default();
                let family = aws_name_of(desired, td);
                families.contains(&family.as_str()).then(|| ReloadService {
                    bucket: bucket.name.clone(),
                    family,
                    address: d.address.to_string(),
                    cluster: aws_name_of(desired, &s.cluster),
                    service: s.name.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

/// Where a reload stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Judgement {
    /// Fewer tasks than run have reported the version yet.
    Waiting { reported: usize },
    /// Every running task reported the version loaded.
    Completed { reported: usize },
    /// A task's server refused the files (its sidecar put the previous ones back).
    Failed { task: String, error: String },
}

/// Judges a reload of manifest `version` from the tasks' status objects, with `running` tasks
/// in the service. A status of another version (an old task, or one not polled yet) does not
/// count; one failure fails the reload, as the files are the same for every task.
pub fn judge(statuses: &[ReloadStatus], version: &str, running: usize) -> Judgement {
    let of_version: Vec<&ReloadStatus> = statuses
        .iter()
        .filter(|s| s.manifest_version == version)
        .collect();
    if let Some(f) = of_version.iter().find(|s| s.result != "completed") {
        return Judgement::Failed {
            task: f.task.clone(),
            error: f.error.clone(),
        };
    }
    let reported = of_version.len();
    if reported >= running.max(1) {
        Judgement::Completed { reported }
    } else {
        Judgement::Waiting { reported }
    }
}

/// The config files a family's tasks run, as `deploy status` shows them: the bucket's current
/// manifest version and each task's last report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FamilyFiles {
    pub family: String,
    /// `None` before the first publish.
    pub manifest_version: Option<String>,
    pub tasks: Vec<ReloadStatus>,
}

impl FamilyFiles {
    /// What is wrong: a task whose server refused the current files.
    pub fn problems(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| {
                t.result != "completed"
                    && Some(t.manifest_version.as_str()) == self.manifest_version.as_deref()
            })
            .map(|t| {
                format!(
                    "task {} refused the current config files of {}: {}",
                    t.task, self.family, t.error
                )
            })
            .collect()
    }
}

/// How a followed reload ended, as apply reports it (JSON `reloads`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReloadResult {
    pub family: String,
    /// The services whose tasks load the files.
    pub services: Vec<String>,
    pub manifest_version: String,
    /// Files uploaded (`CONTAINER/PATH`).
    pub uploaded: Vec<String>,
    /// `completed`, `failed`, `timed_out`, `not_waited`, `interrupted`.
    pub outcome: String,
    /// Tasks that reported the new files loaded, of those running.
    pub reported: usize,
    pub running: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// After a refused reload: the manifest version made current again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(task: &str, version: &str, result: &str) -> ReloadStatus {
        ReloadStatus {
            task: task.into(),
            manifest_version: version.into(),
            result: result.into(),
            error: if result == "failed" {
                "reload refused: prometheus: bad rule".into()
            } else {
                String::new()
            },
            reload_successful: BTreeMap::new(),
            at: "2026-12-01T20:00:00Z".into(),
        }
    }

    #[test]
    fn every_running_task_must_report_the_new_version() {
        let old = status("t1", "v1", "completed");
        assert_eq!(
            judge(std::slice::from_ref(&old), "v2", 2),
            Judgement::Waiting { reported: 0 }
        );
        let one = [old.clone(), status("t2", "v2", "completed")];
        assert_eq!(judge(&one, "v2", 2), Judgement::Waiting { reported: 1 });
        let both = [
            status("t1", "v2", "completed"),
            status("t2", "v2", "completed"),
        ];
        assert_eq!(judge(&both, "v2", 2), Judgement::Completed { reported: 2 });
        // A stale status of a task gone since (reporting an old version) never counts.
        let stale = [
            status("gone", "v1", "failed"),
            status("t2", "v2", "completed"),
        ];
        assert_eq!(judge(&stale, "v2", 1), Judgement::Completed { reported: 1 });
    }

    #[test]
    fn one_refusal_fails_the_reload() {
        let s = [
            status("t1", "v2", "completed"),
            status("t2", "v2", "failed"),
        ];
        assert_eq!(
            judge(&s, "v2", 2),
            Judgement::Failed {
                task: "t2".into(),
                error: "reload refused: prometheus: bad rule".into()
            }
        );
    }
}
