//! What a `protected` environment refuses: its destroy, `--delete-data`, and any replacement
//! of a resource that holds data (the kinds whose descriptor names `data`). Checked before
//! anything is written; lifting the protection is an edit to the stack.

use crate::plan::{Action, Plan};
use crate::run::Failure;
use crate::spec::Stack;

/// Refuses, before any AWS call, what a protected environment never allows: a destroy and
/// `--delete-data`.
pub fn refuse_early(stack: &Stack, destroy: bool, delete_data: bool) -> Result<(), Failure> {
    if !stack.protected {
        return Ok(());
    }
    let refused = if destroy {
        "destroying it"
    } else if delete_data {
        "--delete-data"
    } else {
        return Ok(());
    };
    Err(refusal(stack, refused))
}

/// Refuses a plan that would replace (delete, then create anew) a data-bearing resource of a
/// protected environment, or destroy it.
pub fn refuse_plan(stack: &Stack, plan: &Plan) -> Result<(), Failure> {
    if !stack.protected {
        return Ok(());
    }
    if plan.destroy && plan.has_changes() {
        return Err(refusal(stack, "destroying it"));
    }
    let replaced: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace && c.address.kind.holds_data())
        .map(|c| {
            format!(
                "{} (loses {})",
                c.address,
                c.address.kind.info().data.unwrap_or("its data")
            )
        })
        .collect();
    if replaced.is_empty() {
        return Ok(());
    }
    Err(refusal(
        stack,
        &format!("replacing what holds data: {}", replaced.join(", ")),
    ))
}

fn refusal(stack: &Stack, what: &str) -> Failure {
    Failure::Refused(format!(
        "environment `{}` of stack `{}` is protected: {what} is refused; nothing was changed. \
         To lift the protection, set `protected: false` for it in the stack file (its \
         `environments:` entry) and run again.",
        stack.environment, stack.stack
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Kind};
    use crate::plan::Change;

    fn stack(protected: bool) -> Stack {
        let text = include_str!("../stacks/monitoring.yaml");
        let mut s = crate::spec::parse(std::path::Path::new("s.yaml"), text)
            .unwrap()
            .stack;
        s.protected = protected;
        s
    }

    fn plan(changes: Vec<(Kind, Action)>) -> Plan {
        Plan {
            stack: "monitoring".into(),
            environment: "production".into(),
            account_id: "123456789012".into(),
            region: "us-west-2".into(),
            destroy: false,
            changes: changes
                .into_iter()
                .map(|(kind, action)| Change {
                    address: Address::new(kind, "x"),
                    action,
                    cause: None,
                    attrs: vec![],
                    desired: None,
                    observed: None,
                    live_references: Default::default(),
                    new_revision: false,
                    warnings: vec![],
                })
                .collect(),
            conflicts: vec![],
            warnings: vec![],
            steps: vec![],
            kept: vec![],
            deregister_revisions: vec![],
            reload_services: vec![],
        }
    }

    #[test]
    fn a_protected_environment_refuses_destroy_and_delete_data() {
        assert!(refuse_early(&stack(true), true, false).is_err());
        assert!(refuse_early(&stack(true), false, true).is_err());
        assert!(refuse_early(&stack(true), false, false).is_ok());
        assert!(refuse_early(&stack(false), true, true).is_ok());
    }

    #[test]
    fn only_replacing_what_holds_data_is_refused() {
        let p = plan(vec![(Kind::Secret, Action::Replace)]);
        let Err(Failure::Refused(m)) = refuse_plan(&stack(true), &p) else {
            panic!("not refused")
        };
        assert!(m.contains("secret.x") && m.contains("protected"), "{m}");
        assert!(refuse_plan(&stack(false), &p).is_ok());
        let p = plan(vec![
            (Kind::Secret, Action::Update),
            (Kind::TaskDefinition, Action::Replace),
        ]);
        assert!(refuse_plan(&stack(true), &p).is_ok());
    }
}
