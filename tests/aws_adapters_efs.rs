//! The EFS adapter against a real moto server (one per test): a file system, its mount targets
//! and an access point are observed back exactly as created, updates converge, ownership tags
//! travel in the create calls themselves, deletes are idempotent and absent things are `None`.
//!
//! moto makes everything `available` at once and deletes at once; the adapter polls as it
//! would on AWS, so nothing here depends on that. moto 5.2.5 has no UpdateFileSystem, so a
//! throughput change is not exercised here (its request is the SDK's own).

use aws_sdk_efs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_efs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use deploy::aws::{efs, tagging, Aws};
use deploy::model::{
    Address, Attrs, EfsAccessPointAttrs, EfsFileSystemAttrs, EfsMountTargetsAttrs, Kind, Observed,
    Ownership, Tags, TAG_ADDRESS, TAG_APPLIED, TAG_ENV, TAG_STACK,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

mod common;

use common::{Moto, REGION};

const STACK: &str = "monitoring";
const ENV: &str = "test";

/// Records every EFS request as (method, path, body) just before it is sent.
#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<Vec<(String, String, String)>>>);

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
        let body = request.body().bytes().unwrap_or_default();
        self.0.lock().unwrap().push((
            request.method().to_string(),
            request.uri().to_string(),
            String::from_utf8_lossy(body).into_owned(),
        ));
        Ok(())
    }
}

impl Recorder {
    /// Bodies of the recorded requests whose path contains `path_part` and whose method is
    /// `method`.
    fn bodies(&self, method: &str, path_part: &str) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == method && p.contains(path_part))
            .map(|(_, _, b)| serde_json::from_str(b).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}

async fn recorded_aws(moto: &Moto) -> (Aws, Recorder) {
    let config = common::sdk_config_for(&moto.endpoint(), REGION).await;
    let recorder = Recorder::default();
    let mut aws = Aws::from_config(&config, REGION.to_string());
    aws.efs = aws_sdk_efs::Client::from_conf(
        aws_sdk_efs::config::Builder::from(&config)
            .interceptor(recorder.clone())
            .build(),
    );
    (aws, recorder)
}

fn ownership(address: &Address, applied: &str) -> Tags {
    Tags::from([
        (TAG_STACK.to_string(), STACK.to_string()),
        (TAG_ENV.to_string(), ENV.to_string()),
        (TAG_ADDRESS.to_string(), address.to_string()),
        (TAG_APPLIED.to_string(), applied.to_string()),
    ])
}

fn with_user_tags(mut t: Tags, user: &Tags) -> Tags {
    t.extend(user.clone());
    t
}

/// Tags of a recorded request body (`Tags: [{Key, Value}]`) as a map.
fn body_tags(body: &serde_json::Value) -> Tags {
    body["Tags"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().to_string(),
                t["Value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A VPC with two subnets in two zones (one mount target per zone) and two groups.
async fn network(aws: &Aws) -> (Vec<String>, String, String) {
    let vpc = aws
        .ec2
        .create_vpc()
        .cidr_block("10.80.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["us-west-2a", "us-west-2b"].iter().enumerate() {
        let s = aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.80.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let mut groups = Vec::new();
    for name in ["efs-a", "efs-b"] {
        let g = aws
            .ec2
            .create_security_group()
            .group_name(name)
            .description("efs")
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        groups.push(g.group_id().unwrap().to_string());
    }
    (subnets, groups[0].clone(), groups[1].clone())
}

fn fs_attrs() -> EfsFileSystemAttrs {
    EfsFileSystemAttrs {
        creation_token: "monitoring-test-grafana".into(),
        name: "monitoring-test-grafana".into(),
        encrypted: true,
        performance_mode: "generalPurpose".into(),
        throughput_mode: "bursting".into(),
        transition_to_ia: None,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

fn fs_of(o: &Observed) -> &EfsFileSystemAttrs {
    match &o.attrs {
        Attrs::EfsFileSystem(a) => a,
        other => panic!("not a file system: {other:?}"),
    }
}

fn mt_of(o: &Observed) -> &EfsMountTargetsAttrs {
    match &o.attrs {
        Attrs::EfsMountTargets(a) => a,
        other => panic!("not mount targets: {other:?}"),
    }
}

#[tokio::test]
async fn file_system_mount_targets_and_access_point_round_trip() {
    let moto = Moto::start();
    let (aws, recorder) = recorded_aws(&moto).await;
    let (subnets, sg_a, sg_b) = network(&aws).await;
    let fs_addr = Address::new(Kind::EfsFileSystem, "grafana");

    // Absent things are None, not errors.
    assert!(
        efs::find_file_system(&aws, "monitoring-test-grafana", &fs_addr)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        efs::observe_file_system_by_id(&aws, "fs-0123456789abcdef0", &fs_addr)
            .await
            .unwrap()
            .is_none()
    );

    // Create: ownership tags and Name in the CreateFileSystem call itself, encrypted.
    let want = fs_attrs();
    let tags = with_user_tags(ownership(&fs_addr, "h1"), &want.tags);
    let fs_id = efs::create_file_system(&aws, &want, &tags).await.unwrap();
    assert!(fs_id.starts_with("fs-"), "{fs_id}");
    let creates = recorder.bodies("POST", "/file-systems");
    assert_eq!(creates.len(), 1);
    let sent = body_tags(&creates[0]);
    for k in [TAG_STACK, TAG_ENV, TAG_ADDRESS, TAG_APPLIED, "Name", "team"] {
        assert!(
            sent.contains_key(k),
            "{k} missing from CreateFileSystem: {sent:?}"
        );
    }
    assert_eq!(creates[0]["Encrypted"], true);
    assert_eq!(creates[0]["CreationToken"], "monitoring-test-grafana");

    // Observed back exactly as desired, owned.
    let seen = efs::find_file_system(&aws, &want.creation_token, &fs_addr)
        .await
        .unwrap()
        .expect("the new file system");
    assert_eq!(seen.id, fs_id);
    assert_eq!(fs_of(&seen), &want);
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);
    let by_id = efs::observe_file_system_by_id(&aws, &fs_id, &fs_addr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.attrs, seen.attrs);

    // A retried create (the first attempt got through) continues with the same file system.
    assert_eq!(
        efs::create_file_system(&aws, &want, &tags).await.unwrap(),
        fs_id
    );

    // Update: name, lifecycle and user tags converge.
    let mut changed = want.clone();
    changed.name = "grafana-data".into();
    changed.transition_to_ia = Some("AFTER_30_DAYS".into());
    changed.tags = Tags::from([("owner".to_string(), "sre".to_string())]);
    efs::update_file_system(&aws, &fs_id, &want, &changed)
        .await
        .unwrap();
    let seen = efs::find_file_system(&aws, &want.creation_token, &fs_addr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fs_of(&seen), &changed);
    // Encryption cannot change in place: refused, never a replacement.
    let mut plain = changed.clone();
    plain.encrypted = false;
    assert!(efs::update_file_system(&aws, &fs_id, &changed, &plain)
        .await
        .is_err());

    // Mount targets: one per subnet, with the groups, owned through the file system.
    let mt_addr = Address::new(Kind::EfsMountTargets, "grafana");
    assert!(
        efs::find_mount_targets(&aws, &want.creation_token, &mt_addr)
            .await
            .unwrap()
            .is_none()
    );
    let mts = EfsMountTargetsAttrs {
        file_system: fs_id.clone(),
        subnets: subnets.iter().cloned().collect(),
        security_groups: BTreeSet::from([sg_a.clone()]),
    };
    let mt_tags = ownership(&mt_addr, "mt1");
    let mt_id = efs::create_mount_targets(&aws, &mts, &mt_tags)
        .await
        .unwrap();
    assert_eq!(mt_id, efs::mount_targets_id(&fs_id));
    assert_ne!(
        mt_id, fs_id,
        "the planner maps ids to addresses: they must differ"
    );
    let seen = efs::find_mount_targets(&aws, &want.creation_token, &mt_addr)
        .await
        .unwrap()
        .expect("mount targets");
    assert_eq!(seen.id, mt_id);
    assert_eq!(mt_of(&seen), &mts);
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Owned);
    assert_eq!(seen.applied_hash(), Some("mt1"));
    // Retried: nothing new.
    efs::create_mount_targets(&aws, &mts, &mt_tags)
        .await
        .unwrap();
    assert_eq!(recorder.bodies("POST", "/mount-targets").len(), 2);

    // Update: one subnet fewer, other groups.
    let fewer = EfsMountTargetsAttrs {
        file_system: fs_id.clone(),
        subnets: BTreeSet::from([subnets[0].clone()]),
        security_groups: BTreeSet::from([sg_a.clone(), sg_b.clone()]),
    };
    efs::update_mount_targets(&aws, &seen.id, mt_of(&seen), &fewer, &seen.handles)
        .await
        .unwrap();
    let seen = efs::find_mount_targets(&aws, &mt_id, &mt_addr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mt_of(&seen), &fewer);

    // Access point: created with its tags, observed back, found by name and by id.
    let ap_addr = Address::new(Kind::EfsAccessPoint, "grafana");
    let ap = EfsAccessPointAttrs {
        name: "monitoring-test-grafana".into(),
        file_system: fs_id.clone(),
        uid: 472,
        gid: 472,
        root_directory: "/grafana".into(),
        owner_uid: 472,
        owner_gid: 472,
        permissions: "0750".into(),
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    };
    assert!(efs::find_access_points(&aws, &ap.name, &ap_addr)
        .await
        .unwrap()
        .is_empty());
    let ap_tags = with_user_tags(ownership(&ap_addr, "ap1"), &ap.tags);
    let ap_id = efs::create_access_point(&aws, &ap, &ap_tags).await.unwrap();
    let sent = body_tags(&recorder.bodies("POST", "/access-points")[0]);
    for k in [TAG_STACK, TAG_ENV, TAG_ADDRESS, TAG_APPLIED, "Name", "team"] {
        assert!(
            sent.contains_key(k),
            "{k} missing from CreateAccessPoint: {sent:?}"
        );
    }
    let found = efs::find_access_points(&aws, &ap.name, &ap_addr)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ap_id);
    assert_eq!(found[0].attrs, Attrs::EfsAccessPoint(ap.clone()));
    assert_eq!(found[0].ownership(STACK, ENV), Ownership::Owned);
    let by_id = efs::observe_access_point(&aws, &ap_id, &ap_addr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.attrs, found[0].attrs);

    // Tags are the only thing that changes in place.
    let mut retagged = ap.clone();
    retagged.tags = Tags::from([("owner".to_string(), "sre".to_string())]);
    efs::update_access_point(&aws, &ap_id, &ap, &retagged)
        .await
        .unwrap();
    let found = efs::observe_access_point(&aws, &ap_id, &ap_addr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.attrs, Attrs::EfsAccessPoint(retagged));

    // Both show up through the tagging API as this stack's.
    let owned: BTreeSet<(Kind, String)> = tagging::owned_arns(&aws, STACK, ENV)
        .await
        .unwrap()
        .iter()
        .filter_map(|a| tagging::classify_arn(a))
        .collect();
    assert!(
        owned.contains(&(Kind::EfsFileSystem, fs_id.clone())),
        "{owned:?}"
    );
    assert!(
        owned.contains(&(Kind::EfsAccessPoint, ap_id.clone())),
        "{owned:?}"
    );

    // Deletes: the access point, then the file system (its mount targets go first); both
    // idempotent.
    efs::delete_access_point(&aws, &ap_id).await.unwrap();
    assert!(efs::observe_access_point(&aws, &ap_id, &ap_addr)
        .await
        .unwrap()
        .is_none());
    efs::delete_access_point(&aws, &ap_id).await.unwrap();
    efs::delete_file_system(&aws, &fs_id).await.unwrap();
    assert!(efs::find_file_system(&aws, &want.creation_token, &fs_addr)
        .await
        .unwrap()
        .is_none());
    assert!(efs::find_mount_targets(&aws, &fs_id, &mt_addr)
        .await
        .unwrap()
        .is_none());
    efs::delete_file_system(&aws, &fs_id).await.unwrap();
    efs::delete_mount_targets(&aws, &mt_id).await.unwrap();
    // The token is free again.
    let again = efs::create_file_system(&aws, &want, &tags).await.unwrap();
    assert_ne!(again, fs_id);
}

#[tokio::test]
async fn a_hand_made_file_system_with_the_token_is_not_ours() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    aws.efs
        .create_file_system()
        .creation_token("monitoring-test-grafana")
        .send()
        .await
        .unwrap();
    let addr = Address::new(Kind::EfsFileSystem, "grafana");
    let seen = efs::find_file_system(&aws, "monitoring-test-grafana", &addr)
        .await
        .unwrap()
        .expect("found by token");
    assert_eq!(seen.ownership(STACK, ENV), Ownership::Unowned);
    assert!(!fs_of(&seen).encrypted);
    // A create with the same token does not take it over.
    let want = fs_attrs();
    let err = efs::create_file_system(&aws, &want, &ownership(&addr, "h"))
        .await
        .unwrap_err();
    assert!(err.code_is("FileSystemAlreadyExists"), "{err}");
}
