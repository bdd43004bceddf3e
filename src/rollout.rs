//! What a service's rollouts look like from outside — its deployments, tasks, target health
//! and events, as the ECS and ELBv2 adapters read them — and the pure judgements made on them:
//! is the service healthy now (`deploy status`), and what to tell a person about it. No AWS
//! here: the adapters fill these types, the tests use plain values.

use serde::Serialize;
use std::collections::BTreeMap;

/// One ECS deployment of a service (`deployments[]` of DescribeServices).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deployment {
    /// The deployment's id (`ecs-svc/…`), not the service-deployment ARN.
    pub id: String,
    /// `PRIMARY` (the newest), `ACTIVE` (still draining) or `INACTIVE`.
    pub status: String,
    pub task_definition: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`; absent for services without the rollout
    /// state (not the ECS deployment controller).
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed: i32,
    /// Seconds since the Unix epoch.
    pub created_at: Option<i64>,
}

/// One service deployment (ListServiceDeployments), with the revision it deployed (from its
/// service revision). Its ARN is what StopServiceDeployment takes — not a deployment's `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceDeployment {
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `ROLLBACK_…`.
    pub status: String,
    pub task_definition: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: Option<i64>,
}

/// A service event (`events[]`), newest first as ECS lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceEvent {
    pub at: Option<i64>,
    pub message: String,
}

/// One task of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskState {
    pub id: String,
    pub task_definition: String,
    pub last_status: String,
    pub stopped_reason: Option<String>,
    pub stopped_at: Option<i64>,
    pub containers: Vec<ContainerExit>,
}

/// How a container of a task ended (or `exit_code: None` while it runs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerExit {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// One registered target of a target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetState {
    pub id: String,
    pub port: Option<i32>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable`.
    pub state: String,
    /// ELBv2's reason code (`Target.FailedHealthChecks`, …) and its description.
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// Everything `deploy status` reads about one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceState {
    /// The service's address in the stack (`ecs_service.grafana`).
    pub address: String,
    pub name: String,
    pub cluster: String,
    /// `ACTIVE`, `DRAINING`, `INACTIVE`, or `MISSING` when it does not exist.
    pub status: String,
    /// The revision the service is set to run.
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub deployments: Vec<Deployment>,
    /// The newest events first.
    pub events: Vec<ServiceEvent>,
    /// Running tasks by revision.
    pub running_by_revision: BTreeMap<String, usize>,
    /// Tasks stopped in the last hour, newest first.
    pub stopped: Vec<TaskState>,
    /// Target group ARN → its targets.
    pub targets: BTreeMap<String, Vec<TargetState>>,
}

/// A service change apply made, and what it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Followed {
    pub address: String,
    pub cluster: String,
    pub service: String,
    /// The deployment the apply's own call started (the PRIMARY deployment's id in the
    /// CreateService/UpdateService answer, when it is a new one); `None` when the change
    /// started none (desired count, settings): then apply waits for running = desired.
    pub deployment: Option<String>,
    /// The revision the service is set to run after the call.
    pub task_definition: String,
    pub desired: i32,
    /// When the followed deployment began (seconds since the epoch).
    pub since: Option<i64>,
    /// The failed tasks at which the service's circuit breaker stops the deployment.
    pub breaker_threshold: i32,
}

impl Followed {
    /// The followed deployment as `s` shows it (`None` when none was started or it is gone).
    pub fn deployment_in<'a>(&self, s: &'a ServiceState) -> Option<&'a Deployment> {
        let id = self.deployment.as_ref()?;
        s.deployments.iter().find(|d| &d.id == id)
    }
}

/// How many of the newest events `status` shows.
pub const EVENTS_SHOWN: usize = 10;

impl ServiceState {
    /// A service that does not exist (or only INACTIVE).
    pub fn missing(address: &str, name: &str, cluster: &str) -> ServiceState {
        ServiceState {
            address: address.to_string(),
            name: name.to_string(),
            cluster: cluster.to_string(),
            status: "MISSING".into(),
            task_definition: String::new(),
            desired: 0,
            running: 0,
            pending: 0,
            deployments: vec![],
            events: vec![],
            running_by_revision: BTreeMap::new(),
            stopped: vec![],
            targets: BTreeMap::new(),
        }
    }

    /// Why the service is not healthy now; empty when it is: it exists, one deployment (the
    /// PRIMARY) runs the service's revision and completed, running = desired, and every target
    /// group it registers in has at least `desired` healthy targets.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.status != "ACTIVE" {
            out.push(format!("the service is {}", self.status));
            return out;
        }
        match self.deployments.iter().find(|d| d.status == "PRIMARY") {
            None => out.push("no PRIMARY deployment".into()),
            Some(p) => {
                if p.task_definition != self.task_definition {
                    out.push(format!(
                        "the PRIMARY deployment runs {}, not the service's revision {}",
                        revision_of(&p.task_definition),
                        revision_of(&self.task_definition)
                    ));
                }
                match p.rollout_state.as_deref() {
                    Some("COMPLETED") | None => {}
                    Some(state) => out.push(format!(
                        "deployment {} is {state}{}",
                        p.id,
                        p.rollout_state_reason
                            .as_deref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    )),
                }
            }
        }
        let others = self
            .deployments
            .iter()
            .filter(|d| d.status != "PRIMARY")
            .count();
        if others > 0 {
            out.push(format!(
                "{others} older deployment(s) still active (a rollout is under way)"
            ));
        }
        if self.running != self.desired {
            out.push(format!(
                "{} of {} tasks running ({} pending)",
                self.running, self.desired, self.pending
            ));
        }
        for (group, targets) in &self.targets {
            let healthy = targets.iter().filter(|t| t.state == "healthy").count();
            if (healthy as i32) < self.desired {
                let mut why: BTreeMap<String, usize> = BTreeMap::new();
                for t in targets.iter().filter(|t| t.state != "healthy") {
                    *why.entry(format!(
                        "{} ({})",
                        t.state,
                        t.reason.as_deref().unwrap_or("no reason given")
                    ))
                    .or_default() += 1;
                }
                let why: Vec<String> = why.iter().map(|(w, n)| format!("{n} {w}")).collect();
                out.push(format!(
                    "{healthy} of {} healthy targets in {}{}",
                    self.desired,
                    target_group_name(group),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", why.join(", "))
                    }
                ));
            }
        }
        out
    }

    /// Stopped tasks grouped by reason, most frequent first: (reason, count).
    pub fn stopped_by_reason(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for t in &self.stopped {
            *counts
                .entry(
                    t.stopped_reason
                        .clone()
                        .unwrap_or_else(|| "no reason given".into()),
                )
                .or_default() += 1;
        }
        let mut list: Vec<(String, usize)> = counts.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list
    }
}

/// How a followed rollout ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Failed,
    RolledBack,
    TimedOut,
    Superseded,
    NotWaited,
}

/// Where a followed rollout stands after one poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Waiting,
    Done(Outcome, String),
}

/// The circuit breaker's failure threshold for a desired count: half the tasks, at least 3
/// and at most 200 (ECS's documented formula).
pub fn breaker_threshold(desired: i32) -> i32 {
    breaker_threshold_of(crate::model::DEFAULT_BREAKER_THRESHOLD, desired)
}

/// The failed tasks at which the breaker set as `TYPE VALUE` (a service's
/// `breaker_threshold`) stops a deployment of `desired` tasks: COUNT is the value itself;
/// the percentages take that share of the desired count, BOUNDED_PERCENT at least 3 and at
/// most 200.
pub fn breaker_threshold_of(threshold: &str, desired: i32) -> i32 {
    let (kind, value) = threshold
        .split_once(' ')
        .unwrap_or(("BOUNDED_PERCENT", "50"));
    let value: i32 = value.parse().unwrap_or(50);
    let share = (desired * value + 99) / 100;
    match kind {
        "COUNT" => value,
        "UNBOUNDED_PERCENT" => share.max(1),
        _ => share.clamp(3, 200),
    }
}

/// Judges one poll of a followed change. With a deployment: it succeeded when it COMPLETED
/// with running = desired on the revision apply set; it failed when ECS says FAILED (rolled
/// back when the service's PRIMARY deployment now runs another revision), when
/// `max_task_failures` of its tasks failed, or when a newer deployment replaced it that is not
/// a rollback (superseded). Without one: running = desired with nothing pending.
pub fn judge(f: &Followed, s: &ServiceState, max_task_failures: i32) -> Verdict {
    if s.status != "ACTIVE" {
        return Verdict::Done(Outcome::Failed, format!("the service is {}", s.status));
    }
    let Some(id) = &f.deployment else {
        return if s.running == s.desired && s.pending == 0 {
            Verdict::Done(
                Outcome::Completed,
                format!("{} of {} tasks running", s.running, s.desired),
            )
        } else {
            Verdict::Waiting
        };
    };
    let primary = s.deployments.iter().find(|d| d.status == "PRIMARY");
    let Some(d) = s.deployments.iter().find(|d| &d.id == id) else {
        let now = primary
            .map(|p| format!("{} ({})", p.id, revision_of(&p.task_definition)))
            .unwrap_or_else(|| "none".into());
        return Verdict::Done(
            Outcome::Superseded,
            format!("deployment {id} is gone; the service's PRIMARY deployment is now {now}"),
        );
    };
    let reason = d
        .rollout_state_reason
        .clone()
        .unwrap_or_else(|| "no reason given".into());
    match d.rollout_state.as_deref() {
        Some("FAILED") => {
            let rolled_back = primary
                .filter(|p| p.id != d.id && p.task_definition != f.task_definition)
                .map(|p| revision_of(&p.task_definition).to_string());
            return match rolled_back {
                Some(back_to) => Verdict::Done(
                    Outcome::RolledBack,
                    format!("{reason}; ECS rolled the service back to {back_to}"),
                ),
                None => Verdict::Done(Outcome::Failed, reason),
            };
        }
        // Without a rollout state (not the ECS deployment controller) the counts tell.
        Some("COMPLETED") | None
            if d.running == d.desired
                && d.pending == 0
                && d.task_definition == f.task_definition
                && (d.rollout_state.is_some() || d.status == "PRIMARY") =>
        {
            return Verdict::Done(
                Outcome::Completed,
                format!(
                    "{} of {} tasks running {}",
                    d.running,
                    d.desired,
                    revision_of(&d.task_definition)
                ),
            );
        }
        _ => {}
    }
    if d.status != "PRIMARY" {
        if let Some(p) = primary {
            return Verdict::Done(
                Outcome::Superseded,
                format!(
                    "a newer deployment {} ({}) replaced {id} before it completed",
                    p.id,
                    revision_of(&p.task_definition)
                ),
            );
        }
    }
    if d.failed >= max_task_failures {
        return Verdict::Done(
            Outcome::Failed,
            format!(
                "{} tasks of {} failed (--max-task-failures {max_task_failures}; the circuit breaker's threshold is {})",
                d.failed,
                revision_of(&f.task_definition),
                f.breaker_threshold
            ),
        );
    }
    Verdict::Waiting
}

/// An ACTIVE revision of a family as `rollback` and revision hygiene weigh it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionFacts {
    pub arn: String,
    /// Carries this stack's and environment's ownership tags.
    pub owned: bool,
    /// When deploy saw a rollout of it complete (the `deploy:rollout-completed` tag).
    pub completed_at: Option<String>,
}

/// The revision `deploy rollback` returns a service running `current` to: the one named
/// (`--to` as `7`, `family:7` or an ARN; it must be an ACTIVE revision of the family), else the
/// newest other revision deploy recorded a completed rollout of, else the newest other revision
/// of ECS's successful service deployments (`successful`, newest first). A revision whose
/// rollout failed is never chosen: only completions are recorded or successful.
pub fn rollback_target(
    current: &str,
    revisions: &[RevisionFacts],
    successful: &[String],
    to: Option<&str>,
) -> Result<String, String> {
    let family = family_of(current);
    if let Some(to) = to {
        let wanted = if to.starts_with("arn:") {
            to.to_string()
        } else {
            let number = to.rsplit(':').next().unwrap_or(to);
            if let Some((f, _)) = to.rsplit_once(':') {
                if f != family {
                    return Err(format!("{to} is not a revision of {family}"));
                }
            }
            let prefix = current.rsplit_once(':').map(|(p, _)| p).unwrap_or(current);
            format!("{prefix}:{number}")
        };
        if wanted == current {
            return Err(format!("the service already runs {}", revision_of(current)));
        }
        return match revisions.iter().find(|r| r.arn == wanted) {
            Some(r) => Ok(r.arn.clone()),
            None => Err(format!(
                "{} is not one of the ACTIVE revisions of {family} ({})",
                revision_of(&wanted),
                revisions
                    .iter()
                    .map(|r| revision_of(&r.arn))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    let mut recorded: Vec<&RevisionFacts> = revisions
        .iter()
        .filter(|r| r.arn != current && r.completed_at.is_some())
        .collect();
    // RFC 3339 times in UTC sort as text.
    recorded.sort_by(|a, b| b.completed_at.cmp(&a.completed_at));
    if let Some(r) = recorded.first() {
        return Ok(r.arn.clone());
    }
    let active = |arn: &String| revisions.iter().any(|r| &r.arn == arn);
    successful
        .iter()
        .find(|arn| *arn != current && active(arn))
        .cloned()
        .ok_or_else(|| {
            format!(
                "no earlier revision of {family} completed a rollout (none is recorded, and ECS \
                 lists no successful deployment of another ACTIVE revision): name one with --to"
            )
        })
}

/// How many of a family's existing ACTIVE revisions stay when an apply keeps `keep` (one of
/// them the revision it registers, when it registers one).
pub fn revisions_kept(keep: usize, registers_new: bool) -> usize {
    if registers_new {
        keep.saturating_sub(1)
    } else {
        keep
    }
}

/// The revisions (newest first in, newest first out) an apply deregisters once its rollouts
/// completed: the owned ones beyond the newest [`revisions_kept`] owned ones, except any a
/// service's deployment names (`in_use`) and the rollback target — the newest revision whose
/// rollout completed, other than the one the service runs after the apply. Revisions this
/// stack does not own are neither counted nor touched.
pub fn revisions_to_deregister(
    newest_first: &[RevisionFacts],
    keep: usize,
    registers_new: bool,
    in_use: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    let kept = revisions_kept(keep, registers_new);
    let owned: Vec<&RevisionFacts> = newest_first.iter().filter(|r| r.owned).collect();
    if owned.len() <= kept {
        return vec![];
    }
    // Without a new revision the newest one is what the service runs: not a rollback target.
    let runs_after = if registers_new { None } else { owned.first() };
    let rollback_target = owned
        .iter()
        .filter(|r| Some(*r) != runs_after && r.completed_at.is_some())
        .max_by(|a, b| a.completed_at.cmp(&b.completed_at))
        .map(|r| r.arn.clone());
    owned[kept..]
        .iter()
        .filter(|r| !in_use.contains(&r.arn))
        .filter(|r| Some(&r.arn) != rollback_target.as_ref())
        .map(|r| r.arn.clone())
        .collect()
}

/// `grafana-task` of `arn:…:task-definition/grafana-task:7`.
pub fn family_of(arn: &str) -> &str {
    let tail = revision_of(arn);
    tail.rsplit_once(':').map(|(f, _)| f).unwrap_or(tail)
}

/// After `--rollback-on-failure` stopped `f`'s deployment: done when the service's PRIMARY
/// deployment runs another revision and completed (the rollback), failed when that rollback
/// failed; waiting while ECS has not switched yet.
pub fn judge_rollback(f: &Followed, s: &ServiceState) -> Verdict {
    if s.status != "ACTIVE" {
        return Verdict::Done(Outcome::Failed, format!("the service is {}", s.status));
    }
    let Some(p) = s.deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Verdict::Waiting;
    };
    if p.task_definition == f.task_definition {
        return Verdict::Waiting;
    }
    let back_to = revision_of(&p.task_definition);
    match p.rollout_state.as_deref() {
        Some("FAILED") => Verdict::Done(
            Outcome::Failed,
            format!(
                "the rollback to {back_to} failed too: {}",
                p.rollout_state_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        ),
        Some("COMPLETED") | None if p.running == p.desired && p.pending == 0 => Verdict::Done(
            Outcome::RolledBack,
            format!(
                "rolled back to {back_to} ({} of {} tasks running)",
                p.running, p.desired
            ),
        ),
        _ => Verdict::Waiting,
    }
}

/// One line of a followed rollout's progress (printed when it changes).
pub fn progress_line(f: &Followed, s: &ServiceState) -> String {
    match f.deployment_in(s) {
        Some(d) => format!(
            "{}: deployment {} {} {}: running {}/{}, pending {}, failed {}",
            f.address,
            d.id,
            revision_of(&d.task_definition),
            d.rollout_state.as_deref().unwrap_or("-"),
            d.running,
            d.desired,
            d.pending,
            d.failed
        ),
        None => format!(
            "{}: running {}/{}, pending {}",
            f.address, s.running, s.desired, s.pending
        ),
    }
}

/// What a failed rollout's report shows, gathered once when it fails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub failed_tasks: i32,
    pub breaker_threshold: i32,
    /// The newest stopped tasks of the revision apply set.
    pub stopped: Vec<TaskState>,
    /// Service events since the deployment began, newest first.
    pub events: Vec<ServiceEvent>,
    /// Targets not healthy, by target group name.
    pub unhealthy_targets: Vec<(String, TargetState)>,
    /// The last lines each stopped container logged.
    pub logs: Vec<ContainerLog>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerLog {
    pub task: String,
    pub container: String,
    pub log_group: String,
    pub log_stream: String,
    pub lines: Vec<String>,
}

/// How many stopped tasks a failure report shows, and how many log lines of each.
pub const STOPPED_SHOWN: usize = 3;
pub const LOG_LINES: usize = 20;

impl Evidence {
    /// The followed deployment's state as the wait judged it, where the later full read no
    /// longer shows that deployment (ECS removes a rolled-back one once the rollback is done).
    pub fn keep_judged(&mut self, f: &Followed, judged: &ServiceState) {
        if self.rollout_state.is_some() {
            return;
        }
        if let Some(d) = f.deployment_in(judged) {
            self.rollout_state = d.rollout_state.clone();
            self.rollout_state_reason = d.rollout_state_reason.clone();
            self.failed_tasks = self.failed_tasks.max(d.failed);
        }
    }

    /// Picks from a full read of the service what explains a failed rollout of `f`.
    pub fn from_state(f: &Followed, s: &ServiceState) -> Evidence {
        let d = f.deployment_in(s);
        Evidence {
            rollout_state: d.and_then(|d| d.rollout_state.clone()),
            rollout_state_reason: d.and_then(|d| d.rollout_state_reason.clone()),
            failed_tasks: d.map(|d| d.failed).unwrap_or(0),
            breaker_threshold: f.breaker_threshold,
            stopped: s
                .stopped
                .iter()
                .filter(|t| t.task_definition == f.task_definition)
                .take(STOPPED_SHOWN)
                .cloned()
                .collect(),
            events: s
                .events
                .iter()
                .filter(|e| match (e.at, f.since) {
                    (Some(at), Some(since)) => at >= since,
                    _ => true,
                })
                .take(EVENTS_SHOWN)
                .cloned()
                .collect(),
            unhealthy_targets: s
                .targets
                .iter()
                .flat_map(|(g, ts)| {
                    ts.iter()
                        .filter(|t| t.state != "healthy")
                        .map(move |t| (target_group_name(g).to_string(), t.clone()))
                })
                .collect(),
            logs: vec![],
        }
    }

    /// The report's text, indented under the service's line.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if let Some(state) = &self.rollout_state {
            let _ = writeln!(
                out,
                "    rollout: {state}{}",
                self.rollout_state_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "    failed tasks: {} (the circuit breaker rolls back at {})",
            self.failed_tasks, self.breaker_threshold
        );
        for t in &self.stopped {
            let _ = writeln!(
                out,
                "    stopped task {}: {}",
                t.id,
                t.stopped_reason.as_deref().unwrap_or("no reason given")
            );
            for c in &t.containers {
                let _ = writeln!(
                    out,
                    "      container {}: exit code {}{}",
                    c.name,
                    c.exit_code
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
        }
        for (g, t) in &self.unhealthy_targets {
            let _ = writeln!(
                out,
                "    target {}{} in {g}: {}{}",
                t.id,
                t.port.map(|p| format!(":{p}")).unwrap_or_default(),
                t.state,
                t.reason
                    .as_deref()
                    .map(|r| format!(
                        " ({r}{})",
                        t.description
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ))
                    .unwrap_or_default()
            );
        }
        if !self.events.is_empty() {
            let _ = writeln!(out, "    events since the deployment began:");
            for e in &self.events {
                let _ = writeln!(out, "      {}", e.message);
            }
        }
        for l in &self.logs {
            let _ = writeln!(
                out,
                "    last {} log lines of {} in task {} ({} {}):",
                l.lines.len(),
                l.container,
                l.task,
                l.log_group,
                l.log_stream
            );
            for line in &l.lines {
                let _ = writeln!(out, "      | {line}");
            }
        }
        out
    }
}

/// `family:revision` of a task definition ARN (or the text as it is).
pub fn revision_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `name` of a target group ARN (`…:targetgroup/NAME/ID`).
pub fn target_group_name(arn: &str) -> &str {
    arn.split("targetgroup/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, status: &str, td: &str, state: &str) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(state.into()),
            rollout_state_reason: None,
            desired: 1,
            running: 1,
            pending: 0,
            failed: 0,
            created_at: None,
        }
    }

    const TD2: &str = "arn:aws:ecs:us-west-2:1:task-definition/grafana-task:2";
    const TG: &str = "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/grafana/abc";

    fn healthy() -> ServiceState {
        ServiceState {
            address: "ecs_service.grafana".into(),
            name: "grafana".into(),
            cluster: "monitoring".into(),
            status: "ACTIVE".into(),
            task_definition: TD2.into(),
            desired: 1,
            running: 1,
            pending: 0,
            deployments: vec![deployment("ecs-svc/2", "PRIMARY", TD2, "COMPLETED")],
            events: vec![],
            running_by_revision: [(TD2.to_string(), 1)].into(),
            stopped: vec![],
            targets: [(
                TG.to_string(),
                vec![TargetState {
                    id: "10.0.0.1".into(),
                    port: Some(3000),
                    state: "healthy".into(),
                    reason: None,
                    description: None,
                }],
            )]
            .into(),
        }
    }

    #[test]
    fn a_completed_service_at_its_count_with_healthy_targets_is_healthy() {
        assert_eq!(healthy().problems(), Vec::<String>::new());
    }

    #[test]
    fn each_way_of_being_unhealthy_is_named() {
        let mut s = healthy();
        s.deployments[0].rollout_state = Some("IN_PROGRESS".into());
        s.deployments.push(deployment(
            "ecs-svc/1",
            "ACTIVE",
            "arn:aws:ecs:us-west-2:1:task-definition/grafana-task:1",
            "COMPLETED",
        ));
        s.running = 0;
        s.pending = 1;
        s.targets.get_mut(TG).unwrap()[0].state = "unhealthy".into();
        s.targets.get_mut(TG).unwrap()[0].reason = Some("Target.FailedHealthChecks".into());
        let p = s.problems().join("\n");
        assert!(p.contains("deployment ecs-svc/2 is IN_PROGRESS"), "{p}");
        assert!(p.contains("1 older deployment(s) still active"), "{p}");
        assert!(p.contains("0 of 1 tasks running (1 pending)"), "{p}");
        assert!(
            p.contains(
                "0 of 1 healthy targets in grafana: 1 unhealthy (Target.FailedHealthChecks)"
            ),
            "{p}"
        );
    }

    #[test]
    fn a_rolled_back_service_runs_another_revision_than_it_is_set_to() {
        let mut s = healthy();
        s.deployments[0].task_definition =
            "arn:aws:ecs:us-west-2:1:task-definition/grafana-task:1".into();
        let p = s.problems().join("\n");
        assert!(
            p.contains("runs grafana-task:1, not the service's revision grafana-task:2"),
            "{p}"
        );
        let mut missing = healthy();
        missing.status = "MISSING".into();
        assert_eq!(
            missing.problems(),
            vec!["the service is MISSING".to_string()]
        );
    }

    #[test]
    fn stopped_tasks_group_by_reason_most_frequent_first() {
        let mut s = healthy();
        let stopped = |reason: &str| TaskState {
            id: "t".into(),
            task_definition: TD2.into(),
            last_status: "STOPPED".into(),
            stopped_reason: Some(reason.into()),
            stopped_at: None,
            containers: vec![],
        };
        s.stopped = vec![
            stopped("Essential container in task exited"),
            stopped("Task failed ELB health checks"),
            stopped("Essential container in task exited"),
        ];
        assert_eq!(
            s.stopped_by_reason(),
            vec![
                ("Essential container in task exited".to_string(), 2),
                ("Task failed ELB health checks".to_string(), 1)
            ]
        );
    }
}

#[cfg(test)]
mod rollback_target_tests {
    use super::*;

    const P: &str = "arn:aws:ecs:us-west-2:1:task-definition/grafana-task";

    fn rev(n: u32, completed: Option<&str>) -> RevisionFacts {
        RevisionFacts {
            owned: true,
            arn: format!("{P}:{n}"),
            completed_at: completed.map(str::to_string),
        }
    }

    #[test]
    fn the_newest_recorded_completion_other_than_the_current_one_is_chosen() {
        let revs = [
            rev(4, Some("2026-12-01T10:00:00Z")),
            rev(3, None),
            rev(2, Some("2026-12-01T09:00:00Z")),
            rev(1, Some("2026-11-30T09:00:00Z")),
        ];
        // 3 failed (never recorded): 2 is the last that completed before 4.
        assert_eq!(
            rollback_target(&format!("{P}:4"), &revs, &[], None),
            Ok(format!("{P}:2"))
        );
    }

    #[test]
    fn without_a_record_the_successful_service_deployments_tell() {
        let revs = [rev(3, None), rev(2, None), rev(1, None)];
        let ok = [format!("{P}:3"), format!("{P}:1")];
        assert_eq!(
            rollback_target(&format!("{P}:3"), &revs, &ok, None),
            Ok(format!("{P}:1"))
        );
        let err = rollback_target(&format!("{P}:3"), &revs, &ok[..1], None).unwrap_err();
        assert!(err.contains("name one with --to"), "{err}");
    }

    #[test]
    fn a_named_revision_must_be_an_active_one_of_the_family() {
        let revs = [rev(3, None), rev(2, None)];
        let current = format!("{P}:3");
        assert_eq!(
            rollback_target(&current, &revs, &[], Some("2")),
            Ok(format!("{P}:2"))
        );
        assert_eq!(
            rollback_target(&current, &revs, &[], Some("grafana-task:2")),
            Ok(format!("{P}:2"))
        );
        assert!(rollback_target(&current, &revs, &[], Some("prom-task:2"))
            .unwrap_err()
            .contains("not a revision of grafana-task"));
        assert!(rollback_target(&current, &revs, &[], Some("1"))
            .unwrap_err()
            .contains("not one of the ACTIVE revisions"));
        assert!(rollback_target(&current, &revs, &[], Some("3"))
            .unwrap_err()
            .contains("already runs"));
    }
}

#[cfg(test)]
mod breaker_tests {
    use super::*;

    #[test]
    fn the_breaker_threshold_follows_its_type() {
        assert_eq!(breaker_threshold(1), 3, "ECS's default: at least 3");
        assert_eq!(breaker_threshold(10), 5);
        assert_eq!(breaker_threshold(1000), 200, "and at most 200");
        assert_eq!(breaker_threshold_of("COUNT 2", 1), 2);
        assert_eq!(breaker_threshold_of("BOUNDED_PERCENT 100", 1), 3);
        assert_eq!(breaker_threshold_of("UNBOUNDED_PERCENT 100", 1), 1);
        assert_eq!(breaker_threshold_of("UNBOUNDED_PERCENT 50", 5), 3);
    }
}

#[cfg(test)]
mod hygiene_tests {
    use super::*;
    use std::collections::BTreeSet;

    fn facts(n: u32, owned: bool, completed: Option<&str>) -> RevisionFacts {
        RevisionFacts {
            arn: format!("arn:aws:ecs:r:1:task-definition/grafana-task:{n}"),
            owned,
            completed_at: completed.map(str::to_string),
        }
    }

    #[test]
    fn beyond_the_kept_ones_only_owned_unused_revisions_go() {
        // 7 revisions; the apply registers an 8th: keeps 4 existing + the new one.
        let revs: Vec<RevisionFacts> = (1..=7)
            .rev()
            .map(|n| facts(n, n != 2, Some("2026-12-01T00:00:00Z")))
            .collect();
        let in_use = BTreeSet::from([revs[6].arn.clone()]); // revision 1 still deployed
        let gone = revisions_to_deregister(&revs, 5, true, &in_use);
        let numbers: Vec<&str> = gone.iter().map(|a| revision_of(a)).collect();
        // Owned: 7,6,5,4 kept (with the new one, 5); 3 goes; 2 is not owned (neither counted
        // nor touched); 1 is in use.
        assert_eq!(numbers, ["grafana-task:3"]);
    }

    #[test]
    fn the_rollback_target_is_kept_even_when_old() {
        // 4..6 failed (never recorded); 1 completed last: it is what rollback returns to.
        let mut revs: Vec<RevisionFacts> = (2..=6).rev().map(|n| facts(n, true, None)).collect();
        revs.push(facts(1, true, Some("2026-11-30T00:00:00Z")));
        let gone = revisions_to_deregister(&revs, 2, false, &BTreeSet::new());
        let numbers: Vec<&str> = gone.iter().map(|a| revision_of(a)).collect();
        assert_eq!(
            numbers,
            ["grafana-task:4", "grafana-task:3", "grafana-task:2"]
        );
        assert!(revisions_to_deregister(&revs[..2], 2, false, &BTreeSet::new()).is_empty());
    }
}
