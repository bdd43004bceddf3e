//! ELBv2: the backend's existing Application Load Balancer, found by name. The stack never
//! changes it; Prometheus scrapes through it, so its DNS name and security groups feed the
//! rendered configuration and the Prometheus group's egress rule.

use super::{err, Aws, AwsError};
use crate::model::LoadBalancer;

fn lookup_failed(message: String) -> AwsError {
    AwsError {
        service: "elbv2",
        operation: "DescribeLoadBalancers",
        address: None,
        code: Some("LookupFailed".into()),
        message,
        request_id: None,
    }
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
    let field = |v: Option<&str>, what: &str| {
        v.map(str::to_string)
            .ok_or_else(|| lookup_failed(format!("load balancer `{name}` has no {what} in the answer")))
    };
    let mut security_groups = lb.security_groups().to_vec();
    security_groups.sort();
    security_groups.dedup();
    Ok(LoadBalancer {
        name: name.to_string(),
        arn: field(lb.load_balancer_arn(), "ARN")?,
        dns_name: field(lb.dns_name(), "DNS name")?,
        vpc_id: field(lb.vpc_id(), "VPC id")?,
        security_groups,
    })
}
