//! The AWS call budget of a plan, counted at the recording proxy in front of moto: a change that
//! adds a read per resource (an N+1) fails here, and so does one that makes throttling fail a
//! plan. Timing is measured by scripts/bench.sh, never here.

mod common;

use common::{assert_success, python_path, stdout, Call, TestEnv};
use std::collections::BTreeMap;

const STACK: &str = "stacks/monitoring.yaml";

/// The calls of a plan of the applied reference stack (54 when this budget was set; 68 before
/// reads were batched). Reads that other work adds to plan must fit or raise this on purpose:
/// +2 for the start-reachability warning (DL075: the VPC's route tables and endpoints, one
/// call each whatever the stack's size); +11 for the config bucket (S3 reads one setting a
/// call: tagging, public access block, encryption, policy, versioning, the object list and one
/// manifest per task family = 8; the sidecar's inline policy on each of the 2 task roles = 2;
/// a second GetResources page, as the stack's tags passed 100 = 1; the config bucket's files
/// unchanged since the last apply cost no GetObject).
const REFERENCE_PLAN_CALLS: usize = 67;

/// The calls of a plan of the applied 20-service stack of tests/fixtures/scale_stack.py (84
/// resources: at most one call per resource; 70 when this budget was set, 185 before; +2 for
/// the start-reachability warning).
const SCALE_PLAN_CALLS: usize = 72;

fn apply(env: &TestEnv, file: &str) {
    let out = env.deploy(&["apply", "-f", file, "--auto-approve"]);
    assert_success(&out);
}

fn per_action(calls: &[Call]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls {
        *counts
            .entry(format!("{}:{}", c.service, c.action))
            .or_default() += 1;
    }
    let list: Vec<String> = counts.iter().map(|(a, n)| format!("{a} {n}")).collect();
    list.join(", ")
}

/// Plans `file` (applied), checks the plan is empty and read-only, and returns its calls.
fn plan_calls(env: &TestEnv, file: &str) -> Vec<Call> {
    env.proxy.clear();
    let out = env.deploy(&["plan", "-f", file]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let calls = env.proxy.calls();
    assert!(
        calls.iter().all(|c| !c.is_mutating() && !c.injected),
        "{calls:?}"
    );
    calls
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_of_the_applied_reference_stack_stays_within_its_call_budget() {
    let env = TestEnv::new();
    env.seed(false);
    apply(&env, STACK);

    let calls = plan_calls(&env, STACK);
    assert!(
        calls.len() <= REFERENCE_PLAN_CALLS,
        "a plan of the applied reference stack made {} AWS calls, {} over its budget of \
         {REFERENCE_PLAN_CALLS}: {}",
        calls.len(),
        calls.len() - REFERENCE_PLAN_CALLS,
        per_action(&calls)
    );
    // The batched reads stay batched: one call for all of a kind.
    for (action, most) in [
        ("DescribeSecurityGroups", 2),
        ("DescribeSecurityGroupRules", 1),
        ("DescribeServices", 1),
        ("DescribeLogGroups", 1),
        ("DescribeTags", 1),
        ("ListNamespaces", 1),
        ("DescribeFileSystems", 1),
    ] {
        let n = calls.iter().filter(|c| c.action == action).count();
        assert!(n <= most, "{action} {n} times: {}", per_action(&calls));
    }

    // A no-op apply makes the same reads and no write.
    env.proxy.clear();
    let out = env.deploy(&["apply", "-f", STACK, "--auto-approve"]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let noop = env.proxy.calls();
    assert!(noop.iter().all(|c| !c.is_mutating()), "{noop:?}");
    // Besides: the lock and the environment record, counted apart (the table's read and
    // conditional take, the caller's ARN, the check before the record write, the record,
    // the release).
    let (lock, reads): (Vec<Call>, Vec<Call>) = noop
        .into_iter()
        .partition(|c| c.service == "dynamodb" || c.action == "GetCallerIdentity");
    assert_eq!(per_action(&reads), per_action(&calls));
    assert_eq!(
        per_action(&lock),
        "dynamodb:DeleteItem 1, dynamodb:DescribeTable 1, dynamodb:GetItem 2, \
         dynamodb:PutItem 1, dynamodb:UpdateItem 1, sts:GetCallerIdentity 1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_of_twenty_services_costs_at_most_a_call_per_resource() {
    let env = TestEnv::new();
    env.seed(false);
    let generated = std::process::Command::new(python_path())
        .arg(common::fixtures_dir().join("scale_stack.py"))
        .arg("20")
        .output()
        .expect("run tests/fixtures/scale_stack.py");
    assert!(generated.status.success(), "{generated:?}");
    let file = env.path().join("scale.yaml");
    std::fs::write(&file, &generated.stdout).expect("write the generated stack");
    let file = file.to_string_lossy().into_owned();
    apply(&env, &file);

    let calls = plan_calls(&env, &file);
    assert!(
        calls.len() <= SCALE_PLAN_CALLS,
        "a plan of the applied 20-service stack made {} AWS calls, over its budget of \
         {SCALE_PLAN_CALLS}: {}",
        calls.len(),
        per_action(&calls)
    );
    // Per kind, not per resource: 20 security groups, services and log groups.
    for (action, most) in [
        ("DescribeSecurityGroups", 2),
        ("DescribeSecurityGroupRules", 1),
        ("DescribeServices", 2),
        ("DescribeLogGroups", 1),
    ] {
        let n = calls.iter().filter(|c| c.action == action).count();
        assert!(n <= most, "{action} {n} times: {}", per_action(&calls));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_of_every_service_at_once_slows_a_plan_but_does_not_fail_it() {
    let env = TestEnv::new();
    env.seed(false);
    apply(&env, STACK);
    let quiet = plan_calls(&env, STACK);

    // Throttling in every service at once, each with its own error code as AWS sends it: 30
    // answers, most of the plan's first burst (no single call is throttled more often than
    // its attempts allow: EC2's lookups go first and alone, so EC2 gets fewer).
    env.proxy.clear();
    env.proxy.inject(serde_json::json!([
        {"service": "ec2", "status": 400, "code": "RequestLimitExceeded", "message": "Request limit exceeded.", "times": 3},
        {"service": "iam", "status": 400, "code": "Throttling", "message": "Rate exceeded", "times": 7},
        {"service": "*", "status": 400, "code": "ThrottlingException", "message": "Rate exceeded", "times": 20},
    ]));
    let started = std::time::Instant::now();
    let out = env.deploy(&["plan", "-f", STACK]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let calls = env.proxy.calls();
    let injected = calls.iter().filter(|c| c.injected).count();
    assert_eq!(injected, 30, "{}", per_action(&calls));
    eprintln!("MEASURE throttled plan: {:?}", started.elapsed());
    // Every read was answered in the end: the same reads as without throttling.
    let answered: Vec<Call> = calls.into_iter().filter(|c| !c.injected).collect();
    assert_eq!(per_action(&answered), per_action(&quiet));
}
