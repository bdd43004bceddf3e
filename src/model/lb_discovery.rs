//! Attribute shapes of the kinds that put Grafana behind the backend's ALB (a target group
//! and a rule on the ALB's HTTPS listener) and give the monitoring services stable names inside
//! the VPC (a Cloud Map private DNS namespace and its discovery services).
//!
//! Kept apart from `model.rs` so these kinds stay one self-contained addition; like the rest of
//! the model, nothing here knows about the AWS SDK.

use super::Tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How the ALB checks a target group's targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealthCheck {
    /// `HTTPS` or `HTTP`.
    pub protocol: String,
    pub path: String,
    /// HTTP codes counted as healthy, e.g. `200` or `200-299`.
    pub matcher: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
}

/// An ELBv2 target group of IP targets (Fargate tasks register by IP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupAttrs {
    /// At most 32 characters: the name AWS finds it by.
    pub name: String,
    /// `HTTPS` or `HTTP`: how the ALB talks to the targets.
    pub protocol: String,
    pub port: i32,
    /// Always `ip` for Fargate tasks.
    pub target_type: String,
    pub vpc_id: String,
    pub health_check: TargetHealthCheck,
    /// `deregistration_delay.timeout_seconds`: how long a leaving task drains.
    pub deregistration_delay_seconds: i32,
    pub tags: Tags,
}

/// What a listener rule matches (each list ORs its values; the two lists AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleConditions {
    pub host_headers: BTreeSet<String>,
    pub path_patterns: BTreeSet<String>,
}

/// A rule on the backend ALB's existing HTTPS listener that forwards to a target group of this
/// stack. Rules have no names: a rule is found on its listener by its priority (or by its
/// `deploy:address` tag after a priority change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRuleAttrs {
    /// The priority as text: what the rule is known by on its listener (see
    /// [`super::Attrs::aws_name`]); never diffed on its own, `priority` is.
    pub name: String,
    /// ARN of the listener (looked up, never the stack's).
    pub listener: String,
    pub priority: i32,
    pub conditions: RuleConditions,
    /// Address of a target group of this stack, or a target group ARN.
    pub target_group: String,
    pub tags: Tags,
}

impl ListenerRuleAttrs {
    /// The `name` of the rule at `priority`.
    pub fn name_for(priority: i32) -> String {
        priority.to_string()
    }
}

/// A Cloud Map private DNS namespace (a Route 53 private hosted zone on the VPC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryNamespaceAttrs {
    /// The DNS domain, e.g. `monitoring.internal`.
    pub name: String,
    pub description: String,
    /// The VPC it resolves in. Cloud Map does not return it (it lives on the hosted zone), so
    /// it identifies the namespace rather than being compared; see the Cloud Map adapter.
    pub vpc_id: String,
    pub tags: Tags,
}

/// A Cloud Map service: the DNS name `NAME.NAMESPACE` ECS registers a service's tasks under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryServiceAttrs {
    pub name: String,
    /// Address of a namespace of this stack, or a namespace id (`ns-…`).
    pub namespace: String,
    pub description: String,
    /// DNS record type: `A` (awsvpc tasks have their own IP).
    pub record_type: String,
    pub ttl: i64,
    /// `MULTIVALUE` (every healthy task answers) or `WEIGHTED`.
    pub routing_policy: String,
    /// Custom health check (ECS reports task health): failures before a task is taken out.
    pub failure_threshold: i32,
    pub tags: Tags,
}

/// A target group an ECS service registers its tasks in: which container and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceLoadBalancer {
    /// Address of a target group of this stack, or a target group ARN.
    pub target_group: String,
    pub container_name: String,
    pub container_port: i32,
}
