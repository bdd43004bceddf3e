//! The ELBv2 target group / listener rule adapter, the Cloud Map adapter and the ECS service's
//! load balancer and registry fields against a local moto server: what is created observes back
//! to exactly the attributes it was created from, updates converge, a priority held by a rule
//! not ours is seen (and never overwritten), deletes remove only what they name.

use deploy::aws::{cloudmap, ecs, elbv2_targets, Aws};
use deploy::model::{
    Address, Attrs, DiscoveryNamespaceAttrs, DiscoveryServiceAttrs, EcsServiceAttrs, Kind,
    ListenerRuleAttrs, Ownership, RuleConditions, ServiceLoadBalancer, Tags, TargetGroupAttrs,
    TargetHealthCheck, TAG_ADDRESS, TAG_ENV, TAG_STACK,
};
use serde_json::Value;
use std::collections::BTreeSet;

mod common;

use common::TestEnv;

const STACK: &str = "monitoring";
const ENV: &str = "test";

fn addr(kind: Kind, name: &str) -> Address {
    Address::new(kind, name)
}

fn user_tags() -> Tags {
    [("team".to_string(), "platform".to_string())].into()
}

/// User tags plus ownership tags for `address`: what a create call sends.
fn create_tags(address: &Address) -> Tags {
    let mut t = user_tags();
    t.insert(TAG_STACK.into(), STACK.into());
    t.insert(TAG_ENV.into(), ENV.into());
    t.insert(TAG_ADDRESS.into(), address.to_string());
    t
}

fn grafana_group(vpc: &str) -> TargetGroupAttrs {
    TargetGroupAttrs {
        name: "monitoring-grafana".into(),
        protocol: "HTTPS".into(),
        port: 3000,
        target_type: "ip".into(),
        vpc_id: vpc.into(),
        health_check: TargetHealthCheck {
            protocol: "HTTPS".into(),
            path: "/api/health".into(),
            matcher: "200".into(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 30,
        tags: user_tags(),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

async fn setup() -> (TestEnv, Aws, Value) {
    let env = TestEnv::new();
    let seeded = env.seed(false);
    let aws = env.moto.aws().await;
    (env, aws, seeded)
}

#[tokio::test]
async fn target_group_round_trips_updates_in_place_and_deletes() {
    let (_env, aws, seeded) = setup().await;
    let vpc = s(&seeded["vpc_id"]);
    let address = addr(Kind::TargetGroup, "grafana");
    assert!(
        elbv2_targets::find_target_group(&aws, "monitoring-grafana", &address)
            .await
            .unwrap()
            .is_none()
    );
    let want = grafana_group(&vpc);
    let arn = elbv2_targets::create_target_group(&aws, &want, &create_tags(&address))
        .await
        .unwrap();
    let seen = elbv2_targets::find_target_group(&aws, "monitoring-grafana", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.id, arn);
    assert_eq!(seen.attrs, Attrs::TargetGroup(want.clone()));
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);
    // Found by ARN too (how orphans from the tagging API are read).
    let by_arn = elbv2_targets::find_target_group(&aws, &arn, &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_arn.attrs, seen.attrs);

    let mut after = want.clone();
    after.health_check.path = "/api/health?ready".into();
    after.health_check.matcher = "200-299".into();
    after.deregistration_delay_seconds = 10;
    after.tags.insert("owner".into(), "sre".into());
    elbv2_targets::update_target_group(&aws, &arn, &want, &after)
        .await
        .unwrap();
    let seen = elbv2_targets::find_target_group(&aws, &arn, &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::TargetGroup(after.clone()));

    // Immutable attributes are refused in place (the planner replaces instead).
    let mut moved = after.clone();
    moved.port = 3001;
    assert!(
        elbv2_targets::update_target_group(&aws, &arn, &after, &moved)
            .await
            .is_err()
    );

    elbv2_targets::delete_target_group(&aws, &arn)
        .await
        .unwrap();
    assert!(elbv2_targets::find_target_group(&aws, &arn, &address)
        .await
        .unwrap()
        .is_none());
    // Already gone is success.
    elbv2_targets::delete_target_group(&aws, &arn)
        .await
        .unwrap();
}

#[tokio::test]
async fn listener_rules_round_trip_and_a_taken_priority_is_never_overwritten() {
    let (_env, aws, seeded) = setup().await;
    let vpc = s(&seeded["vpc_id"]);
    let alb = s(&seeded["alb_arn"]);
    let listener = elbv2_targets::lookup_https_listener(&aws, &alb)
        .await
        .unwrap();
    assert_eq!(listener, s(&seeded["https_listener_arn"]));

    let tg_address = addr(Kind::TargetGroup, "grafana");
    let tg =
        elbv2_targets::create_target_group(&aws, &grafana_group(&vpc), &create_tags(&tg_address))
            .await
            .unwrap();

    // A rule made by hand at priority 20: untagged, someone else's.
    let theirs = aws
        .elbv2
        .create_rule()
        .listener_arn(&listener)
        .priority(20)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("path-pattern")
                .values("/admin/*")
                .build(),
        )
        .actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(s(&seeded["target_group_arn"]))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .rules()[0]
        .rule_arn()
        .unwrap()
        .to_string();

    let address = addr(Kind::ListenerRule, "grafana");
    let want = ListenerRuleAttrs {
        name: ListenerRuleAttrs::name_for(10),
        listener: listener.clone(),
        priority: 10,
        conditions: RuleConditions {
            host_headers: ["grafana.showcase.example.com".to_string()].into(),
            path_patterns: BTreeSet::new(),
        },
        target_group: tg.clone(),
        tags: user_tags(),
    };
    assert!(
        elbv2_targets::find_listener_rules(&aws, &listener, 10, &address)
            .await
            .unwrap()
            .is_empty()
    );
    let arn = elbv2_targets::create_listener_rule(&aws, &want, &create_tags(&address))
        .await
        .unwrap();
    let seen = elbv2_targets::find_listener_rules(&aws, &listener, 10, &address)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].id, arn);
    assert_eq!(seen[0].attrs, Attrs::ListenerRule(want.clone()));
    assert_eq!(seen[0].ownership(STACK, ENV), Ownership::Owned);
    let by_arn = elbv2_targets::observe_listener_rule(&aws, &arn, &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_arn.attrs, seen[0].attrs);

    // Priority 20 is held by the hand-made rule: it is found (for the planner to call it a
    // conflict), unowned, and a create there fails instead of replacing it.
    let at_20 = elbv2_targets::find_listener_rules(&aws, &listener, 20, &address)
        .await
        .unwrap();
    let held: Vec<&str> = at_20.iter().map(|o| o.id.as_str()).collect();
    assert!(held.contains(&theirs.as_str()), "{held:?}");
    let other = at_20.iter().find(|o| o.id == theirs).unwrap();
    assert_eq!(other.ownership(STACK, ENV), Ownership::Unowned);
    let mut clash = want.clone();
    clash.priority = 20;
    clash.name = ListenerRuleAttrs::name_for(20);
    let e = elbv2_targets::create_listener_rule(&aws, &clash, &create_tags(&address))
        .await
        .unwrap_err();
    assert!(e.code_is("PriorityInUse"), "{e}");

    // A new priority and a path condition, in place; found again by its address tag.
    let mut after = want.clone();
    after.priority = 11;
    after.name = ListenerRuleAttrs::name_for(11);
    after.conditions.path_patterns.insert("/grafana/*".into());
    elbv2_targets::update_listener_rule(&aws, &arn, &want, &after)
        .await
        .unwrap();
    let seen = elbv2_targets::find_listener_rules(&aws, &listener, 10, &address)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1, "found by its deploy:address tag: {seen:?}");
    assert_eq!(seen[0].attrs, Attrs::ListenerRule(after.clone()));

    // Deleting ours leaves the listener and the other rule.
    elbv2_targets::delete_listener_rule(&aws, &arn)
        .await
        .unwrap();
    elbv2_targets::delete_listener_rule(&aws, &arn)
        .await
        .unwrap();
    let rules = aws
        .elbv2
        .describe_rules()
        .listener_arn(&listener)
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = rules.rules().iter().filter_map(|r| r.rule_arn()).collect();
    assert!(left.contains(&theirs.as_str()));
    assert!(!left.contains(&arn.as_str()));
    assert_eq!(
        elbv2_targets::lookup_https_listener(&aws, &alb)
            .await
            .unwrap(),
        listener
    );
}

#[tokio::test]
async fn a_load_balancer_without_https_listener_fails_the_lookup_clearly() {
    let env = TestEnv::new();
    let seeded = env.seed_without_https();
    let aws = env.moto.aws().await;
    let e = elbv2_targets::lookup_https_listener(&aws, &s(&seeded["alb_arn"]))
        .await
        .unwrap_err();
    assert!(e.code_is("LookupFailed"), "{e}");
    assert!(e.message.contains("443"), "{e}");
}

#[tokio::test]
async fn namespace_and_discovery_service_round_trip() {
    let (_env, aws, seeded) = setup().await;
    let vpc = s(&seeded["vpc_id"]);
    let ns_address = addr(Kind::ServiceDiscoveryNamespace, "monitoring");
    let ns = DiscoveryNamespaceAttrs {
        name: "monitoring.internal".into(),
        description: "Stable names of the monitoring services".into(),
        vpc_id: vpc.clone(),
        tags: user_tags(),
    };
    assert!(cloudmap::find_namespaces(&aws, &ns.name, &vpc, &ns_address)
        .await
        .unwrap()
        .is_empty());
    let ns_id = cloudmap::create_namespace(&aws, &ns, &create_tags(&ns_address), "req-1")
        .await
        .unwrap();
    let seen = cloudmap::find_namespaces(&aws, &ns.name, &vpc, &ns_address)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, ns_id);
    assert_eq!(seen[0].attrs, Attrs::ServiceDiscoveryNamespace(ns.clone()));
    assert_eq!(seen[0].ownership(STACK, ENV), Ownership::Owned);
    let ns_arn = seen[0].handles["arn"].clone();

    let mut ns_after = ns.clone();
    ns_after.description = "Prometheus and Alertmanager by name".into();
    cloudmap::update_namespace(&aws, &ns_id, &ns_arn, &ns, &ns_after)
        .await
        .unwrap();
    let seen = cloudmap::observe_namespace(&aws, &ns_id, &vpc, &ns_address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::ServiceDiscoveryNamespace(ns_after));

    let svc_address = addr(Kind::ServiceDiscoveryService, "prometheus");
    let svc = DiscoveryServiceAttrs {
        name: "prometheus".into(),
        namespace: ns_id.clone(),
        description: String::new(),
        record_type: "A".into(),
        ttl: 10,
        routing_policy: "MULTIVALUE".into(),
        failure_threshold: 1,
        tags: user_tags(),
    };
    let svc_arn = cloudmap::create_service(&aws, &svc, &create_tags(&svc_address), "req-2")
        .await
        .unwrap();
    let seen = cloudmap::find_services(&aws, "monitoring.internal", "prometheus", &svc_address)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, svc_arn);
    assert_eq!(seen[0].attrs, Attrs::ServiceDiscoveryService(svc.clone()));
    assert_eq!(seen[0].ownership(STACK, ENV), Ownership::Owned);
    // Another name in the namespace is not it.
    assert!(
        cloudmap::find_services(&aws, "monitoring.internal", "alertmanager", &svc_address)
            .await
            .unwrap()
            .is_empty()
    );

    let mut svc_after = svc.clone();
    svc_after.ttl = 30;
    svc_after.description = "Prometheus".into();
    cloudmap::update_service(&aws, &svc_arn, &svc, &svc_after)
        .await
        .unwrap();
    let seen = cloudmap::observe_service(&aws, cloudmap::service_id_of(&svc_arn), &svc_address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::ServiceDiscoveryService(svc_after));

    cloudmap::delete_service(&aws, &svc_arn).await.unwrap();
    cloudmap::delete_service(&aws, &svc_arn).await.unwrap();
    cloudmap::delete_namespace(&aws, &ns_id).await.unwrap();
    cloudmap::delete_namespace(&aws, &ns_id).await.unwrap();
    assert!(
        cloudmap::find_namespaces(&aws, "monitoring.internal", &vpc, &ns_address)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_ecs_service_registers_in_a_target_group_and_a_registry() {
    let (_env, aws, seeded) = setup().await;
    let vpc = s(&seeded["vpc_id"]);
    let subnets: BTreeSet<String> = seeded["private_subnet_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let group = aws
        .ec2
        .create_security_group()
        .group_name("monitoring-grafana")
        .description("Grafana")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    aws.ecs
        .create_cluster()
        .cluster_name("monitoring")
        .send()
        .await
        .unwrap();
    let td = aws
        .ecs
        .register_task_definition()
        .family("grafana")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("grafana")
                .image("grafana/grafana:11.1.0")
                .port_mappings(
                    aws_sdk_ecs::types::PortMapping::builder()
                        .container_port(3000)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    let tg = elbv2_targets::create_target_group(
        &aws,
        &grafana_group(&vpc),
        &create_tags(&addr(Kind::TargetGroup, "grafana")),
    )
    .await
    .unwrap();
    let ns = cloudmap::create_namespace(
        &aws,
        &DiscoveryNamespaceAttrs {
            name: "monitoring.internal".into(),
            description: String::new(),
            vpc_id: vpc.clone(),
            tags: Tags::new(),
        },
        &Tags::new(),
        "req-ns",
    )
    .await
    .unwrap();
    let registry = cloudmap::create_service(
        &aws,
        &DiscoveryServiceAttrs {
            name: "grafana".into(),
            namespace: ns,
            description: String::new(),
            record_type: "A".into(),
            ttl: 10,
            routing_policy: "MULTIVALUE".into(),
            failure_threshold: 1,
            tags: Tags::new(),
        },
        &Tags::new(),
        "req-srv",
    )
    .await
    .unwrap();

    let address = addr(Kind::EcsService, "grafana");
    let want = EcsServiceAttrs {
        name: "grafana".into(),
        cluster: "monitoring".into(),
        task_definition: td,
        desired_count: 1,
        launch_type: "FARGATE".into(),
        platform_version: "LATEST".into(),
        subnets,
        security_groups: [group].into(),
        assign_public_ip: false,
        circuit_breaker: true,
        circuit_breaker_rollback: true,
        breaker_threshold: deploy::model::DEFAULT_BREAKER_THRESHOLD.into(),
        breaker_reset_on_healthy_task: true,
        minimum_healthy_percent: 100,
        maximum_percent: 200,
        enable_execute_command: false,
        propagate_tags: "SERVICE".into(),
        tags: user_tags(),
        load_balancers: [ServiceLoadBalancer {
            target_group: tg.clone(),
            container_name: "grafana".into(),
            container_port: 3000,
        }]
        .into(),
        health_check_grace_period_seconds: 60,
        service_registries: [registry.clone()].into(),
    };
    ecs::create_service(&aws, &want, &create_tags(&address), "token-lb")
        .await
        .unwrap();
    let seen = ecs::find_service(&aws, "monitoring", "grafana", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::EcsService(want.clone()));

    // Detached from the target group and the registry, in place (UpdateService).
    let mut after = want.clone();
    after.load_balancers.clear();
    after.health_check_grace_period_seconds = 0;
    after.service_registries.clear();
    ecs::update_service(&aws, "monitoring", "grafana", &want, &after, false)
        .await
        .unwrap();
    let seen = ecs::find_service(&aws, "monitoring", "grafana", &address)
        .await
        .unwrap()
        .unwrap();
    let Attrs::EcsService(got) = &seen.attrs else {
        panic!("not a service")
    };
    assert!(got.load_balancers.is_empty(), "{got:?}");
    assert!(got.service_registries.is_empty(), "{got:?}");
}
