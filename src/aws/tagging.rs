//! Resource Groups Tagging API: everything the stack owns, found by its ownership tags, so
//! that resources removed from the stack file (or orphaned by a crash) are still seen and can
//! be planned for deletion. IAM roles are not listed here (the IAM adapter finds them).
//! Generated secrets are listed (their deletion is still held back unless data may go).

use super::{err, Aws, AwsError};
use crate::model::{kinds, Kind, TAG_ENV, TAG_STACK};
use aws_sdk_resourcegroupstagging::types::TagFilter;

/// Sorted ARNs of every security group, log group, ECS cluster, service and task definition
/// tagged `deploy:stack` = `stack` and `deploy:environment` = `environment`: GetResources, one
/// call per page (100 resources a page). Deregistered (INACTIVE) task definition
/// revisions keep their tags, so they are listed too.
pub async fn owned_arns(
    aws: &Aws,
    stack: &str,
    environment: &str,
) -> Result<Vec<String>, AwsError> {
    let filters = vec![
        TagFilter::builder().key(TAG_STACK).values(stack).build(),
        TagFilter::builder()
            .key(TAG_ENV)
            .values(environment)
            .build(),
    ];
    Ok(tagged(aws, filters)
        .await?
        .into_iter()
        .map(|(arn, _)| arn)
        .collect())
}

/// Resources of the kinds deploy makes matching `filters`: (ARN, its tags), sorted by ARN.
/// GetResources, one call per page (100 resources a page). Log streams are left out.
async fn tagged(
    aws: &Aws,
    filters: Vec<TagFilter>,
) -> Result<Vec<(String, crate::model::Tags)>, AwsError> {
    let pages = aws
        .tagging
        .get_resources()
        .set_tag_filters(Some(filters))
        .set_resource_type_filters(Some(
            kinds::tagging_resource_types()
                .into_iter()
                .map(String::from)
                .collect(),
        ))
        .resources_per_page(100)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("tagging", "GetResources"))?;
    let mut out: Vec<(String, crate::model::Tags)> = pages
        .iter()
        .flat_map(|p| p.resource_tag_mapping_list())
        .filter_map(|m| {
            let arn = m.resource_arn()?.to_string();
            let tags = m
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            Some((arn, tags))
        })
        .filter(|(arn, _)| !arn.contains(":logs:") || arn.contains(":log-group:"))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

/// Every resource of the kinds deploy makes that carries a `deploy:stack` tag, whichever its
/// stack: (ARN, its tags). GetResources, one call per page. For `deploy ls`.
pub async fn all_owned(aws: &Aws) -> Result<Vec<(String, crate::model::Tags)>, AwsError> {
    tagged(aws, vec![TagFilter::builder().key(TAG_STACK).build()]).await
}

/// What an ARN from [`owned_arns`] is, and the id its adapter takes (the kinds' descriptors
/// say how each ARN reads): the group id for a security group, the name for a log group or
/// cluster, the ARN itself for a service or a task definition revision. `None` for anything
/// else.
pub fn classify_arn(arn: &str) -> Option<(Kind, String)> {
    kinds::classify_arn(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_classify() {
        let c = |a: &str| classify_arn(a);
        assert_eq!(
            c("arn:aws:ec2:us-west-2:123456789012:security-group/sg-0abc"),
            Some((Kind::SecurityGroup, "sg-0abc".into()))
        );
        assert_eq!(
            c("arn:aws:logs:us-west-2:123456789012:log-group:/ecs/prom-task:*"),
            Some((Kind::LogGroup, "/ecs/prom-task".into()))
        );
        assert_eq!(
            c("arn:aws:logs:us-west-2:123456789012:log-group:/ecs/prom-task"),
            Some((Kind::LogGroup, "/ecs/prom-task".into()))
        );
        assert_eq!(
            c("arn:aws:ecs:us-west-2:123456789012:cluster/monitoring"),
            Some((Kind::EcsCluster, "monitoring".into()))
        );
        let svc = "arn:aws:ecs:us-west-2:123456789012:service/monitoring/prometheus";
        assert_eq!(c(svc), Some((Kind::EcsService, svc.into())));
        let td = "arn:aws:ecs:us-west-2:123456789012:task-definition/prom-task:3";
        assert_eq!(c(td), Some((Kind::TaskDefinition, td.into())));
        assert_eq!(
            c("arn:aws-cn:ec2:cn-north-1:123456789012:security-group/sg-1"),
            Some((Kind::SecurityGroup, "sg-1".into()))
        );
        let secret = "arn:aws:secretsmanager:us-west-2:123456789012:secret:monitoring/x-AbCdEf";
        assert_eq!(c(secret), Some((Kind::Secret, secret.into())));
        assert_eq!(
            c("arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/fs-0abc"),
            Some((Kind::EfsFileSystem, "fs-0abc".into()))
        );
        assert_eq!(
            c("arn:aws:elasticfilesystem:us-west-2:123456789012:access-point/fsap-0abc"),
            Some((Kind::EfsAccessPoint, "fsap-0abc".into()))
        );
        assert_eq!(c("arn:aws:iam::123456789012:role/x"), None);
        assert_eq!(
            c("arn:aws:ec2:us-west-2:123456789012:subnet/subnet-1"),
            None
        );
        assert_eq!(c("arn:aws:ecs:us-west-2:123456789012:cluster/"), None);
        assert_eq!(c("not an arn"), None);
        let tg = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/monitoring-grafana/0123456789abcdef";
        assert_eq!(c(tg), Some((Kind::TargetGroup, tg.into())));
        let rule = "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
        assert_eq!(c(rule), Some((Kind::ListenerRule, rule.into())));
        let lb = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/alb/50dc6c495c0c9188";
        assert_eq!(c(lb), None);
        assert_eq!(
            c("arn:aws:servicediscovery:us-west-2:123456789012:namespace/ns-abc"),
            Some((Kind::ServiceDiscoveryNamespace, "ns-abc".into()))
        );
        let srv = "arn:aws:servicediscovery:us-west-2:123456789012:service/srv-abc";
        assert_eq!(c(srv), Some((Kind::ServiceDiscoveryService, srv.into())));
    }
}
