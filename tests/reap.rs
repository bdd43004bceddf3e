// Destroy without the stack file, against moto through the recording proxy: `destroy
// --expired` removes exactly the expired, unprotected environments (counted at the proxy and
// in moto afterwards), run from a directory that holds no stack file; protected and unexpired
// ones are untouched; `destroy --stack S --env E` removes one, keeping its data unless it was
// disposable; `--dry-run` lists what would go and changes nothing. The environments are small
// stacks of their own (a log group, a security group and a generated secret each).

mod common;

use common::{assert_failure, assert_success, stderr, stdout, TestEnv, REGION};
use std::path::Path;

/// A small stack for environment `env`, its names made from it.
fn small_stack(dir: &Path, env: &str, extra: &str) -> String {
    let text = format!(
        "stack: small\nenvironment: {env}\nregion: us-west-2\n{extra}\
lookups:\n  vpc:\n    tags: {{ Name: showcase }}\n  subnets:\n    tags: {{ tier: private }}\n  \
load_balancer:\n    name: application-load-balancer\n\
log_groups:\n  app:\n    name: /ecs/small-{env}\n    retention_days: 30\n\
security_groups:\n  app:\n    name: small-{env}\n    description: the app of {env}\n\
secrets:\n  token:\n    name: small/{env}/token\n    description: a token\n    \
generate: {{ length: 20, exclude_punctuation: true }}\n"
    );
    let path = dir.join(format!("small-{env}.yaml"));
    std::fs::write(&path, text).expect("write the stack");
    path.to_string_lossy().into_owned()
}

struct Live {
    log_groups: Vec<String>,
    groups: Vec<String>,
    secrets: Vec<String>,
}

/// What exists in moto (read directly, unrecorded).
async fn live(env: &TestEnv) -> Live {
    let conf = env.sdk_config(REGION).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf)
        .describe_log_groups()
        .log_group_name_prefix("/ecs/small-")
        .send()
        .await
        .unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&conf)
        .describe_security_groups()
        .send()
        .await
        .unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&conf)
        .list_secrets()
        .send()
        .await
        .unwrap();
    let mut out = Live {
        log_groups: logs
            .log_groups()
            .iter()
            .filter_map(|g| g.log_group_name().map(String::from))
            .collect(),
        groups: ec2
            .security_groups()
            .iter()
            .filter_map(|g| g.group_name().map(String::from))
            .filter(|n| n.starts_with("small-"))
            .collect(),
        secrets: secrets
            .secret_list()
            .iter()
            .filter_map(|s| s.name().map(String::from))
            .filter(|n| n.starts_with("small/"))
            .collect(),
    };
    out.log_groups.sort();
    out.groups.sort();
    out.secrets.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_expired_removes_exactly_the_expired_unprotected_environments_without_a_stack_file()
{
    let env = TestEnv::new();
    env.seed(false);
    let dir = env.path();
    // gone: expires, disposable. kept: expires but protected. fresh: no expiry.
    let gone = small_stack(dir, "gone", "disposable: true\n");
    let kept = small_stack(dir, "kept", "protected: true\nttl: 1s\n");
    let fresh = small_stack(dir, "fresh", "");
    assert_success(&env.deploy(&["apply", "-f", &gone, "--auto-approve", "--ttl", "1s"]));
    assert_success(&env.deploy(&["apply", "-f", &kept, "--auto-approve"]));
    assert_success(&env.deploy(&["apply", "-f", &fresh, "--auto-approve"]));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let before = live(&env).await;
    assert_eq!(
        before.log_groups,
        ["/ecs/small-fresh", "/ecs/small-gone", "/ecs/small-kept"]
    );

    // From a directory without any stack file.
    let empty = tempfile::tempdir().unwrap();
    let region = ["--region", REGION];
    env.proxy.clear();
    let dry = env.deploy_in(
        empty.path(),
        &[&["destroy", "--expired", "--dry-run"][..], &region].concat(),
        &[],
    );
    assert_success(&dry);
    let listed = stdout(&dry);
    for what in [
        "log_group",
        "/ecs/small-gone",
        "small-gone",
        "small/gone/token",
    ] {
        assert!(listed.contains(what), "{what} not listed:\n{listed}");
    }
    assert!(
        !listed.contains("small-kept") && !listed.contains("small-fresh"),
        "{listed}"
    );
    assert!(
        stderr(&dry).contains("small/kept: expired at"),
        "{}",
        stderr(&dry)
    );
    let calls = env.proxy.calls();
    assert!(
        calls.iter().all(|c| !c.is_mutating() && !c.bookkeeping),
        "a dry run wrote: {calls:?}"
    );
    assert_eq!(live(&env).await.log_groups, before.log_groups);

    env.proxy.clear();
    let out = env.deploy_in(
        empty.path(),
        &[&["destroy", "--expired"][..], &region].concat(),
        &[],
    );
    assert_success(&out);
    let writes: Vec<String> = env
        .proxy
        .mutating_calls()
        .iter()
        .map(|c| format!("{}:{}", c.service, c.action))
        .collect();
    let mut sorted = writes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "ec2:DeleteSecurityGroup",
            "logs:DeleteLogGroup",
            "secretsmanager:DeleteSecret"
        ],
        "exactly the expired environment's resources are deleted"
    );
    let after = live(&env).await;
    assert_eq!(after.log_groups, ["/ecs/small-fresh", "/ecs/small-kept"]);
    assert_eq!(after.groups, ["small-fresh", "small-kept"]);
    assert_eq!(after.secrets, ["small/fresh/token", "small/kept/token"]);
    // Its record went with it: a second reap finds nothing.
    let again = env.deploy_in(
        empty.path(),
        &[&["destroy", "--expired"][..], &region].concat(),
        &[],
    );
    assert_success(&again);
    assert!(
        stderr(&again).contains("No expired environment"),
        "{}",
        stderr(&again)
    );

    // One environment by name, still without its file: protected is refused…
    let refused = env.deploy_in(
        empty.path(),
        &[
            &["destroy", "--stack", "small", "--env", "kept"][..],
            &region,
        ]
        .concat(),
        &[],
    );
    assert_failure(&refused);
    assert!(
        stderr(&refused).contains("is protected"),
        "{}",
        stderr(&refused)
    );
    // …an unprotected one goes, keeping its data (it was not disposable).
    let out = env.deploy_in(
        empty.path(),
        &[
            &["destroy", "--stack", "small", "--env", "fresh"][..],
            &region,
        ]
        .concat(),
        &[],
    );
    assert_success(&out);
    let after = live(&env).await;
    assert_eq!(after.log_groups, ["/ecs/small-kept"]);
    assert_eq!(after.groups, ["small-kept"]);
    assert_eq!(after.secrets, ["small/fresh/token", "small/kept/token"]);
    // The protected one is whole and unchanged.
    env.proxy.clear();
    let plan = env.deploy(&["plan", "-f", &kept]);
    assert_success(&plan);
    assert!(stdout(&plan).contains("No changes."), "{}", stdout(&plan));
}

/// The reference stack's every kind (services, listener rules, Cloud Map, EFS, roles, task
/// definition revisions), destroyed by name without its file: afterwards a destroy with the
/// file finds nothing left to delete.
#[tokio::test(flavor = "multi_thread")]
async fn the_reference_stack_is_destroyed_without_its_file_down_to_nothing() {
    let env = TestEnv::new();
    env.seed(false);
    let file = env.stack_copy("preview.yaml", |t| {
        t.replace(
            "environment: production",
            "environment: preview\ndisposable: true",
        )
    });
    assert_success(&env.deploy(&["apply", "-f", &file, "--auto-approve"]));
    let empty = tempfile::tempdir().unwrap();
    let args = [
        "destroy",
        "--stack",
        "monitoring",
        "--env",
        "preview",
        "--region",
        REGION,
    ];
    env.proxy.clear();
    let dry = env.deploy_in(empty.path(), &[&args[..], &["--dry-run"]].concat(), &[]);
    assert_success(&dry);
    assert!(env.proxy.mutating_calls().is_empty());
    let out = env.deploy_in(empty.path(), &args, &[]);
    assert_success(&out);
    // Each deletion the dry run listed was made.
    let planned = stdout(&dry);
    for kind in [
        "ecs_service",
        "listener_rule",
        "service_discovery_service",
        "service_discovery_namespace",
        "efs_file_system",
        "iam_role",
        "task_definition",
        "secret",
    ] {
        assert!(planned.contains(kind), "{kind} not planned:\n{planned}");
    }
    env.proxy.clear();
    let again = env.deploy(&["destroy", "-f", &file, "--auto-approve"]);
    assert_success(&again);
    assert_eq!(
        env.proxy.mutating_calls(),
        vec![],
        "left behind:\n{}",
        stdout(&again)
    );
}

/// `deploy ls --format json` from a directory without a stack file.
fn ls(env: &TestEnv, extra: &[&str]) -> serde_json::Value {
    let empty = tempfile::tempdir().unwrap();
    let args = [&["ls", "--format", "json", "--region", REGION][..], extra].concat();
    let out = env.deploy_in(empty.path(), &args, &[]);
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("ls prints JSON");
    common::schema_check(&doc).expect("the inventory document follows the schema");
    doc
}

fn environment<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {doc:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ls_lists_every_environment_with_its_counts_expiry_lock_and_cost() {
    let env = TestEnv::new();
    env.seed(false);
    // The reference stack: its resources by kind, as the first plan creates them.
    let file = env.stack_copy("preview.yaml", |t| {
        t.replace("environment: production", "environment: preview")
    });
    let plan = env.deploy(&["plan", "-f", &file, "--format", "json"]);
    assert_success(&plan);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let mut expected = std::collections::BTreeMap::<String, i64>::new();
    for c in plan["changes"].as_array().unwrap() {
        let kind = c["address"].as_str().unwrap().split('.').next().unwrap();
        // Mount targets are not taggable: ls counts what carries the ownership tags.
        if kind != "efs_mount_targets" {
            *expected.entry(kind.to_string()).or_default() += 1;
        }
    }
    assert_success(&env.deploy(&["apply", "-f", &file, "--auto-approve", "--ttl", "3d"]));
    let dir = env.path();
    let small = small_stack(dir, "one", "");
    assert_success(&env.deploy(&["apply", "-f", &small, "--auto-approve", "--ttl", "1s"]));
    std::thread::sleep(std::time::Duration::from_secs(2));
    // One environment locked by someone else.
    let aws = env.moto.aws().await;
    let opts = deploy::lock::LockOptions {
        timeout: std::time::Duration::ZERO,
        stale_after: std::time::Duration::from_secs(120),
    };
    let guard = deploy::lock::take_for(&aws, "small", "one", deploy::lock::Operation::Apply, &opts)
        .await
        .unwrap();

    env.proxy.clear();
    let doc = ls(&env, &[]);
    eprintln!(
        "ls with the reference stack and a small one: {} calls",
        env.proxy.calls().len()
    );
    let preview = environment(&doc, "preview");
    let counted: std::collections::BTreeMap<String, i64> =
        serde_json::from_value(preview["resources"].clone()).unwrap();
    assert_eq!(counted, expected);
    assert_eq!(preview["stack"], "monitoring");
    assert_eq!(preview["expired"], false);
    assert!(preview["expires_at"].as_str().unwrap().ends_with("UTC"));
    assert!(preview["created_by"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:"));
    assert_eq!(preview["locked_by"], serde_json::Value::Null);
    // Two services of the reference stack, one task each (0.5 vCPU / 1 GB and
    // 0.25 vCPU / 0.5 GB, see stacks/monitoring.yaml) in us-west-2.
    assert_eq!(preview["tasks"], 2);
    assert!(preview["monthly_usd"].as_f64().unwrap() > 0.0);
    let one = environment(&doc, "one");
    assert_eq!(
        one["resources"],
        serde_json::json!({"log_group": 1, "secret": 1, "security_group": 1})
    );
    assert_eq!(one["expired"], true);
    assert!(one["locked_by"]
        .as_str()
        .unwrap()
        .contains("apply by arn:aws:"));
    assert_eq!(one["monthly_usd"], 0.0);
    let expired = ls(&env, &["--expired"]);
    let names: Vec<&str> = expired["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one"]);
    guard.release().await.unwrap();
}

/// The AWS calls `ls` makes for 1 and for 10 environments (small stacks: a log group, a
/// security group and a generated secret each), counted at the proxy.
#[tokio::test(flavor = "multi_thread")]
async fn the_calls_ls_makes_for_1_and_for_10_environments() {
    let env = TestEnv::new();
    env.seed(false);
    let mut counts = Vec::new();
    for n in 1..=10 {
        let file = small_stack(env.path(), &format!("e{n:02}"), "");
        assert_success(&env.deploy(&["apply", "-f", &file, "--auto-approve"]));
        if n == 1 || n == 10 {
            env.proxy.clear();
            let doc = ls(&env, &[]);
            assert_eq!(doc["environments"].as_array().unwrap().len(), n);
            let mut by_action = std::collections::BTreeMap::<String, usize>::new();
            for c in env.proxy.calls() {
                assert!(!c.is_mutating() && !c.bookkeeping, "ls wrote: {c}");
                *by_action
                    .entry(format!("{}:{}", c.service, c.action))
                    .or_default() += 1;
            }
            let total: usize = by_action.values().sum();
            eprintln!("ls with {n} environment(s): {total} calls: {by_action:?}");
            counts.push((n, total, by_action));
        }
    }
    // No call per environment for these kinds: one Scan of the table, the tagging API's
    // pages (moto answers 30 resources in two), and the list calls of roles, rules and Cloud
    // Map (roles, Cloud Map resources and ECS services, of which these stacks have none,
    // would be read one by one).
    let without_tagging = |m: &std::collections::BTreeMap<String, usize>| {
        let mut m = m.clone();
        m.remove("tagging:GetResources");
        m
    };
    assert_eq!(without_tagging(&counts[0].2), without_tagging(&counts[1].2));
    assert_eq!((counts[0].1, counts[1].1), (9, 10), "{counts:?}");
}
