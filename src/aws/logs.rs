//! CloudWatch Logs: the log groups the stack's containers write to (name, retention, tags).
//!
//! A log group is known by its name; tagging APIs want its ARN, which DescribeLogGroups gives
//! (`logGroupArn`, or `arn` minus the trailing `:*`).

use super::{err, Aws, AwsError};
use crate::model::{user_tags, Address, Attrs, LogGroupAttrs, Observed, Tags};
use aws_sdk_cloudwatchlogs::types::LogGroup;
use std::collections::BTreeMap;

/// The ARN the tagging APIs accept: without the `:*` DescribeLogGroups appends to `arn`.
fn tagging_arn(group: &LogGroup) -> Option<String> {
    group
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
}

/// The log group named exactly `name`: DescribeLogGroups with the name as prefix; the exact
/// name sorts first among its prefix matches, so later pages are read only when the first
/// page ends before reaching it.
async fn describe_exact(aws: &Aws, name: &str) -> Result<Option<LogGroup>, AwsError> {
    let mut token: Option<String> = None;
    loop {
        let out = aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(err("logs", "DescribeLogGroups"))?;
        let mut past = false;
        for g in out.log_groups() {
            match g.log_group_name() {
                Some(n) if n == name => return Ok(Some(g.clone())),
                Some(n) if n > name => past = true,
                _ => {}
            }
        }
        match out.next_token() {
            Some(t) if !past && !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

/// The log group `name` with its tags, or `None`. Calls: DescribeLogGroups (more pages only
/// if needed), ListTagsForResource when the group exists. `Observed.id` is the name;
/// `handles["arn"]` the ARN.
pub async fn find_log_group(
    aws: &Aws,
    name: &str,
    address: &Address,
) -> Result<Option<Observed>, AwsError> {
    let Some(group) = describe_exact(aws, name).await.map_err(|e| e.at(address))? else {
        return Ok(None);
    };
    observe_group(aws, &group, name, address).await.map(Some)
}

/// Most names one DescribeLogGroups takes in `logGroupIdentifiers`.
const IDENTIFIERS_PER_CALL: usize = 50;

/// For each (name, address) in `wanted`, the log group named exactly `name` with its tags, or
/// `None`. Calls: one DescribeLogGroups per 50 names (`logGroupIdentifiers`, every page),
/// then one ListTagsForResource per group found, concurrently. (moto ignores
/// `logGroupIdentifiers` and lists every group; the answer is filtered here by exact name, so
/// both give the same result.)
pub async fn find_log_groups(
    aws: &Aws,
    wanted: &[(String, Address)],
) -> Result<BTreeMap<Address, Option<Observed>>, AwsError> {
    let Some((_, first)) = wanted.first() else {
        return Ok(BTreeMap::new());
    };
    let pages = futures::future::try_join_all(wanted.chunks(IDENTIFIERS_PER_CALL).map(|chunk| {
        aws.logs
            .describe_log_groups()
            .set_log_group_identifiers(Some(chunk.iter().map(|(n, _)| n.clone()).collect()))
            .into_paginator()
            .send()
            .try_collect()
    }))
    .await
    .map_err(|e| err("logs", "DescribeLogGroups")(e).at(first))?;
    let groups: BTreeMap<&str, &LogGroup> = pages
        .iter()
        .flatten()
        .flat_map(|p| p.log_groups())
        .filter_map(|g| Some((g.log_group_name()?, g)))
        .collect();
    let observed = futures::future::try_join_all(wanted.iter().map(|(name, address)| {
        let group = groups.get(name.as_str()).copied();
        async move {
            let o = match group {
                Some(g) => Some(observe_group(aws, g, name, address).await?),
                None => None,
            };
            Ok::<_, AwsError>((address.clone(), o))
        }
    }))
    .await?;
    Ok(observed.into_iter().collect())
}

/// A described group with its tags. Calls: ListTagsForResource.
async fn observe_group(
    aws: &Aws,
    group: &LogGroup,
    name: &str,
    address: &Address,
) -> Result<Observed, AwsError> {
    let arn = tagging_arn(group).ok_or_else(|| {
        AwsError::other(
            "logs",
            "DescribeLogGroups",
            format!("no ARN for log group {name}"),
        )
        .at(address)
    })?;
    let tags = aws
        .logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| err("logs", "ListTagsForResource")(e).at(address))?;
    let all_tags: Tags = tags
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let user = user_tags(&all_tags);
    Ok(Observed {
        address: address.clone(),
        id: name.to_string(),
        attrs: Attrs::LogGroup(LogGroupAttrs {
            name: name.to_string(),
            retention_days: group.retention_in_days(),
            tags: user,
        }),
        all_tags,
        handles: BTreeMap::from([("arn".to_string(), arn)]),
    })
}

/// Creates the group with all `tags` (ownership included) in the CreateLogGroup call, then
/// PutRetentionPolicy when `retention_days` is set. Returns the name (the group's id).
pub async fn create_log_group(
    aws: &Aws,
    attrs: &LogGroupAttrs,
    tags: &Tags,
) -> Result<String, AwsError> {
    aws.logs
        .create_log_group()
        .log_group_name(&attrs.name)
        .set_tags((!tags.is_empty()).then(|| tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(err("logs", "CreateLogGroup"))?;
    if let Some(days) = attrs.retention_days {
        put_retention(aws, &attrs.name, days).await?;
    }
    Ok(attrs.name.clone())
}

async fn put_retention(aws: &Aws, name: &str, days: i32) -> Result<(), AwsError> {
    aws.logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days)
        .send()
        .await
        .map_err(err("logs", "PutRetentionPolicy"))?;
    Ok(())
}

/// Moves retention and user tags from `before` to `after`. Calls, each only when needed:
/// PutRetentionPolicy or DeleteRetentionPolicy; for tag changes DescribeLogGroups (the ARN),
/// TagResource, UntagResource.
pub async fn update_log_group(
    aws: &Aws,
    name: &str,
    before: &LogGroupAttrs,
    after: &LogGroupAttrs,
) -> Result<(), AwsError> {
    if before.retention_days != after.retention_days {
        match after.retention_days {
            Some(days) => put_retention(aws, name, days).await?,
            None => {
                aws.logs
                    .delete_retention_policy()
                    .log_group_name(name)
                    .send()
                    .await
                    .map_err(err("logs", "DeleteRetentionPolicy"))?;
            }
        }
    }
    let (set, remove) = super::user_tag_changes(&before.tags, &after.tags);
    set_tags(aws, name, &set, &remove).await
}

/// Deletes the group (DeleteLogGroup); already gone is success.
pub async fn delete_log_group(aws: &Aws, name: &str) -> Result<(), AwsError> {
    match aws
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .map_err(err("logs", "DeleteLogGroup"))
    {
        Ok(_) => Ok(()),
        Err(e) if e.code_is("ResourceNotFoundException") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `tags` and removes the keys in `remove`: TagResource and UntagResource, each only when
/// it has something to do; given a name rather than an ARN, one DescribeLogGroups first.
pub async fn set_tags(
    aws: &Aws,
    name_or_arn: &str,
    tags: &Tags,
    remove: &[String],
) -> Result<(), AwsError> {
    if tags.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let arn = if name_or_arn.starts_with("arn:") {
        name_or_arn.trim_end_matches(":*").to_string()
    } else {
        let group = describe_exact(aws, name_or_arn)
            .await?
            .ok_or_else(|| AwsError {
                service: "logs",
                operation: "DescribeLogGroups",
                address: None,
                code: Some("ResourceNotFoundException".into()),
                message: format!("log group {name_or_arn} does not exist"),
                request_id: None,
            })?;
        tagging_arn(&group).ok_or_else(|| {
            AwsError::other(
                "logs",
                "DescribeLogGroups",
                format!("no ARN for log group {name_or_arn}"),
            )
        })?
    };
    if !tags.is_empty() {
        aws.logs
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err("logs", "TagResource"))?;
    }
    if !remove.is_empty() {
        aws.logs
            .untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(err("logs", "UntagResource"))?;
    }
    Ok(())
}

/// The last `n` lines of a log stream (GetLogEvents from the end), oldest first; empty when the
/// stream does not exist (a container that never started logs nothing).
pub async fn last_lines(
    aws: &Aws,
    group: &str,
    stream: &str,
    n: i32,
) -> Result<Vec<String>, AwsError> {
    match aws
        .logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .limit(n)
        .start_from_head(false)
        .send()
        .await
        .map_err(err("logs", "GetLogEvents"))
    {
        Ok(out) => Ok(out
            .events()
            .iter()
            .filter_map(|e| e.message().map(|m| m.trim_end().to_string()))
            .collect()),
        Err(e) if e.code_is("ResourceNotFoundException") => Ok(vec![]),
        Err(e) => Err(e),
    }
}
