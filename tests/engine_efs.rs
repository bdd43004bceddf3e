//! EFS end to end with the real binary against moto: the reference stack's file system (mount
//! targets in the private subnets behind an NFS-only group), its access point for uid/gid 472
//! and the volume Grafana's task mounts. Apply settles (`No changes.`), destroy keeps the data and says so,
//! `--delete-data` removes it, and an untagged file system with our creation token is a
//! conflict nobody touches.

mod common;

use aws_sdk_ecs as ecs;
use aws_sdk_efs as efs;
use common::{assert_success, schema_check, stderr, stdout, TestEnv, REGION};

/// The creation token deploy derives for `file_systems.grafana` of stack monitoring,
/// environment production.
const TOKEN: &str = "monitoring-production-grafana";

/// The reference stack as it is: Grafana's file system, mount targets behind an NFS-only
/// group, an access point for uid/gid 472 and the volume grafana-task mounts.
fn efs_stack(env: &TestEnv, name: &str) -> String {
    env.stack_copy(name, common::unprotected)
}

async fn efs_client(env: &TestEnv) -> efs::Client {
    efs::Client::new(&env.sdk_config(REGION).await)
}

/// The file system with our creation token: (id, encrypted, tags).
async fn file_system(env: &TestEnv) -> Option<(String, bool, Vec<(String, String)>)> {
    let out = efs_client(env)
        .await
        .describe_file_systems()
        .creation_token(TOKEN)
        .send()
        .await
        .unwrap();
    out.file_systems().first().map(|f| {
        (
            f.file_system_id().to_string(),
            f.encrypted().unwrap_or(false),
            f.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        )
    })
}

/// Subnets of the file system's mount targets.
async fn mount_target_subnets(env: &TestEnv, fs_id: &str) -> Vec<String> {
    let out = efs_client(env)
        .await
        .describe_mount_targets()
        .file_system_id(fs_id)
        .send()
        .await
        .unwrap();
    let mut subnets: Vec<String> = out
        .mount_targets()
        .iter()
        .map(|m| m.subnet_id().to_string())
        .collect();
    subnets.sort();
    subnets
}

async fn access_point_count(env: &TestEnv) -> usize {
    efs_client(env)
        .await
        .describe_access_points()
        .send()
        .await
        .unwrap()
        .access_points()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn efs_applies_settles_and_survives_destroy_unless_data_may_go() {
    let env = TestEnv::new();
    let seed = env.seed(false);
    let stack = efs_stack(&env, "efs.yaml");
    assert_success(&env.deploy(&["validate", "-f", &stack]));
    // The plan document, every EFS attribute in it, follows the published schema.
    let out = env.deploy(&["plan", "-f", &stack, "--format", "json"]);
    assert_success(&out);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema_check(&plan).unwrap();
    assert!(plan.to_string().contains("efs_mount_targets.grafana"));

    let out = env.deploy(&["apply", "-f", &stack, "--auto-approve"]);
    assert_success(&out);
    let (fs_id, encrypted, tags) = file_system(&env).await.expect("the file system");
    assert!(encrypted, "file systems are always encrypted at rest");
    assert!(tags.contains(&("deploy:address".into(), "efs_file_system.grafana".into())));
    assert!(tags.contains(&("Name".into(), TOKEN.into())));

    // One mount target in each looked-up private subnet.
    let mut private: Vec<String> = seed["private_subnet_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    private.sort();
    assert_eq!(mount_target_subnets(&env, &fs_id).await, private);

    // The task definition mounts the file system through the access point, encrypted in
    // transit and authorized by IAM.
    let ecs = ecs::Client::new(&env.sdk_config(REGION).await);
    let td = ecs
        .describe_task_definition()
        .task_definition("grafana-task")
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    let volume = &td.volumes()[0];
    let config = volume.efs_volume_configuration().expect("an EFS volume");
    assert_eq!(config.file_system_id(), fs_id);
    assert_eq!(
        config.transit_encryption(),
        Some(&ecs::types::EfsTransitEncryption::Enabled)
    );
    let auth = config.authorization_config().unwrap();
    assert_eq!(
        auth.iam(),
        Some(&ecs::types::EfsAuthorizationConfigIam::Enabled)
    );
    assert!(auth.access_point_id().unwrap().starts_with("fsap-"));
    let grafana = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("grafana"))
        .expect("the grafana container");
    let mount = &grafana.mount_points()[0];
    assert_eq!(mount.container_path(), Some("/var/lib/grafana"));

    // A plan right after the apply is empty, and reads only.
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", &stack]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "{:?}",
        env.proxy.mutating_calls()
    );
    assert!(
        env.proxy
            .calls()
            .iter()
            .any(|c| c.action == "DescribeMountTargetSecurityGroups"),
        "the plan reads the mount targets"
    );

    // So does the destroy plan with its kept list.
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
    assert!(kept.contains(&"efs_file_system.grafana"), "{kept:?}");

    // Destroy keeps the file system (and lists it as kept); its mount targets, the access
    // point and everything else go.
    let out = env.deploy(&["destroy", "-f", &stack, "--auto-approve"]);
    assert_success(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("Kept, because they hold data"), "{text}");
    assert!(text.contains("efs_file_system.grafana"), "{text}");
    assert_eq!(file_system(&env).await.map(|f| f.0), Some(fs_id.clone()));
    assert!(mount_target_subnets(&env, &fs_id).await.is_empty());
    assert_eq!(access_point_count(&env).await, 0);

    // The next apply finds the same file system (the data survives) and settles again.
    assert_success(&env.deploy(&["apply", "-f", &stack, "--auto-approve"]));
    assert_eq!(file_system(&env).await.map(|f| f.0), Some(fs_id.clone()));
    assert_eq!(mount_target_subnets(&env, &fs_id).await, private);
    let out = env.deploy(&["plan", "-f", &stack]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));

    // --delete-data removes it, mount targets first.
    let out = env.deploy(&["destroy", "-f", &stack, "--auto-approve", "--delete-data"]);
    assert_success(&out);
    assert_eq!(file_system(&env).await, None);
    assert_eq!(access_point_count(&env).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untagged_file_system_with_our_token_is_a_conflict() {
    let env = TestEnv::new();
    env.seed(false);
    let stack = efs_stack(&env, "efs.yaml");
    let hand_made = efs_client(&env)
        .await
        .create_file_system()
        .creation_token(TOKEN)
        .encrypted(true)
        .send()
        .await
        .unwrap()
        .file_system_id()
        .to_string();

    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", &stack, "--auto-approve"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("efs_file_system.grafana"), "{text}");
    assert!(
        text.contains(&format!(
            "deploy import efs_file_system.grafana {hand_made}"
        )),
        "{text}"
    );
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "{:?}",
        env.proxy.mutating_calls()
    );

    // Destroy leaves it alone too.
    assert_success(&env.deploy(&["destroy", "-f", &stack, "--auto-approve"]));
    assert_eq!(file_system(&env).await.map(|f| f.0), Some(hand_made));
}

#[test]
fn validate_refuses_unencrypted_file_systems_and_dangling_references() {
    let env = TestEnv::new();
    let stack = env.stack_copy("bad.yaml", |text| {
        let good = std::fs::read_to_string(efs_stack(&env, "good.yaml")).unwrap();
        let bad = good
            .replace(
                "    mount_target_security_groups: [efs]\n",
                "    encrypted: false\n    mount_target_security_groups: [efs, nope]\n",
            )
            .replace(
                "      data: { file_system: grafana, access_point: grafana }\n",
                "      data: { file_system: grafana, access_point: missing }\n",
            );
        assert_ne!(bad, good);
        bad + &text[..0]
    });
    let out = env.deploy(&["validate", "-f", &stack]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for needle in [
        "file_systems.grafana.encrypted",
        "always encrypted",
        "file_systems.grafana.mount_target_security_groups.1",
        "task_definitions.grafana.volumes.data.access_point",
    ] {
        assert!(err.contains(needle), "{needle} not in:\n{err}");
    }
}

/// The access point the Grafana service's current task definition mounts.
async fn mounted_access_point(env: &TestEnv) -> String {
    let ecs = ecs::Client::new(&env.sdk_config(REGION).await);
    let svc = ecs
        .describe_services()
        .cluster("monitoring")
        .services("grafana")
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    let td = ecs
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    td.task_definition().unwrap().volumes()[0]
        .efs_volume_configuration()
        .unwrap()
        .authorization_config()
        .unwrap()
        .access_point_id()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_access_point_reaches_the_task_in_the_same_apply() {
    let env = TestEnv::new();
    env.seed(false);
    let stack = efs_stack(&env, "efs.yaml");
    assert_success(&env.deploy(&["apply", "-f", &stack, "--auto-approve"]));
    let before = mounted_access_point(&env).await;

    // A different owner forces a new access point; the task definition must name it.
    let edited = env.stack_copy("efs-edited.yaml", |t| {
        assert_eq!(
            t.matches("    uid: 472\n").count(),
            1,
            "the stack changed shape"
        );
        t.replace("    uid: 472\n", "    uid: 473\n")
    });
    let out = env.deploy(&["plan", "-f", &edited]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("-/+ efs_access_point.grafana"), "{text}");
    assert!(
        text.contains("+ task_definition.grafana  (new revision of grafana-task"),
        "{text}"
    );
    assert!(text.contains("~ ecs_service.grafana"), "{text}");

    assert_success(&env.deploy(&["apply", "-f", &edited, "--auto-approve"]));
    let after = mounted_access_point(&env).await;
    assert_ne!(
        after, before,
        "the service runs a revision naming the new access point"
    );
    let ids: Vec<String> = efs_client(&env)
        .await
        .describe_access_points()
        .send()
        .await
        .unwrap()
        .access_points()
        .iter()
        .filter_map(|a| a.access_point_id().map(str::to_string))
        .collect();
    assert_eq!(
        ids,
        [after],
        "the old access point is gone, the new one stays"
    );
    let out = env.deploy(&["plan", "-f", &edited]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
}
