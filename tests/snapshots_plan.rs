//! Snapshot tests of the human plan output, as a reviewer reads it: create, no-op, drift,
//! stack edit (update), replace, delete (destroy) and adoption. Random moto ids and content
//! hashes are redacted so the snapshots hold only what the tool decides.

mod common;

use common::{assert_success, stdout, TestEnv};

const STACK: &str = "stacks/monitoring.yaml";

/// Replaces ids that moto makes up (sg-…, subnet-…, vpc-…, fs-…, fsap-…, Cloud Map and ELBv2
/// ids) and content hashes with numbered placeholders, in order of first appearance: the
/// same id is the same `[idN]` wherever it appears and two different ids never share one, so
/// a rule pointing at the wrong group or a revision that kept its hash still shows.
fn redact(text: &str) -> String {
    let mut seen = Numbering::default();
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
                    out.push_str(prefix);
                    out.push_str(&seen.id(&tail[..n]));
                    rest = &tail[n..];
                    continue 'scan;
                }
            }
        }
        // ELBv2 ARNs: the load balancer's, target group's, listener's and rule's ids.
        if let Some(tail) = rest.strip_prefix('/') {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 16 {
                out.push('/');
                out.push_str(&seen.id(&tail[..n]));
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
                    out.push_str(&format!("{name}-{}", seen.id(suffix)));
                }
                _ => out.push_str(token),
            }
            rest = &tail[n..];
            continue;
        }
        if let Some(tail) = rest.strip_prefix('@') {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 32 {
                out.push('@');
                out.push_str(&seen.hash(&tail[..n]));
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

/// Placeholders numbered in order of first appearance, one series for ids, one for hashes.
#[derive(Default)]
struct Numbering {
    ids: Vec<String>,
    hashes: Vec<String>,
}

impl Numbering {
    fn id(&mut self, id: &str) -> String {
        format!("[id{}]", Self::number(&mut self.ids, id))
    }

    fn hash(&mut self, hash: &str) -> String {
        format!("[hash{}]", Self::number(&mut self.hashes, hash))
    }

    fn number(seen: &mut Vec<String>, value: &str) -> usize {
        match seen.iter().position(|s| s == value) {
            Some(i) => i + 1,
            None => {
                seen.push(value.to_string());
                seen.len()
            }
        }
    }
}

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

    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.sdk_config(common::REGION).await);
    logs.put_retention_policy()
        .log_group_name("/ecs/prom-task")
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    insta::assert_snapshot!("drift", plan(&env, &["plan", "-f", STACK], 0));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));

    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace("retention_days: 30", "retention_days: 60")
            .replace("scrape_interval: 15s", "scrape_interval: 30s")
    });
    insta::assert_snapshot!("update", plan(&env, &["plan", "-f", &edited], 0));
    let replaced = env.stack_copy("replaced.yaml", |t| {
        t.replace(
            "description: Prometheus and Alertmanager; 9090 and 9093 only from Grafana",
            "description: Prometheus, private",
        )
    });
    insta::assert_snapshot!("replace", plan(&env, &["plan", "-f", &replaced], 0));
    insta::assert_snapshot!("delete", plan(&env, &["plan", "-f", STACK, "--destroy"], 0));
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
