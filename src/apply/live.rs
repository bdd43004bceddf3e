//! The rollout wait drawn in place on a terminal: one line per followed service (revision,
//! rollout state, desired / running / pending / failed, newest event), redrawn on every poll,
//! while the lines that matter stay printed above it. The wait itself only reports; this is
//! the only place that draws.

use super::wait::WaitReporter;
use crate::rollout::{revision_of, Followed, ServiceState};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct LiveReporter {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl LiveReporter {
    /// A view on stderr.
    pub fn new() -> LiveReporter {
        LiveReporter {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn bar(&self, address: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("live view lock");
        bars.entry(address.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .expect("a valid template")
                        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Default for LiveReporter {
    fn default() -> Self {
        LiveReporter::new()
    }
}

/// The live line of one service: what `deploy status` would say of its followed rollout.
pub fn live_line(f: &Followed, s: &ServiceState) -> String {
    let d = f.deployment_in(s);
    let counts = match d {
        Some(d) => format!(
            "{} {}: desired {} running {} pending {} failed {}",
            revision_of(&d.task_definition),
            d.rollout_state.as_deref().unwrap_or("-"),
            d.desired,
            d.running,
            d.pending,
            d.failed
        ),
        None => format!(
            "{}: desired {} running {} pending {}",
            revision_of(&f.task_definition),
            s.desired,
            s.running,
            s.pending
        ),
    };
    let event = s
        .events
        .first()
        .map(|e| format!(" | {}", e.message))
        .unwrap_or_default();
    format!("{} {counts}{event}", f.address)
}

impl WaitReporter for LiveReporter {
    fn progress(&self, line: &str) {
        // State changes stay on screen above the live lines.
        let _ = self.multi.println(line);
    }
    fn state(&self, f: &Followed, s: &ServiceState) {
        self.bar(&f.address).set_message(live_line(f, s));
    }
    fn ended(&self, f: &Followed) {
        if let Some(bar) = self.bars.lock().expect("live view lock").remove(&f.address) {
            bar.finish_and_clear();
        }
    }
}

impl Drop for LiveReporter {
    fn drop(&mut self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{Deployment, ServiceEvent};

    #[test]
    fn a_live_line_carries_revision_state_counts_and_the_newest_event() {
        let f = Followed {
            address: "ecs_service.grafana".into(),
            cluster: "monitoring".into(),
            service: "grafana".into(),
            deployment: Some("ecs-svc/7".into()),
            task_definition: "arn:aws:ecs:r:1:task-definition/grafana-task:7".into(),
            desired: 1,
            since: None,
            breaker_threshold: 2,
        };
        let mut s = ServiceState::missing("ecs_service.grafana", "grafana", "monitoring");
        s.deployments = vec![Deployment {
            id: "ecs-svc/7".into(),
            status: "PRIMARY".into(),
            task_definition: f.task_definition.clone(),
            rollout_state: Some("IN_PROGRESS".into()),
            rollout_state_reason: None,
            desired: 1,
            running: 0,
            pending: 1,
            failed: 1,
            created_at: None,
        }];
        s.events = vec![ServiceEvent {
            at: None,
            message: "(service grafana) has started 1 tasks".into(),
        }];
        assert_eq!(
            live_line(&f, &s),
            "ecs_service.grafana grafana-task:7 IN_PROGRESS: desired 1 running 0 pending 1 failed 1 | (service grafana) has started 1 tasks"
        );
    }
}
