// Apply follows the rollouts it starts, against moto: a created service whose tasks reach the
// desired count completes (moto reports `MOTO_ECS_SERVICE_RUNNING` tasks running and completes
// the deployment when that reaches the desired count); one whose tasks never start times out
// with the evidence; `--no-wait` returns after the calls. Updates on plain moto start no new
// deployment (its UpdateService keeps deployments[0]), which apply reads as AWS would a
// change that starts none: it waits for running = desired. The deployment lifecycle moto lacks
// (in progress, breaker rollback, crash loops, superseded) is judged by unit tests on plain
// values (src/apply/wait.rs, src/rollout.rs).

mod common;

use common::*;
use serde_json::Value;

const STACK: &str = "stacks/monitoring.yaml";

fn rollouts(doc: &Value) -> Vec<(String, String)> {
    doc["rollouts"]
        .as_array()
        .expect("rollouts")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_created_stack_is_applied_once_its_services_run() {
    let env = TestEnv::new();
    env.seed(false);
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve", "--format", "json"]);
    let err = stderr(&out);
    assert_success(&out);
    assert!(err.contains("Following 2 service change(s)"), "{err}");
    assert!(
        err.contains("ecs_service.grafana: rollout completed"),
        "{err}"
    );
    assert!(
        err.contains("Apply complete: the services run what was applied."),
        "{err}"
    );
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    schema_check(&doc).unwrap();
    // In address order, whatever order the steps finished in.
    assert_eq!(
        rollouts(&doc),
        vec![
            ("ecs_service.grafana".to_string(), "completed".to_string()),
            (
                "ecs_service.prometheus".to_string(),
                "completed".to_string()
            )
        ]
    );
    for r in doc["rollouts"].as_array().unwrap() {
        assert!(
            r["deployment"]
                .as_str()
                .unwrap_or("")
                .starts_with("ecs-svc/"),
            "the deployment CreateService started is followed: {r}"
        );
    }
    assert_eq!(doc["succeeded"], true);
    // A change that starts no deployment (ECS Exec off) waits for the count only: the
    // service's PRIMARY deployment stays the one it was.
    let exec_off = env.stack_copy("exec-off.yaml", |t| {
        t.replacen(
            "    enable_execute_command: true\n    service_registries",
            "    enable_execute_command: false\n    service_registries",
            1,
        )
    });
    let out = env.deploy(&[
        "apply",
        "-f",
        &exec_off,
        "--auto-approve",
        "--format",
        "json",
    ]);
    assert_success(&out);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let r = &doc["rollouts"][0];
    assert_eq!(r["address"], "ecs_service.prometheus", "{doc}");
    assert_eq!(r["outcome"], "completed", "{doc}");
    assert_eq!(r["deployment"], Value::Null, "no deployment started: {doc}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("1 of 1 tasks running"),
        "{doc}"
    );
}

/// `deploy apply --format json` of the reference stack, with `extra` arguments, on a moto
/// whose services never run a task (their rollouts stay IN_PROGRESS).
fn apply_where_no_task_starts(extra: &[&str]) -> (TestEnv, std::process::Output) {
    let env = TestEnv::with_moto_env(&[("MOTO_ECS_SERVICE_RUNNING", "0")]);
    env.seed(false);
    let mut args = vec!["apply", "-f", STACK, "--auto-approve", "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.deploy(&args);
    (env, out)
}

#[test]
fn tasks_that_never_start_time_out_with_the_evidence() {
    let (_env, out) = apply_where_no_task_starts(&["--wait-timeout", "6s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("IN_PROGRESS: running 0/1"), "{err}");
    assert!(err.contains("rollout TIMED OUT"), "{err}");
    assert!(err.contains("not done after 6s (--wait-timeout)"), "{err}");
    assert!(
        err.contains("failed tasks: 0 (the circuit breaker rolls back at 2)"),
        "{err}"
    );
    assert!(err.contains("ECS goes on with this deployment"), "{err}");
    assert!(
        err.contains("Apply not complete: 2 rollout(s) did not complete."),
        "{err}"
    );
    assert!(!err.contains("Apply complete"), "{err}");
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    schema_check(&doc).unwrap();
    assert_eq!(doc["succeeded"], false);
    assert!(
        rollouts(&doc).iter().all(|(_, o)| o == "timed_out"),
        "{doc}"
    );
    assert_eq!(
        doc["rollouts"][0]["evidence"]["rollout_state"], "IN_PROGRESS",
        "{doc}"
    );
}

#[test]
fn no_wait_returns_after_the_calls() {
    let (_env, out) = apply_where_no_task_starts(&["--no-wait"]);
    assert_success(&out);
    assert!(!stderr(&out).contains("Following"), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    schema_check(&doc).unwrap();
    assert!(
        rollouts(&doc).iter().all(|(_, o)| o == "not_waited"),
        "{doc}"
    );
}

#[test]
fn a_bad_breaker_threshold_is_refused_with_its_file_line_and_field() {
    let env = TestEnv::new();
    let bad = env.stack_copy("bad-breaker.yaml", |t| {
        t.replacen(
            "circuit_breaker: { threshold: { type: COUNT, value: 2 } }\n    load_balancers",
            "circuit_breaker: { threshold: { type: PERCENT, value: 0 } }\n    load_balancers",
            1,
        )
    });
    let out = env.deploy(&["validate", "-f", &bad]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("services.grafana.deployment.circuit_breaker.threshold.type")
            && err.contains("`PERCENT`: one of COUNT, BOUNDED_PERCENT, UNBOUNDED_PERCENT"),
        "{err}"
    );
    assert!(
        err.contains("services.grafana.deployment.circuit_breaker.threshold.value"),
        "{err}"
    );
    assert!(
        err.contains("bad-breaker.yaml:"),
        "names the file and line: {err}"
    );
}

#[test]
fn ctrl_c_while_waiting_stops_waiting_names_the_deployments_and_exits_130() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let env = TestEnv::with_moto_env(&[("MOTO_ECS_SERVICE_RUNNING", "0")]);
    env.seed(false);
    let mut child = env
        .deploy_command(&[
            "apply",
            "-f",
            STACK,
            "--auto-approve",
            "--poll-interval",
            "1s",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start deploy");
    let pid = child.id().to_string();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let mut err = String::new();
    let mut sent = false;
    for line in reader.lines() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        // Interrupt once the wait has read the services (a progress line per service).
        if !sent && line.contains("IN_PROGRESS: running 0/1") {
            let ok = std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap();
            assert!(ok.success());
            sent = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(sent, "the wait never reported progress:\n{err}");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("Stopped waiting; ECS goes on with the deployments (ecs_service."),
        "{err}"
    );
    assert!(
        err.contains(" ecs-svc/"),
        "the deployment ids are named: {err}"
    );
    assert!(
        err.contains("See how they end with: deploy status"),
        "{err}"
    );
    assert!(
        !err.contains("ROLLED BACK"),
        "nothing is rolled back: {err}"
    );
    // A later plan says the rollouts are still in progress (ECS goes on with them).
    let plan = env.deploy(&["plan", "-f", STACK]);
    let text = format!("{}{}", stdout(&plan), stderr(&plan));
    assert!(
        text.contains("ecs_service.grafana: a rollout is still in progress (deployment ecs-svc/"),
        "{text}"
    );
    assert_eq!(
        env.proxy
            .calls()
            .iter()
            .filter(|c| c.action == "StopServiceDeployment")
            .count(),
        0
    );
}
