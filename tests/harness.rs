// Tests of the test harness itself (tests/common, seed.py, proxy.py), using only the AWS SDK:
// every deploy test trusts that the seeded world is right, that the proxy records each call,
// and that injected faults look like AWS's to the SDK's retry logic.
mod common;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::{
    ActionTypeEnum, LoadBalancerSchemeEnum, TargetTypeEnum,
};
use common::{AwsActions, Call, TestEnv, REGION};
use serde_json::json;

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Standard retry, 3 attempts, with a short backoff so retry tests stay fast.
fn fast_retry() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(10))
}

fn logs_via_proxy(conf: &aws_config::SdkConfig) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(conf)
            .retry_config(fast_retry())
            .build(),
    )
}

fn ec2_via_proxy(conf: &aws_config::SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(conf)
            .retry_config(fast_retry())
            .build(),
    )
}

fn of_action<'a>(calls: &'a [Call], action: &str) -> Vec<&'a Call> {
    calls.iter().filter(|c| c.action == action).collect()
}

async fn counts(env: &TestEnv) -> (usize, usize, usize, usize, usize, usize) {
    let conf = env.sdk_config(REGION).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("tag:Name", "showcase"))
        .send()
        .await
        .unwrap()
        .vpcs()
        .len();
    let subnets = ec2
        .describe_subnets()
        .filters(filter("tag-key", "tier"))
        .send()
        .await
        .unwrap()
        .subnets()
        .len();
    let groups = ec2
        .describe_security_groups()
        .filters(filter("group-name", "backend-alb"))
        .send()
        .await
        .unwrap()
        .security_groups()
        .len();
    let lbs = elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .to_vec();
    let tgs = elb
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .len();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lbs[0].load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap()
        .listeners()
        .len();
    (vpcs, subnets, groups, lbs.len(), tgs, listeners)
}

#[tokio::test]
async fn seed_creates_the_showcase_network_and_is_idempotent() {
    let env = TestEnv::new();
    let ids = env.seed(false);
    let conf = env.sdk_config(REGION).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);

    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("tag:Name", "showcase"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.vpc_id(), ids["vpc_id"].as_str());
    assert_eq!(vpc.cidr_block(), Some("10.20.0.0/16"));

    for (tier, key) in [
        ("private", "private_subnet_ids"),
        ("public", "public_subnet_ids"),
    ] {
        let subnets = ec2
            .describe_subnets()
            .filters(filter("vpc-id", vpc.vpc_id().unwrap()))
            .filters(filter("tag:tier", tier))
            .send()
            .await
            .unwrap();
        let subnets = subnets.subnets();
        assert_eq!(subnets.len(), 2, "{tier} subnets");
        let mut zones: Vec<_> = subnets.iter().map(|s| s.availability_zone()).collect();
        zones.dedup();
        assert_eq!(
            zones.len(),
            2,
            "{tier} subnets must be in two AZs: {zones:?}"
        );
        let mut found: Vec<_> = subnets.iter().map(|s| s.subnet_id().unwrap()).collect();
        let mut seeded: Vec<_> = ids[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        found.sort();
        seeded.sort();
        assert_eq!(found, seeded);
        assert!(subnets
            .iter()
            .all(|s| s.tags().iter().any(|t| t.key() == Some("Name"))));
    }

    let lb = elb
        .describe_load_balancers()
        .names("application-load-balancer")
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .clone();
    let dns = lb.dns_name().unwrap_or_default();
    assert!(!dns.is_empty(), "ALB DNS name is empty");
    assert_eq!(dns, ids["alb_dns_name"].as_str().unwrap());
    assert_eq!(lb.scheme(), Some(&LoadBalancerSchemeEnum::InternetFacing));
    assert_eq!(
        lb.security_groups(),
        [ids["alb_security_group_id"].as_str().unwrap().to_string()]
    );

    let sg = ec2
        .describe_security_groups()
        .group_ids(ids["alb_security_group_id"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .clone();
    assert_eq!(sg.group_name(), Some("backend-alb"));
    assert!(sg
        .ip_permissions()
        .iter()
        .any(|p| p.from_port() == Some(3000)
            && p.to_port() == Some(3000)
            && p.ip_ranges()
                .iter()
                .any(|r| r.cidr_ip() == Some("10.20.0.0/16"))));

    let tg = elb
        .describe_target_groups()
        .names("backend")
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .clone();
    assert_eq!(tg.port(), Some(3000));
    assert_eq!(tg.target_type(), Some(&TargetTypeEnum::Ip));
    assert_eq!(tg.health_check_path(), Some("/health"));
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let listener = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(3000))
        .expect("the backend's listener on 3000");
    let action = &listener.default_actions()[0];
    assert_eq!(action.r#type(), Some(&ActionTypeEnum::Forward));
    assert_eq!(action.target_group_arn(), tg.target_group_arn());

    let before = counts(&env).await;
    // Listeners: the backend's on 3000 and the HTTPS one on 443.
    assert_eq!(before, (1, 4, 1, 1, 1, 2));
    let again = env.seed(false);
    assert_eq!(again, ids, "a second seed must find the same resources");
    assert_eq!(
        counts(&env).await,
        before,
        "a second seed duplicated something"
    );
}

#[tokio::test]
async fn seed_handmade_resources_are_untagged_and_not_duplicated() {
    let env = TestEnv::new();
    let first = env.seed(true);
    let second = env.seed(true);
    assert_eq!(first, second);
    assert_eq!(
        first["task_definition_arn"],
        "arn:aws:ecs:us-west-2:123456789012:task-definition/prom-task:1"
    );

    let conf = env.sdk_config(REGION).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/ecs/prom-task")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 1);
    let group = &groups.log_groups()[0];
    assert_eq!(group.retention_in_days(), Some(7));
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(group.log_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(tags.tags().is_none_or(|t| t.is_empty()), "{tags:?}");

    let ecs = aws_sdk_ecs::Client::new(&conf);
    let arns = ecs
        .list_task_definitions()
        .family_prefix("prom-task")
        .send()
        .await
        .unwrap();
    assert_eq!(arns.task_definition_arns().len(), 1);
    let td = ecs
        .describe_task_definition()
        .task_definition("prom-task")
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert!(td.tags().is_empty(), "{:?}", td.tags());
    let def = td.task_definition().unwrap();
    assert_eq!(def.cpu(), Some("256"));
    assert_eq!(def.memory(), Some("512"));
    assert_eq!(
        def.network_mode(),
        Some(&aws_sdk_ecs::types::NetworkMode::Awsvpc)
    );
    assert_eq!(
        def.container_definitions()[0].image(),
        Some("prom/prometheus:v2.45.0")
    );
}

#[tokio::test]
async fn proxy_records_service_and_action_and_seed_is_not_recorded() {
    let env = TestEnv::new();
    env.seed(false);
    assert_eq!(env.proxy.calls(), vec![], "seed must bypass the proxy");

    let conf = env.proxy_sdk_config(REGION).await;
    logs_via_proxy(&conf)
        .describe_log_groups()
        .send()
        .await
        .unwrap();
    let vpcs = ec2_via_proxy(&conf).describe_vpcs().send().await.unwrap();
    assert!(vpcs.vpcs().len() >= 2, "default VPC + showcase");

    let calls = env.proxy.calls();
    let seen: Vec<(&str, &str, u16, bool)> = calls
        .iter()
        .map(|c| (c.service.as_str(), c.action.as_str(), c.status, c.injected))
        .collect();
    assert_eq!(
        seen,
        [
            ("logs", "DescribeLogGroups", 200, false),
            ("ec2", "DescribeVpcs", 200, false),
        ]
    );
    assert!(env.proxy.mutating_calls().is_empty());

    // Calls made directly to moto are not recorded; clear() forgets.
    let direct = env.sdk_config(REGION).await;
    aws_sdk_ec2::Client::new(&direct)
        .create_tags()
        .resources(vpcs.vpcs()[0].vpc_id().unwrap())
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("k")
                .value("v")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(env.proxy.calls().len(), 2);
    env.proxy.clear();
    assert!(env.proxy.calls().is_empty());

    // A mutating call through the proxy is classified as one.
    aws_sdk_cloudwatchlogs::Client::new(&conf)
        .create_log_group()
        .log_group_name("/test/harness")
        .send()
        .await
        .unwrap();
    let mutating = env.proxy.mutating_calls();
    assert_eq!(mutating.len(), 1);
    assert_eq!(mutating[0].action, "CreateLogGroup");
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let env = TestEnv::new();
    env.proxy.inject(json!([{
        "action": "DescribeLogGroups", "status": 400,
        "code": "ThrottlingException", "message": "Rate exceeded", "times": 2
    }]));
    let conf = env.proxy_sdk_config(REGION).await;
    logs_via_proxy(&conf)
        .describe_log_groups()
        .send()
        .await
        .expect("two throttles then success, within 3 attempts");

    let calls = env.proxy.calls();
    let attempts = of_action(&calls, "DescribeLogGroups");
    assert_eq!(attempts.len(), 3, "{calls:?}");
    assert_eq!(attempts.iter().filter(|c| c.injected).count(), 2);
    assert!(attempts[..2].iter().all(|c| c.injected && c.status == 400));
    assert!(!attempts[2].injected && attempts[2].status == 200);
}

#[tokio::test]
async fn access_denied_is_not_retried_in_json_and_query_protocols() {
    let env = TestEnv::new();
    env.proxy.inject(json!([
        {"action": "DescribeLogGroups", "status": 400, "code": "AccessDeniedException",
         "message": "User is not authorized to perform: logs:DescribeLogGroups", "times": 5},
        {"action": "ListRoles", "status": 403, "code": "AccessDenied",
         "message": "User is not authorized to perform: iam:ListRoles", "times": 5},
    ]));
    let conf = env.proxy_sdk_config(REGION).await;

    let err = logs_via_proxy(&conf)
        .describe_log_groups()
        .send()
        .await
        .expect_err("injected AccessDeniedException");
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some("User is not authorized to perform: logs:DescribeLogGroups")
    );

    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&conf)
            .retry_config(fast_retry())
            .build(),
    );
    let err = iam
        .list_roles()
        .send()
        .await
        .expect_err("injected AccessDenied");
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");

    let calls = env.proxy.calls();
    assert_eq!(
        calls,
        [
            Call {
                service: "logs".into(),
                action: "DescribeLogGroups".into(),
                method: "POST".into(),
                status: 400,
                injected: true,
                write: false,
                bookkeeping: false,
                key: "testing".into(),
            },
            Call {
                service: "iam".into(),
                action: "ListRoles".into(),
                method: "POST".into(),
                status: 403,
                injected: true,
                write: false,
                bookkeeping: false,
                key: "testing".into(),
            },
        ],
        "exactly one attempt each, no retry"
    );
}

#[tokio::test]
async fn ec2_internal_error_is_retried() {
    let env = TestEnv::new();
    env.proxy.inject(json!([{
        "service": "ec2", "action": "DescribeVpcs", "status": 500,
        "code": "InternalError", "message": "An internal error has occurred", "times": 1
    }]));
    let conf = env.proxy_sdk_config(REGION).await;
    let vpcs = ec2_via_proxy(&conf)
        .describe_vpcs()
        .send()
        .await
        .expect("one 500 then success");
    assert!(!vpcs.vpcs().is_empty());

    let calls = env.proxy.calls();
    let attempts: Vec<(u16, bool)> = of_action(&calls, "DescribeVpcs")
        .iter()
        .map(|c| (c.status, c.injected))
        .collect();
    assert_eq!(attempts, [(500, true), (200, false)]);

    // Without retries the EC2 error shape must still parse to its code.
    env.proxy
        .inject(json!([{"action": "DescribeVpcs", "status": 500,
                             "code": "InternalError", "message": "boom"}]));
    let no_retry = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&conf)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let err = no_retry.describe_vpcs().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError"), "{err:?}");
    assert_eq!(err.message(), Some("boom"));
}

/// The SDK operations the adapters (src/aws/, where every AWS call lives) make, as (signing
/// name, action): every `.CLIENT.operation()` chain on the `Aws` clients, the operation's name
/// in the API's own spelling.
fn operations_called_by_the_adapters() -> std::collections::BTreeSet<(String, String)> {
    fn signing_name(client: &str) -> &str {
        match client {
            "efs" => "elasticfilesystem",
            "elbv2" => "elasticloadbalancing",
            other => other,
        }
    }
    let clients = [
        "ec2",
        "ecs",
        "efs",
        "elbv2",
        "iam",
        "logs",
        "secretsmanager",
        "ssm",
        "sts",
        "tagging",
        "servicediscovery",
        "dynamodb",
        "s3",
    ];
    let mut out = std::collections::BTreeSet::new();
    let mut files = vec![common::repo_root().join("src/aws")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        // Whitespace (a chain split over lines) dropped, then `.client.operation()`.
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for client in clients {
            let needle = format!(".{client}.");
            for (at, _) in text.match_indices(&needle) {
                let rest = &text[at + needle.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name.is_empty() || !rest[name.len()..].starts_with("()") {
                    continue;
                }
                let action: String = name
                    .split('_')
                    .map(|w| w[..1].to_uppercase() + &w[1..])
                    .collect();
                out.insert((signing_name(client).to_string(), action));
            }
        }
    }
    out
}

#[test]
fn every_operation_the_adapters_call_is_a_listed_read_or_write() {
    let actions = AwsActions::load();
    let called = operations_called_by_the_adapters();
    // The scan finds the adapters' calls (a broken scan would find nothing and pass).
    for known in [
        ("elasticloadbalancing", "AddTags"),
        ("elasticloadbalancing", "RemoveTags"),
        ("ecs", "RegisterTaskDefinition"),
        ("sts", "GetCallerIdentity"),
        ("elasticfilesystem", "CreateMountTarget"),
        ("servicediscovery", "CreatePrivateDnsNamespace"),
    ] {
        assert!(
            called.contains(&(known.0.to_string(), known.1.to_string())),
            "the scan of src/aws missed {known:?}: {called:?}"
        );
    }
    let mut unlisted = Vec::new();
    for (service, action) in &called {
        let read = actions.is_read(service, action);
        let write = actions.is_write(service, action);
        let bookkeeping = actions.is_bookkeeping(service, action);
        assert!(
            [read, write, bookkeeping].iter().filter(|&&b| b).count() <= 1,
            "{service}:{action} is listed more than once (read, write, bookkeeping)"
        );
        if !read && !write && !bookkeeping {
            unlisted.push(format!("{service}:{action}"));
        }
    }
    assert!(
        unlisted.is_empty(),
        "calls the adapters make that tests/fixtures/aws_actions.json does not list (add each \
         to reads only if it changes nothing): {unlisted:?}"
    );
    // Tagging another stack's target group or rule is a write (it once counted as a read).
    for (service, action) in [
        ("elasticloadbalancing", "AddTags"),
        ("elasticloadbalancing", "RemoveTags"),
        ("ec2", "CreateTags"),
        ("logs", "TagResource"),
        ("iam", "TagRole"),
        ("secretsmanager", "PutSecretValue"),
    ] {
        assert!(!actions.is_read(service, action), "{service}:{action}");
        assert!(actions.is_write(service, action), "{service}:{action}");
    }
}

#[tokio::test]
async fn the_proxy_counts_only_listed_reads_as_reads() {
    let env = TestEnv::new();
    let conf = env.proxy_sdk_config(REGION).await;
    let logs = logs_via_proxy(&conf);
    logs.describe_log_groups().send().await.unwrap();
    logs.create_log_group()
        .log_group_name("/test/classified")
        .send()
        .await
        .unwrap();
    // A write the verbs of old did not know: ELBv2 tagging (moto answers it with an error
    // for a made-up ARN, which is still a call that could have written).
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let _ = elb
        .add_tags()
        .resource_arns("arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/x/1")
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("k")
                .value("v")
                .build(),
        )
        .send()
        .await;
    // A request the proxy cannot name (no signature, no action) counts as a write.
    let _ = common::http_request(env.proxy.port(), "POST", "/", b"nothing=here");
    let seen: Vec<(String, String, bool)> = env
        .proxy
        .calls()
        .into_iter()
        .map(|c| (c.service, c.action, c.write))
        .collect();
    let own = |s: &str, a: &str, w: bool| (s.to_string(), a.to_string(), w);
    assert_eq!(
        seen,
        [
            own("logs", "DescribeLogGroups", false),
            own("logs", "CreateLogGroup", true),
            own("elasticloadbalancing", "AddTags", true),
            own("", "", true),
        ]
    );
}

/// Every call an apply and a destroy of the reference stack make is listed as a read or a
/// write, and the proxy counts as writes exactly the calls the list names as writes: a
/// "touched nothing" assertion can only be trusted when no write passes for a read.
#[tokio::test(flavor = "multi_thread")]
async fn apply_and_destroy_of_the_reference_stack_call_only_listed_actions() {
    let env = TestEnv::new();
    env.seed(false);
    let actions = AwsActions::load();
    let mut seen = Vec::new();
    for args in [
        ["apply", "-f", "stacks/monitoring.yaml", "--auto-approve"],
        ["destroy", "-f", &env.unprotected_stack(), "--auto-approve"],
    ] {
        env.proxy.clear();
        common::assert_success(&env.deploy(&args));
        let calls = env.proxy.calls();
        assert!(
            calls.iter().any(Call::is_mutating),
            "`deploy {}` wrote nothing: {calls:?}",
            args[0]
        );
        seen.extend(calls);
    }
    let mut unlisted = std::collections::BTreeSet::new();
    for c in &seen {
        let read = actions.is_read(&c.service, &c.action);
        let write = actions.is_write(&c.service, &c.action);
        let bookkeeping = actions.is_bookkeeping(&c.service, &c.action);
        if [read, write, bookkeeping].iter().filter(|&&b| b).count() != 1 {
            unlisted.insert(format!("{}:{}", c.service, c.action));
        }
        assert_eq!(
            c.write,
            !read && !bookkeeping,
            "the proxy classified {c} against the list"
        );
        assert_eq!(c.bookkeeping, bookkeeping, "the proxy classified {c}");
    }
    assert!(
        unlisted.is_empty(),
        "calls neither (or both) listed in tests/fixtures/aws_actions.json: {unlisted:?}"
    );
    // The writes apply and destroy make, by service: all of them counted as writes.
    let writes: std::collections::BTreeSet<String> = seen
        .iter()
        .filter(|c| c.is_mutating())
        .map(|c| format!("{}:{}", c.service, c.action))
        .collect();
    for expected in [
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:DeleteRule",
        "ecs:RegisterTaskDefinition",
        "ecs:DeregisterTaskDefinition",
        "iam:PutRolePolicy",
        "secretsmanager:CreateSecret",
        "elasticfilesystem:CreateMountTarget",
        "servicediscovery:CreatePrivateDnsNamespace",
    ] {
        assert!(
            writes.contains(expected),
            "{expected} not seen as a write: {writes:?}"
        );
    }
    // The lock and the environment record: bookkeeping, never counted as writes.
    let bookkeeping: std::collections::BTreeSet<String> = seen
        .iter()
        .filter(|c| c.bookkeeping)
        .map(|c| format!("{}:{}", c.service, c.action))
        .collect();
    assert_eq!(
        bookkeeping,
        [
            "dynamodb:CreateTable",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem"
        ]
        .map(String::from)
        .into(),
        "the lock's and the record's writes"
    );
}
