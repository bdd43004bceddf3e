//! Machine-readable results: the versioned JSON documents `--format json` prints for plan,
//! apply and destroy. Their schema is `schemas/deploy-v1.schema.json`; change both together
//! and bump [`FORMAT_VERSION`] on any incompatible change.

use crate::apply::{Outcome, Report};
use crate::plan::{Action, Cause, Plan, Summary};
use serde::Serialize;
use serde_json::Value;

pub const FORMAT_VERSION: &str = "1.0";

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub format_version: &'static str,
    pub tool_version: &'static str,
    /// `plan` or `destroy_plan`.
    pub kind: &'static str,
    pub stack: String,
    pub environment: String,
    pub account_id: String,
    pub region: String,
    pub changes: Vec<ChangeReport>,
    pub conflicts: Vec<ConflictReport>,
    pub warnings: Vec<String>,
    /// Data-bearing resources a deletion leaves in place (no `--delete-data`).
    pub kept: Vec<KeptReport>,
    /// Task definition revisions the apply deregisters once its rollouts completed.
    pub deregister_revisions: Vec<String>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct KeptReport {
    pub address: String,
    pub id: String,
    /// What deleting it would lose.
    pub data: String,
}

#[derive(Debug, Serialize)]
pub struct ChangeReport {
    pub address: String,
    pub kind: String,
    pub action: Action,
    pub cause: Option<Cause>,
    /// The live resource was changed outside deploy.
    pub drift: bool,
    /// Live attributes (raw AWS ids), null when the resource does not exist.
    pub before: Option<Value>,
    /// Attributes the stack wants (stack addresses for references), null on delete.
    pub after: Option<Value>,
    pub changed_attributes: Vec<AttributeReport>,
    pub replace_forced_by: Vec<String>,
    pub new_revision: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AttributeReport {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub forces_replacement: bool,
}

#[derive(Debug, Serialize)]
pub struct ConflictReport {
    pub address: String,
    pub id: String,
    /// `unowned` or `foreign`.
    pub owner: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct ApplyReport {
    pub format_version: &'static str,
    pub tool_version: &'static str,
    /// `apply_result` or `destroy_result`.
    pub kind: &'static str,
    pub plan: PlanReport,
    pub succeeded: bool,
    pub interrupted: bool,
    pub steps: Vec<StepReport>,
    /// How each service change's rollout ended (`not_waited` with `--no-wait`).
    pub rollouts: Vec<crate::apply::wait::RolloutResult>,
    /// How each reload of published config files ended (left out when none was published).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reloads: Vec<crate::reloads::ReloadResult>,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub address: String,
    pub operation: String,
    /// `done`, `failed` or `not_started`.
    pub outcome: &'static str,
    pub error: Option<String>,
}

/// Attributes as JSON, sensitive ones shown as `(sensitive)`.
fn attrs_value(attrs: &crate::model::Attrs) -> Value {
    Value::Object(attrs.shown_map())
}

pub fn plan_report(plan: &Plan) -> PlanReport {
    let changes = plan
        .changes
        .iter()
        .filter(|c| !c.is_noop())
        .map(|c| ChangeReport {
            address: c.address.to_string(),
            kind: c.address.kind.to_string(),
            action: c.action,
            cause: c.cause,
            drift: matches!(c.cause, Some(Cause::Drift | Cause::DriftAndStackEdit)),
            before: c.observed.as_ref().map(|o| attrs_value(&o.attrs)),
            after: c.desired.as_ref().map(|d| attrs_value(&d.attrs)),
            changed_attributes: c
                .attrs
                .iter()
                .map(|a| AttributeReport {
                    name: a.name.clone(),
                    before: a.before.clone(),
                    after: a.after.clone(),
                    forces_replacement: a.forces_replacement,
                })
                .collect(),
            replace_forced_by: c
                .attrs
                .iter()
                .filter(|a| a.forces_replacement)
                .map(|a| a.name.clone())
                .collect(),
            new_revision: c.new_revision,
            warnings: c.warnings.clone(),
        })
        .collect();
    PlanReport {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        kind: if plan.destroy { "destroy_plan" } else { "plan" },
        stack: plan.stack.clone(),
        environment: plan.environment.clone(),
        account_id: plan.account_id.clone(),
        region: plan.region.clone(),
        changes,
        conflicts: plan
            .conflicts
            .iter()
            .map(|c| ConflictReport {
                address: c.address.to_string(),
                id: c.id.clone(),
                owner: match c.owner {
                    crate::model::Ownership::Foreign { .. } => "foreign",
                    _ => "unowned",
                },
                message: c.message.clone(),
            })
            .collect(),
        warnings: plan.warnings.clone(),
        kept: plan
            .kept
            .iter()
            .map(|k| KeptReport {
                address: k.address.to_string(),
                id: k.id.clone(),
                data: k.data.clone(),
            })
            .collect(),
        deregister_revisions: plan.deregister_revisions.clone(),
        summary: plan.summary(),
    }
}

pub fn apply_report(
    plan: &Plan,
    report: &Report,
    rollouts: &[crate::apply::wait::RolloutResult],
    reloads: &[crate::reloads::ReloadResult],
) -> ApplyReport {
    ApplyReport {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        kind: if plan.destroy {
            "destroy_result"
        } else {
            "apply_result"
        },
        plan: plan_report(plan),
        succeeded: report.succeeded()
            && rollouts.iter().all(|r| {
                matches!(
                    r.outcome,
                    crate::rollout::Outcome::Completed | crate::rollout::Outcome::NotWaited
                )
            })
            && !rollouts.iter().any(|r| r.reason.starts_with("interrupted"))
            && reloads
                .iter()
                .all(|r| matches!(r.outcome.as_str(), "completed" | "not_waited")),
        interrupted: report.interrupted,
        rollouts: rollouts.to_vec(),
        reloads: reloads.to_vec(),
        steps: report
            .outcomes
            .iter()
            .map(|(address, op, outcome)| StepReport {
                address: address.to_string(),
                operation: serde_json::to_value(op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                outcome: match outcome {
                    Outcome::Done => "done",
                    Outcome::Failed(_) => "failed",
                    Outcome::NotStarted => "not_started",
                },
                error: match outcome {
                    Outcome::Failed(m) => Some(m.clone()),
                    _ => None,
                },
            })
            .collect(),
    }
}

/// `deploy policy --format json`: the policy document for one role, and why each `*` is there.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    pub format_version: &'static str,
    pub tool_version: &'static str,
    /// Always `policy`.
    pub kind: &'static str,
    pub stack: String,
    pub environment: String,
    pub role: crate::policy::Role,
    pub account: String,
    pub region: String,
    pub policy: Value,
    pub unscoped: Vec<crate::policy::Unscoped>,
}

pub fn policy_report(
    stack: &str,
    environment: &str,
    account: &str,
    region: &str,
    generated: crate::policy::Generated,
) -> PolicyReport {
    PolicyReport {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        kind: "policy",
        stack: stack.to_string(),
        environment: environment.to_string(),
        role: generated.role,
        account: account.to_string(),
        region: region.to_string(),
        policy: generated.document,
        unscoped: generated.unscoped,
    }
}

/// `deploy status --format json`: every service's state, whether it is healthy and why not.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    pub format_version: &'static str,
    pub tool_version: &'static str,
    /// Always `status`.
    pub kind: &'static str,
    pub stack: String,
    pub environment: String,
    pub region: String,
    pub healthy: bool,
    pub services: Vec<ServiceStatusReport<'a>>,
    pub urls: Vec<String>,
    pub log_groups: Vec<String>,
    /// The config files each family's tasks run (left out without a config bucket).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_files: Vec<crate::reloads::FamilyFiles>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatusReport<'a> {
    pub healthy: bool,
    pub problems: Vec<String>,
    #[serde(flatten)]
    pub state: &'a crate::rollout::ServiceState,
}

pub fn status_report<'a>(
    stack: &str,
    environment: &str,
    region: &str,
    states: &'a [crate::rollout::ServiceState],
    look: &crate::commands::status::WhereToLook,
    files: &[crate::reloads::FamilyFiles],
) -> StatusReport<'a> {
    let services: Vec<ServiceStatusReport> = states
        .iter()
        .map(|s| {
            let problems = s.problems();
            ServiceStatusReport {
                healthy: problems.is_empty(),
                problems,
                state: s,
            }
        })
        .collect();
    StatusReport {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        kind: "status",
        stack: stack.to_string(),
        environment: environment.to_string(),
        region: region.to_string(),
        healthy: services.iter().all(|s| s.healthy)
            && files.iter().all(|f| f.problems().is_empty()),
        services,
        urls: look.urls.clone(),
        log_groups: look.log_groups.clone(),
        config_files: files.to_vec(),
    }
}

/// One service `deploy rollback` moves: from the revision it ran to the one it returns to.
#[derive(Clone, Debug, Serialize)]
pub struct RollbackTarget {
    pub address: String,
    pub from: String,
    pub to: String,
    /// When deploy recorded a completed rollout of `to`; `None` when chosen otherwise.
    pub completed_at: Option<String>,
}

/// `deploy rollback --format json`.
#[derive(Debug, Serialize)]
pub struct RollbackReport<'a> {
    pub format_version: &'static str,
    pub tool_version: &'static str,
    /// Always `rollback_result`.
    pub kind: &'static str,
    pub stack: String,
    pub environment: String,
    pub region: String,
    pub succeeded: bool,
    pub targets: &'a [RollbackTarget],
    pub rollouts: &'a [crate::apply::wait::RolloutResult],
}

pub fn rollback_report<'a>(
    stack: &str,
    environment: &str,
    region: &str,
    targets: &'a [RollbackTarget],
    rollouts: &'a [crate::apply::wait::RolloutResult],
) -> RollbackReport<'a> {
    RollbackReport {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        kind: "rollback_result",
        stack: stack.to_string(),
        environment: environment.to_string(),
        region: region.to_string(),
        succeeded: rollouts.iter().all(|r| {
            matches!(
                r.outcome,
                crate::rollout::Outcome::Completed | crate::rollout::Outcome::NotWaited
            ) && !r.reason.starts_with("interrupted")
        }),
        targets,
        rollouts,
    }
}
