//! Environments of one stack side by side (`--env`), the protection of an environment and the
//! confirmation apply and destroy ask for: the built binary against moto, every AWS call
//! counted by the recording proxy. Prompts are answered on a pseudo-terminal
//! (tests/fixtures/pty_run.py, Python's standard pty module).

mod common;

use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_resourcegroupstagging as tagging;
use aws_sdk_servicediscovery as sd;
use common::{assert_failure, assert_success, fixtures_dir, python_path, stderr, stdout, TestEnv};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const STACK: &str = "stacks/monitoring.yaml";
const REGION: &str = "us-west-2";
const PR: &str = "pr-123";

fn plan_says_no_changes(env: &TestEnv, args: &[&str]) {
    env.proxy.clear();
    let mut all = vec!["plan", "-f", STACK];
    all.extend_from_slice(args);
    let out = env.deploy(&all);
    assert_success(&out);
    assert!(
        stdout(&out).contains("No changes."),
        "expected an empty plan for {args:?}, got:\n{}",
        stdout(&out)
    );
    assert!(env.proxy.mutating_calls().is_empty());
}

/// Every tagged resource of the stack by its `deploy:environment` tag (ARNs), as the tagging
/// API lists them, plus the listener rules and Cloud Map services (which it does not list).
async fn resources_by_environment(
    env: &TestEnv,
    seeded: &Value,
) -> BTreeMap<String, BTreeSet<String>> {
    let conf = env.sdk_config(REGION).await;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let pages: Vec<_> = tagging::Client::new(&conf)
        .get_resources()
        .tag_filters(
            tagging::types::TagFilter::builder()
                .key("deploy:stack")
                .values("monitoring")
                .build(),
        )
        .into_paginator()
        .send()
        .try_collect()
        .await
        .unwrap();
    // Each resource under the value of its `deploy:environment` tag.
    let mut add = |tags: Vec<(&str, &str)>, what: String| {
        let env = tags
            .into_iter()
            .find(|(k, _)| *k == "deploy:environment")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        out.entry(env).or_default().insert(what);
    };
    for m in pages.iter().flat_map(|p| p.resource_tag_mapping_list()) {
        let tags = m.tags().iter().map(|t| (t.key(), t.value())).collect();
        add(tags, m.resource_arn().unwrap().to_string());
    }
    let elbc = elb::Client::new(&conf);
    let rules = elbc
        .describe_rules()
        .listener_arn(seeded["https_listener_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    for r in rules
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
    {
        let arn = r.rule_arn().unwrap();
        let described = elbc
            .describe_tags()
            .resource_arns(arn)
            .send()
            .await
            .unwrap();
        let tags = described.tag_descriptions()[0]
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        add(tags, format!("priority {} {arn}", r.priority().unwrap()));
    }
    let sdc = sd::Client::new(&conf);
    for s in sdc.list_services().send().await.unwrap().services() {
        let arn = s.arn().unwrap();
        let listed = sdc
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        let tags = listed.tags().iter().map(|t| (t.key(), t.value())).collect();
        add(tags, format!("{} {arn}", s.name().unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn two_environments_live_side_by_side_and_share_nothing() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    let out = env.deploy(&["apply", "-f", STACK, "--env", PR, "--auto-approve"]);
    assert_success(&out);
    plan_says_no_changes(&env, &[]);
    plan_says_no_changes(&env, &["--env", PR]);
    plan_says_no_changes(&env, &["--env", "production"]);

    let by_env = resources_by_environment(&env, &seeded).await;
    let (prod, pr) = (&by_env["production"], &by_env[PR]);
    assert!(
        prod.intersection(pr).next().is_none(),
        "shared: {by_env:#?}"
    );
    // The same resources, each in its own copy: as many of each kind.
    assert_eq!(prod.len(), pr.len(), "{by_env:#?}");
    assert!(pr
        .iter()
        .any(|a| a.contains(":targetgroup/monitoring-grafana-pr-123/")));
    assert!(pr.iter().any(|a| a.starts_with("prometheus-pr-123 ")));
    assert!(pr
        .iter()
        .any(|a| a.contains(":secret:monitoring/pr-123/grafana/admin-password")));
    assert!(prod.iter().any(|a| a.starts_with("priority 100 ")));
    // The pr environment's rule has its own priority and its own host.
    let pr_rule = pr.iter().find(|a| a.starts_with("priority ")).unwrap();
    assert!(!pr_rule.starts_with("priority 100 "), "{pr_rule}");

    // Both services register in the one namespace, which belongs to production.
    let conf = env.sdk_config(REGION).await;
    let namespaces = sd::Client::new(&conf)
        .list_namespaces()
        .send()
        .await
        .unwrap();
    assert_eq!(namespaces.namespaces().len(), 1);

    // Destroying the pr environment leaves production as it was.
    env.proxy.clear();
    let out = env.deploy(&["destroy", "-f", STACK, "--env", PR, "--auto-approve"]);
    assert_success(&out);
    plan_says_no_changes(&env, &[]);
    // Nothing of the pr environment is left to destroy, and production is as it was.
    plan_says_no_changes(&env, &["--env", PR, "--destroy"]);
    let by_env = resources_by_environment(&env, &seeded).await;
    // (moto's tagging API goes on listing deleted ECS services, clusters and revisions.)
    let left: Vec<&String> = by_env
        .get(PR)
        .into_iter()
        .flatten()
        .filter(|a| !a.starts_with("arn:aws:ecs:"))
        .collect();
    assert!(left.is_empty(), "{left:#?}");
    assert_eq!(&by_env["production"], prod);
}

#[test]
fn validate_refuses_environments_whose_names_would_collide_without_a_call() {
    let env = TestEnv::new();
    env.proxy.clear();
    // `efs` would name Grafana's security group monitoring-grafana-efs: production's EFS group.
    let out = env.deploy(&["validate", "-f", STACK, "--env", "efs"]);
    assert_failure(&out);
    let text = stderr(&out);
    assert!(
        text.contains("monitoring-grafana-efs") && text.contains("production"),
        "{text}"
    );
    // A long name is cut within every limit (unit tests in spec::environments check each).
    let long = "feature-a-very-long-branch-name-for-test";
    let out = env.deploy(&["validate", "-f", STACK, "--env", long]);
    assert_success(&out);
    assert!(stdout(&out).contains(long), "{}", stdout(&out));
    // And a name that is not one.
    assert_failure(&env.deploy(&["validate", "-f", STACK, "--env", "Not_A_Name"]));
    // Another environment's policy can read the namespace it registers in but does not own.
    let out = env.deploy(&["policy", "-f", STACK, "--env", PR, "--role", "ci"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("servicediscovery:ListNamespaces"),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.proxy.calls().len(), 0, "validate made AWS calls");
}

#[test]
fn a_long_environment_is_applied_within_every_limit() {
    let env = TestEnv::new();
    env.seed(false);
    let long = "feature-a-very-long-branch-name-for-test";
    assert_eq!(long.len(), 40);
    // The stack's own environment owns the Cloud Map namespace the others register in.
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--env", long, "--auto-approve"]));
    plan_says_no_changes(&env, &["--env", long]);
}

#[test]
fn a_protected_environment_refuses_destroy_and_delete_data_before_any_call() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    env.proxy.clear();
    for args in [
        vec!["destroy", "-f", STACK, "--auto-approve"],
        vec![
            "destroy",
            "-f",
            STACK,
            "--env",
            "production",
            "--auto-approve",
        ],
        vec!["apply", "-f", STACK, "--delete-data", "--auto-approve"],
    ] {
        let out = env.deploy(&args);
        assert_failure(&out);
        assert!(
            stderr(&out).contains("is protected"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("protected: false"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(env.proxy.calls().len(), 0);
    // A plan of its destroy shows it and says it would be refused.
    let out = env.deploy(&["plan", "-f", STACK, "--destroy"]);
    assert_failure(&out);
    assert!(stderr(&out).contains("is protected"), "{}", stderr(&out));
    assert!(env.proxy.mutating_calls().is_empty());
}

#[test]
fn without_a_terminal_apply_and_destroy_refuse_unless_auto_approved() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", STACK, "--env", PR]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert!(env.proxy.mutating_calls().is_empty());
    assert_success(&env.deploy(&["apply", "-f", STACK, "--env", PR, "--auto-approve"]));
    env.proxy.clear();
    let out = env.deploy(&["destroy", "-f", STACK, "--env", PR]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(env.proxy.mutating_calls().is_empty());
    plan_says_no_changes(&env, &["--env", PR]);
}

/// `deploy ARGS` on a pseudo-terminal: answers `answer` once `prompt` shows.
fn on_terminal(env: &TestEnv, args: &[&str], prompt: &str, answer: &str) -> std::process::Output {
    let inner = env.deploy_command(args);
    let mut cmd = Command::new(python_path());
    cmd.arg(fixtures_dir().join("pty_run.py"))
        .args([prompt, answer, "--"])
        .arg(inner.get_program())
        .args(inner.get_args());
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().expect("run tests/fixtures/pty_run.py")
}

#[test]
fn prompts_on_a_terminal_change_nothing_unless_confirmed() {
    let env = TestEnv::new();
    env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    let apply = ["apply", "-f", STACK, "--env", PR];
    let asked = "Only 'yes' will be accepted";

    env.proxy.clear();
    let out = on_terminal(&env, &apply, asked, "no");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    for said in [
        "Account 123456789012",
        "region us-west-2",
        "stack monitoring",
        "environment pr-123",
        "to add",
    ] {
        assert!(text.contains(said), "no {said:?} in:\n{text}");
    }
    assert!(text.contains("not confirmed"), "{text}");
    assert!(env.proxy.mutating_calls().is_empty());

    let out = on_terminal(&env, &apply, asked, "yes");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    plan_says_no_changes(&env, &["--env", PR]);

    // Destroy wants the environment's name typed: `yes` is not it.
    let destroy = ["destroy", "-f", STACK, "--env", PR];
    let typed = "Type the environment's name";
    env.proxy.clear();
    let out = on_terminal(&env, &destroy, typed, "yes");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(env.proxy.mutating_calls().is_empty());
    let out = on_terminal(&env, &destroy, typed, PR);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = env.deploy(&["plan", "-f", STACK, "--env", PR]);
    assert!(!stdout(&out).contains("No changes."), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_no_certificate_of_the_listener_covers_is_said() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    // The stack's own host is as written: its plan reads no certificate.
    env.proxy.clear();
    assert_success(&env.deploy(&["plan", "-f", STACK]));
    assert!(
        !env.proxy.calls().iter().any(|c| c.service == "acm"),
        "{:?}",
        env.proxy.calls()
    );
    // The seed's certificate is for grafana.showcase.example.com only.
    let out = env.deploy(&["plan", "-f", STACK, "--env", "pr-7"]);
    assert_success(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("host grafana-pr-7.showcase.example.com: no certificate of the HTTPS listener covers it")
            && text.contains("grafana.showcase.example.com)"),
        "{text}"
    );
    // A wildcard certificate on the listener covers every environment's host.
    let conf = env.sdk_config(REGION).await;
    let wildcard = aws_sdk_acm::Client::new(&conf)
        .request_certificate()
        .domain_name("*.showcase.example.com")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    elb::Client::new(&conf)
        .add_listener_certificates()
        .listener_arn(seeded["https_listener_arn"].as_str().unwrap())
        .certificates(
            elb::types::Certificate::builder()
                .certificate_arn(wildcard)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = env.deploy(&["plan", "-f", STACK, "--env", "pr-7"]);
    assert_success(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("no certificate"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_priority_held_by_another_rule_moves_along_the_environments_sequence() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    let derived = deploy::spec::environments::rule_priority(100, "pr-5");
    // A rule made by hand holds the priority pr-5 would start at.
    env.handmade_rule(&seeded, derived as i32).await;
    assert_success(&env.deploy(&["apply", "-f", STACK, "--env", "pr-5", "--auto-approve"]));
    plan_says_no_changes(&env, &["--env", "pr-5"]);
    let by_env = resources_by_environment(&env, &seeded).await;
    let moved = deploy::spec::environments::next_priority(derived);
    assert!(
        by_env["pr-5"]
            .iter()
            .any(|a| a.starts_with(&format!("priority {moved} "))),
        "{by_env:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_is_for_the_environment_it_was_made_in() {
    let env = TestEnv::new();
    env.seed(false);
    let file = env.stack_copy("import.yaml", |t| t);
    assert_success(&env.deploy(&["apply", "-f", &file, "--auto-approve"]));
    let conf = env.sdk_config(REGION).await;
    aws_sdk_cloudwatchlogs::Client::new(&conf)
        .create_log_group()
        .log_group_name("/ecs/prom-task-pr-9")
        .send()
        .await
        .unwrap();
    let out = env.deploy(&[
        "import",
        "-f",
        &file,
        "--env",
        "pr-9",
        "log_group.prometheus",
        "/ecs/prom-task-pr-9",
    ]);
    assert_success(&out);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("  - address: log_group.prometheus\n    id: \"/ecs/prom-task-pr-9\"\n    environment: pr-9\n"),
        "{text}"
    );
    // The stack's own environment does not see it.
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", &file]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let out = env.deploy(&["apply", "-f", &file, "--env", "pr-9", "--auto-approve"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("log_group.prometheus"),
        "{}",
        stdout(&out)
    );
    let out = env.deploy(&["plan", "-f", &file, "--env", "pr-9"]);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
}
