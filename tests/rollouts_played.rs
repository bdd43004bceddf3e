// Apply's rollout wait against the deployment lifecycle moto lacks. moto completes no update's
// deployment by itself and has no service-deployment API, so the test proxy PLAYS those
// answers (tests/fixtures/ecs_play.py: a simulation of AWS, documented as such, each answer
// checked against botocore's ECS and ELBv2 models by tests/fixtures/ecs_play_check.py): an
// update that goes in progress then completes, tasks failing until the circuit breaker rolls
// back, a crash loop caught by --max-task-failures, a deployment superseded by another, and
// unhealthy targets. Everything else — the services, task definitions, the stopped container's
// log lines (written into moto's CloudWatch Logs with PutLogEvents) — is moto's.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Output};

const STACK: &str = "stacks/monitoring.yaml";

/// The reference stack applied (its create completes on moto), the proxy then playing
/// `scenario` for the grafana service, and a stack copy that changes Grafana's image.
fn applied_then_played(scenario: Value) -> (TestEnv, String) {
    let env = TestEnv::new();
    env.seed(false);
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve"]);
    assert_success(&out);
    env.proxy.play_ecs(scenario);
    let changed = env.stack_copy("grafana-next.yaml", |t| {
        t.replacen("grafana/grafana:12.2.0", "grafana/grafana:12.2.1", 1)
    });
    (env, changed)
}

/// Runs `body` (Python) against moto itself, not through the proxy, with boto3 clients `ecs`
/// and `logs` and the extra arguments as `args`; answers its stdout.
fn moto_py(env: &TestEnv, body: &str, args: &[&str]) -> String {
    let script = format!(
        "import sys, json, time, boto3\n\
         kw = dict(endpoint_url=sys.argv[1], region_name='us-west-2',\n\
                   aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         ecs = boto3.client('ecs', **kw)\n\
         logs = boto3.client('logs', **kw)\n\
         args = sys.argv[2:]\n{body}"
    );
    let out = Command::new(python_path())
        .arg("-c")
        .arg(&script)
        .arg(env.endpoint())
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python against moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn apply_json(env: &TestEnv, stack: &str, extra: &[&str]) -> (Output, Value) {
    deploy_json(env, "apply", stack, extra)
}

/// `deploy COMMAND -f STACK --auto-approve --format json --poll-interval 1s EXTRA…`, its JSON
/// checked against the schema.
fn deploy_json(env: &TestEnv, command: &str, stack: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        command,
        "-f",
        stack,
        "--auto-approve",
        "--format",
        "json",
        "--poll-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    let out = env.deploy(&args);
    let doc: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{command}'s JSON: {e}\n{}", stderr(&out)));
    schema_check(&doc).unwrap();
    (out, doc)
}

fn grafana_rollout(doc: &Value) -> &Value {
    doc["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "ecs_service.grafana")
        .unwrap_or_else(|| panic!("no grafana rollout: {doc}"))
}

/// Writes `lines` into moto's CloudWatch Logs as the grafana container of task `task_id`
/// would through awslogs (log group /ecs/grafana-task, stream grafana/grafana/TASK).
fn write_container_log(env: &TestEnv, task_id: &str, lines: &[&str]) {
    moto_py(
        env,
        "stream, lines = args[0], json.loads(args[1])
logs.create_log_stream(logGroupName='/ecs/grafana-task', logStreamName=stream)
now = int(time.time() * 1000)
logs.put_log_events(logGroupName='/ecs/grafana-task', logStreamName=stream,
    logEvents=[{'timestamp': now + i, 'message': m} for i, m in enumerate(lines)])
",
        &[
            &format!("grafana/grafana/{task_id}"),
            &serde_json::to_string(lines).unwrap(),
        ],
    );
}

fn calls_named(env: &TestEnv, action: &str) -> usize {
    env.proxy
        .calls()
        .iter()
        .filter(|c| c.action == action)
        .count()
}

#[test]
fn every_played_answer_matches_botocores_models() {
    let out = Command::new(python_path())
        .arg(fixtures_dir().join("ecs_play_check.py"))
        .output()
        .expect("run ecs_play_check.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_update_in_progress_then_completed_is_followed_to_the_end() {
    let (env, changed) =
        applied_then_played(json!({"service": "grafana", "scenario": "complete", "polls": 2}));
    let (out, doc) = apply_json(&env, &changed, &[]);
    let err = stderr(&out);
    assert_success(&out);
    let r = grafana_rollout(&doc);
    assert_eq!(r["outcome"], "completed", "{doc}");
    let played = env.proxy.played_ecs();
    assert_eq!(
        r["deployment"], played["grafana"]["deployments"][0]["id"],
        "apply follows the deployment its UpdateService started: {doc}\n{played}"
    );
    assert!(err.contains("IN_PROGRESS: running 0/1"), "{err}");
    assert!(
        err.contains("ecs_service.grafana: rollout completed"),
        "{err}"
    );
    assert!(err.contains("Apply complete"), "{err}");
}

#[test]
fn a_breaker_rollback_fails_the_apply_with_stopped_tasks_and_their_logs() {
    let tasks = [
        "1f0e2d3c4b5a69788796a5b4c3d2e1f0",
        "2f0e2d3c4b5a69788796a5b4c3d2e1f0",
        "3f0e2d3c4b5a69788796a5b4c3d2e1f0",
    ];
    let (env, changed) = applied_then_played(json!({
        "service": "grafana", "scenario": "breaker", "threshold": 3,
        "container": "grafana", "exit_code": 1, "task_ids": tasks,
    }));
    for t in &tasks {
        write_container_log(
            &env,
            t,
            &[
                "logger=settings level=info msg=\"Starting Grafana\"",
                "logger=sqlstore level=error msg=\"unable to open database file\" error=\"permission denied\"",
            ],
        );
    }
    let (out, doc) = apply_json(&env, &changed, &["--max-task-failures", "5"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let r = grafana_rollout(&doc);
    assert_eq!(r["outcome"], "rolled_back", "{doc}");
    assert_eq!(doc["succeeded"], false);
    assert!(
        err.contains("ECS deployment circuit breaker: tasks failed to start."),
        "{err}"
    );
    assert!(err.contains("ECS rolled the service back to"), "{err}");
    let evidence = &r["evidence"];
    assert_eq!(evidence["failed_tasks"], 3, "{evidence}");
    let stopped = evidence["stopped"].as_array().unwrap();
    assert!(!stopped.is_empty(), "{evidence}");
    assert_eq!(
        stopped[0]["stopped_reason"],
        "Essential container in task exited"
    );
    assert_eq!(stopped[0]["containers"][0]["exit_code"], 1);
    assert!(
        err.contains("unable to open database file"),
        "the stopped container's log lines, read from moto: {err}"
    );
    assert!(err.contains("Apply not complete"), "{err}");
}

#[test]
fn a_crash_loop_is_caught_at_max_task_failures_before_the_breaker() {
    let (env, changed) = applied_then_played(json!({
        "service": "grafana", "scenario": "crash_loop", "container": "grafana",
        "exit_code": 137, "stopped_reason": "Essential container in task exited",
    }));
    let (out, doc) = apply_json(&env, &changed, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let r = grafana_rollout(&doc);
    assert_eq!(r["outcome"], "failed", "{doc}");
    assert_eq!(r["stopped_service_deployment"], Value::Null);
    assert!(
        err.contains("2 tasks of grafana-task:2 failed (--max-task-failures 2; the circuit breaker's threshold is 2)"),
        "{err}"
    );
    assert!(err.contains("container grafana: exit code 137"), "{err}");
    assert!(
        err.contains("ECS goes on with this deployment") && err.contains("--rollback-on-failure"),
        "{err}"
    );
    assert_eq!(calls_named(&env, "StopServiceDeployment"), 0);
}

#[test]
fn rollback_on_failure_stops_a_crash_loop_and_waits_for_the_rollback() {
    let (env, changed) = applied_then_played(json!({
        "service": "grafana", "scenario": "crash_loop", "container": "grafana",
    }));
    let (out, doc) = apply_json(&env, &changed, &["--rollback-on-failure"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rolled-back apply is not a success: {err}"
    );
    let r = grafana_rollout(&doc);
    assert_eq!(r["outcome"], "rolled_back", "{doc}");
    let stopped = r["stopped_service_deployment"].as_str().unwrap();
    assert!(
        stopped.contains(":service-deployment/"),
        "the service deployment ARN, not the deployment id: {stopped}"
    );
    assert_ne!(r["deployment"].as_str().unwrap(), stopped);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("stopped by --rollback-on-failure: rolled back to grafana-task:1"),
        "{doc}"
    );
    assert_eq!(calls_named(&env, "StopServiceDeployment"), 1);
    assert_eq!(
        env.proxy.played_ecs()["grafana"]["rollback_requested"],
        true
    );
    assert!(err.contains("with a rollback"), "{err}");
}

#[test]
fn a_deployment_superseded_by_another_fails_the_apply() {
    let (env, changed) =
        applied_then_played(json!({"service": "grafana", "scenario": "superseded", "polls": 2}));
    let (out, doc) = apply_json(&env, &changed, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(grafana_rollout(&doc)["outcome"], "superseded", "{doc}");
    assert!(err.contains("rollout SUPERSEDED"), "{err}");
    assert!(
        err.contains("replaced") && err.contains("before it completed"),
        "{err}"
    );
}

#[test]
fn unhealthy_targets_are_named_in_the_failure() {
    let (env, changed) = applied_then_played(json!({
        "service": "grafana", "scenario": "unhealthy", "container": "grafana",
    }));
    let (out, doc) = apply_json(&env, &changed, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let r = grafana_rollout(&doc);
    assert_eq!(r["outcome"], "failed", "{doc}");
    let unhealthy = r["evidence"]["unhealthy_targets"].as_array().unwrap();
    assert!(!unhealthy.is_empty(), "{doc}");
    assert!(
        err.contains("unhealthy (Target.FailedHealthChecks"),
        "{err}"
    );
    assert!(err.contains("Task failed ELB health checks"), "{err}");
}

/// The revision the service runs according to moto itself (not through the proxy's play).
fn moto_task_definition(env: &TestEnv) -> String {
    moto_py(
        env,
        "s = ecs.describe_services(cluster=\"monitoring\", services=[\"grafana\"])[\"services\"][0]
print(s[\"taskDefinition\"])
",
        &[],
    )
}

fn rollback_json(env: &TestEnv, stack: &str, extra: &[&str]) -> (Output, Value) {
    deploy_json(env, "rollback", stack, extra)
}

#[test]
fn rollback_returns_to_the_revision_that_completed_and_the_next_plan_warns() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    let changed = env.stack_copy("grafana-next.yaml", |t| {
        t.replacen("grafana/grafana:12.2.0", "grafana/grafana:12.2.1", 1)
    });
    assert_success(&env.deploy(&["apply", "-f", &changed, "--auto-approve"]));
    assert!(moto_task_definition(&env).ends_with("grafana-task:2"));
    // The rollback's own deployment is played through to completion.
    env.proxy
        .play_ecs(json!({"service": "grafana", "scenario": "complete", "polls": 2}));
    env.proxy.clear();
    let (out, doc) = rollback_json(&env, &changed, &["grafana"]);
    let err = stderr(&out);
    assert_success(&out);
    assert_eq!(doc["kind"], "rollback_result");
    assert!(
        doc["targets"][0]["from"]
            .as_str()
            .unwrap()
            .ends_with("grafana-task:2"),
        "{doc}"
    );
    assert!(
        doc["targets"][0]["to"]
            .as_str()
            .unwrap()
            .ends_with("grafana-task:1"),
        "{doc}"
    );
    assert!(
        doc["targets"][0]["completed_at"].is_string(),
        "chosen by deploy's record: {doc}"
    );
    assert_eq!(doc["rollouts"][0]["outcome"], "completed", "{doc}");
    assert_eq!(
        doc["rollouts"][0]["deployment"],
        env.proxy.played_ecs()["grafana"]["deployments"][0]["id"],
        "the rollback follows the deployment its UpdateService started"
    );
    assert!(moto_task_definition(&env).ends_with("grafana-task:1"));
    assert!(err.contains("grafana-task:2 -> grafana-task:1"), "{err}");
    assert!(
        err.contains("the next `deploy plan` re-deploys it"),
        "{err}"
    );
    // Only the service was written: one UpdateService, its tag and the completion record.
    let writes: Vec<String> = env
        .proxy
        .mutating_calls()
        .iter()
        .map(|c| c.action.clone())
        .collect();
    assert_eq!(
        writes,
        ["UpdateService", "TagResource", "TagResource"],
        "{writes:?}"
    );

    let plan = env.deploy(&["plan", "-f", &changed]);
    let text = format!("{}{}", stdout(&plan), stderr(&plan));
    assert!(
        text.contains("ecs_service.grafana runs grafana-task:1, set by `deploy rollback` (from grafana-task:2 at"),
        "{text}"
    );
}

#[test]
fn a_failed_rollout_is_never_the_rollback_target() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    // Revision 2 crash-loops: the apply fails and records nothing.
    env.proxy
        .play_ecs(json!({"service": "grafana", "scenario": "crash_loop", "container": "grafana"}));
    let v2 = env.stack_copy("v2.yaml", |t| {
        t.replacen("grafana/grafana:12.2.0", "grafana/grafana:12.2.1", 1)
    });
    let (out, _) = apply_json(&env, &v2, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Revision 3 completes.
    env.proxy
        .play_ecs(json!({"service": "grafana", "scenario": "complete"}));
    let v3 = env.stack_copy("v3.yaml", |t| {
        t.replacen("grafana/grafana:12.2.0", "grafana/grafana:12.2.2", 1)
    });
    let (out, _) = apply_json(&env, &v3, &[]);
    assert_success(&out);
    env.proxy
        .play_ecs(json!({"service": "grafana", "scenario": "complete"}));
    // The whole stack: Prometheus has no earlier revision and is left as it is.
    let (out, doc) = rollback_json(&env, &v3, &[]);
    assert_success(&out);
    assert!(
        stderr(&out).contains(
            "ecs_service.prometheus: left as it is: prom-task has no other ACTIVE revision"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(doc["targets"].as_array().unwrap().len(), 1, "{doc}");
    let grafana = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["address"] == "ecs_service.grafana")
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(
        grafana["from"]
            .as_str()
            .unwrap()
            .ends_with("grafana-task:3"),
        "{doc}"
    );
    assert!(
        grafana["to"].as_str().unwrap().ends_with("grafana-task:1"),
        "revision 2 failed its rollout and is skipped: {doc}"
    );
}

#[test]
fn rollback_refuses_a_revision_whose_access_point_was_replaced() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    // A new access point (permissions force its replacement) and so a new revision.
    let replaced = env.stack_copy("ap.yaml", |t| {
        t.replacen("permissions: \"0750\"", "permissions: \"0770\"", 1)
    });
    assert_success(&env.deploy(&["apply", "-f", &replaced, "--auto-approve"]));
    env.proxy.clear();
    let out = env.deploy(&["rollback", "-f", &replaced, "grafana", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot roll back, nothing was changed"),
        "{err}"
    );
    assert!(
        err.contains("grafana-task:1 refers to what no longer exists: EFS access point fsap-"),
        "{err}"
    );
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "{:?}",
        env.proxy.mutating_calls()
    );
}

/// The ACTIVE revision numbers of grafana-task, as moto has them.
fn active_grafana_revisions(env: &TestEnv) -> Vec<u32> {
    let listed = moto_py(
        env,
        "arns = ecs.list_task_definitions(familyPrefix=\"grafana-task\", status=\"ACTIVE\")[\"taskDefinitionArns\"]
print(\" \".join(a.rsplit(\":\", 1)[1] for a in arns))
",
        &[],
    );
    let mut revs: Vec<u32> = listed
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    revs.sort();
    revs
}

#[test]
fn revision_hygiene_keeps_exactly_what_it_should_across_seven_applies() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    // Revision 2 is registered by someone else (no ownership tags): never counted or touched.
    moto_py(
        &env,
        "ecs.register_task_definition(family=\"grafana-task\", requiresCompatibilities=[\"FARGATE\"],
    networkMode=\"awsvpc\", cpu=\"256\", memory=\"512\",
    containerDefinitions=[{\"name\": \"grafana\", \"image\": \"grafana/grafana:11.0.0\", \"essential\": True}])
",
        &[],
    );
    let mut last = String::new();
    for n in 1..=6 {
        let image = format!("grafana/grafana:12.2.{n}");
        let stack = env.stack_copy(&format!("v{n}.yaml"), |t| {
            t.replacen("grafana/grafana:12.2.0", &image, 1)
        });
        if n == 6 {
            let plan = env.deploy(&["plan", "-f", &stack]);
            last = stdout(&plan);
        }
        let out = env.deploy(&["apply", "-f", &stack, "--auto-approve"]);
        assert_success(&out);
    }
    // keep_revisions 5: the owned 8, 7, 6, 5, 4 stay; 3 went at the seventh apply; 2 is not
    // this stack's; 1 stays because moto's service still names it in deployments[0] (its
    // UpdateService never replaces that deployment), and a named revision is never removed.
    assert_eq!(active_grafana_revisions(&env), [1, 2, 4, 5, 6, 7, 8]);
    assert!(
        last.contains("Old revisions deregistered once the rollouts complete (keep_revisions):\n  - grafana-task:3\n"),
        "the plan lists them: {last}"
    );
}

#[test]
fn without_a_record_rollback_asks_ecs_which_revisions_completed() {
    let env = TestEnv::new();
    env.seed(false);
    // ECS's lifecycle is played from the create on, so its service deployments are listed.
    env.proxy
        .play_ecs(json!({"service": "grafana", "scenario": "complete"}));
    let (out, _) = apply_json(&env, STACK, &[]);
    assert_success(&out);
    // As after `--no-wait` or Ctrl-C: deploy never saw revision 1 complete.
    moto_py(
        &env,
        "arn = ecs.describe_task_definition(taskDefinition=\"grafana-task:1\")[\"taskDefinition\"][\"taskDefinitionArn\"]
ecs.untag_resource(resourceArn=arn, tagKeys=[\"deploy:rollout-completed\"])
",
        &[],
    );
    // The same play goes on: revision 2's deployment completes too.
    let v2 = env.stack_copy("v2.yaml", |t| {
        t.replacen("grafana/grafana:12.2.0", "grafana/grafana:12.2.1", 1)
    });
    let (out, _) = apply_json(&env, &v2, &[]);
    assert_success(&out);
    env.proxy.clear();
    let (out, doc) = rollback_json(&env, &v2, &["grafana"]);
    assert_success(&out);
    assert!(
        doc["targets"][0]["to"]
            .as_str()
            .unwrap()
            .ends_with("grafana-task:1"),
        "{doc}"
    );
    assert_eq!(doc["targets"][0]["completed_at"], Value::Null, "{doc}");
    assert_eq!(calls_named(&env, "ListServiceDeployments"), 1);
    assert!(stderr(&out).contains("(ECS lists a successful deployment of it)"));
}
