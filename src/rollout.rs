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

/// How many of the newest events `status` shows.
pub const EVENTS_SHOWN: usize = 10;

impl ServiceState {
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
