//! The plan as data: one change per resource with before/after values and reasons, the
//! conflicts that block an apply, and the ordered steps the executor carries out without
//! re-deciding anything.

use crate::model::kinds::Replacement;
use crate::model::{Address, Desired, Kind, Observed, Ownership};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// What happens to one resource: a closed set, as in Terraform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }
}

/// Why a resource changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Not there yet.
    New,
    /// The stack file changed since the last apply.
    StackEdit,
    /// Someone changed the live resource outside deploy.
    Drift,
    /// Both of the above.
    DriftAndStackEdit,
    /// Owned by the stack but no longer in it.
    Removed,
    /// Adopted by an `imports` entry.
    Import,
    /// `deploy destroy`.
    Destroy,
    /// Follows another resource's replacement (it must point at the new id).
    Dependency,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub forces_replacement: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub cause: Option<Cause>,
    /// Changed attributes only.
    pub attrs: Vec<AttrChange>,
    pub desired: Option<Desired>,
    /// The live resource this change acts on, with raw AWS ids.
    pub observed: Option<Observed>,
    /// Addresses the live resource refers to now (deletes wait for these to let go).
    pub live_references: BTreeSet<Address>,
    /// The change registers a new task definition revision (older ones stay for rollback).
    pub new_revision: bool,
    pub warnings: Vec<String>,
}

impl Change {
    pub fn is_noop(&self) -> bool {
        self.action == Action::NoOp
    }
}

/// The pseudo-attribute of a service update that restarts its tasks without a new revision
/// (ECS's force-new-deployment), so they read a rotated secret: ECS injects secrets only when a
/// task starts.
pub const RESTART_ATTR: &str = "(restart)";

/// A live resource with the stack's name that the stack may not touch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub address: Address,
    pub id: String,
    pub owner: Ownership,
    pub message: String,
}

/// One unit of work for the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Index into `Plan::changes`.
    pub change: usize,
    pub op: StepOp,
    /// Indexes of steps that must finish first.
    pub after: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOp {
    Create,
    Update,
    Delete,
    /// First half of a replace: the new resource (created before the old one goes).
    CreateReplacement,
    /// Second half of a replace: the old resource, once nothing uses it.
    DeleteReplaced,
    /// A security group's rules to groups created after it: two groups naming each other
    /// cannot both be created with all their rules, so one is created without the rules to
    /// the other and gets them here, once both exist.
    AuthorizeDeferred,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub stack: String,
    pub environment: String,
    pub account_id: String,
    pub region: String,
    pub destroy: bool,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
    /// Owned resources holding data that this plan would otherwise delete, left in place
    /// because data deletion was not asked for.
    #[serde(default)]
    pub kept: Vec<Kept>,
    /// Owned task definition revisions apply deregisters once its rollouts completed (the
    /// stack's `keep_revisions`), newest first.
    #[serde(default)]
    pub deregister_revisions: Vec<String>,
    /// The services whose tasks load files from the config bucket, by family: when the plan
    /// publishes files, apply waits for their tasks to report them loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reload_services: Vec<crate::reloads::ReloadService>,
}

/// A data-bearing resource a destroy or removal leaves alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub address: Address,
    pub id: String,
    /// What would be lost.
    pub data: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| !c.is_noop())
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }
}

/// Creation rank of a kind: what must exist before what (the kind's descriptor). Deletion
/// runs the other way.
pub fn rank(kind: Kind) -> u8 {
    kind.info().create_rank
}

/// Orders the changes into steps: creates and updates after what they reference, a
/// replacement's new half before its dependents' updates and its old half after them,
/// deletes after every create/update and in reverse dependency order.
pub fn order_steps(changes: &[Change]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    // Forward phase.
    for (i, c) in changes.iter().enumerate() {
        let op = match c.action {
            Action::Create => StepOp::Create,
            Action::Update => StepOp::Update,
            Action::Replace => StepOp::CreateReplacement,
            Action::Delete | Action::NoOp => continue,
        };
        steps.push(Step {
            change: i,
            op,
            after: vec![],
        });
    }
    // Forward dependencies: a step waits for the forward steps of what its desired state
    // references.
    let forward: Vec<(usize, Address)> = steps
        .iter()
        .enumerate()
        .map(|(si, s)| (si, changes[s.change].address.clone()))
        .collect();
    for si in 0..steps.len() {
        let refs = changes[steps[si].change]
            .desired
            .as_ref()
            .map(|d| d.attrs.references())
            .unwrap_or_default();
        // ECS attaches a service only to a target group the load balancer already forwards
        // to: a service also waits for the listener rules forwarding to its target groups.
        let rules: Vec<&Address> = forward
            .iter()
            .filter(|(_, a)| a.kind == Kind::ListenerRule)
            .map(|(_, a)| a)
            .filter(|a| {
                changes
                    .iter()
                    .filter_map(|c| c.desired.as_ref())
                    .filter(|d| &&d.address == a)
                    .any(|d| d.attrs.references().iter().any(|t| refs.contains(t)))
            })
            .collect();
        let waits_for_rules = changes[steps[si].change].address.kind == Kind::EcsService;
        steps[si].after = forward
            .iter()
            .filter(|(other, a)| {
                *other != si && (refs.contains(a) || (waits_for_rules && rules.contains(&a)))
            })
            .map(|(other, _)| *other)
            .collect();
    }
    break_group_cycles(changes, &mut steps);
    let forward_count = steps.len();
    // Backward phase: old halves of replacements and deletes.
    let mut backward: Vec<Step> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let op = match c.action {
            Action::Replace => StepOp::DeleteReplaced,
            Action::Delete => StepOp::Delete,
            _ => continue,
        };
        backward.push(Step {
            change: i,
            op,
            after: vec![],
        });
    }
    let observed_refs = |s: &Step| &changes[s.change].live_references;
    for bi in 0..backward.len() {
        let target = changes[backward[bi].change].address.clone();
        // Every forward step first: dependents have moved to the new resources by then.
        let mut after: Vec<usize> = (0..forward_count).collect();
        for (bj, other) in backward.iter().enumerate() {
            if bj == bi {
                continue;
            }
            let other_addr = &changes[other.change].address;
            // Whatever still references the target (live) goes first; so does anything of a
            // later creation rank (services before task definitions before the rest).
            if observed_refs(other).contains(&target) || rank(other_addr.kind) > rank(target.kind) {
                after.push(forward_count + bj);
            }
        }
        backward[bi].after = after;
    }
    // Groups naming each other cannot wait for each other's deletion: each delete revokes
    // its own rules to other groups first and retries while AWS still sees a reference.
    let is_group_delete = |s: &Step| {
        changes[s.change].address.kind == Kind::SecurityGroup
            && matches!(s.op, StepOp::Delete | StepOp::DeleteReplaced)
    };
    let mut all: Vec<Step> = steps.into_iter().chain(backward).collect();
    for bi in forward_count..all.len() {
        if !is_group_delete(&all[bi]) {
            continue;
        }
        let looping = waits_closing_a_loop(&all, bi, is_group_delete);
        all[bi].after.retain(|j| !looping.contains(j));
    }
    // Most replacements cannot keep both (names are unique): delete the old first, then
    // create. A security group (the new one gets a suffix) and an access point (its name is
    // only a tag) are created first, so what uses them moves before the old one goes.
    for si in 0..forward_count {
        let c = &changes[all[si].change];
        let keeps_both = c.address.kind.info().replacement == Replacement::CreateFirst;
        if all[si].op == StepOp::CreateReplacement && !keeps_both {
            if let Some(del) = (forward_count..all.len())
                .find(|&j| all[j].change == all[si].change && all[j].op == StepOp::DeleteReplaced)
            {
                all[del].after.retain(|&x| x != si);
                // The old half must not wait on forward steps that wait on this one.
                let waits_on_this: Vec<usize> = (0..forward_count)
                    .filter(|&k| depends_transitively(&all, k, si))
                    .collect();
                all[del].after.retain(|x| !waits_on_this.contains(x));
                all[si].after.push(del);
            }
        }
    }
    all
}

/// Security groups whose rules name each other would wait for each other forever. A wait
/// that closes such a loop is dropped: on a group that exists already (its step is an update),
/// because its id is known; on a group being created, by creating the waiting group without
/// its rules to that one and adding them in an [`StepOp::AuthorizeDeferred`] step once both
/// exist. Whatever waited for the group also waits for that step, so no task starts before
/// the rules are complete.
fn break_group_cycles(changes: &[Change], steps: &mut Vec<Step>) {
    let is_group = |s: &Step| changes[s.change].address.kind == Kind::SecurityGroup;
    let creates = |s: &Step| matches!(s.op, StepOp::Create | StepOp::CreateReplacement);
    let mut deferred: Vec<(usize, Vec<usize>)> = Vec::new();
    for si in 0..steps.len() {
        if !is_group(&steps[si]) {
            continue;
        }
        let looping = waits_closing_a_loop(steps, si, is_group);
        let (existing, new): (Vec<usize>, Vec<usize>) =
            looping.into_iter().partition(|&t| !creates(&steps[t]));
        let defer = if creates(&steps[si]) { new } else { vec![] };
        steps[si]
            .after
            .retain(|t| !existing.contains(t) && !defer.contains(t));
        if !defer.is_empty() {
            deferred.push((si, defer));
        }
    }
    for (si, peers) in deferred {
        let authorize = steps.len();
        for (other, step) in steps.iter_mut().enumerate() {
            // Other groups need only the group's id, never its rules.
            let group = changes[step.change].address.kind == Kind::SecurityGroup;
            if other != si && step.after.contains(&si) && !group {
                step.after.push(authorize);
            }
        }
        let mut after = vec![si];
        after.extend(peers);
        steps.push(Step {
            change: steps[si].change,
            op: StepOp::AuthorizeDeferred,
            after,
        });
    }
}

/// The steps that step `i` waits for, among those `peer` accepts, that wait (directly or not)
/// for `i` in turn.
fn waits_closing_a_loop(steps: &[Step], i: usize, peer: impl Fn(&Step) -> bool) -> Vec<usize> {
    steps[i]
        .after
        .iter()
        .copied()
        .filter(|&t| peer(&steps[t]) && depends_transitively(steps, t, i))
        .collect()
}

fn depends_transitively(steps: &[Step], from: usize, target: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = vec![false; steps.len()];
    while let Some(s) = stack.pop() {
        if s == target {
            return true;
        }
        if std::mem::replace(&mut seen[s], true) {
            continue;
        }
        stack.extend(steps[s].after.iter().copied());
    }
    false
}

/// The targeted addresses and everything they reference, transitively (what `--target`
/// plans). An address the stack does not define is an error.
pub fn target_closure(
    desired: &[crate::model::Desired],
    targets: &[Address],
) -> Result<BTreeSet<Address>, String> {
    let by_address: std::collections::BTreeMap<&Address, &crate::model::Desired> =
        desired.iter().map(|d| (&d.address, d)).collect();
    let mut closure = BTreeSet::new();
    let mut todo: Vec<Address> = targets.to_vec();
    while let Some(a) = todo.pop() {
        let d = by_address
            .get(&a)
            .ok_or_else(|| format!("--target {a}: the stack defines no such resource"))?;
        if closure.insert(a.clone()) {
            todo.extend(d.attrs.references());
        }
    }
    Ok(closure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attrs, Desired, Peer, Rule, SecurityGroupAttrs, Tags};

    #[test]
    fn targets_bring_what_they_reference() {
        // a admits b, b admits c: targeting a brings b and, through b, c; d stays out.
        let group = |name: &str, admits: Option<&str>| Desired {
            address: format!("security_group.{name}").parse().unwrap(),
            attrs: Attrs::SecurityGroup(SecurityGroupAttrs {
                name: name.into(),
                description: String::new(),
                vpc_id: "vpc-1".into(),
                ingress: admits
                    .map(|peer| Rule {
                        protocol: "tcp".into(),
                        from_port: 9090,
                        to_port: 9090,
                        peer: Peer::Group(format!("security_group.{peer}")),
                        description: String::new(),
                    })
                    .into_iter()
                    .collect(),
                egress: Default::default(),
                tags: Tags::new(),
            }),
            ignore: Default::default(),
            restart_loses: None,
        };
        let all = [
            group("a", Some("b")),
            group("b", Some("c")),
            group("c", None),
            group("d", None),
        ];
        let addr = |s: &str| -> Address { s.parse().unwrap() };
        let names = |targets: &[&str]| -> Vec<String> {
            let targets: Vec<Address> = targets.iter().map(|t| addr(t)).collect();
            target_closure(&all, &targets)
                .unwrap()
                .iter()
                .map(|a| a.to_string())
                .collect()
        };
        assert_eq!(
            names(&["security_group.a"]),
            ["security_group.a", "security_group.b", "security_group.c"]
        );
        assert_eq!(names(&["security_group.c"]), ["security_group.c"]);
        assert_eq!(
            names(&["security_group.b", "security_group.d"]),
            ["security_group.b", "security_group.c", "security_group.d"]
        );
        assert!(target_closure(&all, &[addr("log_group.nope")]).is_err());
        // A reference to something the stack lacks is an error, not a silent drop.
        let dangling = [group("a", Some("gone"))];
        assert!(target_closure(&dangling, &[addr("security_group.a")]).is_err());
    }
}
