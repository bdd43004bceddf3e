//! ELBv2: the backend's existing Application Load Balancer, found by name. The stack never
//! changes it; Prometheus scrapes through it, so its DNS name and security groups feed the
//! rendered configuration and the Prometheus group's egress rule.

use super::{err, Aws, AwsError};
use crate::model::LoadBalancer;

fn lookup_failed(message: String) -> AwsError {
    AwsError::lookup_failed("elbv2", "DescribeLoadBalancers", message)
}

/// The load balancer named `name` (one DescribeLoadBalancers call; read-only). Not found is an
/// error with code `LookupFailed`.
pub async fn lookup_load_balancer(aws: &Aws, name: &str) -> Result<LoadBalancer, AwsError> {
    let not_found = || {
        lookup_failed(format!(
            "no load balancer named `{name}` in {} (check `lookups.load_balancer.name` and the region)",
            aws.region
        ))
    };
    let out = match aws
        .elbv2
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .map_err(err("elbv2", "DescribeLoadBalancers"))
    {
        Ok(out) => out,
        Err(e) if e.code_is("LoadBalancerNotFound") => return Err(not_found()),
        Err(e) => return Err(e),
    };
    let lb = out
        .load_balancers()
        .iter()
        .find(|lb| lb.load_balancer_name() == Some(name))
        .ok_or_else(not_found)?;
    let missing = |what: &str| {
        lookup_failed(format!(
            "load balancer `{name}` has no {what} in the answer"
        ))
    };
    let mut security_groups = lb.security_groups().to_vec();
    security_groups.sort();
    security_groups.dedup();
    Ok(LoadBalancer {
        name: name.to_string(),
        arn: lb
            .load_balancer_arn()
            .ok_or_else(|| missing("ARN"))?
            .to_string(),
        dns_name: lb
            .dns_name()
            .ok_or_else(|| missing("DNS name"))?
            .to_string(),
        vpc_id: lb.vpc_id().ok_or_else(|| missing("VPC id"))?.to_string(),
        security_groups,
        https_listener_arn: None,
        targets_by_port: Default::default(),
    })
}

/// Every listener of the load balancer (DescribeListeners, all pages; read-only).
pub async fn listeners(
    aws: &Aws,
    lb_arn: &str,
) -> Result<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>, AwsError> {
    let pages: Vec<_> = aws
        .elbv2
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(err("elbv2", "DescribeListeners"))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.listeners().iter().cloned())
        .collect())
}

/// How many targets each of `listeners` forwards to (registered targets of the target groups
/// its default actions forward to, draining ones left out). A scrape through a port with more
/// than one target reaches a different task each time. Calls: DescribeTargetHealth per target
/// group.
pub async fn targets_by_port(
    aws: &Aws,
    listeners: &[aws_sdk_elasticloadbalancingv2::types::Listener],
) -> Result<std::collections::BTreeMap<i32, usize>, AwsError> {
    let mut counts = std::collections::BTreeMap::new();
    for l in listeners {
        let Some(port) = l.port() else { continue };
        let mut groups: Vec<String> = Vec::new();
        for a in l.default_actions() {
            groups.extend(a.target_group_arn().map(str::to_string));
            if let Some(fc) = a.forward_config() {
                groups.extend(
                    fc.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_string)),
                );
            }
        }
        groups.sort();
        groups.dedup();
        let mut n = 0;
        for tg in groups {
            let health = aws
                .elbv2
                .describe_target_health()
                .target_group_arn(&tg)
                .send()
                .await
                .map_err(err("elbv2", "DescribeTargetHealth"))?;
            n += health
                .target_health_descriptions()
                .iter()
                .filter(|d| {
                    d.target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str())
                        != Some("draining")
                })
                .count();
        }
        counts.insert(port, n);
    }
    Ok(counts)
}
