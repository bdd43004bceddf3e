//! The stack's history workspace (`history:`, kind `amp_workspace`) end to end with the real
//! binary against moto: turned on for a running stack, Prometheus's config changes in the
//! bucket (a reload) and only Grafana's task gets a revision; apply creates it with its tags and wires its id into everything that
//! names it (Prometheus's remote_write in the config bucket, Grafana's data source in its task
//! definition, both task roles' policies); the plan after the apply is empty; an alias and a
//! tag changed by hand are planned back; destroy keeps the workspace (it holds data) unless
//! `--delete-data`.

mod common;

use aws_sdk_amp as amp;
use common::{assert_success, schema_check, stderr, stdout, TestEnv, ACCOUNT_ID, REGION};

/// The workspace's `Name` tag for stack monitoring, environment production.
const NAME: &str = "monitoring-production-history";

/// The reference stack, unprotected, with the `history:` section on (README "History that
/// outlives a task").
fn history_stack(env: &TestEnv) -> String {
    env.stack_copy("history.yaml", |text| {
        format!("{}\nhistory: {{}}\n", common::unprotected(text))
    })
}

async fn amp_client(env: &TestEnv) -> amp::Client {
    amp::Client::new(&env.sdk_config(REGION).await)
}

/// Our workspace (found by its Name tag, as deploy finds it): (id, arn, alias, tags).
async fn workspace(env: &TestEnv) -> Option<(String, String, String, Vec<(String, String)>)> {
    let out = amp_client(env)
        .await
        .list_workspaces()
        .send()
        .await
        .unwrap();
    out.workspaces()
        .iter()
        .find(|w| w.tags().and_then(|t| t.get("Name")).map(String::as_str) == Some(NAME))
        .map(|w| {
            let mut tags: Vec<(String, String)> = w
                .tags()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            tags.sort();
            (
                w.workspace_id().to_string(),
                w.arn().to_string(),
                w.alias().unwrap_or_default().to_string(),
                tags,
            )
        })
}

/// The published prometheus.yml, read from the config bucket in moto.
async fn published_prometheus_yml(env: &TestEnv) -> String {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&env.sdk_config(REGION).await)
            .force_path_style(true)
            .build(),
    );
    let buckets = s3.list_buckets().send().await.unwrap();
    let bucket = buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .find(|n| n.contains("-config-"))
        .expect("the config bucket")
        .to_string();
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let key = objects
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with("/prometheus.yml"))
        .expect("prometheus.yml in the bucket")
        .to_string();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    String::from_utf8(got.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn history_workspace_applies_settles_drifts_back_and_survives_destroy() {
    let env = TestEnv::new();
    env.seed(false);
    let stack = history_stack(&env);
    assert_success(&env.deploy(&["validate", "-f", &stack]));
    // The stack runs without history first.
    let without = env.stack_copy("without.yaml", common::unprotected);
    assert_success(&env.deploy(&["apply", "-f", &without, "--auto-approve"]));

    // Turning it on: the workspace is new, Prometheus's config reloads (no new revision of
    // its task), Grafana restarts once for its data source; the plan names the workspace by
    // its address wherever its id will go (known after apply).
    let out = env.deploy(&["plan", "-f", &stack, "--format", "json", "--full"]);
    assert_success(&out);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema_check(&plan).unwrap();
    let changed: Vec<(&str, &str)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [
        ("amp_workspace.history", "create"),
        ("s3_bucket.config", "update"),
        ("iam_role.prometheus", "update"),
        ("iam_role.grafana", "update"),
        ("task_definition.grafana", "create"),
        ("ecs_service.grafana", "update"),
    ] {
        assert!(changed.contains(&want), "{want:?} not in {changed:?}");
    }
    assert!(
        !changed
            .iter()
            .any(|(a, _)| *a == "task_definition.prometheus"),
        "{changed:?}"
    );
    let text = plan.to_string();
    assert!(text.contains("\"amp_workspace.history\""), "{text}");
    assert!(
        text.contains("/workspaces/amp_workspace.history/api/v1/remote_write"),
        "the remote_write URL names the workspace's address before it exists"
    );

    // --no-wait: no config sidecar runs in moto to report the new files loaded.
    let out = env.deploy(&["apply", "-f", &stack, "--auto-approve", "--no-wait"]);
    assert_success(&out);
    let (id, arn, alias, tags) = workspace(&env).await.expect("the workspace");
    assert!(id.starts_with("ws-"), "{id}");
    assert_eq!(alias, NAME, "the alias defaults to the Name");
    for tag in [
        ("deploy:address", "amp_workspace.history"),
        ("deploy:stack", "monitoring"),
        ("deploy:environment", "production"),
        ("team", "platform"),
    ] {
        assert!(
            tags.contains(&(tag.0.into(), tag.1.into())),
            "{tag:?} not in {tags:?}"
        );
    }

    // Prometheus's config in the bucket remote-writes to the workspace by its id, signed.
    let yml = published_prometheus_yml(&env).await;
    let url = format!(
        "https://aps-workspaces.{REGION}.amazonaws.com/workspaces/{id}/api/v1/remote_write"
    );
    assert!(yml.contains(&format!("url: {url}")), "{yml}");
    assert!(
        yml.contains(&format!("sigv4:\n      region: {REGION}")),
        "{yml}"
    );
    assert!(!yml.contains("amp_workspace."), "{yml}");

    // Grafana's data source (in its task definition) queries it with SigV4, switched on.
    let ecs = aws_sdk_ecs::Client::new(&env.sdk_config(REGION).await);
    let td = ecs
        .describe_task_definition()
        .task_definition("grafana-task")
        .send()
        .await
        .unwrap();
    let grafana = td
        .task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("grafana"))
        .unwrap()
        .clone();
    let env_of = |name: &str| {
        grafana
            .environment()
            .iter()
            .find(|e| e.name() == Some(name))
            .and_then(|e| e.value())
            .map(str::to_string)
    };
    assert_eq!(
        env_of("GF_AUTH_SIGV4_AUTH_ENABLED").as_deref(),
        Some("true")
    );
    let query_url = format!("https://aps-workspaces.{REGION}.amazonaws.com/workspaces/{id}");
    assert!(
        grafana
            .environment()
            .iter()
            .filter_map(|e| e.value())
            .any(|v| v.contains(&format!("url: {query_url}\n")) && v.contains("sigV4Auth: true")),
        "no delivered datasources.yml queries {query_url}"
    );

    // Each task role may do its part on this workspace's ARN only.
    let iam = aws_sdk_iam::Client::new(&env.sdk_config(REGION).await);
    assert_eq!(
        arn,
        format!("arn:aws:aps:{REGION}:{ACCOUNT_ID}:workspace/{id}")
    );
    for (role, actions) in [
        ("monitoring-prometheus-us-west-2", vec!["aps:RemoteWrite"]),
        (
            "monitoring-grafana-us-west-2",
            vec![
                "aps:GetLabels",
                "aps:GetMetricMetadata",
                "aps:GetSeries",
                "aps:QueryMetrics",
            ],
        ),
    ] {
        let doc = iam
            .get_role_policy()
            .role_name(role)
            .policy_name("deploy-history")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{role}: {e:?}"));
        let doc: serde_json::Value =
            serde_json::from_str(&urlencoding::decode(doc.policy_document()).unwrap()).unwrap();
        let statement = &doc["Statement"][0];
        assert_eq!(
            statement["Resource"],
            serde_json::json!(arn),
            "{role}: {doc}"
        );
        let granted: Vec<&str> = match &statement["Action"] {
            serde_json::Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
            v => vec![v.as_str().unwrap()],
        };
        assert_eq!(granted, actions, "{role}");
    }

    // A plan right after the apply is empty and reads only (the id maps back to the address).
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", &stack]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "{:?}",
        env.proxy.mutating_calls()
    );
    // One ListWorkspaces reads the workspace (the answer carries its tags).
    let aps: Vec<String> = env
        .proxy
        .calls()
        .iter()
        .filter(|c| c.service == "aps")
        .map(|c| c.action.clone())
        .collect();
    assert_eq!(aps, ["ListWorkspaces"]);

    // Drift: the alias and a tag changed by hand are planned back, in place.
    let client = amp_client(&env).await;
    client
        .update_workspace_alias()
        .workspace_id(&id)
        .alias("renamed-by-hand")
        .send()
        .await
        .unwrap();
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("team", "someone-else")
        .send()
        .await
        .unwrap();
    let out = env.deploy(&["plan", "-f", &stack, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("~ amp_workspace.history"), "{text}");
    assert!(text.contains("changed outside deploy"), "{text}");
    assert!(text.contains("renamed-by-hand"), "{text}");
    assert!(text.contains("someone-else"), "{text}");
    assert_success(&env.deploy(&["apply", "-f", &stack, "--auto-approve", "--no-wait"]));
    let (id_after, _, alias, tags) = workspace(&env).await.unwrap();
    assert_eq!(
        id_after, id,
        "drift is fixed in place, never by a new workspace"
    );
    assert_eq!(alias, NAME);
    assert!(
        tags.contains(&("team".into(), "platform".into())),
        "{tags:?}"
    );
    let out = env.deploy(&["plan", "-f", &stack]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));

    // The destroy plan keeps it (it holds data); destroy says so and leaves it.
    let out = env.deploy(&["plan", "-f", &stack, "--destroy", "--format", "json"]);
    assert_success(&out);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema_check(&plan).unwrap();
    let kept: Vec<&str> = plan["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["address"].as_str().unwrap())
        .collect();
    assert!(kept.contains(&"amp_workspace.history"), "{kept:?}");
    let out = env.deploy(&["destroy", "-f", &stack, "--auto-approve"]);
    assert_success(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("Kept, because they hold data"), "{text}");
    assert!(text.contains("amp_workspace.history"), "{text}");
    assert_eq!(workspace(&env).await.map(|w| w.0), Some(id.clone()));

    // Without the stack file, destroy finds it by its tags (ListWorkspaces: moto's tagging API
    // does not list workspaces) and keeps it like the other data — even with --delete-data, as
    // the environment is not disposable (its deploy:disposable tag says false).
    let empty = tempfile::tempdir().unwrap();
    let args = [
        "destroy",
        "--stack",
        "monitoring",
        "--env",
        "production",
        "--region",
        REGION,
        "--delete-data",
    ];
    let out = env.deploy_in(empty.path(), &args, &[]);
    assert_success(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains(&format!("amp_workspace.history [{id}]")),
        "{text}"
    );
    assert_eq!(workspace(&env).await.map(|w| w.0), Some(id.clone()));

    // With the stack file, --delete-data removes it.
    let out = env.deploy(&["destroy", "-f", &stack, "--auto-approve", "--delete-data"]);
    assert_success(&out);
    assert_eq!(workspace(&env).await, None);
}
