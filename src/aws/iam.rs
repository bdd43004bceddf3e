//! IAM adapter: the task and execution roles of the stack, with their trust policy, inline
//! policies, managed policy attachments and tags.
//!
//! It exists so that the rest of the tool compares roles as normalized data: IAM hands policy
//! documents back URL-encoded and in whatever key and list order it likes, and the planner must
//! see the same canonical JSON it asked for (see [`crate::model::canonical_policy`]), or every
//! plan would show a policy change. Takes and returns raw ids: role names and ARNs.

use super::{err, tag_list, Aws, AwsError};
use crate::model::{
    canonical_json, canonical_policy, user_tags, Address, Attrs, IamRoleAttrs, Observed, Tags,
};
use aws_sdk_iam::types as iam;
use aws_smithy_types::error::operation::BuildError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const SERVICE: &str = "iam";

fn tags_from(list: &[iam::Tag]) -> Tags {
    list.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn iam_tags(tags: &Tags) -> Result<Vec<iam::Tag>, BuildError> {
    tag_list(tags, |k, v| iam::Tag::builder().key(k).value(v).build())
        .into_iter()
        .collect()
}

/// A request or answer this adapter cannot use, as an [`AwsError`] naming the operation.
fn bad(op: &'static str) -> impl Fn(String) -> AwsError {
    move |message| AwsError::other(SERVICE, op, message)
}

/// A policy document as IAM returns it (URL-encoded on AWS, sometimes already decoded), parsed
/// and made canonical.
fn decode_policy(text: &str) -> Result<Value, String> {
    let trimmed = text.trim_start();
    let decoded = if trimmed.starts_with('{') {
        trimmed.to_string()
    } else {
        urlencoding::decode(trimmed)
            .map_err(|e| format!("policy document is not URL-encoded UTF-8: {e}"))?
            .into_owned()
    };
    let doc: Value =
        serde_json::from_str(&decoded).map_err(|e| format!("policy document is not JSON: {e}"))?;
    Ok(canonical_policy(&doc))
}

/// The text sent for a policy document: canonical, so what is read back compares equal.
fn policy_text(doc: &Value) -> String {
    canonical_json(&canonical_policy(doc))
}

fn not_found(e: &AwsError) -> bool {
    e.code_is("NoSuchEntity")
}

async fn inline_policy_names(aws: &Aws, name: &str) -> Result<Vec<String>, AwsError> {
    aws.iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(err(SERVICE, "ListRolePolicies"))
}

async fn attached_policy_arns(aws: &Aws, name: &str) -> Result<BTreeSet<String>, AwsError> {
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(err(SERVICE, "ListAttachedRolePolicies"))?;
    Ok(attached
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect())
}

/// The role `name`, or `None` when IAM has no such role.
/// Calls: GetRole (tags come with it), then ListRolePolicies and ListAttachedRolePolicies (per
/// page) together, then one GetRolePolicy per inline policy, all at once.
pub async fn find_role(
    aws: &Aws,
    name: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let at = |e: AwsError| e.at(address);
    let role = match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) => {
            let e = err(SERVICE, "GetRole")(e);
            return if not_found(&e) { Ok(None) } else { Err(at(e)) };
        }
    };
    let Some(role) = role else {
        return Ok(None);
    };
    let assume_role_policy = match role.assume_role_policy_document() {
        Some(text) => decode_policy(text).map_err(|m| at(bad("GetRole")(m)))?,
        None => Value::Null,
    };
    // The role exists: its policy lists are read together, then every inline policy at once.
    let (names, managed_policy_arns) = tokio::try_join!(
        inline_policy_names(aws, name),
        attached_policy_arns(aws, name)
    )
    .map_err(at)?;
    let documents = futures::future::try_join_all(names.into_iter().map(|policy| async move {
        let out = aws
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| at(err(SERVICE, "GetRolePolicy")(e)))?;
        let doc = decode_policy(out.policy_document()).map_err(|m| at(bad("GetRolePolicy")(m)))?;
        Ok::<_, AwsError>((policy, doc))
    }))
    .await?;
    let inline_policies: BTreeMap<String, Value> = documents.into_iter().collect();
    let all_tags = tags_from(role.tags());
    let attrs = IamRoleAttrs {
        name: role.role_name().to_string(),
        path: role.path().to_string(),
        description: role.description().unwrap_or_default().to_string(),
        assume_role_policy,
        inline_policies,
        managed_policy_arns,
        tags: user_tags(&all_tags),
    };
    Ok(Some(Observed {
        address: address.clone(),
        id: role.arn().to_string(),
        attrs: Attrs::IamRole(attrs),
        all_tags,
        handles: BTreeMap::new(),
    }))
}

/// Names of the roles whose path starts with `path_prefix`. Calls: ListRoles (per page).
pub async fn list_roles_under_path(aws: &Aws, path_prefix: &str) -> Result<Vec<String>, AwsError> {
    let roles = aws
        .iam
        .list_roles()
        .path_prefix(path_prefix)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(err(SERVICE, "ListRoles"))?;
    Ok(roles.iter().map(|r| r.role_name().to_string()).collect())
}

/// Creates the role with its trust policy, path, description and all its tags in one call
/// (so it can never exist untagged), then its inline policies and managed attachments; returns
/// its ARN. `tags` are the caller's (ownership) tags; the attributes' user tags are added.
/// Calls: CreateRole + one PutRolePolicy per inline policy + one AttachRolePolicy per managed
/// policy ARN.
pub async fn create_role(aws: &Aws, attrs: &IamRoleAttrs, tags: &Tags) -> Result<String, AwsError> {
    let mut all = tags.clone();
    all.extend(attrs.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut req = aws
        .iam
        .create_role()
        .role_name(&attrs.name)
        .assume_role_policy_document(policy_text(&attrs.assume_role_policy))
        .set_tags(Some(
            iam_tags(&all).map_err(|e| bad("CreateRole")(format!("invalid tag: {e}")))?,
        ));
    if !attrs.path.is_empty() {
        req = req.path(&attrs.path);
    }
    if !attrs.description.is_empty() {
        req = req.description(&attrs.description);
    }
    let out = req.send().await.map_err(err(SERVICE, "CreateRole"))?;
    let arn = out
        .role()
        .map(|r| r.arn().to_string())
        .ok_or_else(|| AwsError::other(SERVICE, "CreateRole", "no role in the answer"))?;
    for (policy, doc) in &attrs.inline_policies {
        put_policy(aws, &attrs.name, policy, doc).await?;
    }
    for policy_arn in &attrs.managed_policy_arns {
        attach(aws, &attrs.name, policy_arn).await?;
    }
    Ok(arn)
}

async fn put_policy(aws: &Aws, role: &str, policy: &str, doc: &Value) -> Result<(), AwsError> {
    aws.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy)
        .policy_document(policy_text(doc))
        .send()
        .await
        .map_err(err(SERVICE, "PutRolePolicy"))?;
    Ok(())
}

async fn attach(aws: &Aws, role: &str, policy_arn: &str) -> Result<(), AwsError> {
    aws.iam
        .attach_role_policy()
        .role_name(role)
        .policy_arn(policy_arn)
        .send()
        .await
        .map_err(err(SERVICE, "AttachRolePolicy"))?;
    Ok(())
}

/// Changes only what differs between `before` and `after`:
/// UpdateAssumeRolePolicy (trust policy), UpdateRole (description), PutRolePolicy per new or
/// changed inline policy, AttachRolePolicy per new managed ARN, then DeleteRolePolicy /
/// DetachRolePolicy for the removed ones (new permissions land before old ones go), TagRole /
/// UntagRole for user tags. Name and path cannot change in place: that is an error.
pub async fn update_role(
    aws: &Aws,
    name: &str,
    before: &IamRoleAttrs,
    after: &IamRoleAttrs,
) -> Result<(), AwsError> {
    if before.path != after.path || before.name != after.name {
        return Err(AwsError::other(
            SERVICE,
            "UpdateRole",
            format!(
                "role {name}: name and path cannot change in place ({}{} → {}{}); it must be replaced",
                before.path, before.name, after.path, after.name
            ),
        ));
    }
    if canonical_policy(&before.assume_role_policy) != canonical_policy(&after.assume_role_policy) {
        aws.iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(policy_text(&after.assume_role_policy))
            .send()
            .await
            .map_err(err(SERVICE, "UpdateAssumeRolePolicy"))?;
    }
    if before.description != after.description {
        aws.iam
            .update_role()
            .role_name(name)
            .description(&after.description)
            .send()
            .await
            .map_err(err(SERVICE, "UpdateRole"))?;
    }
    for (policy, doc) in &after.inline_policies {
        let same = before
            .inline_policies
            .get(policy)
            .is_some_and(|old| canonical_policy(old) == canonical_policy(doc));
        if !same {
            put_policy(aws, name, policy, doc).await?;
        }
    }
    for policy_arn in after
        .managed_policy_arns
        .difference(&before.managed_policy_arns)
    {
        attach(aws, name, policy_arn).await?;
    }
    for policy in before.inline_policies.keys() {
        if !after.inline_policies.contains_key(policy) {
            aws.iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(err(SERVICE, "DeleteRolePolicy"))?;
        }
    }
    for policy_arn in before
        .managed_policy_arns
        .difference(&after.managed_policy_arns)
    {
        aws.iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(policy_arn)
            .send()
            .await
            .map_err(err(SERVICE, "DetachRolePolicy"))?;
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, name, &set, &remove).await
}

/// Deletes the role after detaching its managed policies and deleting its inline ones (IAM
/// refuses to delete a role that still has either). A role that is already gone is fine.
/// Calls: ListAttachedRolePolicies + DetachRolePolicy each + ListRolePolicies +
/// DeleteRolePolicy each + DeleteRole.
pub async fn delete_role(aws: &Aws, name: &str) -> Result<(), AwsError> {
    let result = async {
        for policy_arn in attached_policy_arns(aws, name).await? {
            aws.iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(&policy_arn)
                .send()
                .await
                .map_err(err(SERVICE, "DetachRolePolicy"))?;
        }
        for policy in inline_policy_names(aws, name).await? {
            aws.iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .map_err(err(SERVICE, "DeleteRolePolicy"))?;
        }
        aws.iam
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map_err(err(SERVICE, "DeleteRole"))?;
        Ok(())
    }
    .await;
    match result {
        Err(e) if not_found(&e) => Ok(()),
        other => other,
    }
}

/// Adds and removes role tags. Calls: TagRole when `tags` is not empty, UntagRole when
/// `remove` is not empty.
pub async fn set_tags(
    aws: &Aws,
    name: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.iam
            .tag_role()
            .role_name(name)
            .set_tags(Some(
                iam_tags(tags).map_err(|e| bad("TagRole")(format!("invalid tag: {e}")))?,
            ))
            .send()
            .await
            .map_err(err(SERVICE, "TagRole"))?;
    }
    if !remove.is_empty() {
        aws.iam
            .untag_role()
            .role_name(name)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err(SERVICE, "UntagRole"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_decode_from_url_encoding_or_plain_json() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
        let plain = serde_json::to_string(&doc).unwrap();
        let encoded = urlencoding::encode(&plain).into_owned();
        assert_eq!(decode_policy(&plain).unwrap(), canonical_policy(&doc));
        assert_eq!(decode_policy(&encoded).unwrap(), canonical_policy(&doc));
        assert!(decode_policy("%7Bnot json").is_err());
    }
}
