//! Secrets Manager and SSM Parameter Store: the secrets deploy generates (created with a random
//! value, the one time the tool holds a value) and the existence checks of the secrets the
//! containers merely refer to (metadata only: `plan` never needs permission to read a value).
//!
//! Values are generated (GetRandomPassword, bcrypt, a self-signed certificate) just before
//! CreateSecret/PutSecretValue and are never stored, logged or returned (the SDK redacts them
//! in its own debug output too).

use super::{err, Aws, AwsError};
use crate::model::{
    user_tags, Address, Attrs, Generation, Observed, SecretAttrs, SecretFormat, Tags,
    TAG_GENERATED, VALUE_SET_OUTSIDE,
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

/// A new value as `SecretAttrs::value` (a [`Generation`] line) describes it: a random
/// password, basic-auth credentials with the password's bcrypt hash, or a self-signed TLS
/// certificate with its key. Calls: GetRandomPassword (password and basic_auth).
async fn random_value(aws: &Aws, generation: &str) -> Result<String, AwsError> {
    tracing::info!(generation, "generating a secret value (never shown)");
    // Checked, not just parsed: the line may come from a saved plan, and a validity beyond
    // the stack's limit would overflow the certificate's date arithmetic.
    let g = Generation::parse_checked(generation).map_err(|why| {
        AwsError::other(
            "deploy",
            "GenerateSecret",
            format!("the secret's generation settings cannot be used: {why}"),
        )
    })?;
    match &g.format {
        SecretFormat::Password => random_password(aws, &g).await,
        SecretFormat::BasicAuth { username } => {
            let password = random_password(aws, &g).await?;
            basic_auth(username, &password)
                .map_err(|e| AwsError::other("deploy", "GenerateSecret", format!("bcrypt: {e}")))
        }
        SecretFormat::Tls {
            names,
            validity_days,
        } => self_signed(names, *validity_days)
            .map_err(|e| AwsError::other("deploy", "GenerateSecret", format!("certificate: {e}"))),
    }
}

/// A random password of the generation's length. Calls: GetRandomPassword.
async fn random_password(aws: &Aws, g: &Generation) -> Result<String, AwsError> {
    let out = aws
        .secretsmanager
        .get_random_password()
        .password_length(g.length)
        .exclude_punctuation(g.exclude_punctuation)
        .require_each_included_type(true)
        .send()
        .await
        .map_err(err("secretsmanager", "GetRandomPassword"))?;
    out.random_password
        .ok_or_else(|| AwsError::other("secretsmanager", "GetRandomPassword", "no value returned"))
}

/// JSON `{"username", "password", "bcrypt"}`: the credentials and the password's bcrypt hash,
/// cost 10 (Go's and exporter-toolkit's default: tens of milliseconds per check, which the
/// toolkit caches).
pub fn basic_auth(username: &str, password: &str) -> Result<String, bcrypt::BcryptError> {
    let hash = bcrypt::hash(password, 10)?;
    Ok(serde_json::json!({"username": username, "password": password, "bcrypt": hash}).to_string())
}

/// JSON `{"cert", "key"}`: a self-signed ECDSA P-256 server certificate for `names` (DNS
/// names; IP addresses become IP SANs), valid from an hour ago (clock skew) for
/// `validity_days`, and its PKCS#8 private key, both PEM. Clients trust it by naming the
/// certificate itself as their CA. It is not marked as a CA: Go (Prometheus, Grafana) and
/// OpenSSL accept a self-signed leaf as its own trust anchor, while webpki-based clients
/// refuse a CA certificate used as a server's.
pub fn self_signed(names: &[String], validity_days: i64) -> Result<String, rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(validity_days);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;
    Ok(serde_json::json!({"cert": cert.pem(), "key": key.serialize_pem()}).to_string())
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
/// is generated only when the generation settings (format and its parameters, length,
/// punctuation, rotation) changed.
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
    super::gone_is_ok(
        aws.secretsmanager
            .delete_secret()
            .secret_id(arn)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(err("secretsmanager", "DeleteSecret")),
    )
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
        None => Err(AwsError::lookup_failed(
            "secretsmanager",
            "DescribeSecret",
            format!(
                "the stack refers to Secrets Manager secret `{name_or_arn}`, which does not exist \
                 in {} (or is scheduled for deletion). Create it first: aws secretsmanager \
                 create-secret --name {name_or_arn} --secret-string file://VALUE_FILE",
                aws.region
            ),
        )),
    }
}

/// The ARN and the type (`String`, `StringList`, `SecureString`: what lint's DL018 judges) of
/// an existing SSM parameter a container refers to (by name or ARN). Metadata only
/// (DescribeParameters): the value is never read. Absent → an error saying how to create it.
pub async fn lookup_parameter(
    aws: &Aws,
    account_id: &str,
    name_or_arn: &str,
) -> Result<(String, String), AwsError> {
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
        .find(|p| p.name().map(|n| n.trim_start_matches('/')) == Some(wanted));
    let Some(found) = found else {
        return Err(AwsError::lookup_failed(
            "ssm",
            "DescribeParameters",
            format!(
                "the stack refers to SSM parameter `{name_or_arn}`, which does not exist in {}. \
                 Create it first: aws ssm put-parameter --name {name} --type SecureString \
                 --value file://VALUE_FILE",
                aws.region
            ),
        ));
    };
    let kind = found
        .r#type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let arn = if name_or_arn.starts_with("arn:") {
        name_or_arn.to_string()
    } else {
        format!("arn:aws:ssm:{}:{account_id}:parameter/{wanted}", aws.region)
    };
    Ok((arn, kind))
}
