//! The reads behind the `--live` rules (`crate::lint_live`): the backend ALB's listeners,
//! their security policies and certificates, its attributes, the route tables of the tasks'
//! subnets and the VPC's endpoints, gathered into one [`NetworkFacts`]. Read-only; each read
//! is the owning adapter's (elbv2, certificates, ec2), started at once.

use super::{certificates, ec2, elbv2, Aws, AwsError};
use crate::lint_live::{
    self, ListenerAction, ListenerFacts, LiveFinding, LiveInputs, NetworkFacts,
};
use crate::model::Lookups;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Listener};

fn action_of(a: &Action) -> ListenerAction {
    match a.r#type() {
        Some(ActionTypeEnum::Redirect) => ListenerAction::Redirect {
            protocol: a
                .redirect_config()
                .and_then(|r| r.protocol())
                // AWS's default: the request's own protocol.
                .unwrap_or("#{protocol}")
                .to_string(),
        },
        Some(ActionTypeEnum::Forward) => ListenerAction::Forward,
        Some(ActionTypeEnum::FixedResponse) => ListenerAction::FixedResponse,
        other => ListenerAction::Other(other.map(|t| t.as_str().to_string()).unwrap_or_default()),
    }
}

fn listener_facts(l: &Listener) -> ListenerFacts {
    ListenerFacts {
        arn: l.listener_arn().unwrap_or_default().to_string(),
        protocol: l
            .protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        port: l.port().unwrap_or_default(),
        ssl_policy: l.ssl_policy().map(str::to_string),
        ssl_protocols: None,
        certificate_names: Default::default(),
        default_actions: l.default_actions().iter().map(action_of).collect(),
    }
}

/// What the live rules read about the network of `lookups` (the looked-up ALB, VPC and the
/// tasks' subnets). `with_certificates`: read the HTTPS listeners' certificate names (ACM;
/// only needed when the stack serves Grafana at a host). Calls: DescribeListeners,
/// DescribeSSLPolicies (one, for the HTTPS listeners' policies), DescribeLoadBalancerAttributes,
/// DescribeRouteTables, DescribeVpcEndpoints, and with certificates DescribeListenerCertificates
/// plus one ACM DescribeCertificate per certificate, for each HTTPS listener.
pub async fn gather(
    aws: &Aws,
    lookups: &Lookups,
    with_certificates: bool,
) -> Result<NetworkFacts, AwsError> {
    let lb = &lookups.load_balancer;
    let listeners = async {
        let mut facts: Vec<ListenerFacts> = elbv2::listeners(aws, &lb.arn)
            .await?
            .iter()
            .map(listener_facts)
            .collect();
        let mut policies: Vec<String> = facts.iter().filter_map(|l| l.ssl_policy.clone()).collect();
        policies.sort();
        policies.dedup();
        let (protocols, names) = tokio::try_join!(
            elbv2::ssl_policy_protocols(aws, &policies),
            futures::future::try_join_all(facts.iter().map(|l| async move {
                if with_certificates && l.protocol == "HTTPS" {
                    certificates::listener_names(aws, &l.arn).await
                } else {
                    Ok(Default::default())
                }
            }))
        )?;
        for (l, names) in facts.iter_mut().zip(names) {
            l.ssl_protocols = l
                .ssl_policy
                .as_ref()
                .and_then(|p| protocols.get(p).cloned());
            l.certificate_names = names;
        }
        Ok::<_, AwsError>(facts)
    };
    let (listeners, load_balancer_attributes, subnets, vpc_endpoints) = tokio::try_join!(
        listeners,
        elbv2::load_balancer_attributes(aws, &lb.arn),
        ec2::subnet_routes(aws, &lookups.vpc_id, &lookups.subnet_ids),
        ec2::vpc_endpoints(aws, &lookups.vpc_id),
    )?;
    Ok(NetworkFacts {
        region: lookups.region.clone(),
        vpc_id: lookups.vpc_id.clone(),
        load_balancer_arn: lb.arn.clone(),
        listeners,
        load_balancer_attributes,
        subnets,
        vpc_endpoints,
    })
}

/// Every live rule over the network of `lookups` (see [`gather`] for the calls).
pub async fn run(
    aws: &Aws,
    lookups: &Lookups,
    inputs: &LiveInputs,
) -> Result<Vec<LiveFinding>, AwsError> {
    let facts = gather(aws, lookups, !inputs.grafana_hosts.is_empty()).await?;
    Ok(lint_live::check(&facts, inputs))
}

/// The reachability rule alone (DL075), which `plan` runs as a warning: only the route
/// tables of the tasks' subnets and the VPC's endpoints are read (DescribeRouteTables,
/// DescribeVpcEndpoints).
pub async fn start_reachability(
    aws: &Aws,
    lookups: &Lookups,
    inputs: &LiveInputs,
) -> Result<Vec<LiveFinding>, AwsError> {
    let (subnets, vpc_endpoints) = tokio::try_join!(
        ec2::subnet_routes(aws, &lookups.vpc_id, &lookups.subnet_ids),
        ec2::vpc_endpoints(aws, &lookups.vpc_id),
    )?;
    let facts = NetworkFacts {
        region: lookups.region.clone(),
        vpc_id: lookups.vpc_id.clone(),
        subnets,
        vpc_endpoints,
        ..Default::default()
    };
    Ok(lint_live::start_reachability(&facts, inputs))
}
