//! End-to-end tests of the ALB and service discovery kinds: the built binary against moto
//! (seeded with the ALB's HTTPS listener), every AWS call counted by the recording proxy.
//! The reference stack has a target group, a rule on the HTTPS listener, a Cloud Map
//! namespace and a discovery service the Prometheus service registers in.

mod common;

use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_servicediscovery as sd;
use common::{assert_failure, assert_success, stderr, stdout, TestEnv};
use serde_json::Value;

const REGION: &str = "us-west-2";
const HOST: &str = "grafana.showcase.example.com";
/// The reference stack's priority for Grafana's rule.
const OURS: &str = "100";

/// The reference stack as it is: Grafana's target group and its rule on the HTTPS listener,
/// the Cloud Map namespace and the discovery service the Prometheus service registers in.
fn stack(env: &TestEnv) -> String {
    env.stack_copy("lb-discovery.yaml", common::unprotected)
}

async fn elb_client(env: &TestEnv) -> elb::Client {
    elb::Client::new(&env.sdk_config(REGION).await)
}

async fn sd_client(env: &TestEnv) -> sd::Client {
    sd::Client::new(&env.sdk_config(REGION).await)
}

/// (rule ARN, priority) of every non-default rule on the HTTPS listener.
async fn rules(env: &TestEnv, seeded: &Value) -> Vec<(String, String)> {
    elb_client(env)
        .await
        .describe_rules()
        .listener_arn(seeded["https_listener_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .map(|r| {
            (
                r.rule_arn().unwrap().to_string(),
                r.priority().unwrap().to_string(),
            )
        })
        .collect()
}

async fn namespaces(env: &TestEnv) -> Vec<(String, String)> {
    sd_client(env)
        .await
        .list_namespaces()
        .send()
        .await
        .unwrap()
        .namespaces()
        .iter()
        .map(|n| (n.id().unwrap().to_string(), n.name().unwrap().to_string()))
        .collect()
}

/// (name, namespace id, ARN) of every Cloud Map service.
async fn discovery_services(env: &TestEnv) -> Vec<(String, String, String)> {
    let c = sd_client(env).await;
    let mut out = Vec::new();
    for s in c.list_services().send().await.unwrap().services() {
        let full = c.get_service().id(s.id().unwrap()).send().await.unwrap();
        let svc = full.service().unwrap();
        out.push((
            svc.name().unwrap().to_string(),
            svc.namespace_id().unwrap().to_string(),
            svc.arn().unwrap().to_string(),
        ));
    }
    out
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
    assert!(env.proxy.mutating_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_settles_and_destroy_removes_only_our_rule() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    let theirs = env.handmade_rule(&seeded, 20).await;
    let file = stack(&env);

    let out = env.deploy(&["apply", "-f", &file, "--auto-approve"]);
    assert_success(&out);
    let text = stdout(&out);
    for a in [
        "target_group.grafana",
        "listener_rule.grafana",
        "service_discovery_namespace.monitoring",
        "service_discovery_service.prometheus",
    ] {
        assert!(text.contains(a), "{a} not in:\n{text}");
    }
    plan_says_no_changes(&env, &file);

    // Our rule forwards to our target group; the hand-made one at 20 is untouched.
    let on_listener = rules(&env, &seeded).await;
    let ours: Vec<&(String, String)> = on_listener.iter().filter(|(_, p)| p == OURS).collect();
    assert_eq!(ours.len(), 1, "{on_listener:?}");
    assert!(on_listener.contains(&(theirs.clone(), "20".into())));
    let described = elb_client(&env)
        .await
        .describe_rules()
        .rule_arns(&ours[0].0)
        .send()
        .await
        .unwrap();
    let rule = &described.rules()[0];
    let tg = elb_client(&env)
        .await
        .describe_target_groups()
        .names("monitoring-grafana")
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .clone();
    assert_eq!(rule.actions()[0].target_group_arn(), tg.target_group_arn());
    assert_eq!(tg.protocol(), Some(&elb::types::ProtocolEnum::Https));
    assert_eq!(tg.health_check_path(), Some("/api/health"));
    let hosts = rule.conditions()[0].host_header_config().unwrap().values();
    assert_eq!(hosts, [HOST.to_string()]);

    // The Prometheus service registers under the discovery service.
    let services = discovery_services(&env).await;
    assert_eq!(services.len(), 1, "{services:?}");
    let ecs = aws_sdk_ecs::Client::new(&env.sdk_config(REGION).await);
    let svc = ecs
        .describe_services()
        .cluster("monitoring")
        .services("prometheus")
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    let registries: Vec<&str> = svc
        .service_registries()
        .iter()
        .filter_map(|r| r.registry_arn())
        .collect();
    assert_eq!(registries, [services[0].2.as_str()]);

    let out = env.deploy(&["destroy", "-f", &file, "--auto-approve"]);
    assert_success(&out);
    let left = rules(&env, &seeded).await;
    assert_eq!(left, vec![(theirs, "20".to_string())], "only ours went");
    let listeners = elb_client(&env)
        .await
        .describe_listeners()
        .load_balancer_arn(seeded["alb_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 2, "both listeners stay");
    assert!(namespaces(&env).await.is_empty());
    assert!(discovery_services(&env).await.is_empty());
    let gone = elb_client(&env)
        .await
        .describe_target_groups()
        .names("monitoring-grafana")
        .send()
        .await;
    assert!(gone.is_err(), "the target group is deleted");
    // The seed's own target group stays.
    elb_client(&env)
        .await
        .describe_target_groups()
        .names("backend")
        .send()
        .await
        .unwrap();

    // Nothing left to do.
    let out = env.deploy(&["plan", "--destroy", "-f", &file]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_priority_held_by_a_rule_not_ours_is_a_conflict_and_nothing_is_touched() {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    let theirs = env.handmade_rule(&seeded, OURS.parse().unwrap()).await;
    let file = stack(&env);

    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", &file]);
    assert_failure(&out);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("listener_rule.grafana"), "{text}");
    assert!(text.contains(&theirs), "names the rule in the way:\n{text}");

    let out = env.deploy(&["apply", "-f", &file, "--auto-approve"]);
    assert_failure(&out);
    let mutating = env.proxy.mutating_calls();
    assert!(mutating.is_empty(), "apply touched AWS: {mutating:?}");
    assert_eq!(
        rules(&env, &seeded).await,
        vec![(theirs, OURS.to_string())],
        "the rule at our priority is still the hand-made one"
    );
    assert!(namespaces(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn grafanas_data_source_url_names_the_namespace_and_service_that_exist() {
    let env = TestEnv::new();
    env.seed(false);
    let file = stack(&env);
    let out = env.deploy(&["apply", "-f", &file, "--auto-approve"]);
    assert_success(&out);

    // Grafana's data sources as the registered grafana-task delivers them: the file its
    // start script writes, read back from the container's command and environment.
    let ecsc = aws_sdk_ecs::Client::new(&env.sdk_config(common::REGION).await);
    let td = ecsc
        .describe_task_definition()
        .task_definition("grafana-task")
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    let grafana = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("grafana"))
        .expect("a grafana container");
    let environment = common::registered_environment(grafana);
    let files = deploy::render::delivered_files(&grafana.command()[0], &environment);
    let rendered = files
        .get("/etc/grafana/provisioning/datasources/deploy.yml")
        .unwrap_or_else(|| panic!("no data source file delivered: {:?}", files.keys()));
    let urls: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("url: "))
        .collect();
    assert_eq!(
        urls.len(),
        2,
        "Prometheus and Alertmanager by URL:\n{rendered}"
    );

    let ns = namespaces(&env).await;
    assert_eq!(ns.len(), 1, "{ns:?}");
    let services = discovery_services(&env).await;
    let (svc_name, _, _) = services
        .iter()
        .find(|(_, ns_id, _)| ns_id == &ns[0].0)
        .expect("a discovery service in the namespace");
    // Both live in the registered task: Prometheus on 9090, Alertmanager on 9093.
    assert_eq!(
        urls,
        [
            format!("https://{svc_name}.{}:9090", ns[0].1),
            format!("https://{svc_name}.{}:9093", ns[0].1)
        ]
    );
}
