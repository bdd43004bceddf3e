//! Amazon Managed Service for Prometheus: the stack's workspace (`amp_workspace.KEY`), where
//! Prometheus remote-writes the history that must outlive its task.
//!
//! - Workspace ids (`ws-…`) are AWS's pick: a workspace is found by its `Name` tag
//!   (`STACK-ENVIRONMENT-KEY`) among ListWorkspaces' answers, which carry each workspace's
//!   tags, so one call a page reads them all. `Observed.id` is the workspace id; the ARN is the
//!   `arn` handle (the tagging calls take it).
//! - All tags go in the CreateWorkspace call; the alias is a label and changes in place.
//! - AWS creates and deletes asynchronously (`CREATING` → `ACTIVE`, `DELETING` → gone): a new
//!   workspace is polled until ACTIVE; a DELETING one counts as gone. moto answers ACTIVE at
//!   once and deletes at once; nothing here relies on that.

use super::{err, Aws, AwsError};
use crate::model::{user_tags, Address, AmpWorkspaceAttrs, Attrs, Observed, Tags};
use aws_sdk_amp::types::{WorkspaceStatus, WorkspaceStatusCode};
use std::collections::BTreeMap;
use std::time::Duration;

const SERVICE: &str = "aps";

/// The tag naming the workspace in the stack (its identity).
const NAME_TAG: &str = "Name";

/// Polling of a new workspace: every 2 s, at most 10 minutes (AWS takes seconds to minutes).
const POLL: Duration = Duration::from_secs(2);
const WAIT_LIMIT: Duration = Duration::from_secs(600);

fn gone(status: Option<&WorkspaceStatus>) -> bool {
    matches!(
        status.map(|s| s.status_code()),
        Some(WorkspaceStatusCode::Deleting)
    )
}

fn observed(
    id: &str,
    arn: &str,
    alias: Option<&str>,
    tags: Option<&std::collections::HashMap<String, String>>,
    address: &Address,
) -> Observed {
    let all_tags: Tags = tags
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut tags = user_tags(&all_tags);
    let name = tags.remove(NAME_TAG).unwrap_or_default();
    let mut handles = BTreeMap::new();
    handles.insert("arn".to_string(), arn.to_string());
    Observed {
        address: address.clone(),
        id: id.to_string(),
        attrs: Attrs::AmpWorkspace(AmpWorkspaceAttrs {
            name,
            alias: alias.unwrap_or_default().to_string(),
            tags,
        }),
        all_tags,
        handles,
    }
}

/// Every workspace of the region that is not being deleted, normalized (placeholder address
/// `address`). Calls: ListWorkspaces, every page.
pub async fn list_workspaces(aws: &Aws, address: &Address) -> Result<Vec<Observed>, AwsError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .amp
            .list_workspaces()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| err(SERVICE, "ListWorkspaces")(e).at(address))?;
        for w in page.workspaces() {
            if !gone(w.status()) {
                found.push(observed(
                    w.workspace_id(),
                    w.arn(),
                    w.alias(),
                    w.tags(),
                    address,
                ));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(found),
        }
    }
}

/// The workspaces named `name` (their `Name` tag), normalized: more than one only when
/// something outside deploy made a twin. Calls: ListWorkspaces, every page.
pub async fn find_workspaces(
    aws: &Aws,
    name: &str,
    address: &Address,
) -> Result<Vec<Observed>, AwsError> {
    Ok(list_workspaces(aws, address)
        .await?
        .into_iter()
        .filter(|o| matches!(&o.attrs, Attrs::AmpWorkspace(a) if a.name == name))
        .collect())
}

/// The workspace `id` (ws-…), normalized, or `None` when it is gone or being deleted.
/// Calls: DescribeWorkspace.
pub async fn observe_workspace(
    aws: &Aws,
    id: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    match aws
        .amp
        .describe_workspace()
        .workspace_id(id)
        .send()
        .await
        .map_err(err(SERVICE, "DescribeWorkspace"))
    {
        Ok(out) => Ok(out
            .workspace()
            .filter(|w| !gone(w.status()))
            .map(|w| observed(w.workspace_id(), w.arn(), w.alias(), w.tags(), address))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.at(address)),
    }
}

/// Creates the workspace with its alias and all `tags` (ownership and `Name` included) in the
/// CreateWorkspace call, then waits until it is ACTIVE. The client token is derived from the
/// tags and attributes, so a retried call returns the same workspace.
/// Returns the workspace id. Calls: CreateWorkspace, DescribeWorkspace (polled).
pub async fn create_workspace(
    aws: &Aws,
    attrs: &AmpWorkspaceAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let op = "CreateWorkspace";
    let mut all = tags.clone();
    all.insert(NAME_TAG.into(), attrs.name.clone());
    let token = crate::model::short_hash(&(attrs, &all));
    let out = aws
        .amp
        .create_workspace()
        .alias(&attrs.alias)
        .client_token(token)
        .set_tags(Some(all.into_iter().collect()))
        .send()
        .await
        .map_err(err(SERVICE, op))?;
    let id = out.workspace_id().to_string();
    let started = std::time::Instant::now();
    loop {
        let seen = aws
            .amp
            .describe_workspace()
            .workspace_id(&id)
            .send()
            .await
            .map_err(err(SERVICE, "DescribeWorkspace"))?;
        let code = seen
            .workspace()
            .and_then(|w| w.status())
            .map(|s| s.status_code().clone());
        match code {
            Some(WorkspaceStatusCode::Active) | None => return Ok(id),
            Some(WorkspaceStatusCode::CreationFailed) => {
                return Err(AwsError::other(
                    SERVICE,
                    "DescribeWorkspace",
                    format!("workspace {id} is in state CREATION_FAILED"),
                ))
            }
            Some(s) => {
                if started.elapsed() > WAIT_LIMIT {
                    return Err(AwsError {
                        service: SERVICE,
                        operation: "DescribeWorkspace",
                        address: None,
                        code: Some("WaitTimeout".into()),
                        message: format!(
                            "workspace {id} is still {}, not ACTIVE, after {} s",
                            s.as_str(),
                            WAIT_LIMIT.as_secs()
                        ),
                        request_id: None,
                    });
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Moves the alias and the user tags from `before` to `after` on workspace `id` (ARN `arn`).
/// Calls, each only when needed: UpdateWorkspaceAlias, TagResource, UntagResource.
pub async fn update_workspace(
    aws: &Aws,
    id: &str,
    arn: &str,
    before: &AmpWorkspaceAttrs,
    after: &AmpWorkspaceAttrs,
) -> Result<(), AwsError> {
    if before.alias != after.alias {
        aws.amp
            .update_workspace_alias()
            .workspace_id(id)
            .alias(&after.alias)
            .send()
            .await
            .map_err(err(SERVICE, "UpdateWorkspaceAlias"))?;
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    let remove: Vec<String> = remove.into_iter().filter(|k| k != NAME_TAG).collect();
    set_tags(aws, arn, &set, &remove).await
}

/// Sets `tags` and removes the keys in `remove` on the workspace with ARN `arn`:
/// TagResource and UntagResource, each only when it has something to do.
pub async fn set_tags(
    aws: &Aws,
    arn: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.amp
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err(SERVICE, "TagResource"))?;
    }
    if !remove.is_empty() {
        aws.amp
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err(SERVICE, "UntagResource"))?;
    }
    Ok(())
}

/// Deletes the workspace and every sample in it (AWS finishes asynchronously; a DELETING
/// workspace counts as gone). Already gone is success. Calls: DeleteWorkspace.
pub async fn delete_workspace(aws: &Aws, id: &str) -> Result<(), AwsError> {
    super::gone_is_ok(
        aws.amp
            .delete_workspace()
            .workspace_id(id)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteWorkspace")),
    )
}
