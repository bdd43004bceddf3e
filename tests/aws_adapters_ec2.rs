//! The EC2, ELBv2, CloudWatch Logs and tagging adapters against a local moto server: what is
//! created observes back to exactly the attributes it was created from, updates converge, and
//! lookups fail clearly. Each test starts its own moto server (no shared state, no ordering).
//! Nothing here relies on a moto quirk listed in /work/shared/moto-notes.md.

use deploy::aws::{ec2, elbv2, logs, tagging, Aws};
use deploy::model::{
    Address, Attrs, Kind, LogGroupAttrs, Peer, Rule, SecurityGroupAttrs, Tags, TAG_ADDRESS,
    TAG_ENV, TAG_STACK,
};
use std::collections::BTreeSet;

mod common;

use common::Moto;

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn owned(user: &Tags, stack: &str, address: &Address) -> Tags {
    let mut all = user.clone();
    all.insert(TAG_STACK.into(), stack.into());
    all.insert(TAG_ENV.into(), "production".into());
    all.insert(TAG_ADDRESS.into(), address.to_string());
    all
}

fn rule(protocol: &str, port: i32, peer: Peer, description: &str) -> Rule {
    Rule {
        protocol: protocol.into(),
        from_port: port,
        to_port: port,
        peer,
        description: description.into(),
    }
}

fn cidr(c: &str) -> Peer {
    Peer::Cidr(c.into())
}

fn allow_all_egress() -> Rule {
    Rule {
        protocol: "-1".into(),
        from_port: -1,
        to_port: -1,
        peer: cidr("0.0.0.0/0"),
        description: String::new(),
    }
}

async fn create_vpc(aws: &Aws, cidr_block: &str, name: Option<&str>) -> String {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let mut req = aws.ec2.create_vpc().cidr_block(cidr_block);
    if let Some(n) = name {
        req = req.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(Tag::builder().key("Name").value(n).build())
                .build(),
        );
    }
    req.send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string()
}

async fn create_subnet(aws: &Aws, vpc: &str, cidr_block: &str, az: &str, tier: &str) -> String {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    aws.ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr_block)
        .availability_zone(az)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Subnet)
                .tags(Tag::builder().key("tier").value(tier).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string()
}

/// A group made by hand (no tags at all), as an operator would in the console.
async fn hand_made_group(aws: &Aws, vpc: &str, name: &str) -> String {
    aws.ec2
        .create_security_group()
        .group_name(name)
        .description("made by hand")
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string()
}

fn sg_attrs(o: &deploy::model::Observed) -> &SecurityGroupAttrs {
    match &o.attrs {
        Attrs::SecurityGroup(a) => a,
        other => panic!("expected security group attributes, got {other:?}"),
    }
}

async fn observe_sg(aws: &Aws, id: &str, address: &Address) -> deploy::model::Observed {
    ec2::observe_security_group(aws, id, address)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} should exist"))
}

#[tokio::test]
async fn security_group_round_trips_and_updates_converge() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let vpc = create_vpc(&aws, "10.10.0.0/16", None).await;

    // A peer group, created by the adapter too; its egress keeps exactly the default rule.
    let grafana_addr = Address::new(Kind::SecurityGroup, "grafana");
    let grafana = SecurityGroupAttrs {
        name: "monitoring-grafana".into(),
        description: "Grafana".into(),
        vpc_id: vpc.clone(),
        ingress: BTreeSet::new(),
        egress: [allow_all_egress()].into(),
        tags: Tags::new(),
    };
    let grafana_tags = owned(&grafana.tags, "monitoring", &grafana_addr);
    let grafana_id = ec2::create_security_group(&aws, &grafana, &grafana_tags)
        .await
        .unwrap();
    let seen = observe_sg(&aws, &grafana_id, &grafana_addr).await;
    assert_eq!(
        sg_attrs(&seen),
        &grafana,
        "default egress rule kept when wanted"
    );
    assert_eq!(seen.all_tags, grafana_tags);

    // The Prometheus group: a group-peer ingress rule, no allow-all egress.
    let address = Address::new(Kind::SecurityGroup, "prometheus");
    let desired = SecurityGroupAttrs {
        name: "monitoring-prometheus".into(),
        description: "Prometheus server".into(),
        vpc_id: vpc.clone(),
        ingress: [rule(
            "tcp",
            9090,
            Peer::Group(grafana_id.clone()),
            "from grafana",
        )]
        .into(),
        egress: [
            rule("tcp", 443, cidr("0.0.0.0/0"), "image pulls and logs"),
            rule("tcp", 3000, cidr("10.10.0.0/16"), ""),
        ]
        .into(),
        tags: tags(&[("team", "platform")]),
    };
    let all_tags = owned(&desired.tags, "monitoring", &address);
    let id = ec2::create_security_group(&aws, &desired, &all_tags)
        .await
        .unwrap();

    let seen = observe_sg(&aws, &id, &address).await;
    assert_eq!(seen.id, id);
    assert_eq!(seen.address, address);
    assert_eq!(
        sg_attrs(&seen),
        &desired,
        "observe right after create gives the create's attrs"
    );
    assert_eq!(
        seen.all_tags, all_tags,
        "all tags, set by the create call itself"
    );
    assert!(!sg_attrs(&seen).egress.contains(&allow_all_egress()));
    for r in &desired.ingress {
        assert!(seen.handles.contains_key(&ec2::rule_key("ingress", r)));
    }
    for r in &desired.egress {
        assert!(seen.handles.contains_key(&ec2::rule_key("egress", r)));
    }
    assert_eq!(seen.handles.len(), 3);

    // Someone widens the group by hand: all TCP from anywhere.
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(0)
                .to_port(65535)
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drifted = observe_sg(&aws, &id, &address).await;
    let widened = Rule {
        protocol: "tcp".into(),
        from_port: 0,
        to_port: 65535,
        peer: cidr("0.0.0.0/0"),
        description: String::new(),
    };
    assert!(sg_attrs(&drifted).ingress.contains(&widened));

    // New desired state: the group peer goes, a CIDR rule and a UDP rule come, the 443
    // egress rule changes description only, the 3000 rule goes, all-traffic IPv6 egress comes;
    // tags change (one added, one removed), ownership tags stay.
    let after = SecurityGroupAttrs {
        ingress: [
            rule("tcp", 9090, cidr("10.10.0.0/16"), "from the VPC"),
            rule("udp", 53, cidr("10.10.0.0/16"), ""),
        ]
        .into(),
        egress: [
            rule("tcp", 443, cidr("0.0.0.0/0"), "HTTPS out"),
            Rule {
                protocol: "-1".into(),
                from_port: -1,
                to_port: -1,
                peer: cidr("::/0"),
                description: "all IPv6".into(),
            },
        ]
        .into(),
        tags: tags(&[("owner", "sre")]),
        ..desired.clone()
    };
    ec2::update_security_group(&aws, &id, sg_attrs(&drifted), &after, &drifted.handles)
        .await
        .unwrap();
    let seen = observe_sg(&aws, &id, &address).await;
    assert_eq!(
        sg_attrs(&seen),
        &after,
        "update converges, hand-made rule revoked"
    );
    assert_eq!(seen.all_tags, owned(&after.tags, "monitoring", &address));

    // Nothing to do: no call fails, nothing changes.
    ec2::update_security_group(&aws, &id, &after, &after, &seen.handles)
        .await
        .unwrap();
    assert_eq!(sg_attrs(&observe_sg(&aws, &id, &address).await), &after);

    // Delete (after the peer reference is gone), twice; then it is absent.
    ec2::delete_security_group(&aws, &id).await.unwrap();
    ec2::delete_security_group(&aws, &id).await.unwrap();
    assert!(ec2::observe_security_group(&aws, &id, &address)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn find_security_groups_sees_replacements_and_untagged_decoys() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let vpc = create_vpc(&aws, "10.20.0.0/16", None).await;
    let other_vpc = create_vpc(&aws, "10.30.0.0/16", None).await;
    let address = Address::new(Kind::SecurityGroup, "prometheus");

    assert!(
        ec2::find_security_groups(&aws, &vpc, "monitoring-prometheus", &address)
            .await
            .unwrap()
            .is_empty()
    );

    // Someone's group holding the name, untagged; the same name in another VPC (not found).
    let decoy = hand_made_group(&aws, &vpc, "monitoring-prometheus").await;
    hand_made_group(&aws, &other_vpc, "monitoring-prometheus").await;
    // Ours, under a suffixed name (a replacement), found by its address tag.
    let attrs = SecurityGroupAttrs {
        name: "monitoring-prometheus-7f3a".into(),
        description: "Prometheus server".into(),
        vpc_id: vpc.clone(),
        ingress: BTreeSet::new(),
        egress: [rule("tcp", 443, cidr("0.0.0.0/0"), "")].into(),
        tags: tags(&[("team", "platform")]),
    };
    let all_tags = owned(&attrs.tags, "monitoring", &address);
    let ours = ec2::create_security_group(&aws, &attrs, &all_tags)
        .await
        .unwrap();

    let found = ec2::find_security_groups(&aws, &vpc, "monitoring-prometheus", &address)
        .await
        .unwrap();
    let ids: BTreeSet<&str> = found.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([decoy.as_str(), ours.as_str()]));
    for o in &found {
        assert_eq!(o.address, address);
        if o.id == decoy {
            assert!(o.all_tags.keys().all(|k| !k.starts_with("deploy:")));
            assert!(sg_attrs(o).tags.is_empty());
            assert_eq!(sg_attrs(o).name, "monitoring-prometheus");
            // AWS's own default egress rule, normalized.
            assert_eq!(sg_attrs(o).egress, BTreeSet::from([allow_all_egress()]));
        } else {
            assert_eq!(sg_attrs(o), &attrs);
            assert_eq!(o.all_tags, all_tags);
        }
    }

    // A create that fails half-way (a rule AWS rejects) still leaves a group carrying its
    // ownership tags, because they come with CreateSecurityGroup itself: findable, never orphaned.
    let broken_addr = Address::new(Kind::SecurityGroup, "broken");
    let broken = SecurityGroupAttrs {
        name: "monitoring-broken".into(),
        ingress: [rule("tcp", 80, cidr("not-a-cidr"), "")].into(),
        tags: Tags::new(),
        ..attrs.clone()
    };
    let broken_tags = owned(&broken.tags, "monitoring", &broken_addr);
    let e = ec2::create_security_group(&aws, &broken, &broken_tags)
        .await
        .unwrap_err();
    assert_eq!(e.operation, "AuthorizeSecurityGroupIngress", "{e}");
    let found = ec2::find_security_groups(&aws, &vpc, "nothing-by-this-name", &broken_addr)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].all_tags, broken_tags);

    // Deleting a group that does not exist is success.
    ec2::delete_security_group(&aws, "sg-0123456789abcdef0")
        .await
        .unwrap();
}

#[tokio::test]
async fn log_group_round_trips_and_updates() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let address = Address::new(Kind::LogGroup, "prometheus");
    let name = "/ecs/prom-task";

    // Groups whose names only start with the name are not it.
    aws.logs
        .create_log_group()
        .log_group_name("/ecs/prom-task-old")
        .send()
        .await
        .unwrap();
    assert!(logs::find_log_group(&aws, name, &address)
        .await
        .unwrap()
        .is_none());

    let attrs = LogGroupAttrs {
        name: name.into(),
        retention_days: Some(30),
        tags: tags(&[("team", "platform")]),
    };
    let all_tags = owned(&attrs.tags, "monitoring", &address);
    assert_eq!(
        logs::create_log_group(&aws, &attrs, &all_tags)
            .await
            .unwrap(),
        name
    );
    let seen = logs::find_log_group(&aws, name, &address)
        .await
        .unwrap()
        .expect("created");
    assert_eq!(seen.id, name);
    assert_eq!(seen.attrs, Attrs::LogGroup(attrs.clone()));
    assert_eq!(seen.all_tags, all_tags);
    let arn = &seen.handles["arn"];
    assert!(
        arn.starts_with("arn:aws:logs:us-west-2:") && arn.ends_with(":log-group:/ecs/prom-task")
    );

    let after = LogGroupAttrs {
        retention_days: Some(7),
        tags: tags(&[("owner", "sre")]),
        ..attrs.clone()
    };
    logs::update_log_group(&aws, name, &attrs, &after)
        .await
        .unwrap();
    let seen = logs::find_log_group(&aws, name, &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::LogGroup(after.clone()));
    assert_eq!(seen.all_tags, owned(&after.tags, "monitoring", &address));

    let forever = LogGroupAttrs {
        retention_days: None,
        ..after.clone()
    };
    logs::update_log_group(&aws, name, &after, &forever)
        .await
        .unwrap();
    let seen = logs::find_log_group(&aws, name, &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs, Attrs::LogGroup(forever));

    // Tags by ARN as well as by name.
    logs::set_tags(&aws, arn, &tags(&[("x", "1")]), &["owner".to_string()])
        .await
        .unwrap();
    let seen = logs::find_log_group(&aws, name, &address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.attrs.tags(), &tags(&[("x", "1")]));

    logs::delete_log_group(&aws, name).await.unwrap();
    logs::delete_log_group(&aws, name).await.unwrap();
    assert!(logs::find_log_group(&aws, name, &address)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn lookups_find_the_network_and_fail_clearly() {
    use aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum;
    let moto = Moto::start();
    let aws = moto.aws().await;

    let vpc = create_vpc(&aws, "10.40.0.0/16", Some("showcase")).await;
    create_vpc(&aws, "10.50.0.0/16", Some("elsewhere")).await;
    let a = create_subnet(&aws, &vpc, "10.40.1.0/24", "us-west-2a", "private").await;
    let b = create_subnet(&aws, &vpc, "10.40.2.0/24", "us-west-2b", "private").await;
    let public = create_subnet(&aws, &vpc, "10.40.3.0/24", "us-west-2a", "public").await;
    let alb_sg = hand_made_group(&aws, &vpc, "backend-alb").await;
    aws.elbv2
        .create_load_balancer()
        .name("application-load-balancer")
        .subnets(&public)
        .subnets(&b)
        .security_groups(&alb_sg)
        .r#type(LoadBalancerTypeEnum::Application)
        .send()
        .await
        .unwrap();

    let showcase = tags(&[("Name", "showcase")]);
    // The id and the primary range (what a rule's `cidr: vpc` stands for).
    assert_eq!(
        ec2::lookup_vpc(&aws, &showcase).await.unwrap(),
        (vpc.clone(), "10.40.0.0/16".to_string())
    );

    let mut private = vec![a, b];
    private.sort();
    assert_eq!(
        ec2::lookup_subnets(&aws, &vpc, &tags(&[("tier", "private")]))
            .await
            .unwrap(),
        private
    );

    let lb = elbv2::lookup_load_balancer(&aws, "application-load-balancer")
        .await
        .unwrap();
    assert_eq!(lb.name, "application-load-balancer");
    assert_eq!(lb.vpc_id, vpc);
    assert_eq!(lb.security_groups, vec![alb_sg]);
    assert!(lb
        .arn
        .starts_with("arn:aws:elasticloadbalancing:us-west-2:"));
    assert!(!lb.dns_name.is_empty());

    // Not found: clear errors with the LookupFailed code.
    let e = ec2::lookup_vpc(&aws, &tags(&[("Name", "nope")]))
        .await
        .unwrap_err();
    assert!(
        e.code_is("LookupFailed") && e.operation == "DescribeVpcs",
        "{e}"
    );
    assert!(e.message.contains("Name=nope"), "{e}");

    let e = ec2::lookup_subnets(&aws, &vpc, &tags(&[("tier", "data")]))
        .await
        .unwrap_err();
    assert!(
        e.code_is("LookupFailed") && e.message.contains("tier=data"),
        "{e}"
    );

    let e = elbv2::lookup_load_balancer(&aws, "missing-alb")
        .await
        .unwrap_err();
    assert!(
        e.code_is("LookupFailed") && e.message.contains("missing-alb"),
        "{e}"
    );

    // Ambiguous: a second VPC with the same tags.
    let twin = create_vpc(&aws, "10.60.0.0/16", Some("showcase")).await;
    let e = ec2::lookup_vpc(&aws, &showcase).await.unwrap_err();
    assert!(e.code_is("LookupFailed"), "{e}");
    assert!(e.message.contains(&vpc) && e.message.contains(&twin), "{e}");
}

#[tokio::test]
async fn owned_arns_lists_this_stacks_resources_only() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let vpc = create_vpc(&aws, "10.70.0.0/16", None).await;

    let mut expected = BTreeSet::new();
    for (stack, suffix) in [("monitoring", "a"), ("other", "b")] {
        let sg_addr = Address::new(Kind::SecurityGroup, "prometheus");
        let sg = SecurityGroupAttrs {
            name: format!("prom-{suffix}"),
            description: "d".into(),
            vpc_id: vpc.clone(),
            ingress: BTreeSet::new(),
            egress: BTreeSet::new(),
            tags: Tags::new(),
        };
        let sg_id = ec2::create_security_group(&aws, &sg, &owned(&sg.tags, stack, &sg_addr))
            .await
            .unwrap();

        let lg_addr = Address::new(Kind::LogGroup, "prometheus");
        let lg = LogGroupAttrs {
            name: format!("/ecs/prom-{suffix}"),
            retention_days: None,
            tags: Tags::new(),
        };
        logs::create_log_group(&aws, &lg, &owned(&lg.tags, stack, &lg_addr))
            .await
            .unwrap();

        let cl_addr = Address::new(Kind::EcsCluster, "monitoring");
        let mut req = aws
            .ecs
            .create_cluster()
            .cluster_name(format!("mon-{suffix}"));
        for (k, v) in owned(&Tags::new(), stack, &cl_addr) {
            req = req.tags(aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
        }
        req.send().await.unwrap();

        if stack == "monitoring" {
            expected.insert((Kind::SecurityGroup, sg_id));
            expected.insert((Kind::LogGroup, lg.name.clone()));
            expected.insert((Kind::EcsCluster, format!("mon-{suffix}")));
        }
    }
    // Right stack, other environment: not ours either.
    aws.logs
        .create_log_group()
        .log_group_name("/ecs/prom-staging")
        .tags(TAG_STACK, "monitoring")
        .tags(TAG_ENV, "staging")
        .send()
        .await
        .unwrap();

    let arns = tagging::owned_arns(&aws, "monitoring", "production")
        .await
        .unwrap();
    let mut sorted = arns.clone();
    sorted.sort();
    assert_eq!(arns, sorted);
    let found: BTreeSet<(Kind, String)> = arns
        .iter()
        .map(|a| tagging::classify_arn(a).unwrap_or_else(|| panic!("unclassified {a}")))
        .collect();
    assert_eq!(found, expected);
}
