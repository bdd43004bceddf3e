//! Snapshot tests of the human plan output, as a reviewer reads it: create, no-op, drift,
//! stack edit (update), replace, delete (destroy) and adoption. Random moto ids and content
//! hashes are replaced by numbered placeholders so the snapshots hold only what the tool
//! decides, and still show a rule pointing at the wrong group or a revision that kept its hash.

mod common;

use common::redact::redact;
use common::{assert_success, stdout, TestEnv};

const STACK: &str = "stacks/monitoring.yaml";

#[test]
fn placeholders_tell_ids_and_hashes_apart() {
    let a = "sg-0123456789abcdef0";
    let b = "sg-0fedcba9876543210";
    let h1 = format!("@{}", "a".repeat(32));
    let h2 = format!("@{}", "b".repeat(32));
    assert_eq!(
        redact(&format!(
            "{a} {b} {a} td{h1} td{h2} td{h1} :secret:x/y-AbC123 :secret:x/y-AbC123"
        )),
        "sg-[id1] sg-[id2] sg-[id1] td@[hash1] td@[hash2] td@[hash1] :secret:x/y-[id3] \
         :secret:x/y-[id3]"
    );
}

/// The plan's human output, redacted, after checking the command's exit code.
fn plan(env: &TestEnv, args: &[&str], exit_code: i32) -> String {
    let out = env.deploy(args);
    assert_eq!(
        out.status.code(),
        Some(exit_code),
        "deploy {}\n{}{}",
        args.join(" "),
        stdout(&out),
        common::stderr(&out)
    );
    redact(&stdout(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_output_for_every_action() {
    let env = TestEnv::new();
    env.seed(false);
    insta::assert_snapshot!("create", plan(&env, &["plan", "-f", STACK], 0));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    insta::assert_snapshot!("no_op", plan(&env, &["plan", "-f", STACK], 0));

    env.set_log_retention("/ecs/prom-task", 7).await;
    insta::assert_snapshot!("drift", plan(&env, &["plan", "-f", STACK], 0));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));

    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace("retention_days: 30", "retention_days: 60")
            // A reload (the file travels in the config bucket) ...
            .replace("scrape_interval: 15s", "scrape_interval: 30s")
            // ... and a new revision with its restart (an argument).
            .replace(
                "--storage.tsdb.retention.time=15d",
                "--storage.tsdb.retention.time=14d",
            )
    });
    insta::assert_snapshot!("update", plan(&env, &["plan", "-f", &edited], 0));
    let replaced = env.stack_copy("replaced.yaml", |t| {
        t.replace(
            "description: Prometheus and Alertmanager; 9090 and 9093 only from Grafana",
            "description: Prometheus, private",
        )
    });
    insta::assert_snapshot!("replace", plan(&env, &["plan", "-f", &replaced], 0));
    let unprotected = env.unprotected_stack();
    insta::assert_snapshot!(
        "delete",
        plan(&env, &["plan", "-f", &unprotected, "--destroy"], 0)
    );
}

#[test]
fn plan_output_for_conflicts_and_adoption() {
    let env = TestEnv::new();
    env.seed(true);
    // Conflicts refuse the plan: exit 1.
    insta::assert_snapshot!("conflict", plan(&env, &["plan", "-f", STACK], 1));
    let file = env.stack_copy("adopt.yaml", |t| {
        t + "\nimports:\n  - address: log_group.prometheus\n    id: /ecs/prom-task\n  - address: task_definition.prometheus\n    id: prom-task\n"
    });
    insta::assert_snapshot!("adoption", plan(&env, &["plan", "-f", &file], 0));
}
