// `deploy status` against moto: a stack whose services run their desired count on their
// revision with healthy targets is healthy (exit 0); one whose tasks never start is not
// (exit 2), and the report says why. moto runs no tasks: `MOTO_ECS_SERVICE_RUNNING` sets the
// running count it reports (1 unless a test says otherwise; it completes the rollout when it
// reaches the desired count), and the test registers Grafana's task in its target group.

mod common;

use common::*;
use serde_json::Value;

const STACK: &str = "stacks/monitoring.yaml";

async fn register_grafana_target(env: &TestEnv) {
    let config = env.sdk_config(REGION).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let groups = elb
        .describe_target_groups()
        .names("monitoring-grafana")
        .send()
        .await
        .expect("Grafana's target group exists after apply");
    let arn = groups.target_groups()[0].target_group_arn().unwrap();
    elb.register_targets()
        .target_group_arn(arn)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("10.20.1.77")
                .port(3000)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_at_its_desired_count_with_healthy_targets_is_healthy() {
    let env = TestEnv::new();
    env.seed(false);
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve"]);
    assert_success(&out);
    register_grafana_target(&env).await;
    env.proxy.clear();

    let out = env.deploy(&["status", "-f", STACK]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("all 2 services healthy"), "{text}");
    assert!(
        text.contains("ecs_service.prometheus  prometheus in cluster monitoring: healthy"),
        "{text}"
    );
    assert!(text.contains("COMPLETED"), "{text}");
    assert!(text.contains("10.20.1.77:3000 healthy"), "{text}");
    assert!(text.contains("logs: /ecs/grafana-task"), "{text}");
    assert!(text.contains("Grafana: https://"), "{text}");
    // Read-only.
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "status wrote: {:?}",
        env.proxy.mutating_calls()
    );

    let out = env.deploy(&["status", "-f", STACK, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    schema_check(&doc).unwrap();
    assert_eq!(doc["healthy"], true);
    assert_eq!(doc["services"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_whose_tasks_never_start_is_unhealthy_and_says_why() {
    // No task ever runs: the rollout stays IN_PROGRESS (apply does not wait for it here).
    let env = TestEnv::with_moto_env(&[("MOTO_ECS_SERVICE_RUNNING", "0")]);
    env.seed(false);
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve", "--no-wait"]);
    assert_success(&out);

    let out = env.deploy(&["status", "-f", STACK]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", stderr(&out));
    assert!(text.contains("2 of 2 services unhealthy"), "{text}");
    assert!(text.contains("UNHEALTHY"), "{text}");
    assert!(text.contains("is IN_PROGRESS"), "{text}");
    assert!(text.contains("0 of 1 tasks running"), "{text}");
    assert!(
        text.contains("0 of 1 healthy targets in monitoring-grafana"),
        "{text}"
    );
    assert!(text.contains("(none registered)"), "{text}");

    let out = env.deploy(&["status", "-f", STACK, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    schema_check(&doc).unwrap();
    assert_eq!(doc["healthy"], false);
    let problems = doc["services"][0]["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
}

#[test]
fn a_stack_never_applied_has_missing_services() {
    let env = TestEnv::new();
    env.seed(false);
    let out = env.deploy(&["status", "-f", STACK]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", stderr(&out));
    assert!(text.contains("the service is MISSING"), "{text}");
}
