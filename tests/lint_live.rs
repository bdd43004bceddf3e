//! The `--live` rules (DL070–DL075) against moto seeded with the showcase network: the seeded
//! world as it is (compliant once its ALB drops invalid headers and redirects port 80), then
//! made non-compliant one AWS setting at a time — a TLS 1.1 policy, port 80 forwarding, the
//! header attribute off, a task subnet routed to the internet gateway (through its own table
//! and through the VPC's main one), a certificate for another host, no NAT and no endpoints
//! with Docker Hub images — and back. Every read goes through the recording proxy, which must
//! see no write.

use aws_sdk_ec2 as ec2;
use aws_sdk_elasticloadbalancingv2 as elb;
use deploy::aws::network_audit;
use deploy::aws::Aws;
use deploy::lint_live::{LiveFinding, LiveInputs, StartService};
use deploy::model::{LoadBalancer, Lookups};
use serde_json::Value;

mod common;

use common::{repo_root, TestEnv, ACCOUNT_ID, REGION};

fn s(v: &Value) -> String {
    v.as_str()
        .expect("a string in the seed's answer")
        .to_string()
}

fn lookups(seeded: &Value) -> Lookups {
    Lookups {
        account_id: ACCOUNT_ID.into(),
        region: REGION.into(),
        vpc_id: s(&seeded["vpc_id"]),
        vpc_cidr: "10.20.0.0/16".into(),
        subnet_ids: seeded["private_subnet_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect(),
        load_balancer: LoadBalancer {
            name: "application-load-balancer".into(),
            arn: s(&seeded["alb_arn"]),
            dns_name: s(&seeded["alb_dns_name"]),
            vpc_id: s(&seeded["vpc_id"]),
            security_groups: vec![s(&seeded["alb_security_group_id"])],
            https_listener_arn: Some(s(&seeded["https_listener_arn"])),
            targets_by_port: Default::default(),
        },
        secrets: Default::default(),
        parameter_types: Default::default(),
        namespaces: Default::default(),
    }
}

/// What the reference stack's tasks need at start, as the stack builds them.
fn reference_inputs() -> LiveInputs {
    let stack = repo_root().join("stacks/monitoring.yaml");
    let mut loaded = deploy::spec::load(&stack).expect("the reference stack loads");
    deploy::spec::environments::select(&mut loaded, None).expect("its own environment");
    let templates = deploy::render::Templates::new(repo_root().join("templates"));
    let lookups = Lookups::placeholders(REGION);
    let built = deploy::spec::build_desired(&loaded, &lookups, &templates)
        .unwrap_or_else(|_| panic!("the reference stack builds"));
    LiveInputs::from_desired(&built.desired)
}

struct World {
    env: TestEnv,
    seeded: Value,
    ec2: ec2::Client,
    elb: elb::Client,
    /// Straight to moto (not recorded).
    config: aws_config::SdkConfig,
    /// deploy's clients, through the recording proxy.
    aws: Aws,
}

impl World {
    async fn new() -> World {
        let env = TestEnv::new();
        let seeded = env.seed(false);
        let config = env.sdk_config(REGION).await;
        let aws = Aws::from_config(&env.proxy_sdk_config(REGION).await, REGION.into());
        World {
            ec2: ec2::Client::new(&config),
            elb: elb::Client::new(&config),
            config: config.clone(),
            env,
            seeded,
            aws,
        }
    }

    /// The live findings as (rule, subject), sorted; no write may reach AWS.
    async fn findings(&self, inputs: &LiveInputs) -> Vec<LiveFinding> {
        self.env.proxy.clear();
        let mut found = network_audit::run(&self.aws, &lookups(&self.seeded), inputs)
            .await
            .expect("the live reads");
        self.env.proxy.wait_idle();
        let writes = self.env.proxy.mutating_calls();
        assert!(writes.is_empty(), "the live rules wrote: {writes:?}");
        found.sort();
        found
    }

    fn private_subnets(&self) -> Vec<String> {
        self.seeded["private_subnet_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect()
    }

    fn https_listener(&self) -> String {
        s(&self.seeded["https_listener_arn"])
    }

    async fn set_drop_invalid_headers(&self, on: bool) {
        self.elb
            .modify_load_balancer_attributes()
            .load_balancer_arn(s(&self.seeded["alb_arn"]))
            .attributes(
                elb::types::LoadBalancerAttribute::builder()
                    .key("routing.http.drop_invalid_header_fields.enabled")
                    .value(on.to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Port 80, forwarding to the backend or redirecting to HTTPS; returns its ARN.
    async fn open_port_80(&self, redirect: bool) -> String {
        let action = if redirect {
            elb::types::Action::builder()
                .r#type(elb::types::ActionTypeEnum::Redirect)
                .redirect_config(
                    elb::types::RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .status_code(elb::types::RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build()
        } else {
            elb::types::Action::builder()
                .r#type(elb::types::ActionTypeEnum::Forward)
                .target_group_arn(s(&self.seeded["target_group_arn"]))
                .build()
        };
        self.elb
            .create_listener()
            .load_balancer_arn(s(&self.seeded["alb_arn"]))
            .protocol(elb::types::ProtocolEnum::Http)
            .port(80)
            .default_actions(action)
            .send()
            .await
            .unwrap()
            .listeners()[0]
            .listener_arn()
            .unwrap()
            .to_string()
    }

    /// The HTTPS listener with `policy` and a certificate for `domain` (moto's ModifyListener
    /// needs the default actions every time: it fails without them).
    async fn https_with(&self, policy: &str, domain: &str) {
        let cert = common::request_certificate(&self.config, domain).await;
        self.elb
            .modify_listener()
            .listener_arn(self.https_listener())
            .ssl_policy(policy)
            .certificates(
                elb::types::Certificate::builder()
                    .certificate_arn(cert)
                    .build(),
            )
            .default_actions(
                elb::types::Action::builder()
                    .r#type(elb::types::ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        elb::types::FixedResponseActionConfig::builder()
                            .status_code("404")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    async fn main_route_table(&self) -> String {
        self.ec2
            .describe_route_tables()
            .filters(
                ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(s(&self.seeded["vpc_id"]))
                    .build(),
            )
            .filters(
                ec2::types::Filter::builder()
                    .name("association.main")
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .route_tables()[0]
            .route_table_id()
            .unwrap()
            .to_string()
    }

    async fn association_of(&self, subnet: &str) -> String {
        let tables = self
            .ec2
            .describe_route_tables()
            .filters(
                ec2::types::Filter::builder()
                    .name("association.subnet-id")
                    .values(subnet)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        tables.route_tables()[0]
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet))
            .and_then(|a| a.route_table_association_id())
            .unwrap()
            .to_string()
    }

    async fn default_route(&self, table: &str, igw: Option<&str>, nat: Option<&str>) {
        let _ = self
            .ec2
            .delete_route()
            .route_table_id(table)
            .destination_cidr_block("0.0.0.0/0")
            .send()
            .await;
        if igw.is_none() && nat.is_none() {
            return;
        }
        self.ec2
            .create_route()
            .route_table_id(table)
            .destination_cidr_block("0.0.0.0/0")
            .set_gateway_id(igw.map(str::to_string))
            .set_nat_gateway_id(nat.map(str::to_string))
            .send()
            .await
            .unwrap();
    }
}

fn pairs(found: &[LiveFinding]) -> Vec<(&'static str, String)> {
    found.iter().map(|f| (f.rule, f.subject.clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seeded_network_is_compliant_once_its_alb_is() {
    let w = World::new().await;
    let inputs = reference_inputs();
    // What the reference stack's tasks call at start, read from the stack.
    assert_eq!(
        inputs.start_services,
        [
            StartService::SecretsManager,
            StartService::Logs,
            StartService::Efs
        ]
        .into()
    );
    assert_eq!(inputs.grafana_hosts, ["grafana.showcase.example.com"]);
    assert!(inputs
        .images
        .contains(&"prom/prometheus:v2.53.4".to_string()));

    // As seeded: the header attribute is unset (AWS's default: false).
    let found = w.findings(&inputs).await;
    assert_eq!(
        pairs(&found),
        [("DL072", s(&w.seeded["alb_arn"]))],
        "{found:#?}"
    );
    w.set_drop_invalid_headers(true).await;
    w.open_port_80(true).await;
    let found = w.findings(&inputs).await;
    assert!(found.is_empty(), "{found:#?}");

    // The reads: one per kind of fact, and no more.
    let calls: Vec<String> = w
        .env
        .proxy
        .calls()
        .iter()
        .map(|c| c.action.clone())
        .collect();
    for action in [
        "DescribeListeners",
        "DescribeSSLPolicies",
        "DescribeLoadBalancerAttributes",
        "DescribeRouteTables",
        "DescribeVpcEndpoints",
        "DescribeListenerCertificates",
        "DescribeCertificate",
    ] {
        assert_eq!(
            calls.iter().filter(|c| *c == action).count(),
            1,
            "{action} in {calls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_non_compliant_setting_is_found_on_the_resource_it_is_about() {
    let w = World::new().await;
    let inputs = reference_inputs();
    let (alb, https) = (s(&w.seeded["alb_arn"]), w.https_listener());
    let private = w.private_subnets();
    let (igw, nat) = (
        s(&w.seeded["internet_gateway_id"]),
        s(&w.seeded["nat_gateway_id"]),
    );
    let private_table = s(&w.seeded["private_route_table_id"]);

    // A TLS 1.1 policy, port 80 forwarding, headers passed on, a certificate for another host.
    w.https_with("ELBSecurityPolicy-TLS-1-1-2017-01", "other.example.com")
        .await;
    let http = w.open_port_80(false).await;
    w.set_drop_invalid_headers(false).await;
    // private-a's own table routes to the internet gateway; private-b loses its association
    // and falls back to the VPC's main table, which does too. No NAT anywhere.
    w.default_route(&private_table, Some(&igw), None).await;
    let b_association = w.association_of(&private[1]).await;
    w.ec2
        .disassociate_route_table()
        .association_id(b_association)
        .send()
        .await
        .unwrap();
    let main = w.main_route_table().await;
    w.default_route(&main, Some(&igw), None).await;

    let found = w.findings(&inputs).await;
    let mut expected = vec![
        ("DL070", https.clone()),
        ("DL071", http.clone()),
        ("DL072", alb.clone()),
        ("DL073", private[0].clone()),
        ("DL073", private[1].clone()),
        ("DL074", https.clone()),
        ("DL075", private[0].clone()),
        ("DL075", private[1].clone()),
    ];
    expected.sort();
    assert_eq!(pairs(&found), expected, "{found:#?}");
    let message = |rule: &str, subject: &str| {
        found
            .iter()
            .find(|f| f.rule == rule && f.subject == subject)
            .unwrap()
            .message
            .clone()
    };
    assert!(
        message("DL070", &https).contains("TLSv1.2, TLSv1.1"),
        "the policy's protocols, as DescribeSSLPolicies gives them"
    );
    assert!(message("DL073", &private[1]).contains(&format!("main route table {main}")));
    assert!(message("DL073", &private[0]).contains(&private_table));
    assert!(message("DL074", &https).contains("other.example.com"));
    let reach = message("DL075", &private[0]);
    for said in [
        "com.amazonaws.us-west-2.secretsmanager",
        "com.amazonaws.us-west-2.logs",
        "rate-limits anonymous pulls",
        "quay.io/prometheus/prometheus:v2.53.4 serves the same image",
        "quay.io/prometheus/alertmanager:v0.27.0 serves the same image",
    ] {
        assert!(reach.contains(said), "{said}: {reach}");
    }

    // Each fixed: the modern policy, a redirect, headers dropped, NAT routes, a certificate
    // for the host (a one-label wildcard).
    w.https_with(
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "*.showcase.example.com",
    )
    .await;
    w.elb
        .delete_listener()
        .listener_arn(&http)
        .send()
        .await
        .unwrap();
    w.open_port_80(true).await;
    w.set_drop_invalid_headers(true).await;
    w.default_route(&private_table, None, Some(&nat)).await;
    w.default_route(&main, None, Some(&nat)).await;
    let found = w.findings(&inputs).await;
    assert!(found.is_empty(), "{found:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_nat_vpc_endpoints_serve_what_the_tasks_call_but_docker_hub_needs_the_internet() {
    let w = World::new().await;
    w.set_drop_invalid_headers(true).await;
    let private_table = s(&w.seeded["private_route_table_id"]);
    w.default_route(&private_table, None, None).await;
    let vpc = s(&w.seeded["vpc_id"]);
    for (service, kind) in [
        ("secretsmanager", ec2::types::VpcEndpointType::Interface),
        ("logs", ec2::types::VpcEndpointType::Interface),
        ("ecr.api", ec2::types::VpcEndpointType::Interface),
        ("ecr.dkr", ec2::types::VpcEndpointType::Interface),
        ("s3", ec2::types::VpcEndpointType::Gateway),
    ] {
        let mut create = w
            .ec2
            .create_vpc_endpoint()
            .vpc_id(&vpc)
            .service_name(format!("com.amazonaws.{REGION}.{service}"))
            .vpc_endpoint_type(kind.clone());
        if kind == ec2::types::VpcEndpointType::Interface {
            create = create.private_dns_enabled(true);
        } else {
            create = create.route_table_ids(&private_table);
        }
        create.send().await.unwrap();
    }
    let on_ecr = LiveInputs {
        images: vec![format!(
            "{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/prometheus:v2.53.4"
        )],
        start_services: [
            StartService::Ecr,
            StartService::Logs,
            StartService::SecretsManager,
        ]
        .into(),
        ..Default::default()
    };
    let found = w.findings(&on_ecr).await;
    assert!(found.is_empty(), "{found:#?}");
    // The reference stack's Docker Hub images: the endpoints do not help.
    let found = w.findings(&reference_inputs()).await;
    let reach: Vec<_> = found.iter().filter(|f| f.rule == "DL075").collect();
    assert_eq!(reach.len(), 2, "{found:#?}");
    assert!(reach[0].message.contains("Docker Hub"));
    assert!(
        !reach[0].message.contains("com.amazonaws"),
        "{}",
        reach[0].message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_warns_when_the_tasks_cannot_reach_what_they_need_at_start() {
    let w = World::new().await;
    let private = w.private_subnets();
    let plan = || {
        let out = w.env.deploy(&["plan", "-f", "stacks/monitoring.yaml"]);
        common::assert_success(&out);
        format!("{}{}", common::stdout(&out), common::stderr(&out))
    };
    // As seeded, through the NAT gateway: nothing to say.
    let text = plan();
    assert!(!text.contains("DL075"), "{text}");
    // Without it: a warning per subnet, and the plan still succeeds.
    w.default_route(&s(&w.seeded["private_route_table_id"]), None, None)
        .await;
    let text = plan();
    for subnet in &private {
        assert!(text.contains(&format!("DL075 {subnet}")), "{text}");
    }
    assert!(
        text.contains("quay.io/prometheus/prometheus:v2.53.4"),
        "{text}"
    );
}
