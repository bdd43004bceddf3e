//! Desired × observed → plan. Pure: plain values in, plan data out, no AWS.
//!
//! Observed resources arrive with raw ids; the first thing done here is to rewrite ids that
//! name resources of this stack into addresses, so both sides speak the same language.

use crate::model::kinds::ImportBy;
use crate::model::{
    shown_value as shown, Address, Attrs, Desired, Kind, Observed, Ownership, SecretAttrs,
    TaskDefinitionAttrs, VALUE_SET_OUTSIDE,
};
use crate::plan::{order_steps, Action, AttrChange, Cause, Change, Conflict, Kept, Plan};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What observation found.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// Live resources found by each desired address's name (or address tag). Several when a
    /// replacement was interrupted.
    pub found: BTreeMap<Address, Vec<Observed>>,
    /// Resources carrying this stack's ownership tags that no desired address found.
    pub owned_elsewhere: Vec<Observed>,
    /// Task definition revisions that services run, by ARN (raw ids).
    pub revisions: BTreeMap<String, TaskDefinitionAttrs>,
}

pub struct DiffInput<'a> {
    pub stack: &'a str,
    pub environment: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub desired: &'a [Desired],
    pub world: &'a World,
    /// Address → the id an `imports` entry adopts.
    pub imports: &'a BTreeMap<Address, String>,
    /// Plan the removal of everything owned instead of convergence.
    pub destroy: bool,
    /// Deletions may take data-bearing resources ([`Kind::holds_data`]) too; otherwise they
    /// are listed as kept.
    pub delete_data: bool,
}

/// Attributes whose change cannot be made in place (the kind's descriptor says which).
pub fn forces_replacement(kind: Kind, attr: &str) -> bool {
    kind.info().forces_replacement_by(attr)
}

/// Attributes that identify the resource (how it is found), never diffed.
fn is_identity(kind: Kind, attr: &str) -> bool {
    kind.info().is_identity(attr)
}

/// Rewrites raw ids naming resources of this stack into addresses.
struct IdMap {
    by_id: BTreeMap<String, Address>,
    role_names: BTreeMap<String, Address>,
    cluster_names: BTreeMap<String, Address>,
    families: BTreeMap<String, Address>,
}

impl IdMap {
    fn new(desired: &[Desired], world: &World) -> IdMap {
        let mut by_id = BTreeMap::new();
        let mut role_names = BTreeMap::new();
        let mut cluster_names = BTreeMap::new();
        let mut families = BTreeMap::new();
        for d in desired {
            match &d.attrs {
                Attrs::LogGroup(a) => {
                    by_id.insert(a.name.clone(), d.address.clone());
                }
                Attrs::IamRole(a) => {
                    role_names.insert(a.name.clone(), d.address.clone());
                }
                Attrs::EcsCluster(a) => {
                    cluster_names.insert(a.name.clone(), d.address.clone());
                }
                Attrs::TaskDefinition(a) => {
                    families.insert(a.family.clone(), d.address.clone());
                }
                _ => {}
            }
        }
        for (addr, list) in &world.found {
            for o in list {
                by_id.insert(o.id.clone(), addr.clone());
            }
        }
        for o in &world.owned_elsewhere {
            by_id.insert(o.id.clone(), o.address.clone());
            match &o.attrs {
                Attrs::IamRole(a) => {
                    role_names.insert(a.name.clone(), o.address.clone());
                }
                Attrs::EcsCluster(a) => {
                    cluster_names.insert(a.name.clone(), o.address.clone());
                }
                Attrs::LogGroup(a) => {
                    by_id.insert(a.name.clone(), o.address.clone());
                }
                Attrs::TaskDefinition(a) => {
                    families
                        .entry(a.family.clone())
                        .or_insert_with(|| o.address.clone());
                }
                _ => {}
            }
        }
        IdMap {
            by_id,
            role_names,
            cluster_names,
            families,
        }
    }

    fn address_of(&self, raw: &str) -> Option<String> {
        if let Some(a) = self.by_id.get(raw) {
            return Some(a.to_string());
        }
        if raw.starts_with("arn:aws:iam::") {
            let name = raw.rsplit('/').next()?;
            return self.role_names.get(name).map(|a| a.to_string());
        }
        let cluster = raw
            .strip_prefix("arn:")
            .and_then(|_| raw.split(":cluster/").nth(1))
            .unwrap_or(raw);
        self.cluster_names.get(cluster).map(|a| a.to_string())
    }

    fn to_addresses(&self, o: &Observed, world: &World) -> Observed {
        let mut o = o.clone();
        o.attrs.map_references(&|raw| self.address_of(raw));
        if let Attrs::EcsService(s) = &mut o.attrs {
            if let Some(rev) = world.revisions.get(&s.task_definition) {
                let mut rev = Attrs::TaskDefinition(rev.clone());
                rev.map_references(&|raw| self.address_of(raw));
                if let Attrs::TaskDefinition(rev) = rev {
                    let owner = self
                        .families
                        .get(&rev.family)
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| rev.family.clone());
                    s.task_definition = format!("{owner}@{}", rev.content_hash());
                }
            }
        }
        o
    }
}

/// Computes the plan.
pub fn diff(input: &DiffInput) -> Plan {
    let ids = IdMap::new(input.desired, input.world);
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    let mut warnings = Vec::new();

    for d in input.desired {
        // Each candidate twice: with ids rewritten to addresses (to compare) and raw (to act).
        let candidates: Vec<(Observed, &Observed)> = input
            .world
            .found
            .get(&d.address)
            .map(|l| {
                l.iter()
                    .map(|o| (ids.to_addresses(o, input.world), o))
                    .collect()
            })
            .unwrap_or_default();
        let owned: Vec<&(Observed, &Observed)> = candidates
            .iter()
            .filter(|(o, _)| o.ownership(input.stack, input.environment) == Ownership::Owned)
            .collect();
        let import_id = input.imports.get(&d.address);
        let adopted: Option<&(Observed, &Observed)> = import_id.and_then(|id| {
            candidates
                .iter()
                .find(|(o, _)| &o.id == id || o.attrs.aws_name() == id)
        });

        if input.destroy {
            for (o, raw) in &owned {
                changes.push(delete_change(o, raw, Cause::Destroy));
            }
            continue;
        }

        let primary: Option<(&(Observed, &Observed), bool)> = match (owned.first(), adopted) {
            (Some(o), _) => Some((o, false)),
            (None, Some(o)) => Some((o, true)),
            (None, None) => None,
        };
        // Extra owned copies (an interrupted replacement) go.
        for (o, raw) in owned.iter().skip(1) {
            changes.push(delete_change(o, raw, Cause::Removed));
        }
        match primary {
            None => {
                if let Some(id) = import_id {
                    conflicts.push(Conflict {
                        address: d.address.clone(),
                        id: id.clone(),
                        owner: Ownership::Unowned,
                        message: format!(
                            "imports names {id} for {}, but no such {} was found",
                            d.address, d.address.kind
                        ),
                    });
                }
                // A same-named resource owned by nobody (or by someone else) blocks creation.
                // (Candidates found only by their address tag belong to another stack that
                // uses the same address: not ours, and not in the way.)
                if let Some((o, _)) = candidates
                    .iter()
                    .find(|(o, _)| o.attrs.aws_name() == d.attrs.aws_name())
                {
                    conflicts.push(conflict_for(d, o, input));
                    continue;
                }
                let mut c = create_change(d);
                if d.address.kind == Kind::TaskDefinition {
                    c.new_revision = true;
                }
                changes.push(c);
            }
            Some(((o, raw), adopting)) => {
                changes.push(update_change(d, o, raw, adopting));
            }
        }
    }

    // Owned resources that no desired resource found: removed from the stack, renamed, or
    // left over from an interrupted replacement.
    for o in &input.world.owned_elsewhere {
        {
            let mapped = ids.to_addresses(o, input.world);
            changes.push(delete_change(
                &mapped,
                o,
                if input.destroy {
                    Cause::Destroy
                } else {
                    Cause::Removed
                },
            ));
        }
    }

    let mut kept = Vec::new();
    if !input.delete_data {
        changes.retain(|c| {
            let holds = c.action == Action::Delete && c.address.kind.holds_data();
            if holds {
                let o = c.observed.as_ref().expect("a delete has a live resource");
                kept.push(Kept {
                    address: c.address.clone(),
                    id: o.id.clone(),
                    data: data_held(c.address.kind).to_string(),
                });
            }
            !holds
        });
    }

    for c in changes.iter_mut() {
        if c.action == Action::Delete && c.address.kind.holds_data() {
            c.warnings.push(format!(
                "deleting {} loses {} for good (no recovery window)",
                c.address,
                data_held(c.address.kind)
            ));
        }
    }

    add_dependency_updates(&mut changes);
    add_secret_restarts(&mut changes, input.desired);

    // Restart warnings: a new revision or a replaced service restarts the tasks.
    for c in changes.iter_mut() {
        // Only running tasks have history to lose: a service being created has none.
        let restarts = c.address.kind == Kind::EcsService
            && match c.action {
                Action::Replace | Action::Delete => true,
                Action::Update => c
                    .attrs
                    .iter()
                    .any(|a| a.name == "task_definition" || a.name == crate::plan::RESTART_ATTR),
                Action::Create | Action::NoOp => false,
            };
        let loses = c
            .desired
            .as_ref()
            .and_then(|d| d.restart_loses.clone())
            .or_else(|| {
                (c.action == Action::Delete)
                    .then(|| "the data its tasks keep on ephemeral storage".to_string())
            });
        if restarts {
            if let Some(loses) = loses {
                c.warnings.push(format!(
                    "this change restarts the tasks of {}: {loses} is lost",
                    c.address
                ));
            }
        }
    }
    for c in changes.iter_mut() {
        service_rollout_warnings(c);
    }
    for c in &changes {
        warnings.extend(c.warnings.iter().cloned());
    }

    changes.sort_by(|a, b| {
        crate::plan::rank(a.address.kind)
            .cmp(&crate::plan::rank(b.address.kind))
            .then(a.address.cmp(&b.address))
    });
    let steps = order_steps(&changes);
    Plan {
        stack: input.stack.to_string(),
        environment: input.environment.to_string(),
        account_id: input.account_id.to_string(),
        region: input.region.to_string(),
        destroy: input.destroy,
        changes,
        conflicts,
        warnings,
        steps,
        kept,
        deregister_revisions: vec![],
        reload_services: vec![],
    }
}

/// What deleting a resource of a data-bearing kind loses.
fn data_held(kind: Kind) -> &'static str {
    kind.info().data.unwrap_or("its data")
}

fn conflict_for(d: &Desired, o: &Observed, input: &DiffInput) -> Conflict {
    let owner = o.ownership(input.stack, input.environment);
    let whose = match &owner {
        Ownership::Foreign { stack, environment } => {
            format!("belongs to stack `{stack}` environment `{environment}`")
        }
        _ => "carries no ownership tags (made by hand or by another tool)".to_string(),
    };
    Conflict {
        address: d.address.clone(),
        id: o.id.clone(),
        owner: owner.clone(),
        message: format!(
            "a {} named `{}` already exists ({}) and {whose}; deploy will not change or delete it. \
             To adopt it, run: deploy import {} {}",
            d.address.kind,
            o.attrs.aws_name(),
            o.id,
            d.address,
            import_id_for(o)
        ),
    }
}

fn import_id_for(o: &Observed) -> String {
    match o.address.kind.info().import.by {
        ImportBy::Id => o.id.clone(),
        ImportBy::Name => o.attrs.aws_name().to_string(),
    }
}

fn create_change(d: &Desired) -> Change {
    let attrs = d
        .attrs
        .to_map()
        .into_iter()
        .map(|(name, v)| AttrChange {
            after: Some(shown(d.address.kind, &name, v)),
            name,
            before: None,
            forces_replacement: false,
        })
        .collect();
    Change {
        address: d.address.clone(),
        action: Action::Create,
        cause: Some(Cause::New),
        attrs,
        desired: Some(d.clone()),
        observed: None,
        live_references: BTreeSet::new(),
        new_revision: false,
        warnings: vec![],
    }
}

fn delete_change(mapped: &Observed, raw: &Observed, cause: Cause) -> Change {
    Change {
        address: mapped.address.clone(),
        action: Action::Delete,
        cause: Some(cause),
        attrs: vec![],
        desired: None,
        observed: Some(raw.clone()),
        live_references: mapped.attrs.references(),
        new_revision: false,
        warnings: vec![],
    }
}

fn update_change(d: &Desired, o: &Observed, raw: &Observed, adopting: bool) -> Change {
    let kind = d.address.kind;
    let want = d.attrs.to_map();
    let have = o.attrs.to_map();
    let mut attrs = Vec::new();
    for (name, after) in &want {
        if is_identity(kind, name) || d.ignore.contains(name) {
            continue;
        }
        let before = have.get(name);
        if kind_keeps_live_value(kind, name, before, after) {
            continue;
        }
        if before != Some(after) {
            attrs.push(AttrChange {
                name: name.clone(),
                before: before.map(|v| shown(kind, name, v.clone())),
                after: Some(shown(kind, name, after.clone())),
                forces_replacement: forces_replacement(kind, name),
            });
        }
    }
    let changed = !attrs.is_empty();
    let action = if attrs.iter().any(|a| a.forces_replacement) {
        Action::Replace
    } else if changed || adopting {
        Action::Update
    } else {
        Action::NoOp
    };
    let cause = if adopting {
        Some(Cause::Import)
    } else if changed {
        let recorded = o.applied_hash();
        let live_hash = o.attrs.applied_hash(&d.ignore);
        let want_hash = d.attrs.applied_hash(&d.ignore);
        let drifted = recorded != Some(live_hash.as_str());
        let edited = recorded != Some(want_hash.as_str());
        Some(match (drifted, edited) {
            (true, true) if recorded.is_some() => Cause::DriftAndStackEdit,
            (true, _) => Cause::Drift,
            _ => Cause::StackEdit,
        })
    } else {
        None
    };
    let new_revision = kind == Kind::TaskDefinition && changed;
    Change {
        address: d.address.clone(),
        // A task definition is immutable: a change registers a new revision.
        action: if new_revision { Action::Create } else { action },
        cause,
        attrs,
        desired: Some(d.clone()),
        observed: Some(raw.clone()),
        live_references: o.attrs.references(),
        new_revision,
        warnings: vec![],
    }
}

/// A secret whose value was set outside deploy (adopted by `import`) keeps that value until
/// the stack bumps its `rotation`: deploy never overwrites a value it did not generate
/// unless asked to.
fn kind_keeps_live_value(kind: Kind, name: &str, before: Option<&Value>, after: &Value) -> bool {
    kind == Kind::Secret
        && name == "value"
        && before.and_then(Value::as_str) == Some(VALUE_SET_OUTSIDE)
        && after.as_str().and_then(SecretAttrs::generation_rotation) == Some(0)
}

/// ECS reads a container's secrets when a task starts: after a stack secret's value changes,
/// every service whose tasks use it is restarted (force new deployment), or the running tasks
/// would keep the old value while the plan said it changed.
fn add_secret_restarts(changes: &mut [Change], desired: &[Desired]) {
    let rotated: BTreeSet<Address> = changes
        .iter()
        .filter(|c| {
            c.address.kind == Kind::Secret
                && c.observed.is_some()
                && c.attrs.iter().any(|a| a.name == "value")
        })
        .map(|c| c.address.clone())
        .collect();
    if rotated.is_empty() {
        return;
    }
    // Task definitions using a rotated secret, and which secrets.
    let mut uses: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    for d in desired
        .iter()
        .filter(|d| d.address.kind == Kind::TaskDefinition)
    {
        let hit: Vec<Address> = d
            .attrs
            .references()
            .into_iter()
            .filter(|a| rotated.contains(a))
            .collect();
        if !hit.is_empty() {
            uses.insert(d.address.clone(), hit);
        }
    }
    for c in changes.iter_mut() {
        if c.address.kind != Kind::EcsService || c.observed.is_none() {
            continue;
        }
        let Some(d) = &c.desired else { continue };
        // A service rolling to a new revision restarts anyway.
        if c.attrs.iter().any(|a| a.name == "task_definition") {
            continue;
        }
        let secrets: Vec<String> = d
            .attrs
            .references()
            .iter()
            .filter_map(|td| uses.get(td))
            .flatten()
            .map(|a| a.to_string())
            .collect();
        if secrets.is_empty() {
            continue;
        }
        if c.action == Action::NoOp {
            c.action = Action::Update;
            c.cause = Some(Cause::Dependency);
        }
        c.attrs.push(AttrChange {
            name: crate::plan::RESTART_ATTR.into(),
            before: Some(Value::String("running tasks hold the old value".into())),
            after: Some(Value::String(format!(
                "new tasks read the new value of {}",
                secrets.join(", ")
            ))),
            forces_replacement: false,
        });
    }
}

/// When a resource is replaced (a security group, an EFS access point), what uses it must
/// move to the new one: it gets an update even if nothing else about it changed. A task
/// definition cannot be updated: it gets a new revision naming the new id, and the services
/// running it roll to that revision (or the tasks would keep naming the deleted resource).
fn add_dependency_updates(changes: &mut [Change]) {
    let replaced: BTreeSet<Address> = changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| c.address.clone())
        .collect();
    if replaced.is_empty() {
        return;
    }
    let moved = |c: &Change| -> Vec<Address> {
        c.desired
            .as_ref()
            .map(|d| {
                d.attrs
                    .references()
                    .into_iter()
                    .filter(|a| replaced.contains(a))
                    .collect()
            })
            .unwrap_or_default()
    };
    let follows = |c: &mut Change, hit: &[Address]| {
        for a in hit {
            c.attrs.push(AttrChange {
                name: format!("({a})"),
                before: Some(Value::String("current id".into())),
                after: Some(Value::String(format!("id of the new {a}"))),
                forces_replacement: false,
            });
        }
    };
    // Task definitions first: their new revisions move the services below.
    let mut new_revisions: BTreeSet<Address> = BTreeSet::new();
    for c in changes
        .iter_mut()
        .filter(|c| c.address.kind == Kind::TaskDefinition && c.observed.is_some())
    {
        let hit = moved(c);
        if hit.is_empty() {
            continue;
        }
        if c.action == Action::NoOp {
            c.action = Action::Create;
            c.new_revision = true;
            c.cause = Some(Cause::Dependency);
        }
        follows(c, &hit);
        new_revisions.insert(c.address.clone());
    }
    for c in changes
        .iter_mut()
        .filter(|c| c.address.kind != Kind::TaskDefinition && c.observed.is_some())
    {
        let hit = moved(c);
        let rolls: Vec<Address> = c
            .desired
            .as_ref()
            .map(|d| d.attrs.references())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| new_revisions.contains(a))
            .collect();
        if hit.is_empty() && rolls.is_empty() {
            continue;
        }
        if c.action == Action::NoOp {
            c.action = Action::Update;
            c.cause = Some(Cause::Dependency);
        }
        follows(c, &hit);
        if c.address.kind == Kind::EcsService
            && !rolls.is_empty()
            && !c.attrs.iter().any(|a| a.name == "task_definition")
        {
            c.attrs.push(AttrChange {
                name: "task_definition".into(),
                before: Some(Value::String("current revision".into())),
                after: Some(Value::String(format!("new revision of {}", rolls[0]))),
                forces_replacement: false,
            });
        }
    }
}

/// What a plan says about a service's rollouts: one still in progress (ECS goes on with it
/// whatever this plan does), and a `deploy rollback` this plan undoes by re-deploying the
/// revision the stack file describes.
fn service_rollout_warnings(c: &mut Change) {
    if c.address.kind != Kind::EcsService || c.action == Action::Delete {
        return;
    }
    let Some(o) = &c.observed else {
        return;
    };
    if let Some(rolling) = o.handles.get("rollout_in_progress") {
        c.warnings.push(format!(
            "{}: a rollout is still in progress ({rolling}); ECS goes on with it: see `deploy status`",
            c.address
        ));
    }
    let redeploys =
        c.action == Action::Update && c.attrs.iter().any(|a| a.name == "task_definition");
    if let (true, Some(back)) = (redeploys, o.all_tags.get(crate::model::TAG_ROLLED_BACK)) {
        let runs = o
            .handles
            .get("task_definition_arn")
            .map(|arn| crate::rollout::revision_of(arn).to_string())
            .unwrap_or_default();
        c.warnings.push(format!(
            "{} runs {runs}, set by `deploy rollback` ({back}): this plan re-deploys the revision the stack file describes",
            c.address
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        EcsServiceAttrs, LogGroupAttrs, Rule, SecurityGroupAttrs, Tags, TAG_APPLIED, TAG_ENV,
        TAG_STACK,
    };
    use crate::plan::{Step, StepOp};

    fn log_group(retention: i32) -> Desired {
        Desired {
            address: "log_group.prom".parse().unwrap(),
            attrs: Attrs::LogGroup(LogGroupAttrs {
                name: "/ecs/prom".into(),
                retention_days: Some(retention),
                tags: Tags::new(),
            }),
            ignore: BTreeSet::new(),
            restart_loses: None,
        }
    }

    fn group(description: &str) -> Desired {
        Desired {
            address: "security_group.prom".parse().unwrap(),
            attrs: Attrs::SecurityGroup(SecurityGroupAttrs {
                name: "prom".into(),
                description: description.into(),
                vpc_id: "vpc-1".into(),
                ingress: BTreeSet::new(),
                egress: [Rule {
                    protocol: "tcp".into(),
                    from_port: 443,
                    to_port: 443,
                    peer: crate::model::Peer::Cidr("0.0.0.0/0".into()),
                    description: String::new(),
                }]
                .into(),
                tags: Tags::new(),
            }),
            ignore: BTreeSet::new(),
            restart_loses: None,
        }
    }

    fn service() -> Desired {
        Desired {
            address: "ecs_service.prom".parse().unwrap(),
            attrs: Attrs::EcsService(EcsServiceAttrs {
                name: "prom".into(),
                cluster: "main".into(),
                task_definition: "arn:td:1".into(),
                desired_count: 1,
                launch_type: "FARGATE".into(),
                platform_version: "LATEST".into(),
                subnets: ["subnet-1".to_string()].into(),
                security_groups: ["security_group.prom".to_string()].into(),
                assign_public_ip: false,
                circuit_breaker: true,
                circuit_breaker_rollback: true,
                breaker_threshold: crate::model::DEFAULT_BREAKER_THRESHOLD.into(),
                breaker_reset_on_healthy_task: true,
                minimum_healthy_percent: 100,
                maximum_percent: 200,
                enable_execute_command: false,
                propagate_tags: "SERVICE".into(),
                tags: Tags::new(),
                load_balancers: BTreeSet::new(),
                health_check_grace_period_seconds: 0,
                service_registries: BTreeSet::new(),
            }),
            ignore: BTreeSet::new(),
            restart_loses: Some("history".into()),
        }
    }

    /// The live twin of a desired resource, owned (or not), with ids instead of addresses.
    fn live(d: &Desired, id: &str, owned: bool, applied: Option<&Desired>) -> Observed {
        let mut tags = Tags::new();
        if owned {
            tags.insert(TAG_STACK.into(), "s".into());
            tags.insert(TAG_ENV.into(), "e".into());
        }
        if let Some(a) = applied {
            tags.insert(TAG_APPLIED.into(), a.attrs.applied_hash(&a.ignore));
        }
        let mut attrs = d.attrs.clone();
        attrs.map_references(&|s| (s == "security_group.prom").then(|| "sg-1".to_string()));
        Observed {
            address: d.address.clone(),
            id: id.into(),
            attrs,
            all_tags: tags,
            handles: Default::default(),
        }
    }

    fn plan(
        desired: &[Desired],
        observed: Vec<Observed>,
        imports: &[(&str, &str)],
        destroy: bool,
    ) -> Plan {
        let mut world = World::default();
        for o in observed {
            world.found.entry(o.address.clone()).or_default().push(o);
        }
        let imports: BTreeMap<Address, String> = imports
            .iter()
            .map(|(a, i)| (a.parse().unwrap(), i.to_string()))
            .collect();
        diff(&DiffInput {
            stack: "s",
            environment: "e",
            account_id: "1",
            region: "r",
            desired,
            world: &world,
            imports: &imports,
            destroy,
            delete_data: false,
        })
    }

    fn secret(value: &str) -> Desired {
        Desired {
            address: "secret.admin".parse().unwrap(),
            attrs: Attrs::Secret(crate::model::SecretAttrs {
                name: "monitoring/admin".into(),
                description: String::new(),
                value: value.into(),
                tags: Tags::new(),
            }),
            ignore: BTreeSet::new(),
            restart_loses: None,
        }
    }

    #[test]
    fn a_sensitive_change_is_a_change_but_never_shows_its_values() {
        let applied = secret("length=32 punctuation=no rotation=0");
        let rotated = secret("length=32 punctuation=no rotation=1");
        let p = plan(
            std::slice::from_ref(&rotated),
            vec![live(&applied, "arn:secret", true, Some(&applied))],
            &[],
            false,
        );
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.attrs.len(), 1);
        assert_eq!(c.attrs[0].name, "value");
        assert_eq!(c.attrs[0].before, Some(Value::String("(sensitive)".into())));
        assert_eq!(c.attrs[0].after, Some(Value::String("(sensitive)".into())));
        let created = plan(std::slice::from_ref(&rotated), vec![], &[], false);
        let value = created.changes[0].attrs.iter().find(|a| a.name == "value");
        assert_eq!(
            value.unwrap().after,
            Some(Value::String("(sensitive)".into()))
        );
    }

    #[test]
    fn an_adopted_secret_keeps_its_value_until_rotated() {
        let outside = secret(VALUE_SET_OUTSIDE);
        let p = plan(
            &[secret("length=32 punctuation=no rotation=0")],
            vec![live(&outside, "arn:secret", true, None)],
            &[],
            false,
        );
        assert!(!p.has_changes(), "{:?}", p.changes);
        let p = plan(
            &[secret("length=32 punctuation=no rotation=1")],
            vec![live(&outside, "arn:secret", true, None)],
            &[],
            false,
        );
        assert_eq!(p.changes[0].attrs[0].name, "value");
    }

    #[test]
    fn data_bearing_deletions_are_kept_unless_data_may_go() {
        let d = secret("length=32 punctuation=no rotation=0");
        let world = || vec![live(&d, "arn:secret", true, None)];
        let p = plan(std::slice::from_ref(&d), world(), &[], true);
        assert!(!p.has_changes());
        assert_eq!(p.kept.len(), 1);
        assert_eq!(p.kept[0].address.to_string(), "secret.admin");
        let mut w = World::default();
        for o in world() {
            w.found.entry(o.address.clone()).or_default().push(o);
        }
        let p = diff(&DiffInput {
            stack: "s",
            environment: "e",
            account_id: "1",
            region: "r",
            desired: std::slice::from_ref(&d),
            world: &w,
            imports: &BTreeMap::new(),
            destroy: true,
            delete_data: true,
        });
        assert!(p.kept.is_empty());
        assert_eq!(p.changes[0].action, Action::Delete);
        assert!(p.changes[0].warnings[0].contains("for good"));
    }

    #[test]
    fn absent_is_created_and_equal_is_nothing() {
        let d = log_group(30);
        let p = plan(std::slice::from_ref(&d), vec![], &[], false);
        assert_eq!(p.changes[0].action, Action::Create);
        let p = plan(
            std::slice::from_ref(&d),
            vec![live(&d, "/ecs/prom", true, Some(&d))],
            &[],
            false,
        );
        assert!(!p.has_changes());
    }

    #[test]
    fn drift_and_stack_edits_are_told_apart() {
        let applied = log_group(30);
        // Someone changed retention to 7 by hand.
        let p = plan(
            std::slice::from_ref(&applied),
            vec![live(&log_group(7), "/ecs/prom", true, Some(&applied))],
            &[],
            false,
        );
        assert_eq!(p.changes[0].cause, Some(Cause::Drift));
        // The stack now says 60; live is still what was applied.
        let p = plan(
            &[log_group(60)],
            vec![live(&applied, "/ecs/prom", true, Some(&applied))],
            &[],
            false,
        );
        assert_eq!(p.changes[0].cause, Some(Cause::StackEdit));
        assert_eq!(p.changes[0].attrs[0].name, "retention_days");
    }

    #[test]
    fn unowned_same_name_is_a_conflict_until_imported() {
        let d = log_group(30);
        let decoy = live(&log_group(7), "/ecs/prom", false, None);
        let p = plan(std::slice::from_ref(&d), vec![decoy.clone()], &[], false);
        assert_eq!(p.conflicts.len(), 1);
        assert!(p.conflicts[0]
            .message
            .contains("deploy import log_group.prom /ecs/prom"));
        assert!(p.changes.is_empty());
        let p = plan(&[d], vec![decoy], &[("log_group.prom", "/ecs/prom")], false);
        assert!(p.conflicts.is_empty());
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(p.changes[0].cause, Some(Cause::Import));
    }

    #[test]
    fn destroy_deletes_only_what_is_owned() {
        let d = log_group(30);
        let owned = plan(
            std::slice::from_ref(&d),
            vec![live(&d, "/ecs/prom", true, None)],
            &[],
            true,
        );
        assert_eq!(owned.changes[0].action, Action::Delete);
        let not_ours = plan(
            std::slice::from_ref(&d),
            vec![live(&d, "/ecs/prom", false, None)],
            &[],
            true,
        );
        assert!(not_ours.changes.is_empty());
    }

    #[test]
    fn a_replaced_group_is_created_before_its_user_moves_and_deleted_after() {
        let (g, s) = (group("old"), service());
        let observed = vec![
            live(&g, "sg-1", true, Some(&g)),
            live(&s, "arn:svc", true, Some(&s)),
        ];
        let p = plan(&[group("new"), s], observed, &[], false);
        let g_change = p
            .changes
            .iter()
            .position(|c| c.address.kind == Kind::SecurityGroup)
            .unwrap();
        assert_eq!(p.changes[g_change].action, Action::Replace);
        assert!(p.changes[g_change]
            .attrs
            .iter()
            .any(|a| a.name == "description" && a.forces_replacement));
        let step = |op: StepOp| p.steps.iter().position(|s| s.op == op).unwrap();
        let (create, update, delete) = (
            step(StepOp::CreateReplacement),
            step(StepOp::Update),
            step(StepOp::DeleteReplaced),
        );
        assert!(p.steps[update].after.contains(&create), "{:?}", p.steps);
        assert!(p.steps[delete].after.contains(&update), "{:?}", p.steps);
    }

    /// Runs the steps as the executor would (each once all it waits for is done) and returns
    /// the order; panics if some step can never run.
    fn run_order(p: &Plan) -> Vec<usize> {
        let mut done: Vec<usize> = Vec::new();
        while done.len() < p.steps.len() {
            let next = (0..p.steps.len())
                .find(|i| !done.contains(i) && p.steps[*i].after.iter().all(|a| done.contains(a)))
                .unwrap_or_else(|| panic!("steps wait for each other: {:?}", p.steps));
            done.push(next);
        }
        done
    }

    #[test]
    fn groups_naming_each_other_are_created_then_complete_their_rules() {
        // prom admits graf; graf may reach prom; the service uses graf.
        let rule = |peer: &str| Rule {
            protocol: "tcp".into(),
            from_port: 9090,
            to_port: 9090,
            peer: crate::model::Peer::Group(format!("security_group.{peer}")),
            description: String::new(),
        };
        let mut prom = group("prom");
        let mut graf = group("graf");
        graf.address = "security_group.graf".parse().unwrap();
        if let (Attrs::SecurityGroup(p), Attrs::SecurityGroup(g)) =
            (&mut prom.attrs, &mut graf.attrs)
        {
            p.ingress.insert(rule("graf"));
            g.name = "graf".into();
            g.egress.insert(rule("prom"));
        }
        let mut svc = service();
        if let Attrs::EcsService(a) = &mut svc.attrs {
            a.security_groups = ["security_group.graf".to_string()].into();
        }
        let p = plan(&[prom, graf, svc], vec![], &[], false);
        let order = run_order(&p);
        let at = |addr: &str, op: StepOp| {
            let i = p
                .steps
                .iter()
                .position(|s| s.op == op && p.changes[s.change].address.to_string() == addr)
                .unwrap_or_else(|| panic!("no {op:?} of {addr}: {:?}", p.steps));
            order.iter().position(|&x| x == i).unwrap()
        };
        let deferred: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| s.op == StepOp::AuthorizeDeferred)
            .collect();
        assert_eq!(deferred.len(), 1, "{:?}", p.steps);
        let owner = p.changes[deferred[0].change].address.to_string();
        let other = if owner == "security_group.graf" {
            "security_group.prom"
        } else {
            "security_group.graf"
        };
        // Both groups exist before the deferred rules are added.
        assert!(at(&owner, StepOp::Create) < at(&owner, StepOp::AuthorizeDeferred));
        assert!(at(other, StepOp::Create) < at(&owner, StepOp::AuthorizeDeferred));
        // The other group waited for the owner's id, so it was created with all its rules.
        assert!(at(&owner, StepOp::Create) < at(other, StepOp::Create));
        // The service starts only once its group's rules are complete.
        assert!(at("security_group.graf", StepOp::Create) < at("ecs_service.prom", StepOp::Create));
        if owner == "security_group.graf" {
            assert!(at(&owner, StepOp::AuthorizeDeferred) < at("ecs_service.prom", StepOp::Create));
        }
    }

    #[test]
    fn existing_groups_gaining_rules_to_each_other_do_not_wait_for_each_other() {
        let rule = |peer: &str| Rule {
            protocol: "tcp".into(),
            from_port: 9090,
            to_port: 9090,
            peer: crate::model::Peer::Group(format!("security_group.{peer}")),
            description: String::new(),
        };
        let (prom, mut graf) = (group("prom"), group("graf"));
        graf.address = "security_group.graf".parse().unwrap();
        let observed = vec![
            live(&prom, "sg-1", true, Some(&prom)),
            live(&graf, "sg-2", true, Some(&graf)),
        ];
        let (mut prom2, mut graf2) = (prom.clone(), graf.clone());
        if let (Attrs::SecurityGroup(p), Attrs::SecurityGroup(g)) =
            (&mut prom2.attrs, &mut graf2.attrs)
        {
            p.ingress.insert(rule("graf"));
            g.egress.insert(rule("prom"));
        }
        let p = plan(&[prom2.clone(), graf2.clone()], observed, &[], false);
        assert_eq!(run_order(&p).len(), 2, "{:?}", p.steps);
        assert!(
            p.steps.iter().all(|s| s.op == StepOp::Update),
            "{:?}",
            p.steps
        );

        // Destroying them: neither delete waits for the other (each revokes its own rules
        // to other groups first).
        let observed = vec![
            live(&prom2, "sg-1", true, Some(&prom2)),
            live(&graf2, "sg-2", true, Some(&graf2)),
        ];
        let p = plan(&[prom2, graf2], observed, &[], true);
        assert_eq!(run_order(&p).len(), 2, "{:?}", p.steps);
        assert!(
            p.steps.iter().all(|s| s.op == StepOp::Delete),
            "{:?}",
            p.steps
        );
    }
}
