//! Saved plans: the reviewed plan as a file, with everything it was made from (the stack,
//! the lookups, the desired state, a fingerprint of every live resource it read), so that
//! `deploy apply FILE` carries out exactly what was reviewed and refuses when anything moved.
//! Pure data and comparisons; reading AWS again is the caller's business.

use crate::apply::Refs;
use crate::diff::World;
use crate::model::{short_hash, Address, Attrs, Desired, Generation, Lookups, Observed};
use crate::plan::{order_steps, Action, Plan, StepOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Bumped whenever the file's shape changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    /// The `deploy` release version that made the plan; another release refuses to apply it.
    pub tool_version: String,
    /// The git commit of the build that made the plan: shown, never compared (a plan made by a
    /// pull request's build applies from its merge commit's build of the same release).
    #[serde(default)]
    pub tool_commit: String,
    /// The stack file as given to `plan`, and its text as planned.
    pub stack_file: String,
    pub stack_text: String,
    pub lookups: Lookups,
    pub desired: Vec<Desired>,
    pub plan: Plan,
    /// Ids known when planning (address → AWS id), the executor's starting point.
    pub refs: Refs,
    /// The live state each change was planned against.
    pub live: Vec<LiveFingerprint>,
    /// Ids of owned resources found outside the stack's addresses when planning.
    pub owned_elsewhere: BTreeSet<String>,
}

/// What one change saw of the live world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveFingerprint {
    pub address: Address,
    /// The live resource's id; `None` when nothing with the stack's name existed.
    pub id: Option<String>,
    /// Hash of its attributes and tags; `None` when it did not exist.
    pub hash: Option<String>,
}

pub fn fingerprint(o: &Observed) -> String {
    short_hash(&(&o.attrs, &o.all_tags))
}

fn all_observed(world: &World) -> impl Iterator<Item = &Observed> {
    world
        .found
        .values()
        .flatten()
        .chain(world.owned_elsewhere.iter())
}

/// For each change of `plan`, what `world` holds for it now.
pub fn live_fingerprints(plan: &Plan, world: &World) -> Vec<LiveFingerprint> {
    plan.changes
        .iter()
        .map(|c| {
            let live = match &c.observed {
                Some(o) => all_observed(world).find(|w| w.id == o.id),
                // Planned as absent: anything that now carries the name counts.
                None => c.desired.as_ref().and_then(|d| {
                    world
                        .found
                        .get(&c.address)
                        .into_iter()
                        .flatten()
                        .find(|w| w.attrs.aws_name() == d.attrs.aws_name())
                }),
            };
            LiveFingerprint {
                address: c.address.clone(),
                id: live.map(|o| o.id.clone()),
                hash: live.map(fingerprint),
            }
        })
        .collect()
}

pub fn owned_elsewhere_ids(world: &World) -> BTreeSet<String> {
    world.owned_elsewhere.iter().map(|o| o.id.clone()).collect()
}

/// Why the saved plan no longer matches the world (empty: it still does).
pub fn staleness(saved: &SavedPlan, lookups: &Lookups, world: &World) -> Vec<String> {
    let mut why = Vec::new();
    if &saved.lookups != lookups {
        let l = &saved.lookups;
        let mut what = Vec::new();
        if l.vpc_id != lookups.vpc_id {
            what.push(format!("VPC {} → {}", l.vpc_id, lookups.vpc_id));
        }
        if l.subnet_ids != lookups.subnet_ids {
            what.push(format!(
                "subnets [{}] → [{}]",
                l.subnet_ids.join(", "),
                lookups.subnet_ids.join(", ")
            ));
        }
        if l.load_balancer != lookups.load_balancer {
            what.push(format!(
                "load balancer {} ({}) → {} ({})",
                l.load_balancer.name,
                l.load_balancer.dns_name,
                lookups.load_balancer.name,
                lookups.load_balancer.dns_name
            ));
        }
        if what.is_empty() {
            what.push("account or region".into());
        }
        why.push(format!(
            "the looked-up infrastructure changed: {}",
            what.join("; ")
        ));
    }
    let now = live_fingerprints(&saved.plan, world);
    for (then, now) in saved.live.iter().zip(now.iter()) {
        if then == now {
            continue;
        }
        why.push(match (&then.id, &now.id) {
            (None, Some(id)) => format!("{} now exists ({id})", then.address),
            (Some(id), None) => format!("{} ({id}) no longer exists", then.address),
            _ => format!(
                "{} ({}) was changed",
                then.address,
                then.id.as_deref().unwrap_or("")
            ),
        });
    }
    for id in owned_elsewhere_ids(world).difference(&saved.owned_elsewhere) {
        why.push(format!("{id} now carries this stack's tags"));
    }
    why
}

/// Checks a saved plan read from a file the way `plan` would have made it, before anything
/// acts on it: every step index in range and the steps exactly those its changes order into,
/// each change holding the sides its action and steps need (matching the desired state and
/// the fingerprints saved with it), the stack text valid and naming the plan's stack, and
/// every secret generation line one deploy writes, within the stack's limits. Why not, when
/// it is not; the caller refuses the file without calling AWS.
pub fn check(saved: &SavedPlan) -> Result<(), String> {
    let plan = &saved.plan;
    let changes = plan.changes.len();
    if let Some(why) = crate::apply::unrunnable_steps(plan) {
        return Err(why);
    }
    for (i, c) in plan.changes.iter().enumerate() {
        let at = |why: &str| format!("change {i} ({}) {why}", c.address);
        let (needs_desired, needs_observed) = match c.action {
            Action::Create => (true, false),
            Action::Update | Action::Replace => (true, true),
            Action::Delete => (false, true),
            Action::NoOp => (false, false),
        };
        if needs_desired && c.desired.is_none() {
            return Err(at("has no desired state for its action"));
        }
        if needs_observed && c.observed.is_none() {
            return Err(at("has no live resource for its action"));
        }
        if let Some(d) = &c.desired {
            if d.address != c.address || d.attrs.kind() != c.address.kind {
                return Err(at("has a desired state of another resource"));
            }
            if !saved.desired.contains(d) {
                return Err(at("has a desired state the plan's desired resources lack"));
            }
        }
        if let Some(o) = &c.observed {
            if o.attrs.kind() != c.address.kind {
                return Err(at("has a live resource of another kind"));
            }
        }
    }
    let expected_steps = order_steps(&plan.changes);
    if plan.steps != expected_steps {
        return Err("its steps are not the ones its changes order into".into());
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let c = &plan.changes[step.change];
        let sides_there = match step.op {
            StepOp::Create | StepOp::CreateReplacement => c.desired.is_some(),
            StepOp::AuthorizeDeferred => {
                matches!(
                    c.desired.as_ref().map(|d| &d.attrs),
                    Some(Attrs::SecurityGroup(_))
                )
            }
            StepOp::Update => c.desired.is_some() && c.observed.is_some(),
            StepOp::Delete | StepOp::DeleteReplaced => c.observed.is_some(),
        };
        if !sides_there {
            return Err(format!(
                "step {i} ({:?} {}) lacks the state it needs",
                step.op, c.address
            ));
        }
    }
    if saved.live.len() != changes {
        return Err(format!(
            "it has {} live fingerprints for {changes} changes",
            saved.live.len()
        ));
    }
    for (i, (c, live)) in plan.changes.iter().zip(&saved.live).enumerate() {
        let matches = live.address == c.address
            && c.observed.as_ref().is_none_or(|o| {
                live.id.as_deref() == Some(o.id.as_str())
                    && live.hash.as_deref() == Some(fingerprint(o).as_str())
            });
        if !matches {
            return Err(format!(
                "change {i} ({}) does not match the live state saved with it",
                c.address
            ));
        }
    }
    let loaded = crate::spec::parse(std::path::Path::new(&saved.stack_file), &saved.stack_text)
        .and_then(|mut l| {
            crate::spec::environments::select(&mut l, Some(&plan.environment))?;
            l.validate().map(|()| l)
        })
        .map_err(|e| format!("its stack text is not valid: {e}"))?;
    if loaded.stack.stack != plan.stack || loaded.stack.environment != plan.environment {
        return Err(format!(
            "it is a plan of {}/{}, its stack text is {}/{}",
            plan.stack, plan.environment, loaded.stack.stack, loaded.stack.environment
        ));
    }
    for d in &saved.desired {
        if let Attrs::Secret(s) = &d.attrs {
            Generation::parse_checked(&s.value)
                .map_err(|why| format!("the value generation of {}: {why}", d.address))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attrs, LogGroupAttrs, Tags};
    use crate::plan::{Action, Change};

    fn observed(retention: i32) -> Observed {
        Observed {
            address: "log_group.p".parse().unwrap(),
            id: "/p".into(),
            attrs: Attrs::LogGroup(LogGroupAttrs {
                name: "/p".into(),
                retention_days: Some(retention),
                tags: Tags::new(),
            }),
            all_tags: Tags::new(),
            handles: Default::default(),
        }
    }

    fn saved_against(world: &World) -> SavedPlan {
        let change = Change {
            address: "log_group.p".parse().unwrap(),
            action: Action::NoOp,
            cause: None,
            attrs: vec![],
            desired: None,
            observed: Some(observed(30)),
            live_references: Default::default(),
            new_revision: false,
            warnings: vec![],
        };
        let plan = Plan {
            stack: "s".into(),
            environment: "e".into(),
            account_id: "1".into(),
            region: "r".into(),
            destroy: false,
            changes: vec![change],
            conflicts: vec![],
            warnings: vec![],
            steps: vec![],
            kept: vec![],
            deregister_revisions: vec![],
            reload_services: vec![],
        };
        let live = live_fingerprints(&plan, world);
        SavedPlan {
            format_version: FORMAT_VERSION,
            tool_version: "0".into(),
            tool_commit: "abc1234".into(),
            stack_file: "s.yaml".into(),
            stack_text: String::new(),
            lookups: Lookups::placeholders("r"),
            desired: vec![],
            plan,
            refs: Refs::new(),
            live,
            owned_elsewhere: owned_elsewhere_ids(world),
        }
    }

    fn world_with(o: Observed) -> World {
        let mut w = World::default();
        w.found.insert(o.address.clone(), vec![o]);
        w
    }

    #[test]
    fn an_unchanged_world_is_not_stale_and_a_changed_one_is() {
        let world = world_with(observed(30));
        let saved = saved_against(&world);
        let lookups = Lookups::placeholders("r");
        assert!(staleness(&saved, &lookups, &world).is_empty());
        let changed = world_with(observed(7));
        let why = staleness(&saved, &lookups, &changed);
        assert_eq!(why, vec!["log_group.p (/p) was changed".to_string()]);
        let gone = World::default();
        assert_eq!(
            staleness(&saved, &lookups, &gone),
            vec!["log_group.p (/p) no longer exists".to_string()]
        );
        let mut moved = Lookups::placeholders("r");
        moved.subnet_ids.push("subnet-new".into());
        assert!(staleness(&saved, &moved, &world)[0].contains("subnets"));
    }
}
