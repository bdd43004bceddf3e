//! `deploy lint` and its hooks, run as users run them: the built binary against the recording
//! proxy in front of moto, so "no AWS call" and "no mutating call" are counted at the proxy.

mod common;

use common::{
    assert_failure, assert_success, json_schema_check, repo_root, schema_check, stderr, stdout,
    TestEnv,
};
use serde_json::Value;

/// `deploy lint --live -f STACK` as JSON, whatever it finds (`--fail-on never`).
fn live_lint_json(env: &TestEnv, stack: &str) -> Value {
    let out = env.deploy(&[
        "lint",
        "--live",
        "-f",
        stack,
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

#[test]
fn offline_lint_makes_no_aws_call_and_the_reference_stack_is_clean() {
    let env = TestEnv::new();
    env.proxy.clear();
    let out = env.deploy(&["lint"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("lint: 0 error(s), 0 warning(s), 8 suppressed"),
        "{text}"
    );
    // What it accepts is shown with the reason; what cannot happen on Fargate is said so.
    assert!(
        text.contains("Suppressed (8):") && text.contains("plain HTTP on :3000"),
        "{text}"
    );
    assert!(
        text.contains("DL011 No shared host process namespace: does not apply on Fargate"),
        "{text}"
    );
    let json = env.deploy(&["lint", "--format", "json"]);
    assert_success(&json);
    let doc: Value = serde_json::from_str(&stdout(&json)).unwrap();
    schema_check(&doc).unwrap();
    assert_eq!(doc["summary"]["suppressed"], 8);
    let calls = env.proxy.calls();
    assert!(calls.is_empty(), "offline lint called AWS: {calls:?}");
}

/// `lint --live` against moto seeded with the reference network: only read calls; the
/// network findings (DL070-DL075) join the offline ones, located at the stack's lookup they
/// concern, and a suppression by that address hides one.
#[test]
fn live_lint_reads_the_network_and_locates_findings_at_the_lookups() {
    let env = TestEnv::new();
    env.seed(false);
    env.proxy.clear();
    let out = env.deploy(&["lint", "--live", "--format", "json", "--fail-on", "never"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "{:?}",
        env.proxy.mutating_calls()
    );
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    schema_check(&doc).unwrap();
    let live: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["rule"]
                .as_str()
                .is_some_and(|r| ("DL070"..="DL075").contains(&r))
        })
        .collect();
    // moto's seeded ALB has no drop-invalid-header-fields attribute set (AWS's default: off).
    let headers = live
        .iter()
        .find(|f| f["rule"] == "DL072")
        .unwrap_or_else(|| panic!("DL072 among {live:?}"));
    assert_eq!(headers["address"], "lookups.load_balancer");
    let stack = std::fs::read_to_string(repo_root().join("stacks/monitoring.yaml")).unwrap();
    let line = stack
        .lines()
        .position(|l| l.trim_start().starts_with("load_balancer:"))
        .unwrap()
        + 1;
    // The lookup's mapping starts on the line after its key (`name: …`).
    assert_eq!(headers["location"]["line"], line + 1, "{headers}");

    let suppressed = env.stack_copy("suppressed.yaml", |t| {
        t.replace(
            "lint:\n  ignore:\n",
            "lint:\n  ignore:\n    - rule: DL072\n      address: lookups.load_balancer\n      reason: the backend team owns the ALB's attributes\n",
        )
    });
    let doc = live_lint_json(&env, &suppressed);
    let headers = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "DL072")
        .unwrap()
        .clone();
    assert!(!headers["suppressed"].is_null(), "{headers}");
}

#[test]
fn text_is_grouped_by_severity_and_fail_on_sets_the_exit_code() {
    let env = TestEnv::new();
    let warning = env.stack_copy("warning.yaml", |t| {
        t.replace("container_insights: true", "container_insights: false")
    });
    let out = env.deploy(&["lint", "-f", &warning]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let line = std::fs::read_to_string(&warning)
        .unwrap()
        .lines()
        .position(|l| l.contains("container_insights: false"))
        .unwrap()
        + 1;
    assert!(
        stdout(&out).contains(&format!("Warnings (1):\n  {warning}:{line}:")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        code(&env.deploy(&["lint", "-f", &warning, "--fail-on", "warning"])),
        1
    );

    let error = env.stack_copy("error.yaml", |t| {
        t.replace(
            "GF_AUTH_ANONYMOUS_ENABLED: \"false\"",
            "GF_AUTH_ANONYMOUS_ENABLED: \"true\"",
        )
    });
    let out = env.deploy(&["lint", "-f", &error]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("Errors (1):") && stdout(&out).contains("error[DL050]"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        code(&env.deploy(&["lint", "-f", &error, "--fail-on", "never"])),
        0
    );
    // validate runs the same rules: the error fails it, naming the finding.
    let out = env.deploy(&["validate", "-f", &error]);
    assert_failure(&out);
    let line = std::fs::read_to_string(&error)
        .unwrap()
        .lines()
        .position(|l| l.contains("GF_AUTH_ANONYMOUS_ENABLED"))
        .unwrap()
        + 1;
    assert!(
        stderr(&out).starts_with(&format!("error: {error}:{line}:"))
            && stderr(&out).contains("[DL050;"),
        "{}",
        stderr(&out)
    );
    let out = env.deploy(&["validate", "-f", &warning]);
    assert_success(&out);
    assert!(stdout(&out).contains("warning[DL014]"), "{}", stdout(&out));
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let env = TestEnv::new();
    let stack = env.stack_copy("warning.yaml", |t| {
        t.replace("container_insights: true", "container_insights: false")
    });
    let out = env.deploy(&["lint", "-f", &stack, "--format", "sarif"]);
    assert_success(&out);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    sarif_check(&doc).unwrap();
    let results = doc["runs"][0]["results"].as_array().unwrap();
    let insights = results.iter().find(|r| r["ruleId"] == "DL014").unwrap();
    assert_eq!(insights["level"], "warning");
    assert!(insights.get("suppressions").is_none());
    let http = results.iter().find(|r| r["ruleId"] == "DL035").unwrap();
    assert_eq!(http["suppressions"][0]["kind"], "external");
    assert!(http["suppressions"][0]["justification"]
        .as_str()
        .unwrap()
        .contains(":3000"));
    assert_eq!(
        http["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "templates/prometheus.yml"
    );
    // Other commands do not print SARIF.
    let out = env.deploy(&["validate", "--format", "sarif"]);
    assert_failure(&out);
    assert!(
        stderr(&out).contains("--format sarif is for `deploy lint`"),
        "{}",
        stderr(&out)
    );
}

/// The OASIS SARIF 2.1.0 schema kept as test data: tests/fixtures/sarif-schema-2.1.0.json is
/// sarif-2.1/schema/sarif-schema-2.1.0.json of oasis-tcs/sarif-spec (the errata01 OS schema).
fn sarif_check(doc: &Value) -> Result<(), String> {
    json_schema_check(
        &repo_root().join("tests/fixtures/sarif-schema-2.1.0.json"),
        doc,
    )
}

#[test]
fn the_sarif_check_rejects_what_is_not_sarif() {
    // The validator itself must be able to fail.
    let bad = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {}}]});
    let problems = sarif_check(&bad).unwrap_err();
    assert!(problems.contains("driver"), "{problems}");
}

#[test]
fn apply_refuses_an_error_finding_before_any_aws_call() {
    let env = TestEnv::new();
    env.seed(false);
    let stack = env.stack_copy("anonymous.yaml", |t| {
        t.replace(
            "GF_AUTH_ANONYMOUS_ENABLED: \"false\"",
            "GF_AUTH_ANONYMOUS_ENABLED: \"true\"",
        )
    });
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", &stack, "--auto-approve"]);
    assert_failure(&out);
    assert!(
        stderr(&out).contains("1 lint error(s)") && stderr(&out).contains("error[DL050]"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    let mutating = env.proxy.mutating_calls();
    assert!(mutating.is_empty(), "apply changed something: {mutating:?}");
    assert!(
        env.proxy.calls().is_empty(),
        "apply called AWS before refusing"
    );
}

#[test]
fn plan_lists_the_findings() {
    let env = TestEnv::new();
    env.seed(false);
    let stack = env.stack_copy("warning.yaml", |t| {
        t.replace("container_insights: true", "container_insights: false")
    });
    let out = env.deploy(&["plan", "-f", &stack]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("lint: ") && stdout(&out).contains("warning[DL014]"),
        "{}",
        stdout(&out)
    );
}

/// DL018 reads the type of each SSM parameter the containers name (DescribeParameters,
/// metadata only): a String parameter is a finding at the container secret that names it, in
/// `lint --live` and in every plan; a SecureString one is not.
#[tokio::test(flavor = "multi_thread")]
async fn a_plain_ssm_parameter_is_a_finding_at_the_secret_that_names_it() {
    let env = TestEnv::new();
    env.seed(false);
    let aws = env.moto.aws().await;
    for (name, kind) in [
        (
            "/monitoring/plain-token",
            aws_sdk_ssm::types::ParameterType::String,
        ),
        (
            "/monitoring/secure-token",
            aws_sdk_ssm::types::ParameterType::SecureString,
        ),
    ] {
        aws.ssm
            .put_parameter()
            .name(name)
            .value("not-a-real-token")
            .r#type(kind)
            .send()
            .await
            .unwrap();
    }
    let with = |name: &'static str| {
        move |t: String| {
            t.replace(
                "          SMTP_PASSWORD: { secrets_manager: monitoring/alertmanager/smtp-password }\n",
                &format!(
                    "          SMTP_PASSWORD: {{ secrets_manager: monitoring/alertmanager/smtp-password }}\n          EXTRA_TOKEN: {{ ssm: {name} }}\n"
                ),
            )
        }
    };
    let plain = env.stack_copy("plain.yaml", with("/monitoring/plain-token"));
    let line = std::fs::read_to_string(&plain)
        .unwrap()
        .lines()
        .position(|l| l.contains("EXTRA_TOKEN"))
        .unwrap()
        + 1;
    let doc = live_lint_json(&env, &plain);
    let found: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "DL018")
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["location"]["line"], line, "{:?}", found[0]);
    assert!(found[0]["message"]
        .as_str()
        .unwrap()
        .contains("/monitoring/plain-token"));
    let out = env.deploy(&["plan", "-f", &plain]);
    assert!(
        (stdout(&out) + &stderr(&out)).contains("warning[DL018]"),
        "{}",
        stderr(&out)
    );

    let secure = env.stack_copy("secure.yaml", with("/monitoring/secure-token"));
    let doc = live_lint_json(&env, &secure);
    assert!(
        !doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "DL018"),
        "{doc}"
    );
}
