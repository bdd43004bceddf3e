//! `deploy`: infrastructure as code for a Prometheus + Grafana monitoring stack on ECS Fargate.
//!
//! The pipeline flows one way: stack YAML → [`spec`] → lookups → [`render`] → desired
//! resources ([`model`]) → diff against observed AWS state → [`plan`] → apply.
//! The planner modules (`spec`, `model`, `diff`, `plan`) never import the AWS SDK.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod diff;
pub mod inventory;
pub mod lint;
pub mod lint_live;
pub mod lock;
pub mod model;
pub mod observe;
pub mod output;
pub mod plan;
pub mod policy;
pub mod printer;
pub mod priorities;
pub mod protection;
pub mod reloads;
pub mod render;
pub mod report;
pub mod rollout;
pub mod run;
pub mod saved;
pub mod spec;
pub mod version;
