//! Snapshot tests of the human plan output, as a reviewer reads it: create, no-op, drift,
//! stack edit (update), replace, delete (destroy) and adoption. Random moto ids and content
//! hashes are redacted so the snapshots hold only what the tool decides.

mod common;

use common::redact::redact;
use common::{assert_success, stdout, TestEnv};

const STACK: &str = "stacks/monitoring.yaml";

fn plan(env: &TestEnv, args: &[&str]) -> String {
    let out = env.deploy(args);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        common::stderr(&out)
    );
    redact(&stdout(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_output_for_every_action() {
    let env = TestEnv::new();
    env.seed(false);
    insta::assert_snapshot!("create", plan(&env, &["plan", "-f", STACK]));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    insta::assert_snapshot!("no_op", plan(&env, &["plan", "-f", STACK]));

    env.set_log_retention("/ecs/prom-task", 7).await;
    insta::assert_snapshot!("drift", plan(&env, &["plan", "-f", STACK]));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));

    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace("retention_days: 30", "retention_days: 60")
            .replace("scrape_interval: 15s", "scrape_interval: 30s")
    });
    insta::assert_snapshot!("update", plan(&env, &["plan", "-f", &edited]));
    let replaced = env.stack_copy("replaced.yaml", |t| {
        t.replace(
            "description: Prometheus and Alertmanager; 9090 and 9093 only from Grafana",
            "description: Prometheus, private",
        )
    });
    insta::assert_snapshot!("replace", plan(&env, &["plan", "-f", &replaced]));
    insta::assert_snapshot!("delete", plan(&env, &["plan", "-f", STACK, "--destroy"]));
}

#[test]
fn plan_output_for_conflicts_and_adoption() {
    let env = TestEnv::new();
    env.seed(true);
    insta::assert_snapshot!("conflict", plan(&env, &["plan", "-f", STACK]));
    let file = env.stack_copy("adopt.yaml", |t| {
        t + "\nimports:\n  - address: log_group.prometheus\n    id: /ecs/prom-task\n  - address: task_definition.prometheus\n    id: prom-task\n"
    });
    insta::assert_snapshot!("adoption", plan(&env, &["plan", "-f", &file]));
}
