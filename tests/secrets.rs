//! Secrets end to end against moto: containers get secrets only by reference, the execution
//! role may read exactly those, `plan` never reads a value, and a value the tool provably
//! handled (one it generated) appears nowhere it writes: stdout, stderr at -vvv, JSON, saved
//! plans and `deploy show`, rendered files.

mod common;

use aws_sdk_ecs as ecs;
use aws_sdk_iam as iam;
use aws_sdk_secretsmanager as sm;
use aws_sdk_ssm as ssm;
use common::{assert_success, stderr, stdout, TestEnv};
use serde_json::Value;
use std::path::Path;

const REGION: &str = "us-west-2";
const EXEC_ROLE: &str = "monitoring-execution-us-west-2";
/// Values planted in the stores the stack refers to; the tool must never read them.
const PLANTED_SM: &str = "PLANTED-slack-webhook-7f3kq9";
const PLANTED_SSM: &str = "PLANTED-pagerduty-key-m2x8w1";

/// The reference stack plus a generated secret and three container secrets (one of each
/// source). `rotation` bumps the generated value.
fn secret_stack(env: &TestEnv, name: &str, rotation: u32) -> String {
    env.stack_copy(name, |text| {
        let text = common::unprotected(text);
        // The Prometheus container's secrets come first in the file.
        let text = text.replacen(
            "        secrets:\n",
            "        secrets:\n          ADMIN_PASSWORD: { secret: admin }\n          SLACK_WEBHOOK_URL: { secrets_manager: monitoring/slack-webhook }\n          PAGERDUTY_ROUTING_KEY: { ssm: /monitoring/pagerduty-key }\n",
            1,
        );
        assert!(text.contains("ADMIN_PASSWORD"), "the stack changed shape");
        assert_eq!(text.matches("\nsecrets:\n").count(), 1, "the stack changed shape");
        text.replace(
            "\nsecrets:\n",
            &format!(
                "\nsecrets:\n  admin:\n    name: monitoring/admin\n    description: generated admin password\n    rotation: {rotation}\n"
            ),
        )
    })
}

async fn plant(env: &TestEnv) {
    let config = env.sdk_config(REGION).await;
    sm::Client::new(&config)
        .create_secret()
        .name("monitoring/slack-webhook")
        .secret_string(PLANTED_SM)
        .send()
        .await
        .unwrap();
    ssm::Client::new(&config)
        .put_parameter()
        .name("/monitoring/pagerduty-key")
        .value(PLANTED_SSM)
        .r#type(ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
}

async fn secret_value(env: &TestEnv, name: &str) -> String {
    let config = env.sdk_config(REGION).await;
    sm::Client::new(&config)
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap()
}

async fn secret_arn(env: &TestEnv, name: &str) -> Option<String> {
    let config = env.sdk_config(REGION).await;
    match sm::Client::new(&config)
        .describe_secret()
        .secret_id(name)
        .send()
        .await
    {
        Ok(out) => out.arn,
        // Only "no such secret" means deleted; any other failure is the test's to report.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("DescribeSecret {name}: {e:?}"),
    }
}

/// Everything a run wrote where a user or a CI log could see it.
#[derive(Default)]
struct Seen {
    texts: Vec<(String, String)>,
}

impl Seen {
    fn run(&mut self, env: &TestEnv, what: &str, args: &[&str]) -> std::process::Output {
        let out = env.deploy(args);
        self.texts.push((format!("{what} stdout"), stdout(&out)));
        self.texts.push((format!("{what} stderr"), stderr(&out)));
        out
    }

    /// `plan -vvv -f STACK --out FILE`, its output seen, the plan file kept for later search.
    fn saved_plan(&mut self, env: &TestEnv, stack: &str, file: &Path) -> std::process::Output {
        let what = format!("plan -vvv --out {}", file.display());
        self.run(
            env,
            &what,
            &["plan", "-vvv", "-f", stack, "--out", file.to_str().unwrap()],
        )
    }

    fn file(&mut self, what: &str, path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        self.texts.push((
            what.to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }

    fn dir(&mut self, what: &str, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                self.dir(what, &path);
            } else {
                self.file(&format!("{what} {}", path.display()), &path);
            }
        }
    }

    fn assert_absent(&self, needle: &str, label: &str) {
        assert!(needle.len() >= 16, "{label} is too short to search for");
        for (what, text) in &self.texts {
            assert!(!text.contains(needle), "{label} appears in {what}:\n{text}");
        }
    }
}

fn no_value_reads(env: &TestEnv, during: &str) {
    let reads: Vec<String> = env
        .proxy
        .calls()
        .iter()
        .filter(|c| {
            matches!(
                c.action.as_str(),
                "GetSecretValue" | "GetParameter" | "GetParameters" | "BatchGetSecretValue"
            )
        })
        .map(|c| c.to_string())
        .collect();
    assert!(reads.is_empty(), "{during} read secret values: {reads:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_references_and_no_value_ever_reaches_output() {
    let env = TestEnv::new();
    env.seed(false);
    plant(&env).await;
    let stack = secret_stack(&env, "secrets.yaml", 0);
    let dir = env.path().to_path_buf();
    let mut seen = Seen::default();

    // Plan: checks the referenced secrets exist (metadata only) and reads no value.
    env.proxy.clear();
    let plan_file = dir.join("first.plan");
    let out = seen.saved_plan(&env, &stack, &plan_file);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("+ secret.admin"), "{text}");
    assert!(text.contains("value: \"(sensitive)\""), "{text}");
    let actions: Vec<String> = env.proxy.calls().iter().map(|c| c.action.clone()).collect();
    assert!(actions.iter().any(|a| a == "DescribeSecret"), "{actions:?}");
    assert!(
        actions.iter().any(|a| a == "DescribeParameters"),
        "{actions:?}"
    );
    assert!(env.proxy.mutating_calls().is_empty());
    no_value_reads(&env, "plan");

    // Apply the saved plan at the most verbose level: the tool generates the admin password.
    env.proxy.clear();
    let out = seen.run(
        &env,
        "apply PLAN -vvv",
        &["apply", "-vvv", plan_file.to_str().unwrap()],
    );
    assert_success(&out);
    no_value_reads(&env, "apply");
    let actions: Vec<String> = env.proxy.calls().iter().map(|c| c.action.clone()).collect();
    assert!(
        actions.iter().any(|a| a == "GetRandomPassword")
            && actions.iter().any(|a| a == "CreateSecret"),
        "the value was not generated by deploy: {actions:?}"
    );
    let generated = secret_value(&env, "monitoring/admin").await;
    assert_eq!(generated.len(), 32, "the stack asks for 32 characters");
    assert!(generated.chars().all(|c| c.is_ascii_alphanumeric()));
    // The reference stack's own formatted secrets: basic-auth credentials with the
    // password's bcrypt hash, and a self-signed certificate with its key.
    let auth: Value =
        serde_json::from_str(&secret_value(&env, "monitoring/prometheus/basic-auth").await)
            .unwrap();
    assert_eq!(auth["username"], "grafana");
    let auth_password = auth["password"].as_str().unwrap().to_string();
    let auth_bcrypt = auth["bcrypt"].as_str().unwrap().to_string();
    assert_eq!(auth_password.len(), 32);
    assert!(auth_bcrypt.starts_with("$2"), "not a bcrypt hash");
    assert!(bcrypt::verify(&auth_password, &auth_bcrypt).unwrap());
    let tls: Value =
        serde_json::from_str(&secret_value(&env, "monitoring/prometheus/tls").await).unwrap();
    assert!(tls["cert"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let tls_key = tls["key"].as_str().unwrap().to_string();
    assert!(tls_key.starts_with("-----BEGIN PRIVATE KEY-----"));
    // The key's base64 body, line by line (a printer could wrap or re-encode the PEM).
    let key_lines: Vec<String> = tls_key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect();
    assert!(!key_lines.is_empty());

    // The task definition carries exact ARNs, never values; the execution role may read
    // exactly those three and nothing else.
    let config = env.sdk_config(REGION).await;
    let admin_arn = secret_arn(&env, "monitoring/admin").await.unwrap();
    let slack_arn = secret_arn(&env, "monitoring/slack-webhook").await.unwrap();
    let pd_arn = format!("arn:aws:ssm:{REGION}:123456789012:parameter/monitoring/pagerduty-key");
    let td = ecs::Client::new(&config)
        .describe_task_definition()
        .task_definition("prom-task")
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    let container = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("prometheus"))
        .unwrap();
    let mut value_from: Vec<(String, String)> = container
        .secrets()
        .iter()
        .map(|s| (s.name().to_string(), s.value_from().to_string()))
        .collect();
    value_from.sort();
    let auth_arn = secret_arn(&env, "monitoring/prometheus/basic-auth")
        .await
        .unwrap();
    let tls_arn = secret_arn(&env, "monitoring/prometheus/tls").await.unwrap();
    assert_eq!(
        value_from,
        vec![
            ("ADMIN_PASSWORD".to_string(), admin_arn.clone()),
            ("PAGERDUTY_ROUTING_KEY".to_string(), pd_arn.clone()),
            ("SLACK_WEBHOOK_URL".to_string(), slack_arn.clone()),
            ("WEB_BCRYPT".to_string(), format!("{auth_arn}:bcrypt::")),
            ("WEB_PASSWORD".to_string(), format!("{auth_arn}:password::")),
            ("WEB_TLS_CERT".to_string(), format!("{tls_arn}:cert::")),
            ("WEB_TLS_KEY".to_string(), format!("{tls_arn}:key::")),
        ]
    );
    assert!(container
        .environment()
        .iter()
        .all(|kv| !kv.name().unwrap_or("").contains("PASSWORD")));
    let policy = iam::Client::new(&config)
        .get_role_policy()
        .role_name(EXEC_ROLE)
        .policy_name("deploy-secrets")
        .send()
        .await
        .unwrap();
    let doc: Value =
        serde_json::from_str(&urlencoding::decode(policy.policy_document()).unwrap()).unwrap();
    let mut granted: Vec<(String, String)> = Vec::new();
    for st in doc["Statement"].as_array().unwrap() {
        let actions: Vec<&str> = match &st["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
            other => panic!("{other}"),
        };
        let resources: Vec<&str> = match &st["Resource"] {
            Value::String(r) => vec![r.as_str()],
            Value::Array(r) => r.iter().map(|x| x.as_str().unwrap()).collect(),
            other => panic!("{other}"),
        };
        for a in &actions {
            for r in &resources {
                granted.push((a.to_string(), r.to_string()));
            }
        }
    }
    granted.sort();
    // The reference stack's own Alertmanager credentials and generated secrets (Prometheus's
    // and Grafana's), plus this test's three.
    let mut alertmanager = Vec::new();
    for name in [
        "monitoring/alertmanager/pagerduty-routing-key",
        "monitoring/alertmanager/slack-webhook-url",
        "monitoring/alertmanager/smtp-password",
    ] {
        alertmanager.push((
            "secretsmanager:GetSecretValue".to_string(),
            secret_arn(&env, name).await.unwrap(),
        ));
    }
    let own = |name: &str| {
        (
            "secretsmanager:GetSecretValue".to_string(),
            format!("arn:aws:secretsmanager:{REGION}:123456789012:secret:{name}-??????"),
        )
    };
    let mut expected = vec![
        own("monitoring/admin"),
        own("monitoring/prometheus/basic-auth"),
        own("monitoring/prometheus/tls"),
        own("monitoring/grafana/admin-password"),
        own("monitoring/grafana/tls"),
        (
            "secretsmanager:GetSecretValue".to_string(),
            slack_arn.clone(),
        ),
        ("ssm:GetParameters".to_string(), pd_arn.clone()),
    ];
    expected.extend(alertmanager);
    expected.sort();
    assert_eq!(
        granted, expected,
        "the execution role may read exactly the referenced secrets"
    );

    // Converged: nothing to do, and still no value read.
    env.proxy.clear();
    let out = seen.run(&env, "plan", &["plan", "-f", &stack]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    no_value_reads(&env, "plan");

    // Rotation: a change to the value is shown as a change, and still as (sensitive).
    let rotated = secret_stack(&env, "rotated.yaml", 1);
    let out = seen.run(
        &env,
        "plan --format json",
        &["plan", "--format", "json", "-f", &rotated],
    );
    assert_success(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let change = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "secret.admin")
        .expect("the rotation is a change");
    assert_eq!(change["action"], "update");
    assert_eq!(
        change["changed_attributes"],
        serde_json::json!([{"name": "value", "before": "(sensitive)", "after": "(sensitive)", "forces_replacement": false}])
    );
    assert_eq!(change["after"]["value"], "(sensitive)");
    // ECS reads secrets only at task start: the service using it restarts, and says so.
    let service = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "ecs_service.prometheus")
        .expect("the service using the rotated secret restarts");
    assert_eq!(service["changed_attributes"][0]["name"], "(restart)");
    assert!(service["warnings"][0]
        .as_str()
        .unwrap()
        .contains("restarts the tasks"));
    let rotation_plan = dir.join("rotation.plan");
    let out = seen.saved_plan(&env, &rotated, &rotation_plan);
    assert_success(&out);
    assert!(
        stdout(&out).contains("~ value: \"(sensitive)\" -> \"(sensitive)\""),
        "{}",
        stdout(&out)
    );
    seen.file("saved rotation plan", &rotation_plan);
    seen.file("saved first plan", &plan_file);
    let out = seen.run(&env, "show", &["show", rotation_plan.to_str().unwrap()]);
    assert_success(&out);
    assert!(stdout(&out).contains("(sensitive)"), "{}", stdout(&out));
    let out = seen.run(
        &env,
        "show --format json",
        &["show", "--format", "json", rotation_plan.to_str().unwrap()],
    );
    assert_success(&out);
    // The other views of a saved plan: every value in full, and the pull request comment.
    for plan_file in [&rotation_plan, &plan_file] {
        let file = plan_file.to_str().unwrap();
        let views: [(&str, &[&str]); 3] = [
            ("--full", &["--full"]),
            ("markdown", &["--format", "markdown"]),
            ("markdown --full", &["--format", "markdown", "--full"]),
        ];
        for (what, flags) in views {
            let out = seen.run(
                &env,
                &format!("show {what} {file}"),
                &[&["show", file][..], flags].concat(),
            );
            assert_success(&out);
        }
    }
    env.proxy.clear();
    let out = seen.run(
        &env,
        "apply rotation -vvv --format json",
        &[
            "apply",
            "-vvv",
            "--format",
            "json",
            rotation_plan.to_str().unwrap(),
        ],
    );
    assert_success(&out);
    let actions: Vec<String> = env.proxy.calls().iter().map(|c| c.action.clone()).collect();
    assert!(actions.iter().any(|a| a == "PutSecretValue"), "{actions:?}");
    assert!(actions.iter().any(|a| a == "UpdateService"), "{actions:?}");
    let rotated_value = secret_value(&env, "monitoring/admin").await;
    assert_ne!(
        rotated_value, generated,
        "the rotation generated a new value"
    );

    // render writes every file and request a container would get.
    let render_dir = dir.join("rendered");
    let out = seen.run(
        &env,
        "render",
        &[
            "render",
            "-f",
            &rotated,
            "--out",
            render_dir.to_str().unwrap(),
        ],
    );
    assert_success(&out);
    seen.dir("render output", &render_dir);
    let td_request =
        std::fs::read_to_string(render_dir.join("task-definitions/prom-task.json")).unwrap();
    assert!(td_request.contains(&slack_arn), "{td_request}");

    // A change of a format's parameters (here the certificate's names) is a change of the
    // value, shown as (sensitive) like a rotation.
    let renamed = env.stack_copy("renamed.yaml", |_| {
        std::fs::read_to_string(&rotated).unwrap().replace(
            "        - localhost\n",
            "        - localhost\n        - 127.0.0.1\n",
        )
    });
    let out = seen.run(&env, "plan renamed", &["plan", "-f", &renamed]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("~ secret.prometheus_tls")
            && text.contains("~ value: \"(sensitive)\" -> \"(sensitive)\""),
        "{text}"
    );
    assert!(!text.contains("~ secret.prometheus_auth"), "{text}");

    for line in &key_lines {
        seen.assert_absent(line, "a line of the generated TLS private key");
    }
    for (needle, label) in [
        (auth_password.as_str(), "the generated basic-auth password"),
        (auth_bcrypt.as_str(), "the generated password's bcrypt hash"),
        (generated.as_str(), "the generated admin password"),
        (rotated_value.as_str(), "the rotated admin password"),
        (PLANTED_SM, "the planted Secrets Manager value"),
        (PLANTED_SSM, "the planted SSM value"),
    ] {
        seen.assert_absent(needle, label);
    }
    let verbose = seen
        .texts
        .iter()
        .find(|(w, _)| w == "apply PLAN -vvv stderr")
        .map(|(_, t)| t.len())
        .unwrap();
    assert!(
        verbose > 10_000,
        "-vvv logged only {verbose} bytes: not the most verbose level"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_secrets_survive_destroy_unless_data_may_go() {
    let env = TestEnv::new();
    env.seed(false);
    plant(&env).await;
    let stack = secret_stack(&env, "secrets.yaml", 0);
    assert_success(&env.deploy(&["apply", "-f", &stack, "--auto-approve"]));
    let first = secret_arn(&env, "monitoring/admin").await.unwrap();

    // Plain destroy keeps the secret and says so.
    let out = env.deploy(&["destroy", "-f", &stack, "--auto-approve"]);
    assert_success(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("Kept, because they hold data"), "{text}");
    assert!(text.contains("secret.admin"), "{text}");
    assert_eq!(
        secret_arn(&env, "monitoring/admin").await,
        Some(first.clone())
    );
    // The planted secrets were never the stack's: untouched.
    assert!(secret_arn(&env, "monitoring/slack-webhook").await.is_some());

    // The next apply finds and keeps the same secret (the value survives).
    assert_success(&env.deploy(&["apply", "-f", &stack, "--auto-approve"]));
    assert_eq!(
        secret_arn(&env, "monitoring/admin").await,
        Some(first.clone())
    );

    // --delete-data removes it at once (no recovery window), so a new apply can create the
    // name again instead of failing on a secret scheduled for deletion.
    let out = env.deploy(&["destroy", "-f", &stack, "--auto-approve", "--delete-data"]);
    assert_success(&out);
    assert_eq!(secret_arn(&env, "monitoring/admin").await, None);
    assert!(secret_arn(&env, "monitoring/slack-webhook").await.is_some());
    assert_success(&env.deploy(&["apply", "-f", &stack, "--auto-approve"]));
    let second = secret_arn(&env, "monitoring/admin").await.unwrap();
    assert_ne!(second, first);

    // A stack marked disposable deletes data on destroy without the flag.
    let disposable = env.stack_copy("disposable.yaml", |text| {
        std::fs::read_to_string(&stack).unwrap().replace(
            "environment: production\n",
            "environment: production\ndisposable: true\n",
        ) + &text[..0]
    });
    let out = env.deploy(&["destroy", "-f", &disposable, "--auto-approve"]);
    assert_success(&out);
    assert_eq!(secret_arn(&env, "monitoring/admin").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_referenced_secret_stops_the_plan_before_any_change() {
    let env = TestEnv::new();
    env.seed(false);
    // Nothing planted: the references point at nothing.
    let stack = secret_stack(&env, "secrets.yaml", 0);
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", &stack, "--auto-approve"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("monitoring/slack-webhook") && err.contains("create-secret"),
        "{err}"
    );
    assert!(env.proxy.mutating_calls().is_empty());
}
