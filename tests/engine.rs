//! End-to-end tests of the deploy engine: the built binary against moto server, with every
//! AWS call counted by the recording proxy (never by the tool's own report).

mod common;

use aws_sdk_cloudwatchlogs as logs;
use aws_sdk_ec2 as ec2;
use aws_sdk_ecs as ecs;
use aws_sdk_iam as iam;
use common::{assert_success, schema_check, stderr, stdout, TestEnv};
use std::path::PathBuf;

const REGION: &str = "us-west-2";
const STACK: &str = "stacks/monitoring.yaml";
const EXEC_ROLE: &str = "monitoring-execution-us-west-2";
const PROM_ROLE: &str = "monitoring-prometheus-us-west-2";

fn apply(env: &TestEnv, file: &str) {
    let out = env.deploy(&["apply", "-f", file, "--auto-approve"]);
    assert_success(&out);
}

fn plan_says_no_changes(env: &TestEnv, file: &str) {
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", file]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("No changes."),
        "expected an empty plan, got:\n{}",
        stdout(&out)
    );
    let mutating = env.proxy.mutating_calls();
    assert!(
        mutating.is_empty(),
        "plan made mutating calls: {mutating:?}"
    );
}

/// The Prometheus container of the prom-task definition (Alertmanager runs beside it).
fn prometheus_container(
    list: &[ecs::types::ContainerDefinition],
) -> &ecs::types::ContainerDefinition {
    list.iter()
        .find(|c| c.name() == Some("prometheus"))
        .expect("a prometheus container")
}

async fn clients(env: &TestEnv) -> (ec2::Client, ecs::Client, iam::Client, logs::Client) {
    let c = env.sdk_config(REGION).await;
    (
        ec2::Client::new(&c),
        ecs::Client::new(&c),
        iam::Client::new(&c),
        logs::Client::new(&c),
    )
}

/// The security groups called `name` (Prometheus's, Grafana's, the EFS one, another stack's).
async fn groups_named(ec2c: &ec2::Client, name: &str) -> Vec<ec2::types::SecurityGroup> {
    ec2c.describe_security_groups()
        .filters(
            ec2::types::Filter::builder()
                .name("group-name")
                .values(name)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups
        .unwrap_or_default()
}

/// (port, source group id) of every ingress rule of `g`; a CIDR source panics (the Prometheus
/// group admits groups only).
fn ingress_from_groups(g: &ec2::types::SecurityGroup) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for p in g.ip_permissions() {
        assert!(p.ip_ranges().is_empty(), "an ingress range: {p:?}");
        for pair in p.user_id_group_pairs() {
            out.push((p.from_port().unwrap(), pair.group_id().unwrap().to_string()));
        }
    }
    out.sort();
    out
}

/// Prometheus's group admits exactly Grafana's group, on 9090 and 9093.
async fn assert_prometheus_admits_only_grafana(ec2c: &ec2::Client) {
    let grafana = groups_named(ec2c, "monitoring-grafana").await.remove(0);
    let grafana_id = grafana.group_id().unwrap().to_string();
    let g = groups_named(ec2c, "monitoring-prometheus").await.remove(0);
    assert_eq!(
        ingress_from_groups(&g),
        [(9090, grafana_id.clone()), (9093, grafana_id)]
    );
}

async fn service(ecsc: &ecs::Client) -> Option<ecs::types::Service> {
    ecsc.describe_services()
        .cluster("monitoring")
        .services("prometheus")
        .include(ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap()
        .services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status() == Some("ACTIVE"))
}

#[tokio::test(flavor = "multi_thread")]
async fn first_apply_creates_everything_and_the_next_plan_is_empty() {
    let env = TestEnv::new();
    env.seed(false);

    env.proxy.clear();
    let started = std::time::Instant::now();
    let out = env.deploy(&["plan", "-f", STACK]);
    let plan_time = started.elapsed();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("account 123456789012, region us-west-2"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 25 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{text}"
    );
    let calls = env.proxy.calls();
    assert!(calls.iter().all(|c| !c.is_mutating()), "{calls:?}");
    eprintln!(
        "MEASURE plan of an empty account: {} AWS calls, {:?}",
        calls.len(),
        plan_time
    );

    env.proxy.clear();
    apply(&env, STACK);
    let apply_calls = env.proxy.calls();
    eprintln!(
        "MEASURE first apply: {} AWS calls ({} mutating)",
        apply_calls.len(),
        apply_calls.iter().filter(|c| c.is_mutating()).count()
    );

    let (ec2c, ecsc, iamc, logsc) = clients(&env).await;
    let lg = logsc
        .describe_log_groups()
        .log_group_name_prefix("/ecs/prom-task")
        .send()
        .await
        .unwrap()
        .log_groups
        .unwrap_or_default();
    assert_eq!(lg.len(), 1);
    assert_eq!(lg[0].retention_in_days(), Some(30));
    for role in [EXEC_ROLE, PROM_ROLE] {
        let r = iamc.get_role().role_name(role).send().await.unwrap();
        let tags = r.role().unwrap().tags();
        assert!(
            tags.iter()
                .any(|t| t.key() == "deploy:stack" && t.value() == "monitoring"),
            "{role} untagged"
        );
    }
    let groups = groups_named(&ec2c, "monitoring-prometheus").await;
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_prometheus_admits_only_grafana(&ec2c).await;
    // Grafana's egress names the groups that admit it (groups naming each other: both are
    // created, then the rules are completed).
    let grafana = groups_named(&ec2c, "monitoring-grafana").await.remove(0);
    let efs = groups_named(&ec2c, "monitoring-grafana-efs")
        .await
        .remove(0);
    let mut egress_to_groups: Vec<(i32, String)> = grafana
        .ip_permissions_egress()
        .iter()
        .flat_map(|p| {
            p.user_id_group_pairs()
                .iter()
                .map(|pair| (p.from_port().unwrap(), pair.group_id().unwrap().to_string()))
        })
        .collect();
    egress_to_groups.sort();
    let (prom_id, efs_id) = (g.group_id().unwrap(), efs.group_id().unwrap());
    assert_eq!(
        egress_to_groups,
        [
            (2049, efs_id.to_string()),
            (9090, prom_id.to_string()),
            (9093, prom_id.to_string())
        ]
    );
    let efs_ingress = ingress_from_groups(&efs);
    assert_eq!(
        efs_ingress,
        [(2049, grafana.group_id().unwrap().to_string())]
    );
    let egress_ports: Vec<i32> = g
        .ip_permissions_egress()
        .iter()
        .filter_map(|p| p.from_port())
        .collect();
    assert!(
        egress_ports.contains(&3000) && egress_ports.contains(&443),
        "{egress_ports:?}"
    );
    assert!(
        !g.ip_permissions_egress()
            .iter()
            .any(|p| p.ip_protocol() == Some("-1")),
        "the default allow-all egress must be gone"
    );
    let svc = service(&ecsc).await.expect("service exists");
    assert_eq!(svc.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let net = svc
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap();
    assert_eq!(net.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
    assert_eq!(net.subnets().len(), 2);
    let td = ecsc
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.family(), Some("prom-task"));
    assert_eq!(td.cpu(), Some("256"));
    assert_eq!(td.memory(), Some("512"));
    assert_eq!(td.ephemeral_storage().map(|e| e.size_in_gib()), Some(30));
    let c = prometheus_container(td.container_definitions());
    assert_eq!(c.image(), Some("prom/prometheus:v2.53.4"));
    assert!(c.health_check().is_some());

    plan_says_no_changes(&env, STACK);
    let plan_calls = env.proxy.calls().len();
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve"]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."));
    let noop = env.proxy.calls();
    assert!(
        noop.iter().all(|c| !c.is_mutating()),
        "no-op apply mutated: {noop:?}"
    );
    eprintln!(
        "MEASURE plan of the applied stack: {plan_calls} AWS calls; no-op apply: {} AWS calls, 0 mutating",
        noop.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_told_apart_and_repaired() {
    let env = TestEnv::new();
    env.seed(false);
    apply(&env, STACK);
    let (ec2c, ecsc, iamc, logsc) = clients(&env).await;

    // A widened security group rule.
    let g = groups_named(&ec2c, "monitoring-prometheus").await.remove(0);
    ec2c.authorize_security_group_ingress()
        .group_id(g.group_id().unwrap())
        .ip_permissions(
            ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(9090)
                .to_port(9090)
                .ip_ranges(ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A different log retention.
    logsc
        .put_retention_policy()
        .log_group_name("/ecs/prom-task")
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    // A changed task role policy.
    iamc.put_role_policy()
        .role_name(PROM_ROLE)
        .policy_name("ecs-exec")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    // A different image, registered by hand and rolled out.
    let svc = service(&ecsc).await.unwrap();
    let td = ecsc
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    let mut containers = td.container_definitions().to_vec();
    containers
        .iter_mut()
        .find(|c| c.name() == Some("prometheus"))
        .unwrap()
        .image = Some("prom/prometheus:v2.40.0".into());
    let hand = ecsc
        .register_task_definition()
        .family("prom-task")
        .set_container_definitions(Some(containers))
        .cpu("256")
        .memory("512")
        .network_mode(ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(ecs::types::Compatibility::Fargate)
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .send()
        .await
        .unwrap();
    let hand_arn = hand
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    ecsc.update_service()
        .cluster("monitoring")
        .service("prometheus")
        .task_definition(&hand_arn)
        .send()
        .await
        .unwrap();

    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", STACK]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(env.proxy.mutating_calls().is_empty());
    assert!(text.contains("Changed outside deploy"), "{text}");
    for addr in [
        "security_group.prometheus",
        "log_group.prometheus",
        "iam_role.prometheus",
        "ecs_service.prometheus",
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(addr) && l.contains("(changed outside deploy)")),
            "{addr} not reported as drift:\n{text}"
        );
    }
    assert!(
        text.contains("is lost"),
        "rolling Prometheus back must warn about history loss:\n{text}"
    );

    apply(&env, STACK);
    plan_says_no_changes(&env, STACK);
    // The widened rule is revoked: only Grafana's group again.
    assert_prometheus_admits_only_grafana(&ec2c).await;
    let lg = logsc
        .describe_log_groups()
        .log_group_name_prefix("/ecs/prom-task")
        .send()
        .await
        .unwrap();
    assert_eq!(lg.log_groups()[0].retention_in_days(), Some(30));
    let p = iamc
        .get_role_policy()
        .role_name(PROM_ROLE)
        .policy_name("ecs-exec")
        .send()
        .await
        .unwrap();
    let doc = urlencoding::decode(p.policy_document())
        .unwrap()
        .into_owned();
    assert!(
        doc.contains("ssmmessages:CreateControlChannel") && !doc.contains("s3:*"),
        "{doc}"
    );
    let svc = service(&ecsc).await.unwrap();
    assert_ne!(svc.task_definition(), Some(hand_arn.as_str()));
    let td = ecsc
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        prometheus_container(td.task_definition().unwrap().container_definitions()).image(),
        Some("prom/prometheus:v2.53.4")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_edit_is_not_called_drift_and_ignored_attributes_are_left_alone() {
    let env = TestEnv::new();
    env.seed(false);
    let file = env.stack_copy("ignore.yaml", |t| {
        t.replace(
            "    enable_execute_command: true\n",
            "    enable_execute_command: true\n    ignore_changes: [desired_count]\n",
        )
    });
    apply(&env, &file);
    let (_, ecsc, _, _) = clients(&env).await;
    ecsc.update_service()
        .cluster("monitoring")
        .service("prometheus")
        .desired_count(3)
        .send()
        .await
        .unwrap();
    plan_says_no_changes(&env, &file);

    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace(
            "    enable_execute_command: true\n",
            "    enable_execute_command: true\n    ignore_changes: [desired_count]\n",
        )
        .replace("retention_days: 30", "retention_days: 60")
        // A new argument: a new revision, so the service is updated (a prometheus.yml change
        // would reload through the config bucket instead).
        .replace(
            "--storage.tsdb.retention.time=15d",
            "--storage.tsdb.retention.time=14d",
        )
    });
    let out = env.deploy(&["plan", "-f", &edited]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.contains("log_group.prometheus") && l.contains("(changed in the stack)")),
        "{text}"
    );
    assert!(text.contains("~ retention_days: 30 -> 60"), "{text}");
    assert!(!text.contains("Changed outside deploy"), "{text}");

    // Applied: the edit is made (the service rolls to the new revision) and the ignored
    // attribute keeps its live value.
    env.proxy.clear();
    apply(&env, &edited);
    assert!(
        env.proxy
            .calls()
            .iter()
            .any(|c| c.action == "UpdateService" && c.service == "ecs"),
        "the service was not updated, so nothing could reset its count"
    );
    let svc = service(&ecsc).await.expect("the service");
    assert!(
        svc.task_definition().unwrap().ends_with(":2"),
        "{:?}",
        svc.task_definition()
    );
    assert_eq!(svc.desired_count(), 3, "apply reset an ignored attribute");
    let (_, _, _, logsc) = clients(&env).await;
    let group = logsc
        .describe_log_groups()
        .log_group_name_prefix("/ecs/prom-task")
        .send()
        .await
        .unwrap()
        .log_groups()[0]
        .clone();
    assert_eq!(group.retention_in_days(), Some(60));
    plan_says_no_changes(&env, &edited);
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_the_stack_does_not_own_are_conflicts_until_imported() {
    let env = TestEnv::new();
    let seeded = env.seed(true); // hand-made /ecs/prom-task and prom-task
    let vpc = seeded["vpc_id"].as_str().unwrap().to_string();
    let (ec2c, ecsc, iamc, _) = clients(&env).await;
    // A same-named decoy of every other kind, without ownership tags.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iamc.create_role()
        .role_name(EXEC_ROLE)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let decoy_sg = ec2c
        .create_security_group()
        .group_name("monitoring-prometheus")
        // Same description as the stack's: adoption converges it in place (a different one
        // would force a replacement, which the plan would show).
        .description("Prometheus and Alertmanager; 9090 and 9093 only from Grafana")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    ecsc.create_cluster()
        .cluster_name("monitoring")
        .send()
        .await
        .unwrap();
    // A hand-made service running the hand-made task definition in that cluster.
    let subnets: Vec<String> = seeded["private_subnet_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ecsc.create_service()
        .cluster("monitoring")
        .service_name("prometheus")
        .task_definition(seeded["task_definition_arn"].as_str().unwrap())
        .desired_count(1)
        .launch_type(ecs::types::LaunchType::Fargate)
        .network_configuration(
            ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets))
                        .security_groups(&decoy_sg)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let file = env.stack_copy("adopt.yaml", |t| t);
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", &file, "--auto-approve"]);
    assert!(
        !out.status.success(),
        "apply must refuse:\n{}",
        stdout(&out)
    );
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "apply touched AWS: {:?}",
        env.proxy.mutating_calls()
    );
    let text = stdout(&out);
    for addr in [
        "log_group.prometheus",
        "task_definition.prometheus",
        "iam_role.execution",
        "security_group.prometheus",
        "ecs_cluster.monitoring",
        "ecs_service.prometheus",
    ] {
        assert!(
            text.contains(&format!("! {addr}:")),
            "no conflict for {addr}:\n{text}"
        );
    }
    assert!(
        stderr(&out).contains("ownership conflict"),
        "{}",
        stderr(&out)
    );

    for (addr, id) in [
        ("log_group.prometheus", "/ecs/prom-task"),
        ("task_definition.prometheus", "prom-task"),
        ("iam_role.execution", EXEC_ROLE),
        ("security_group.prometheus", decoy_sg.as_str()),
        ("ecs_cluster.monitoring", "monitoring"),
        ("ecs_service.prometheus", "prometheus"),
    ] {
        let out = env.deploy(&["import", "-f", &file, addr, id]);
        assert_success(&out);
        assert!(
            stdout(&out).contains("(adopted: ownership tags are added)"),
            "{}",
            stdout(&out)
        );
    }
    assert!(std::fs::read_to_string(&file).unwrap().contains("imports:"));
    // The adopted resources are shown, then converged by apply.
    apply(&env, &file);
    plan_says_no_changes(&env, &file);
    let g = ec2c
        .describe_security_groups()
        .group_ids(&decoy_sg)
        .send()
        .await
        .unwrap();
    assert!(g.security_groups()[0]
        .tags()
        .iter()
        .any(|t| t.key() == Some("deploy:stack")));
    let r = iamc.get_role().role_name(EXEC_ROLE).send().await.unwrap();
    assert!(r
        .role()
        .unwrap()
        .tags()
        .iter()
        .any(|t| t.key() == "deploy:stack"));
    // The adopted service now carries the tags and runs the stack's revision.
    let svc = service(&ecsc).await.unwrap();
    assert!(svc.tags().iter().any(|t| t.key() == Some("deploy:stack")));
    assert_ne!(
        svc.task_definition(),
        seeded["task_definition_arn"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_what_the_stack_owns_and_nothing_else() {
    let env = TestEnv::new();
    env.seed(false);
    let unprotected = env.unprotected_stack();
    let (ec2c, ecsc, iamc, logsc) = clients(&env).await;
    apply(&env, STACK);
    // Another stack in the same account and region.
    let other = env.stack_copy("other.yaml", |t| {
        let t = t
            .replace("stack: monitoring", "stack: other")
            .replace("/ecs/prom-task", "/ecs/other-prom")
            .replace("name: monitoring-", "name: other-")
            .replace("name: monitoring\n", "name: other\n")
            .replace("family: prom-task", "family: other-prom")
            .replace("name: prometheus\n", "name: other-prometheus\n")
            .replace("name: monitoring/prometheus/", "name: other/prometheus/")
            // Its own Grafana: log group, family, service, secrets, rule.
            .replace("/ecs/grafana-task", "/ecs/other-grafana")
            .replace("family: grafana-task", "family: other-grafana")
            .replace("name: grafana\n", "name: other-grafana\n")
            .replace("name: monitoring/grafana/", "name: other/grafana/")
            .replace("priority: 100", "priority: 101")
            .replace(
                "grafana.showcase.example.com",
                "other-grafana.showcase.example.com",
            );
        // No Cloud Map namespace: moto allows one private namespace per VPC (AWS allows
        // several with different names).
        let (head, tail) = t.split_once("\n# Stable names inside the VPC").unwrap();
        let tail = &tail[tail.find("\nservices:\n").unwrap()..];
        format!("{head}{tail}").replace("    service_registries: [prometheus]\n", "")
    });
    apply(&env, &other);
    // An untagged log group nobody declared.
    logsc
        .create_log_group()
        .log_group_name("/hand/made")
        .send()
        .await
        .unwrap();

    env.proxy.clear();
    let out = env.deploy(&["destroy", "-f", &unprotected, "--auto-approve"]);
    assert_success(&out);
    assert!(stdout(&out).contains("to destroy."), "{}", stdout(&out));

    assert!(groups_named(&ec2c, "monitoring-prometheus")
        .await
        .is_empty());
    assert!(iamc.get_role().role_name(EXEC_ROLE).send().await.is_err());
    assert!(service(&ecsc).await.is_none());
    let names: Vec<String> = logsc
        .describe_log_groups()
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .filter_map(|g| g.log_group_name().map(str::to_string))
        .collect();
    assert!(!names.contains(&"/ecs/prom-task".to_string()), "{names:?}");
    assert!(
        names.contains(&"/ecs/other-prom".to_string()),
        "the other stack's log group must survive"
    );
    assert!(
        names.contains(&"/hand/made".to_string()),
        "an untagged log group must survive"
    );
    assert_eq!(groups_named(&ec2c, "other-prometheus").await.len(), 1);
    assert!(iamc
        .get_role()
        .role_name("other-execution-us-west-2")
        .send()
        .await
        .is_ok());
    let alb = aws_sdk_elasticloadbalancingv2::Client::new(&env.sdk_config(REGION).await)
        .describe_load_balancers()
        .names("application-load-balancer")
        .send()
        .await
        .unwrap();
    assert_eq!(alb.load_balancers().len(), 1, "the ALB is never touched");
    let revisions = ecsc
        .list_task_definitions()
        .family_prefix("prom-task")
        .status(ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert!(
        revisions.task_definition_arns().is_empty(),
        "{:?}",
        revisions.task_definition_arns()
    );

    // A second destroy has nothing to do; destroy → apply → destroy works.
    env.proxy.clear();
    let out = env.deploy(&["destroy", "-f", &unprotected, "--auto-approve"]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    assert!(env.proxy.mutating_calls().is_empty());
    apply(&env, STACK);
    plan_says_no_changes(&env, STACK);
    let out = env.deploy(&["destroy", "-f", &unprotected, "--auto-approve"]);
    assert_success(&out);
    assert!(groups_named(&ec2c, "monitoring-prometheus")
        .await
        .is_empty());
}

/// (name, edit of the reference stack, field path the error names, words it contains)
type BadCase<'a> = (&'a str, &'a dyn Fn(String) -> String, &'a str, &'a str);

#[test]
fn bad_input_is_located_and_makes_no_aws_call() {
    let env = TestEnv::new();
    env.seed(false);
    let cases: [BadCase; 7] = [
        (
            "unknown key",
            &|t| {
                t.replace(
                    "    retention_days: 30\n",
                    "    retention_days: 30\n    retension: 5\n",
                )
            },
            "log_groups.prometheus",
            "retension",
        ),
        (
            "wrong type",
            &|t| t.replace("cpu: 256", "cpu: lots"),
            "task_definitions.prometheus.cpu",
            "lots",
        ),
        (
            "missing field",
            &|t| t.replace("    family: prom-task\n", ""),
            "task_definitions.prometheus",
            "family",
        ),
        (
            "fargate pair",
            &|t| t.replace("memory: 512", "memory: 4096"),
            "task_definitions.prometheus.memory",
            "Fargate",
        ),
        (
            "undefined reference",
            &|t| t.replace("task_role: prometheus", "task_role: nobody"),
            "task_definitions.prometheus.task_role",
            "iam_roles.nobody",
        ),
        (
            "bad cidr",
            &|t| t.replace("cidr: 0.0.0.0/0", "cidr: 10.0.0.300/8"),
            "security_groups.prometheus.egress.1.cidr",
            "CIDR",
        ),
        (
            "port out of range",
            &|t| t.replace("ports: [9090]", "ports: [90900]"),
            "task_definitions.prometheus.containers.prometheus.ports.0",
            "out of range",
        ),
    ];
    for (name, edit, path, words) in cases {
        let file = env.stack_copy(&format!("bad-{}.yaml", name.replace(' ', "-")), edit);
        for cmd in ["validate", "plan", "apply"] {
            env.proxy.clear();
            let mut args = vec![cmd, "-f", file.as_str()];
            if cmd == "apply" {
                args.push("--auto-approve");
            }
            let out = env.deploy(&args);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{name}: {cmd} must exit 1:\n{}",
                stderr(&out)
            );
            let err = stderr(&out);
            let located = err.lines().any(|l| {
                l.contains(&file) && l.contains(path) && {
                    // file:LINE:COLUMN: path: message
                    let rest = &l[l.find(&file).unwrap() + file.len()..];
                    let mut parts = rest.trim_start_matches(':').split(':');
                    parts
                        .next()
                        .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n > 0))
                        && parts.next().is_some_and(|n| n.parse::<usize>().is_ok())
                }
            });
            assert!(
                located,
                "{name}: {cmd}: error must name file, line, column and `{path}`:\n{err}"
            );
            assert!(
                err.contains(words),
                "{name}: error must mention `{words}`:\n{err}"
            );
            assert!(
                env.proxy.calls().is_empty(),
                "{name}: {cmd} called AWS: {:?}",
                env.proxy.calls()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replacements_create_before_destroy_and_revisions_roll_the_service() {
    let env = TestEnv::new();
    env.seed(false);
    apply(&env, STACK);
    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace(
            "description: Prometheus and Alertmanager; 9090 and 9093 only from Grafana",
            "description: Prometheus server (port 9090), private",
        )
        .replace("prom/prometheus:v2.53.4", "prom/prometheus:v2.53.3")
    });
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", &edited]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("-/+ security_group.prometheus"), "{text}");
    assert!(text.contains("# forces replacement"), "{text}");
    assert!(text.contains("new revision of prom-task"), "{text}");
    assert!(
        text.contains("~ task_definition:"),
        "the service must roll to the new revision:\n{text}"
    );
    assert!(
        text.contains("Prometheus history") && text.contains("is lost"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to add, 2 to change, 1 to replace, 0 to destroy."),
        "{text}"
    );

    env.proxy.clear();
    apply(&env, &edited);
    let calls: Vec<String> = env
        .proxy
        .mutating_calls()
        .iter()
        .map(|c| c.action.clone())
        .collect();
    let at = |a: &str| {
        calls
            .iter()
            .position(|c| c == a)
            .unwrap_or_else(|| panic!("no {a} in {calls:?}"))
    };
    assert!(at("CreateSecurityGroup") < at("UpdateService"), "{calls:?}");
    assert!(at("UpdateService") < at("DeleteSecurityGroup"), "{calls:?}");
    assert!(
        at("RegisterTaskDefinition") < at("UpdateService"),
        "{calls:?}"
    );
    plan_says_no_changes(&env, &edited);

    let (ec2c, ecsc, _, _) = clients(&env).await;
    let owned: Vec<_> = ec2c
        .describe_security_groups()
        .filters(
            ec2::types::Filter::builder()
                .name("tag:deploy:stack")
                .values("monitoring")
                .build(),
        )
        .filters(
            ec2::types::Filter::builder()
                .name("tag:deploy:address")
                .values("security_group.prometheus")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()
        .to_vec();
    assert_eq!(owned.len(), 1, "exactly the new group is left: {owned:?}");
    let svc = service(&ecsc).await.unwrap();
    let sgs = svc
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap()
        .security_groups()
        .to_vec();
    assert_eq!(sgs, vec![owned[0].group_id().unwrap().to_string()]);
    // The previous revision stays registered so the circuit breaker can roll back to it.
    let revisions = ecsc
        .list_task_definitions()
        .family_prefix("prom-task")
        .send()
        .await
        .unwrap();
    assert_eq!(revisions.task_definition_arns().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_5xx_are_retried_and_access_denied_is_not() {
    let env = TestEnv::new();
    env.seed(false);
    env.proxy.clear();
    env.proxy.inject(serde_json::json!([
        {"action": "DescribeLogGroups", "status": 400, "code": "ThrottlingException", "message": "Rate exceeded", "times": 2},
        {"action": "DescribeSecurityGroups", "status": 503, "code": "Unavailable", "message": "try later", "times": 2},
        {"action": "DescribeClusters", "status": 500, "code": "ServerException", "message": "boom", "times": 1},
    ]));
    let out = env.deploy(&["plan", "-f", STACK]);
    assert_success(&out);
    let calls = env.proxy.calls();
    let count = |a: &str, injected: bool| {
        calls
            .iter()
            .filter(|c| c.action == a && c.injected == injected)
            .count()
    };
    assert_eq!(count("DescribeLogGroups", true), 2);
    assert!(count("DescribeLogGroups", false) >= 1);
    assert_eq!(count("DescribeSecurityGroups", true), 2);
    assert_eq!(count("DescribeClusters", true), 1);
    assert!(count("DescribeClusters", false) >= 1);

    env.proxy.clear();
    env.proxy.inject(serde_json::json!([
        {"action": "GetRole", "status": 403, "code": "AccessDenied", "message": "not authorized to perform iam:GetRole", "times": 1},
    ]));
    let out = env.deploy(&["plan", "-f", STACK]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("iam GetRole"),
        "the error names service and operation:\n{err}"
    );
    assert!(
        err.contains("AccessDenied"),
        "the error names the AWS code:\n{err}"
    );
    assert!(
        err.contains("iam_role."),
        "the error names the resource address:\n{err}"
    );
    let get_role: Vec<_> = env
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.action == "GetRole")
        .collect();
    assert_eq!(get_role.iter().filter(|c| c.injected).count(), 1);
    // The reference stack has three roles (execution, prometheus, grafana), read
    // concurrently: each is asked for at most once, and a retry of the denied call would make
    // a fourth GetRole. (The bound was 2 from when the plan read two roles before the denied
    // one stopped it; with three concurrent reads it failed by timing alone.)
    assert!(
        get_role.len() <= 3,
        "access denied must not be retried: {get_role:?}"
    );
}

#[test]
fn render_writes_what_apply_sends_and_the_container_writes_what_promtool_checked() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    let dir = env.path().join("rendered");
    let out = env.deploy(&["render", "-f", STACK, "--out", dir.to_str().unwrap()]);
    assert_success(&out);
    let config_path = dir.join("files/prometheus/prometheus/etc/prometheus/prometheus.yml");
    let config = std::fs::read(&config_path).expect("rendered prometheus.yml");
    let text = String::from_utf8(config.clone()).unwrap();
    let target = format!("{}:3000", seeded["alb_dns_name"].as_str().unwrap());
    assert!(
        text.contains(&target),
        "scrape target {target} missing:\n{text}"
    );

    let promtool = which("promtool");
    let check = std::process::Command::new(&promtool)
        .args(["check", "config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool rejected the config:\n{}{}",
        stdout(&check),
        stderr(&check)
    );

    // The task definition request as apply sends it.
    let td: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("task-definitions/prom-task.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(td["family"], "prom-task");
    assert!(td["executionRoleArn"]
        .as_str()
        .unwrap()
        .ends_with(EXEC_ROLE));
    let c = td["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "prometheus")
        .unwrap();
    let entry: Vec<&str> = c["entryPoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(entry, ["/bin/sh", "-c"]);
    let command: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let environment: Vec<(String, String)> = c["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv["name"].as_str().unwrap().to_string(),
                kv["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    // What the container then writes and runs is checked, for every container, by
    // tests/rendered_containers.rs; here: the program gets the stack's arguments.
    let script = &command[0];
    assert!(script.contains("exec '/bin/prometheus'"), "{script}");
    // prometheus.yml is not in the task definition: it reloads, so it travels through the
    // config bucket (its sidecar fetches it into /etc/prometheus); checked after the apply.
    assert!(
        !script.contains("'/etc/prometheus/prometheus.yml'"),
        "{script}"
    );
    assert!(!environment
        .iter()
        .any(|(_, v)| v.as_bytes() == config.as_slice()));
    for arg in [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.retention.time=15d",
    ] {
        assert!(command[1..].iter().any(|a| a == arg), "{command:?}");
    }

    // What apply then registers is what render wrote, container by container: entry point,
    // command, environment and secrets (a secret the render names by its stack address is
    // registered with that secret's ARN).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve"]);
    assert_success(&out);
    // The prometheus.yml promtool checked is the one the bucket holds for the container.
    let bucket =
        deploy::render::reload::bucket_name("monitoring", "production", "123456789012", REGION);
    let published = rt
        .block_on(async {
            let aws = env.moto.aws().await;
            deploy::aws::s3::published_files(&aws, &bucket, &Default::default()).await
        })
        .unwrap();
    assert_eq!(
        published
            .get("prom-task/prometheus/prometheus.yml")
            .map(String::as_bytes),
        Some(config.as_slice()),
        "{:?}",
        published.keys().collect::<Vec<_>>()
    );
    let conf = rt.block_on(env.sdk_config(REGION));
    let ecsc = ecs::Client::new(&conf);
    let smc = aws_sdk_secretsmanager::Client::new(&conf);
    let stack: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(common::repo_root().join(STACK)).unwrap())
            .unwrap();
    let mut families = Vec::new();
    for entry in std::fs::read_dir(dir.join("task-definitions")).unwrap() {
        let rendered: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        let family = rendered["family"].as_str().unwrap().to_string();
        let registered = rt
            .block_on(
                ecsc.describe_task_definition()
                    .task_definition(&family)
                    .send(),
            )
            .unwrap()
            .task_definition
            .unwrap();
        let by_name = |c: &ecs::types::ContainerDefinition| c.name().unwrap().to_string();
        let rendered_containers = rendered["containerDefinitions"].as_array().unwrap();
        assert_eq!(
            rendered_containers.len(),
            registered.container_definitions().len(),
            "{family}"
        );
        for rc in rendered_containers {
            let name = rc["name"].as_str().unwrap();
            let c = registered
                .container_definitions()
                .iter()
                .find(|c| by_name(c) == name)
                .unwrap_or_else(|| panic!("{family}: no registered container {name}"));
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            let what = format!("{family}/{name}");
            assert_eq!(
                c.entry_point(),
                strings(&rc["entryPoint"]),
                "{what} entryPoint"
            );
            assert_eq!(c.command(), strings(&rc["command"]), "{what} command");
            let pairs = |v: &serde_json::Value, value: &str| -> Vec<(String, String)> {
                let mut out: Vec<(String, String)> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|kv| {
                                (
                                    kv["name"].as_str().unwrap().to_string(),
                                    kv[value].as_str().unwrap().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.sort();
                out
            };
            let environment: Vec<(String, String)> =
                common::registered_environment(c).into_iter().collect();
            assert_eq!(
                environment,
                pairs(&rc["environment"], "value"),
                "{what} environment"
            );
            let mut secrets: Vec<(String, String)> = c
                .secrets()
                .iter()
                .map(|s| (s.name().to_string(), s.value_from().to_string()))
                .collect();
            secrets.sort();
            let expected: Vec<(String, String)> = pairs(&rc["secrets"], "valueFrom")
                .into_iter()
                .map(|(var, from)| match from.strip_prefix("secret.") {
                    // The stack's own secret (`secret.KEY`, then `:json_key::` when one key
                    // of its JSON is used): registered with the secret's ARN in its place.
                    Some(rest) => {
                        let (key, json_key) = match rest.split_once(':') {
                            Some((key, tail)) => (key, format!(":{tail}")),
                            None => (rest, String::new()),
                        };
                        let secret_name = stack["secrets"][key]["name"].as_str().unwrap();
                        let arn = rt
                            .block_on(smc.describe_secret().secret_id(secret_name).send())
                            .unwrap()
                            .arn
                            .unwrap();
                        (var, format!("{arn}{json_key}"))
                    }
                    None => (var, from),
                })
                .collect();
            assert_eq!(secrets, expected, "{what} secrets");
        }
        families.push(family);
    }
    families.sort();
    assert_eq!(families, ["grafana-task", "prom-task"]);
}

#[test]
fn validate_prints_task_definition_sizes_offline() {
    // No moto at all: validate must not need AWS.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args(["validate", "-f", STACK])
        .current_dir(common::repo_root())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("task definition prom-task:"))
        .unwrap_or_else(|| panic!("{text}"));
    let bytes: usize = line
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 1000 && bytes < 65536, "{line}");
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.exists()))
        .unwrap_or_else(|| {
            panic!("{tool} not found: install Debian's `prometheus` package (bash scripts/setup.sh does: apt-get install prometheus prometheus-alertmanager)")
        })
}

/// Starts `deploy apply` with every AWS call slowed down, and returns once it has made at
/// least `mutating` mutating calls (the child is still running).
fn apply_until(env: &TestEnv, mutating: usize) -> std::process::Child {
    env.proxy.clear();
    env.proxy
        .inject(serde_json::json!([{"action": "*", "delay_ms": 150, "times": 100000}]));
    let mut cmd = env.deploy_command(&["apply", "-f", STACK, "--auto-approve"]);
    // The plan printed first is larger than a pipe's buffer: an unread stdout pipe would
    // block the child before it makes any change. Progress and the report go to stderr.
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn deploy apply");
    let started = std::time::Instant::now();
    while env.proxy.mutating_calls().len() < mutating {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("apply ended ({status}) before {mutating} mutating calls");
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "apply made too few calls: {:?}",
            env.proxy
                .calls()
                .iter()
                .map(|c| c.action.clone())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

async fn assert_no_duplicates(env: &TestEnv) {
    let (ec2c, ecsc, _, logsc) = clients(env).await;
    let groups = ec2c
        .describe_security_groups()
        .filters(
            ec2::types::Filter::builder()
                .name("tag:deploy:stack")
                .values("monitoring")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // One group per address: prometheus, grafana, efs.
    let mut addresses: Vec<&str> = groups
        .security_groups()
        .iter()
        .flat_map(|g| g.tags())
        .filter(|t| t.key() == Some("deploy:address"))
        .filter_map(|t| t.value())
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [
            "security_group.efs",
            "security_group.grafana",
            "security_group.prometheus"
        ],
        "{:?}",
        groups.security_groups()
    );
    for family in ["prom-task", "grafana-task"] {
        let revisions = ecsc
            .list_task_definitions()
            .family_prefix(family)
            .send()
            .await
            .unwrap();
        assert_eq!(
            revisions.task_definition_arns().len(),
            1,
            "{:?}",
            revisions.task_definition_arns()
        );
    }
    let services = ecsc
        .list_services()
        .cluster("monitoring")
        .send()
        .await
        .unwrap();
    assert_eq!(services.service_arns().len(), 2);
    let lg = logsc
        .describe_log_groups()
        .log_group_name_prefix("/ecs/prom-task")
        .send()
        .await
        .unwrap();
    assert_eq!(lg.log_groups().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_several_points_then_a_rerun_converges() {
    // About 45 mutating calls make the first apply of the reference stack; kill early (roles,
    // groups, secrets), in the middle (file system, mount targets, task definitions, Cloud
    // Map) and near the end (listener rule, services).
    for kill_after in [1, 5, 12, 25, 40] {
        let env = TestEnv::new();
        env.seed(false);
        let mut child = apply_until(&env, kill_after);
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        env.proxy.clear_faults();
        env.proxy.wait_idle();
        // The killed apply left its lock: the rerun waits until it has seen it unchanged
        // for the stale age (short here), then takes it over.
        let out = env.deploy_with_env(
            &[
                "apply",
                "-f",
                STACK,
                "--auto-approve",
                "--lock-timeout",
                "60s",
            ],
            &[("DEPLOY_LOCK_STALE_AFTER", "1s")],
        );
        assert_success(&out);
        assert!(
            common::stderr(&out)
                .contains("warning: took over the stale lock of monitoring/production"),
            "{}",
            common::stderr(&out)
        );
        plan_says_no_changes(&env, STACK);
        assert_no_duplicates(&env).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_in_flight_changes_reports_and_exits_non_zero() {
    let env = TestEnv::new();
    env.seed(false);
    let child = apply_until(&env, 3);
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Interrupted"), "{err}");
    assert!(
        err.contains("Done (") && err.contains("Not started ("),
        "{err}"
    );
    let not_started = err.split("Not started (").nth(1).unwrap();
    let n: usize = not_started.split(')').next().unwrap().parse().unwrap();
    assert!(n > 0, "steps after the interrupt must not start:\n{err}");
    env.proxy.clear_faults();
    apply(&env, STACK);
    plan_says_no_changes(&env, STACK);
    assert_no_duplicates(&env).await;
}

#[test]
fn a_task_definition_over_the_ecs_limit_is_refused_offline() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::repo_root().join(STACK)).unwrap();
    let big = "x".repeat(70_000);
    let text = text.replace(
        "        log_group: prometheus\n",
        &format!("        log_group: prometheus\n        environment:\n          PADDING: {big}\n"),
    );
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, text).unwrap();
    // Through the recording proxy: "offline" means not one AWS call, counted.
    let env = TestEnv::new();
    env.seed(false);
    for command in ["validate", "plan", "apply"] {
        env.proxy.clear();
        let mut args = vec![command, "-f", file.to_str().unwrap()];
        if command == "apply" {
            args.push("--auto-approve");
        }
        let out = env.deploy(&args);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("task_definitions.prometheus")
                && err.contains("over ECS's limit of 65536"),
            "{command}: {err}"
        );
        let calls = env.proxy.calls();
        assert!(calls.is_empty(), "{command} called AWS: {calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_cluster_is_used_and_never_changed() {
    let env = TestEnv::new();
    env.seed(false);
    let (_, ecsc, _, _) = clients(&env).await;
    // Settings and tags of its own, which the stack's cluster section would set otherwise.
    ecsc.create_cluster()
        .cluster_name("shared")
        .settings(
            ecs::types::ClusterSetting::builder()
                .name(ecs::types::ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .tags(
            ecs::types::Tag::builder()
                .key("team")
                .value("platform")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // (status, settings, tags) of the shared cluster as ECS reports them.
    let cluster_state = || async {
        let c = ecsc
            .describe_clusters()
            .clusters("shared")
            .include(ecs::types::ClusterField::Settings)
            .include(ecs::types::ClusterField::Tags)
            .send()
            .await
            .unwrap()
            .clusters()[0]
            .clone();
        let settings: Vec<(String, String)> = c
            .settings()
            .iter()
            .map(|s| {
                (
                    s.name().map(|n| n.as_str().to_string()).unwrap_or_default(),
                    s.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut tags: Vec<(String, String)> = c
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        tags.sort();
        (c.status().unwrap_or_default().to_string(), settings, tags)
    };
    let before = cluster_state().await;
    assert_eq!(before.2, [("team".to_string(), "platform".to_string())]);
    assert_eq!(
        before.1,
        [("containerInsights".to_string(), "disabled".to_string())]
    );
    let file = env.stack_copy("existing.yaml", |t| {
        common::unprotected(t).replace(
            "    name: monitoring\n    container_insights: true\n",
            "    name: shared\n    existing: true\n",
        )
    });
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", &file]);
    assert_success(&out);
    assert!(!stdout(&out).contains("ecs_cluster."), "{}", stdout(&out));
    apply(&env, &file);
    let mut calls = env.proxy.calls();
    plan_says_no_changes(&env, &file);
    let services = ecsc.list_services().cluster("shared").send().await.unwrap();
    assert_eq!(services.service_arns().len(), 2, "Prometheus and Grafana");
    assert_eq!(cluster_state().await, before, "apply changed the cluster");
    env.proxy.clear();
    let out = env.deploy(&["destroy", "-f", &file, "--auto-approve"]);
    assert_success(&out);
    calls.extend(env.proxy.calls());
    assert_eq!(
        cluster_state().await,
        before,
        "destroy changed the existing cluster"
    );
    // Not one call that writes a cluster, over plan, apply and destroy.
    assert!(calls.iter().any(|c| c.action == "CreateService"));
    let cluster_writes: Vec<String> = calls
        .iter()
        .filter(|c| {
            c.service == "ecs"
                && [
                    "CreateCluster",
                    "UpdateCluster",
                    "UpdateClusterSettings",
                    "DeleteCluster",
                    "PutClusterCapacityProviders",
                ]
                .contains(&c.action.as_str())
        })
        .map(|c| c.to_string())
        .collect();
    assert!(cluster_writes.is_empty(), "{cluster_writes:?}");
    let svc = ecsc
        .describe_services()
        .cluster("shared")
        .services("prometheus")
        .send()
        .await
        .unwrap();
    assert!(
        svc.services()
            .iter()
            .all(|s| s.status() == Some("INACTIVE")),
        "the stack's service is gone: {:?}",
        svc.services()
    );
}

#[test]
fn detailed_exit_codes_follow_terraform() {
    let env = TestEnv::new();
    env.seed(false);
    let code = |args: &[&str]| env.deploy(args).status.code();
    assert_eq!(code(&["plan", "-f", STACK]), Some(0), "changes, no flag");
    // Colour: never into a pipe (nor with NO_COLOR), always when asked.
    let plain = env.deploy(&["plan", "-f", STACK]);
    assert!(!stdout(&plain).contains('\x1b'), "{}", stdout(&plain));
    let colored = env.deploy(&["plan", "-f", STACK, "--color", "always"]);
    assert!(
        stdout(&colored).contains("\x1b[32m  +\x1b[0m"),
        "{}",
        stdout(&colored)
    );
    assert_eq!(
        code(&["plan", "-f", STACK, "--detailed-exitcode"]),
        Some(2),
        "changes"
    );
    apply(&env, STACK);
    assert_eq!(
        code(&["plan", "-f", STACK, "--detailed-exitcode"]),
        Some(0),
        "no changes"
    );
    let bad = env.stack_copy("bad.yaml", |t| t.replace("cpu: 256", "cpu: 300"));
    assert_eq!(
        code(&["plan", "-f", &bad, "--detailed-exitcode"]),
        Some(1),
        "bad input"
    );
    let other_env = env.stack_copy("other-env.yaml", |t| {
        t.replace("environment: production", "environment: staging")
    });
    assert_eq!(
        code(&["plan", "-f", &other_env, "--detailed-exitcode"]),
        Some(1),
        "an ownership conflict is an error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_and_refused_when_stale() {
    let env = TestEnv::new();
    env.seed(false);
    let plan_file = env.path().join("create.plan");
    let plan_path = plan_file.to_str().unwrap();
    let out = env.deploy(&["plan", "-f", STACK, "--out", plan_path]);
    assert_success(&out);
    let planned = stdout(&out);

    let out = env.deploy(&["show", plan_path]);
    assert_success(&out);
    let shown = stdout(&out);
    let body =
        |t: &str| t[t.find("Stack monitoring").unwrap()..t.find("Plan:").unwrap()].to_string();
    assert_eq!(
        body(&shown),
        body(&planned),
        "show prints the plan that was reviewed"
    );

    // A plan file cannot be combined with -f or --region.
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", STACK, plan_path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot be combined"),
        "{}",
        stderr(&out)
    );
    assert!(env.proxy.calls().is_empty());

    // Something changes between plan and apply: refused, nothing changed.
    let (ec2c, _, _, logsc) = clients(&env).await;
    logsc
        .create_log_group()
        .log_group_name("/ecs/prom-task")
        .send()
        .await
        .unwrap();
    env.proxy.clear();
    let out = env.deploy(&["apply", plan_path]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("stale") && err.contains("log_group.prometheus now exists"),
        "{err}"
    );
    assert!(
        env.proxy.mutating_calls().is_empty(),
        "{:?}",
        env.proxy.mutating_calls()
    );
    logsc
        .delete_log_group()
        .log_group_name("/ecs/prom-task")
        .send()
        .await
        .unwrap();

    // Unchanged world: applied without asking, exactly as planned: the steps carried out
    // are the plan's, in its words (the JSON result) and at AWS (one create call per planned
    // create, counted by the proxy).
    env.proxy.clear();
    let out = env.deploy(&["apply", plan_path, "--format", "json"]);
    assert_success(&out);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let planned_steps: Vec<(String, String)> = saved["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let change = &saved["plan"]["changes"][s["change"].as_u64().unwrap() as usize];
            (
                change["address"].as_str().unwrap().to_string(),
                s["op"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let result = json_of(&out);
    let carried_out: Vec<(String, String)> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["outcome"], "done", "{s}");
            (
                s["address"].as_str().unwrap().to_string(),
                s["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(carried_out, planned_steps);
    assert!(planned_steps.len() >= 20, "{planned_steps:?}");
    let calls = env.proxy.calls();
    for (kind, service, action) in [
        ("log_group", "logs", "CreateLogGroup"),
        ("iam_role", "iam", "CreateRole"),
        ("security_group", "ec2", "CreateSecurityGroup"),
        ("ecs_cluster", "ecs", "CreateCluster"),
        ("task_definition", "ecs", "RegisterTaskDefinition"),
        ("secret", "secretsmanager", "CreateSecret"),
        ("target_group", "elasticloadbalancing", "CreateTargetGroup"),
        ("listener_rule", "elasticloadbalancing", "CreateRule"),
        ("efs_file_system", "elasticfilesystem", "CreateFileSystem"),
        ("efs_access_point", "elasticfilesystem", "CreateAccessPoint"),
        (
            "service_discovery_namespace",
            "servicediscovery",
            "CreatePrivateDnsNamespace",
        ),
    ] {
        let planned = planned_steps
            .iter()
            .filter(|(a, op)| a.starts_with(&format!("{kind}.")) && op == "create")
            .count();
        let made = calls
            .iter()
            .filter(|c| {
                c.service == service && c.action == action && (200..300).contains(&c.status)
            })
            .count();
        assert!(planned > 0, "the plan creates no {kind}: {planned_steps:?}");
        assert_eq!(made, planned, "{service}:{action} calls for {kind} creates");
    }
    // Services of ECS and of Cloud Map share the action name.
    let services = |prefix: &str| {
        planned_steps
            .iter()
            .filter(|(a, op)| a.starts_with(prefix) && op == "create")
            .count()
    };
    let made = |service: &str| {
        calls
            .iter()
            .filter(|c| {
                c.service == service
                    && c.action == "CreateService"
                    && (200..300).contains(&c.status)
            })
            .count()
    };
    assert_eq!(made("ecs"), services("ecs_service."));
    assert_eq!(
        made("servicediscovery"),
        services("service_discovery_service.")
    );
    plan_says_no_changes(&env, STACK);

    // A changed live resource and a changed lookup make later plans stale too.
    let update = env.path().join("update.plan");
    let update_path = update.to_str().unwrap();
    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace("retention_days: 30", "retention_days: 60")
    });
    assert_success(&env.deploy(&["plan", "-f", &edited, "--out", update_path]));
    logsc
        .put_retention_policy()
        .log_group_name("/ecs/prom-task")
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    let out = env.deploy(&["apply", update_path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("log_group.prometheus (/ecs/prom-task) was changed"),
        "{}",
        stderr(&out)
    );

    assert_success(&env.deploy(&["plan", "-f", &edited, "--out", update_path]));
    let vpc = ec2c
        .describe_vpcs()
        .filters(
            ec2::types::Filter::builder()
                .name("tag:Name")
                .values("showcase")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    ec2c.create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.20.99.0/24")
        .tag_specifications(
            ec2::types::TagSpecification::builder()
                .resource_type(ec2::types::ResourceType::Subnet)
                .tags(
                    ec2::types::Tag::builder()
                        .key("tier")
                        .value("private")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    env.proxy.clear();
    let out = env.deploy(&["apply", update_path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("subnets"), "{}", stderr(&out));
    assert!(env.proxy.mutating_calls().is_empty());

    // Another account or another deploy version: refused.
    let text = std::fs::read_to_string(&update).unwrap();
    let tampered = env.path().join("tampered.plan");
    // (Only the plan's own account: the ARNs in its live state are what it saw.)
    std::fs::write(
        &tampered,
        text.replace(
            "\"account_id\": \"123456789012\"",
            "\"account_id\": \"999999999999\"",
        ),
    )
    .unwrap();
    let out = env.deploy(&["apply", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("account 999999999999"),
        "{}",
        stderr(&out)
    );
    let version = format!("\"tool_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version));
    std::fs::write(
        &tampered,
        text.replace(&version, "\"tool_version\": \"0.0.0-other\""),
    )
    .unwrap();
    let out = env.deploy(&["apply", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("deploy 0.0.0-other"),
        "{}",
        stderr(&out)
    );

    // A destroy plan, saved and applied.
    let destroy = env.path().join("destroy.plan");
    let out = env.deploy(&[
        "plan",
        "-f",
        &env.unprotected_stack(),
        "--destroy",
        "--out",
        destroy.to_str().unwrap(),
    ]);
    assert_success(&out);
    assert!(stdout(&out).contains("20 to destroy."), "{}", stdout(&out));
    // (The new subnet changed the lookups since the update plan, not since this one.)
    assert_success(&env.deploy(&["apply", destroy.to_str().unwrap()]));
    assert!(groups_named(&ec2c, "monitoring-prometheus")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn targeting_limits_the_work_to_the_target_and_its_dependencies() {
    let env = TestEnv::new();
    env.seed(false);
    // On an empty account, targeting the service brings everything it depends on: its
    // cluster, task definition (roles, log groups, secrets), discovery service and namespace,
    // its group and, through the groups' rules, Grafana's and the EFS group.
    let out = env.deploy(&["plan", "-f", STACK, "--target", "ecs_service.prometheus"]);
    assert_success(&out);
    assert!(stdout(&out).contains("Plan: 13 to add"), "{}", stdout(&out));
    apply(&env, STACK);

    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace("retention_days: 30", "retention_days: 60")
            .replace(
                "description: Prometheus and Alertmanager; 9090 and 9093 only from Grafana",
                "description: Prometheus, private",
            )
    });
    let out = env.deploy(&["plan", "-f", &edited, "--target", "log_group.prometheus"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("~ retention_days: 30 -> 60"), "{text}");
    assert!(!text.contains("security_group.prometheus"), "{text}");
    assert!(
        text.contains("targeting: only log_group.prometheus were checked"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{text}"
    );

    env.proxy.clear();
    let out = env.deploy(&[
        "apply",
        "-f",
        &edited,
        "--auto-approve",
        "--target",
        "log_group.prometheus",
    ]);
    assert_success(&out);
    let mutating: Vec<String> = env
        .proxy
        .mutating_calls()
        .iter()
        .map(|c| c.action.clone())
        .collect();
    assert!(
        mutating
            .iter()
            .all(|a| a != "CreateSecurityGroup" && a != "DeleteSecurityGroup"),
        "{mutating:?}"
    );
    let out = env.deploy(&["plan", "-f", &edited]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("-/+ security_group.prometheus"),
        "the untargeted change is still to do:\n{text}"
    );
    assert!(!text.contains("log_group.prometheus"), "{text}");

    let out = env.deploy(&["plan", "-f", STACK, "--target", "log_group.nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such resource"),
        "{}",
        stderr(&out)
    );
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(out)))
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_follows_its_versioned_schema() {
    let env = TestEnv::new();
    env.seed(false);
    let out = env.deploy(&["plan", "-f", STACK, "--format", "json"]);
    assert_success(&out);
    let plan = json_of(&out);
    schema_check(&plan).unwrap();
    assert_eq!(plan["format_version"], "1.0");
    assert_eq!(plan["kind"], "plan");
    assert_eq!(plan["summary"]["add"], 25);
    assert!(plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["action"] == "create"));

    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve", "--format", "json"]);
    assert_success(&out);
    let result = json_of(&out);
    schema_check(&result).unwrap();
    assert_eq!(result["kind"], "apply_result");
    assert_eq!(result["succeeded"], true);
    assert!(result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["outcome"] == "done"));
    assert!(
        stderr(&out).contains("Plan: 25 to add"),
        "human text goes to stderr"
    );

    let (_, _, _, logsc) = clients(&env).await;
    logsc
        .put_retention_policy()
        .log_group_name("/ecs/prom-task")
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    let out = env.deploy(&["plan", "-f", STACK, "--format", "json"]);
    let drift = json_of(&out);
    schema_check(&drift).unwrap();
    let change = &drift["changes"][0];
    assert_eq!(change["address"], "log_group.prometheus");
    assert_eq!(change["drift"], true);
    assert_eq!(change["cause"], "drift");
    assert_eq!(change["changed_attributes"][0]["before"], 7);
    assert_eq!(change["changed_attributes"][0]["after"], 30);

    let out = env.deploy(&[
        "destroy",
        "-f",
        &env.unprotected_stack(),
        "--auto-approve",
        "--format",
        "json",
    ]);
    assert_success(&out);
    let destroyed = json_of(&out);
    schema_check(&destroyed).unwrap();
    assert_eq!(destroyed["kind"], "destroy_result");
    assert_eq!(destroyed["plan"]["summary"]["destroy"], 20);

    // The schema really constrains: malformed documents fail it, each for its own fault.
    let fails_for = |doc: &serde_json::Value, words: &[&str]| {
        let why = schema_check(doc).expect_err("a malformed document passed the schema");
        assert!(words.iter().all(|w| why.contains(w)), "{why}");
    };
    let mut extra = plan.clone();
    extra["surprise"] = serde_json::json!(1);
    fails_for(&extra, &["'surprise'", "Additional properties"]);
    let mut missing = plan.clone();
    missing.as_object_mut().unwrap().remove("summary");
    fails_for(&missing, &["'summary' is a required property"]);
    let mut bad_action = plan.clone();
    bad_action["changes"][0]["action"] = serde_json::json!("explode");
    fails_for(&bad_action, &["'explode'", "['changes', 0, 'action']"]);
    let mut bad_attrs = plan;
    bad_attrs["changes"][0]["after"]["retention_dayz"] = serde_json::json!(1);
    fails_for(&bad_attrs, &["'retention_dayz'", "['changes', 0, 'after']"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn scraping_several_tasks_through_the_alb_is_warned() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    let warning = "forwards port 3000 to 2 targets";
    let out = env.deploy(&["plan", "-f", STACK]);
    assert_success(&out);
    assert!(
        !stdout(&out).contains("targets: each scrape"),
        "{}",
        stdout(&out)
    );

    // The backend scales to two tasks behind its target group.
    let config = env.sdk_config(REGION).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let mut register = elb
        .register_targets()
        .target_group_arn(seeded["target_group_arn"].as_str().unwrap());
    for ip in ["10.20.1.10", "10.20.2.10"] {
        register = register.targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(ip)
                .port(3000)
                .build(),
        );
    }
    register.send().await.unwrap();
    let out = env.deploy(&["plan", "-f", STACK]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains(warning), "{text}");
    assert!(text.contains("vars.backend.discovery: dns"), "{text}");

    // Scraping each task by DNS instead: no warning.
    let dns = env.stack_copy("dns.yaml", |t| {
        t.replace(
            "    discovery: alb\n",
            "    discovery: dns\n    dns_name: backend.monitoring.internal\n",
        )
    });
    let out = env.deploy(&["plan", "-f", &dns]);
    assert_success(&out);
    assert!(!stdout(&out).contains(warning), "{}", stdout(&out));
}
