//! Secrets Manager and SSM Parameter Store: the secrets deploy generates (created with a random
//! value, the one time the tool holds a value) and the existence checks of the secrets the
//! containers merely refer to (metadata only: `plan` never needs permission to read a value).
//!
//! Values pass straight from GetRandomPassword into CreateSecret/PutSecretValue and are never
//! stored, logged or returned (the SDK redacts them in its own debug output too).

use super::{err, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, Observed, SecretAttrs, Tags, TAG_GENERATED, VALUE_SET_OUTSIDE,
};
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_ssm::types::ParameterStringFilter;
use std::collections::BTreeMap;

fn sm_tags(tags: &Tags) -> Vec<Tag> {
    super::tag_list(tags, |k, v| Tag::builder().key(k).value(v).build())
}

/// The secret `name_or_arn`, with its tags, or `None` when absent or scheduled for deletion
/// (such a secret is gone for every purpose but its name). Calls: DescribeSecret.
async fn describe(
    aws: &Aws,
    name_or_arn: &str,
) -> Result<
    Option<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput>,
    AwsError,
> {
    match aws
        .secretsmanager
        .describe_secret()
        .secret_id(name_or_arn)
        .send()
        .await
        .map_err(err("secretsmanager", "DescribeSecret"))
    {
        Ok(out) if out.deleted_date().is_some() => Ok(None),
        Ok(out) => Ok(Some(out)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The generated secret `name`, normalized: `value` is how deploy generated the current value
/// (the [`TAG_GENERATED`] tag), or [`VALUE_SET_OUTSIDE`]. `Observed.id` is the ARN.
pub async fn find_secret(
    aws: &Aws,
    name: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let Some(out) = describe(aws, name).await.map_err(|e| e.at(address))? else {
        return Ok(None);
    };
    let all_tags: Tags = out
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    let arn = out.arn().unwrap_or_default().to_string();
    Ok(Some(Observed {
        address: address.clone(),
        id: arn,
        attrs: Attrs::Secret(SecretAttrs {
            name: out.name().unwrap_or(name).to_string(),
            description: out.description().unwrap_or_default().to_string(),
            value: all_tags
                .get(TAG_GENERATED)
                .cloned()
                .unwrap_or_else(|| VALUE_SET_OUTSIDE.to_string()),
            tags: user_tags(&all_tags),
        }),
        all_tags,
        handles: BTreeMap::new(),
    }))
}

/// A random value as `SecretAttrs::value` describes it. Calls: GetRandomPassword.
async fn random_value(aws: &Aws, generation: &str) -> Result<String, AwsError> {
    tracing::info!(generation, "generating a secret value (never shown)");
    let (length, exclude_punctuation) =
        SecretAttrs::generation_params(generation).ok_or_else(|| {
            AwsError::other(
                "deploy",
                "GenerateSecret",
                "the secret's generation settings cannot be read",
            )
        })?;
    let out = aws
        .secretsmanager
        .get_random_password()
        .password_length(length)
        .exclude_punctuation(exclude_punctuation)
        .require_each_included_type(true)
        .send()
        .await
        .map_err(err("secretsmanager", "GetRandomPassword"))?;
    out.random_password
        .ok_or_else(|| AwsError::other("secretsmanager", "GetRandomPassword", "no value returned"))
}

/// Creates the secret with a generated value and all `tags` (ownership included) in one
/// CreateSecret call, recording how the value was generated. Returns the ARN. Calls:
/// GetRandomPassword, CreateSecret.
pub async fn create_secret(
    aws: &Aws,
    attrs: &SecretAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    let value = random_value(aws, &attrs.value).await?;
    let mut tags = tags.clone();
    tags.insert(TAG_GENERATED.into(), attrs.value.clone());
    let out = aws
        .secretsmanager
        .create_secret()
        .name(&attrs.name)
        .description(&attrs.description)
        .secret_string(value)
        .set_tags(Some(sm_tags(&tags)))
        .send()
        .await
        .map_err(err("secretsmanager", "CreateSecret"))
        .map_err(|e| {
            if e.code_is("InvalidRequestException") && e.message.contains("deletion") {
                AwsError {
                    message: format!(
                        "{} (a secret of this name is scheduled for deletion; restore it with \
                         `aws secretsmanager restore-secret --secret-id {}` and `deploy import`, \
                         or delete it for good with --force-delete-without-recovery)",
                        e.message, attrs.name
                    ),
                    ..e
                }
            } else {
                e
            }
        })?;
    out.arn
        .ok_or_else(|| AwsError::other("secretsmanager", "CreateSecret", "no ARN returned"))
}

/// Moves description, value generation and user tags from `before` to `after`. A new value
/// is generated only when the generation settings (length, punctuation, rotation) changed.
/// Calls, each only when needed: UpdateSecret, GetRandomPassword + PutSecretValue,
/// TagResource, UntagResource.
pub async fn update_secret(
    aws: &Aws,
    arn: &str,
    before: &SecretAttrs,
    after: &SecretAttrs,
) -> Result<(), AwsError> {
    if before.description != after.description {
        aws.secretsmanager
            .update_secret()
            .secret_id(arn)
            .description(&after.description)
            .send()
            .await
            .map_err(err("secretsmanager", "UpdateSecret"))?;
    }
    let mut set = Tags::new();
    if before.value != after.value {
        let value = random_value(aws, &after.value).await?;
        aws.secretsmanager
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .map_err(err("secretsmanager", "PutSecretValue"))?;
        set.insert(TAG_GENERATED.into(), after.value.clone());
    }
    let (user_set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set.extend(user_set);
    set_tags(aws, arn, &set, &remove).await
}

/// Deletes the secret at once (ForceDeleteWithoutRecovery), so the name is free for the next
/// apply instead of blocked for a recovery window. Already gone is success.
pub async fn delete_secret(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    match aws
        .secretsmanager
        .delete_secret()
        .secret_id(arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .map_err(err("secretsmanager", "DeleteSecret"))
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `tags` and removes the keys in `remove`: TagResource and UntagResource, each only when
/// it has something to do.
pub async fn set_tags(
    aws: &Aws,
    arn: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if !tags.is_empty() {
        aws.secretsmanager
            .tag_resource()
            .secret_id(arn)
            .set_tags(Some(sm_tags(tags)))
            .send()
            .await
            .map_err(err("secretsmanager", "TagResource"))?;
    }
    if !remove.is_empty() {
        aws.secretsmanager
            .untag_resource()
            .secret_id(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err("secretsmanager", "UntagResource"))?;
    }
    Ok(())
}

/// The ARN of an existing Secrets Manager secret a container refers to (by name or ARN).
/// Metadata only (DescribeSecret): the value is never read. Absent → an error saying how to
/// create it.
pub async fn lookup_secret_arn(aws: &Aws, name_or_arn: &str) -> Result<String, AwsError> {
    match describe(aws, name_or_arn).await? {
        Some(out) => out
            .arn
            .ok_or_else(|| AwsError::other("secretsmanager", "DescribeSecret", "no ARN returned")),
        None => Err(AwsError {
            service: "secretsmanager",
            operation: "DescribeSecret",
            address: None,
            code: Some("LookupFailed".into()),
            message: format!(
                "the stack refers to Secrets Manager secret `{name_or_arn}`, which does not exist \
                 in {} (or is scheduled for deletion). Create it first: aws secretsmanager \
                 create-secret --name {name_or_arn} --secret-string file://VALUE_FILE",
                aws.region
            ),
            request_id: None,
        }),
    }
}

/// The ARN of an existing SSM parameter a container refers to (by name or ARN). Metadata only
/// (DescribeParameters): the value is never read. Absent → an error saying how to create it.
pub async fn lookup_parameter_arn(
    aws: &Aws,
    account_id: &str,
    name_or_arn: &str,
) -> Result<String, AwsError> {
    let name = match name_or_arn.split_once(":parameter") {
        Some((_, n)) if name_or_arn.starts_with("arn:") => n.to_string(),
        _ => name_or_arn.to_string(),
    };
    let out = aws
        .ssm
        .describe_parameters()
        .parameter_filters(
            ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .values(&name)
                .build()
                .map_err(|e| AwsError::other("ssm", "DescribeParameters", e.to_string()))?,
        )
        .send()
        .await
        .map_err(err("ssm", "DescribeParameters"))?;
    let wanted = name.trim_start_matches('/');
    let found = out
        .parameters()
        .iter()
        .any(|p| p.name().map(|n| n.trim_start_matches('/')) == Some(wanted));
    if !found {
        return Err(AwsError {
            service: "ssm",
            operation: "DescribeParameters",
            address: None,
            code: Some("LookupFailed".into()),
            message: format!(
                "the stack refers to SSM parameter `{name_or_arn}`, which does not exist in {}. \
                 Create it first: aws ssm put-parameter --name {name} --type SecureString \
                 --value file://VALUE_FILE",
                aws.region
            ),
            request_id: None,
        });
    }
    Ok(if name_or_arn.starts_with("arn:") {
        name_or_arn.to_string()
    } else {
        format!("arn:aws:ssm:{}:{account_id}:parameter/{wanted}", aws.region)
    })
}
