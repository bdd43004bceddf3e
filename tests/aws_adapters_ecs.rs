//! The ECS and IAM adapters against a real moto server (one per test, on a free port): what is
//! created is observed back unchanged, updates are observed, task definition revisions are
//! reused, found and deregistered by ownership, and a deleted service is gone.
//!
//! Nothing here depends on a moto shortcut: the assertions are what AWS itself would answer.

use aws_sdk_ecs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ecs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use deploy::aws::{ecs, iam, Aws};
use deploy::model::{
    canonical_policy, Address, Attrs, Container, EcsClusterAttrs, EcsServiceAttrs, EfsVolume,
    HealthCheck, IamRoleAttrs, Kind, LogConfig, MountPoint, Ownership, PortMapping, SecretRef,
    Tags, TaskDefinitionAttrs, TAG_ADDRESS, TAG_APPLIED, TAG_ENV, TAG_STACK,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

mod common;

use common::{Moto, REGION};
const STACK: &str = "monitoring";
const ENV: &str = "test";

// ---------------------------------------------------------------------------------------------
// A moto server of our own
// ---------------------------------------------------------------------------------------------

/// Clients whose ECS calls are recorded (operation name and request body).
async fn recorded_aws(moto: &Moto) -> (Aws, Recorder) {
    let config = common::sdk_config_for(&moto.endpoint(), REGION).await;
    let recorder = Recorder::default();
    let mut aws = Aws::from_config(&config, REGION.to_string());
    aws.ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&config)
            .interceptor(recorder.clone())
            .build(),
    );
    (aws, recorder)
}

/// Records every ECS request as (operation, body) just before it is sent.
#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

/// One recorded request: operation name and body.
type Call = (String, Vec<u8>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_string();
        let body = request.body().bytes().unwrap_or_default().to_vec();
        self.0.lock().unwrap().push((operation, body));
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn operations(&self) -> Vec<String> {
        self.take().into_iter().map(|(op, _)| op).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn ownership(address: &str) -> Tags {
    Tags::from([
        (TAG_STACK.to_string(), STACK.to_string()),
        (TAG_ENV.to_string(), ENV.to_string()),
        (TAG_ADDRESS.to_string(), address.to_string()),
    ])
}

fn user_tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn trust_ecs_tasks() -> serde_json::Value {
    canonical_policy(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    }))
}

fn role_attrs(name: &str) -> IamRoleAttrs {
    IamRoleAttrs {
        name: name.to_string(),
        path: "/deploy/monitoring/".into(),
        description: "The Prometheus task".into(),
        assume_role_policy: trust_ecs_tasks(),
        inline_policies: BTreeMap::from([(
            "ecs-exec".to_string(),
            canonical_policy(&json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": [
                        "ssmmessages:OpenDataChannel",
                        "ssmmessages:CreateControlChannel",
                        "ssmmessages:CreateDataChannel",
                        "ssmmessages:OpenControlChannel"
                    ],
                    "Resource": "*"
                }]
            })),
        )]),
        managed_policy_arns: BTreeSet::new(),
        tags: user_tags(&[("team", "platform")]),
    }
}

fn prometheus_task(execution_role: &str, task_role: &str, image: &str) -> TaskDefinitionAttrs {
    TaskDefinitionAttrs {
        family: "prom-task".into(),
        cpu: "256".into(),
        memory: "512".into(),
        network_mode: "awsvpc".into(),
        requires_compatibilities: BTreeSet::from(["FARGATE".to_string()]),
        execution_role: Some(execution_role.to_string()),
        task_role: Some(task_role.to_string()),
        ephemeral_storage_gib: Some(30),
        cpu_architecture: "X86_64".into(),
        containers: vec![Container {
            name: "prometheus".into(),
            image: image.to_string(),
            essential: true,
            cpu: 0,
            memory_reservation: Some(256),
            user: Some("nobody".into()),
            readonly_root_filesystem: true,
            capabilities_drop: vec!["ALL".into()],
            entry_point: vec!["/bin/sh".into(), "-c".into()],
            command: vec![
                "echo \"$PROMETHEUS_YML\" > /etc/prometheus/prometheus.yml && exec /bin/prometheus \
                 --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus \
                 --storage.tsdb.retention.time=15d --storage.tsdb.retention.size=25GB"
                    .into(),
            ],
            environment: BTreeMap::from([
                (
                    "PROMETHEUS_YML".to_string(),
                    "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: backend\n    \
                     metrics_path: /metrics\n    static_configs:\n      - targets: ['alb.example:3000']\n"
                        .to_string(),
                ),
                ("TZ".to_string(), "UTC".to_string()),
            ]),
            // References only (never values): a JSON key of a Secrets Manager secret and an
            // SSM parameter must survive the round trip through valueFrom.
            secrets: BTreeMap::from([
                (
                    "ADMIN_PASSWORD".to_string(),
                    SecretRef {
                        from: format!(
                            "arn:aws:secretsmanager:{REGION}:123456789012:secret:monitoring/admin-AbCdEf"
                        ),
                        json_key: Some("password".into()),
                    },
                ),
                (
                    "PD_KEY".to_string(),
                    SecretRef {
                        from: format!(
                            "arn:aws:ssm:{REGION}:123456789012:parameter/monitoring/pagerduty-key"
                        ),
                        json_key: None,
                    },
                ),
            ]),
            port_mappings: vec![PortMapping {
                container_port: 9090,
                protocol: "tcp".into(),
            }],
            log: Some(LogConfig {
                driver: "awslogs".into(),
                options: BTreeMap::from([
                    ("awslogs-group".to_string(), "/ecs/prom-task".to_string()),
                    ("awslogs-region".to_string(), REGION.to_string()),
                    ("awslogs-stream-prefix".to_string(), "prometheus".to_string()),
                ]),
            }),
            health_check: Some(HealthCheck {
                command: vec![
                    "CMD-SHELL".into(),
                    "wget -q -O /dev/null http://127.0.0.1:9090/-/healthy || exit 1".into(),
                ],
                interval: 30,
                timeout: 5,
                retries: 3,
                start_period: 30,
            }),
            // An EFS volume mounted read-write: volumes and mount points must survive the
            // round trip and be sent exactly as register_request_json writes them.
            // ... and a task-scoped volume shared with a sidecar it starts after.
            mount_points: vec![
                MountPoint {
                    volume: "data".into(),
                    path: "/var/lib/data".into(),
                    read_only: false,
                },
                MountPoint {
                    volume: "config-prometheus".into(),
                    path: "/etc/prometheus".into(),
                    read_only: false,
                },
            ],
            depends_on: BTreeMap::from([("config".to_string(), "HEALTHY".to_string())]),
        }],
        tags: user_tags(&[("team", "platform")]),
        volumes: BTreeMap::from([(
            "data".to_string(),
            EfsVolume {
                file_system: "fs-0123456789abcdef0".into(),
                access_point: Some("fsap-0123456789abcdef0".into()),
            },
        )]),
        shared_volumes: BTreeSet::from(["config-prometheus".to_string()]),
    }
}

fn revision_of(arn: &str) -> u32 {
    arn.rsplit(':').next().unwrap().parse().unwrap()
}

fn addr(kind: Kind, name: &str) -> Address {
    Address::new(kind, name)
}

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cluster_create_observe_update_delete() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let address = addr(Kind::EcsCluster, "monitoring");
    assert!(ecs::find_cluster(&aws, "monitoring", &address)
        .await
        .unwrap()
        .is_none());

    let attrs = EcsClusterAttrs {
        name: "monitoring".into(),
        container_insights: "enabled".into(),
        tags: user_tags(&[("team", "platform")]),
    };
    let arn = ecs::create_cluster(&aws, &attrs, &ownership("ecs_cluster.monitoring"))
        .await
        .unwrap();
    let seen = ecs::find_cluster(&aws, "monitoring", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.id, arn);
    assert_eq!(seen.attrs, Attrs::EcsCluster(attrs.clone()));
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);
    assert_eq!(
        seen.all_tags.get(TAG_ADDRESS).unwrap(),
        "ecs_cluster.monitoring"
    );

    let after = EcsClusterAttrs {
        container_insights: "disabled".into(),
        tags: user_tags(&[("team", "observability"), ("cost-center", "42")]),
        ..attrs.clone()
    };
    ecs::update_cluster(&aws, &arn, &attrs, &after)
        .await
        .unwrap();
    let seen = ecs::find_cluster(&aws, "monitoring", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::EcsCluster(after.clone()));
    assert_eq!(
        seen.ownership(STACK, ENV),
        Ownership::Owned,
        "ownership tags survive user tag changes"
    );

    ecs::delete_cluster(&aws, &arn).await.unwrap();
    assert!(ecs::find_cluster(&aws, "monitoring", &address)
        .await
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// Task definitions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn task_definition_register_reuse_find_and_deregister() {
    let moto = Moto::start();
    let (aws, recorder) = recorded_aws(&moto).await;
    let execution = iam::create_role(
        &aws,
        &role_attrs("monitoring-execution-us-west-2"),
        &ownership("iam_role.execution"),
    )
    .await
    .unwrap();
    let task_role = iam::create_role(
        &aws,
        &role_attrs("monitoring-prometheus-us-west-2"),
        &ownership("iam_role.prometheus"),
    )
    .await
    .unwrap();
    let address = addr(Kind::TaskDefinition, "prometheus");
    let attrs = prometheus_task(&execution, &task_role, "prom/prometheus:v2.53.4");
    let hash = Attrs::TaskDefinition(attrs.clone()).applied_hash(&BTreeSet::new());
    let mut tags = ownership("task_definition.prometheus");
    tags.insert(TAG_APPLIED.into(), hash.clone());

    // What render writes and validate measures is byte for byte what the SDK sends.
    let expected = ecs::register_request_json(&attrs, &tags);
    let expected_text = serde_json::to_string(&expected).unwrap();
    eprintln!(
        "RegisterTaskDefinition request for prom-task: {} bytes (ECS limit 65536)",
        expected_text.len()
    );
    assert!(expected_text.len() < 65536);

    recorder.take();
    let first = ecs::register_task_definition(&aws, &attrs, &tags, &hash, STACK, ENV)
        .await
        .unwrap();
    assert_eq!(revision_of(&first), 1);
    let calls = recorder.take();
    let (_, body) = calls
        .iter()
        .find(|(op, _)| op == "RegisterTaskDefinition")
        .expect("a RegisterTaskDefinition call");
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        sent, expected,
        "the SDK sent something other than register_request_json"
    );
    assert_eq!(body.len(), expected_text.len());

    // Observed back exactly as registered, roles as raw ARNs, log group by name.
    let (arn, seen, all_tags) = ecs::describe_task_definition(&aws, "prom-task:1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(arn, first);
    assert_eq!(seen, attrs);
    assert_eq!(all_tags, {
        let mut t = tags.clone();
        t.extend(attrs.tags.clone());
        t
    });
    assert!(ecs::describe_task_definition(&aws, "no-such-family:1")
        .await
        .unwrap()
        .is_none());

    // A re-run of the same apply reuses the revision instead of registering a second one.
    let again = ecs::register_task_definition(&aws, &attrs, &tags, &hash, STACK, ENV)
        .await
        .unwrap();
    assert_eq!(again, first);
    let ops = recorder.operations();
    assert!(
        !ops.contains(&"RegisterTaskDefinition".to_string()),
        "{ops:?}"
    );

    // New content: a new revision.
    let v2 = prometheus_task(&execution, &task_role, "prom/prometheus:v2.54.1");
    let hash2 = Attrs::TaskDefinition(v2.clone()).applied_hash(&BTreeSet::new());
    let mut tags2 = ownership("task_definition.prometheus");
    tags2.insert(TAG_APPLIED.into(), hash2.clone());
    let second = ecs::register_task_definition(&aws, &v2, &tags2, &hash2, STACK, ENV)
        .await
        .unwrap();
    assert_eq!(revision_of(&second), 2);

    // The latest ACTIVE revision is ours: one call finds it.
    recorder.take();
    let latest = ecs::find_task_definition(&aws, "prom-task", &address, STACK, ENV)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, second);
    assert_eq!(recorder.operations(), ["DescribeTaskDefinition"]);

    // Someone registers a newer revision by hand, without tags.
    aws.ecs
        .register_task_definition()
        .family("prom-task")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("debug")
                .image("busybox")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .unwrap();
    recorder.take();
    let found = ecs::find_task_definition(&aws, "prom-task", &address, STACK, ENV)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.id, second,
        "the newest OWNED revision, not the newest one"
    );
    assert_eq!(found.attrs, Attrs::TaskDefinition(v2.clone()));
    let revisions: Vec<u32> = found.handles["revisions"]
        .split(',')
        .map(revision_of)
        .collect();
    assert_eq!(revisions, [3, 2, 1]);
    assert_eq!(
        recorder.operations(),
        [
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "DescribeTaskDefinition"
        ],
        "the latest revision (not ours), then 1 list + the other revisions newest first, \
         stopping at the first owned one"
    );

    // Another environment of the same stack owns nothing here: it gets the newest, as a conflict.
    let other = ecs::find_task_definition(&aws, "prom-task", &address, STACK, "staging")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revision_of(&other.id), 3);
    assert_eq!(other.ownership(STACK, "staging"), Ownership::Unowned);

    // Destroy deregisters only what this stack owns.
    let mut gone = ecs::deregister_owned_revisions(&aws, "prom-task", STACK, ENV)
        .await
        .unwrap();
    gone.sort();
    assert_eq!(gone, [first.clone(), second.clone()]);
    let status = |rev: &'static str| {
        let aws = aws.clone();
        async move {
            aws.ecs
                .describe_task_definition()
                .task_definition(rev)
                .send()
                .await
                .unwrap()
                .task_definition()
                .unwrap()
                .status()
                .unwrap()
                .as_str()
                .to_string()
        }
    };
    assert_eq!(status("prom-task:1").await, "INACTIVE");
    assert_eq!(status("prom-task:2").await, "INACTIVE");
    assert_eq!(
        status("prom-task:3").await,
        "ACTIVE",
        "the hand-made revision is left alone"
    );
    let left = ecs::find_task_definition(&aws, "prom-task", &address, STACK, ENV)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.handles["revisions"], left.id);
    assert_eq!(left.ownership(STACK, ENV), Ownership::Unowned);
    assert!(
        ecs::find_task_definition(&aws, "prom", &address, STACK, ENV)
            .await
            .unwrap()
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn service_create_observe_update_delete() {
    let moto = Moto::start();
    let aws = moto.aws().await;

    let vpc = aws.ec2.describe_vpcs().send().await.unwrap().vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let subnets: BTreeSet<String> = aws
        .ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpc)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .take(2)
        .map(|s| s.subnet_id().unwrap().to_string())
        .collect();
    assert_eq!(subnets.len(), 2);
    let group = aws
        .ec2
        .create_security_group()
        .group_name("monitoring-prometheus")
        .description("Prometheus server")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();

    let cluster = EcsClusterAttrs {
        name: "monitoring".into(),
        container_insights: "enabled".into(),
        tags: Tags::new(),
    };
    ecs::create_cluster(&aws, &cluster, &ownership("ecs_cluster.monitoring"))
        .await
        .unwrap();
    let role = "arn:aws:iam::123456789012:role/deploy/monitoring/prom";
    let td1 = prometheus_task(role, role, "prom/prometheus:v2.53.4");
    let td1_arn = ecs::register_task_definition(
        &aws,
        &td1,
        &ownership("task_definition.prometheus"),
        "h1",
        STACK,
        ENV,
    )
    .await
    .unwrap();

    let address = addr(Kind::EcsService, "prometheus");
    assert!(
        ecs::find_service(&aws, "monitoring", "prometheus", &address)
            .await
            .unwrap()
            .is_none()
    );

    let attrs = EcsServiceAttrs {
        name: "prometheus".into(),
        cluster: "monitoring".into(),
        task_definition: td1_arn.clone(),
        desired_count: 1,
        launch_type: "FARGATE".into(),
        platform_version: "LATEST".into(),
        subnets: subnets.clone(),
        security_groups: BTreeSet::from([group.clone()]),
        assign_public_ip: false,
        circuit_breaker: true,
        circuit_breaker_rollback: true,
        breaker_threshold: deploy::model::DEFAULT_BREAKER_THRESHOLD.into(),
        breaker_reset_on_healthy_task: true,
        minimum_healthy_percent: 0,
        maximum_percent: 100,
        enable_execute_command: true,
        propagate_tags: "SERVICE".into(),
        tags: user_tags(&[("team", "platform")]),
        load_balancers: BTreeSet::new(),
        health_check_grace_period_seconds: 0,
        service_registries: BTreeSet::new(),
    };
    let (arn, started) = ecs::create_service(
        &aws,
        &attrs,
        &ownership("ecs_service.prometheus"),
        "token-1",
    )
    .await
    .unwrap();
    // The deployment CreateService started, as its answer names it (apply follows it).
    let started = started.expect("CreateService answers with its PRIMARY deployment");
    assert!(started.id.starts_with("ecs-svc/"), "{started:?}");
    assert_eq!(started.status, "PRIMARY");
    assert_eq!(started.task_definition, td1_arn);
    let seen = ecs::find_service(&aws, "monitoring", "prometheus", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.id, arn);
    assert_eq!(seen.handles["primary_deployment"], started.id);
    assert_eq!(seen.attrs, Attrs::EcsService(attrs.clone()));
    assert_eq!(seen.handles["task_definition_arn"], td1_arn);
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);

    // A new revision, one more task, rollback off, tags changed: one UpdateService + tag calls.
    let td2 = prometheus_task(role, role, "prom/prometheus:v2.54.1");
    let td2_arn = ecs::register_task_definition(
        &aws,
        &td2,
        &ownership("task_definition.prometheus"),
        "h2",
        STACK,
        ENV,
    )
    .await
    .unwrap();
    let after = EcsServiceAttrs {
        task_definition: td2_arn.clone(),
        desired_count: 2,
        circuit_breaker_rollback: false,
        breaker_threshold: deploy::model::DEFAULT_BREAKER_THRESHOLD.into(),
        breaker_reset_on_healthy_task: true,
        minimum_healthy_percent: 50,
        maximum_percent: 200,
        enable_execute_command: false,
        tags: user_tags(&[("owner", "sre")]),
        ..attrs.clone()
    };
    let primary = ecs::update_service(&aws, "monitoring", "prometheus", &attrs, &after, false)
        .await
        .unwrap();
    assert!(
        primary.is_some(),
        "UpdateService ran and answered with its PRIMARY deployment"
    );
    let seen = ecs::find_service(&aws, "monitoring", "prometheus", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::EcsService(after.clone()));
    assert_eq!(seen.handles["task_definition_arn"], td2_arn);
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);

    // Only tags changed: no UpdateService needed, the tags still land.
    let tags_only = EcsServiceAttrs {
        tags: user_tags(&[("owner", "sre"), ("tier", "monitoring")]),
        ..after.clone()
    };
    let primary = ecs::update_service(&aws, "monitoring", "prometheus", &after, &tags_only, false)
        .await
        .unwrap();
    assert_eq!(primary, None, "no UpdateService for tags alone");
    let seen = ecs::find_service(&aws, "monitoring", "prometheus", &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::EcsService(tags_only.clone()));

    ecs::delete_service(&aws, "monitoring", "prometheus")
        .await
        .unwrap();
    assert!(
        ecs::find_service(&aws, "monitoring", "prometheus", &address)
            .await
            .unwrap()
            .is_none()
    );
    // Deleting what is gone is fine.
    ecs::delete_service(&aws, "monitoring", "prometheus")
        .await
        .unwrap();
    ecs::delete_service(&aws, "monitoring", "never-existed")
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// IAM roles
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn role_create_observe_update_delete() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let address = addr(Kind::IamRole, "prometheus");
    let name = "monitoring-prometheus-us-west-2";
    assert!(iam::find_role(&aws, name, &address)
        .await
        .unwrap()
        .is_none());

    let attrs = role_attrs(name);
    let arn = iam::create_role(&aws, &attrs, &ownership("iam_role.prometheus"))
        .await
        .unwrap();
    assert_eq!(
        arn,
        format!("arn:aws:iam::123456789012:role/deploy/monitoring/{name}")
    );
    let seen = iam::find_role(&aws, name, &address).await.unwrap().unwrap();
    assert_eq!(seen.id, arn);
    assert_eq!(seen.attrs, Attrs::IamRole(attrs.clone()));
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);
    assert_eq!(
        iam::list_roles_under_path(&aws, "/deploy/monitoring/")
            .await
            .unwrap(),
        [name]
    );
    assert!(iam::list_roles_under_path(&aws, "/other/")
        .await
        .unwrap()
        .is_empty());

    let managed = aws
        .iam
        .create_policy()
        .policy_name("read-config")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let mut after = attrs.clone();
    after.description = "Prometheus, with ECS Exec".into();
    after.assume_role_policy = canonical_policy(&json!({
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]},
            "Action": "sts:AssumeRole"
        }]
    }));
    after.inline_policies.insert(
        "write-logs".into(),
        canonical_policy(&json!({
            "Statement": [{"Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:CreateLogStream"], "Resource": "arn:aws:logs:us-west-2:123456789012:log-group:/ecs/prom-task:*"}]
        })),
    );
    after.managed_policy_arns.insert(managed.clone());
    after.tags = user_tags(&[("owner", "sre")]);
    iam::update_role(&aws, name, &attrs, &after).await.unwrap();
    let seen = iam::find_role(&aws, name, &address).await.unwrap().unwrap();
    assert_eq!(seen.attrs, Attrs::IamRole(after.clone()));
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);

    // And back: an inline policy and the attachment removed, description emptied.
    let mut back = after.clone();
    back.inline_policies.remove("ecs-exec");
    back.managed_policy_arns.clear();
    back.description = String::new();
    iam::update_role(&aws, name, &after, &back).await.unwrap();
    let seen = iam::find_role(&aws, name, &address).await.unwrap().unwrap();
    assert_eq!(seen.attrs, Attrs::IamRole(back.clone()));

    iam::update_role(&aws, name, &back, &after).await.unwrap();
    iam::delete_role(&aws, name).await.unwrap();
    assert!(iam::find_role(&aws, name, &address)
        .await
        .unwrap()
        .is_none());
    iam::delete_role(&aws, name).await.unwrap();
}
