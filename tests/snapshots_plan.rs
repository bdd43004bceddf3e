//! Snapshot tests of the human plan output, as a reviewer reads it: create, no-op, drift,
//! stack edit (update), replace, delete (destroy) and adoption. Random moto ids and content
//! hashes are redacted so the snapshots hold only what the tool decides.

mod common;

use common::{assert_success, stdout, TestEnv};

const STACK: &str = "stacks/monitoring.yaml";

/// Replaces ids that moto makes up (sg-…, subnet-…, vpc-…, fs-…, fsap-…, Cloud Map and ELBv2
/// ids) and content hashes with stable placeholders.
fn redact(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    'scan: while !rest.is_empty() {
        // EC2 and EFS ids (hex), Cloud Map ids (lower-case letters and digits).
        let hex = |c: char| c.is_ascii_hexdigit();
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ids: [(&str, &dyn Fn(char) -> bool); 7] = [
            ("sg-", &hex),
            ("subnet-", &hex),
            ("vpc-", &hex),
            ("fsap-", &hex),
            ("fs-", &hex),
            ("[ns-", &alnum),
            ("/srv-", &alnum),
        ];
        for (prefix, is_id) in ids {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let n = tail.chars().take_while(|c| is_id(*c)).count();
                if n >= 8 {
                    out.push_str(&format!("{prefix}[id]"));
                    rest = &tail[n..];
                    continue 'scan;
                }
            }
        }
        // ELBv2 ARNs: the load balancer's, target group's, listener's and rule's ids.
        if let Some(tail) = rest.strip_prefix('/') {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 16 {
                out.push_str("/[id]");
                rest = &tail[n..];
                continue;
            }
        }
        // Secrets Manager appends six random characters to a secret's name in its ARN.
        if let Some(tail) = rest.strip_prefix(":secret:") {
            let n = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c))
                .count();
            let token = &tail[..n];
            out.push_str(":secret:");
            match token.len().checked_sub(7).map(|i| token.split_at(i)) {
                Some((name, suffix)) if suffix.starts_with('-') => {
                    out.push_str(&format!("{name}-[random]"));
                }
                _ => out.push_str(token),
            }
            rest = &tail[n..];
            continue;
        }
        if let Some(tail) = rest.strip_prefix('@') {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 32 {
                out.push_str("@[hash]");
                rest = &tail[n..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

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

    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.sdk_config(common::REGION).await);
    logs.put_retention_policy()
        .log_group_name("/ecs/prom-task")
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
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
