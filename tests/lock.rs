// The lock of a stack environment, against moto through the recording proxy: two applies at
// once (one writes, the other fails naming the holder or waits), a killed holder's lock taken
// over once stale, waiters racing for a stale lock, a holder that lost its lock stopping
// before its next write, force-unlock, and plan while the lock is held. Each concurrent
// process signs with its own access key so the proxy tells their calls apart.

mod common;

use common::{assert_failure, assert_success, stderr, stdout, Call, TestEnv, REGION};
use deploy::aws::state_table::{self, Expect};
use deploy::lock::{self, Holder, LockOptions, Operation};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const STACK: &str = "stacks/monitoring.yaml";
const STACK_NAME: &str = "monitoring";
const ENVIRONMENT: &str = "production";

/// Starts `deploy ARGS` signing with `key`, every AWS call slowed down so that it overlaps
/// with what the test does next.
fn spawn(env: &TestEnv, args: &[&str], key: &str, extra: &[(&str, &str)]) -> Child {
    let mut cmd = env.deploy_command(args);
    cmd.env("AWS_ACCESS_KEY_ID", key);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    // The plan printed first is larger than a pipe's buffer: stdout is not read.
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn deploy")
}

fn slow_down(env: &TestEnv, ms: u64) {
    env.proxy
        .inject(serde_json::json!([{"action": "*", "delay_ms": ms, "times": 1_000_000}]));
}

/// The environment's lock now (read straight from moto, unrecorded).
async fn lock_now(aws: &deploy::aws::Aws) -> Option<Holder> {
    state_table::read_lock(aws, STACK_NAME, ENVIRONMENT)
        .await
        .unwrap()
}

/// Waits until the environment's lock is held (read straight from moto, unrecorded).
async fn wait_for_lock(env: &TestEnv, child: &mut Child) -> Holder {
    let aws = env.moto.aws().await;
    let started = Instant::now();
    loop {
        if let Some(h) = lock_now(&aws).await {
            return h;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("deploy ended ({status}) before it held the lock");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no lock taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finish(child: Child) -> std::process::Output {
    child.wait_with_output().expect("wait for deploy")
}

fn by_key(calls: &[Call], key: &str) -> Vec<Call> {
    calls.iter().filter(|c| c.key == key).cloned().collect()
}

fn mutating(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is_mutating())
        .map(|c| format!("{}:{}", c.service, c.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_fails_at_once_naming_the_holder_and_with_a_timeout_waits_for_no_changes() {
    let env = TestEnv::new();
    env.seed(false);
    slow_down(&env, 60);
    let apply = ["apply", "-f", STACK, "--auto-approve"];
    let mut first = spawn(&env, &apply, "first", &[]);
    let holder = wait_for_lock(&env, &mut first).await;
    assert_eq!(holder.pid, first.id(), "{holder:?}");
    assert_eq!(holder.operation, "apply");

    // A second apply fails at once, while the first still holds the lock.
    let t = Instant::now();
    let mut cmd = env.deploy_command(&apply);
    cmd.env("AWS_ACCESS_KEY_ID", "second");
    let second = cmd.output().expect("run deploy");
    let took = t.elapsed();
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first apply ended before the second was refused"
    );
    assert_failure(&second);
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert!(
        err.contains(&format!(
            "the lock of stack {STACK_NAME} environment {ENVIRONMENT} is held: apply by"
        )) && err.contains(&format!("(pid {})", holder.pid))
            && err.contains(&format!("deploy force-unlock {}", holder.lock_id)),
        "{err}"
    );
    eprintln!("the second apply was refused after {took:?}");

    // A third waits for the lock, then finds nothing to do.
    let third = spawn(
        &env,
        &[&apply[..], &["--lock-timeout", "5m"]].concat(),
        "third",
        &[],
    );
    let first_out = finish(first);
    assert_success(&first_out);
    let third_out = finish(third);
    assert_success(&third_out);
    let third_err = stderr(&third_out);
    assert!(
        third_err.contains("Waiting up to 300 s for the lock"),
        "{third_err}"
    );

    let calls = env.proxy.calls();
    assert!(!mutating(&by_key(&calls, "first")).is_empty());
    assert_eq!(mutating(&by_key(&calls, "second")), Vec::<String>::new());
    assert_eq!(mutating(&by_key(&calls, "third")), Vec::<String>::new());
    // The second only looked at the lock; the third took it, recorded the apply, released.
    let bookkeeping = |key: &str| -> Vec<String> {
        by_key(&calls, key)
            .iter()
            .filter(|c| c.bookkeeping)
            .map(|c| c.action.clone())
            .collect()
    };
    assert_eq!(bookkeeping("second"), Vec::<String>::new());
    assert_eq!(
        bookkeeping("third"),
        ["PutItem", "UpdateItem", "DeleteItem"]
    );
    // `No changes.`: a plan printed by the waiter (stdout was not kept), so plan again.
    env.proxy.clear_faults();
    let plan = env.deploy(&["plan", "-f", STACK]);
    assert_success(&plan);
    assert!(stdout(&plan).contains("No changes."), "{}", stdout(&plan));
    // Released: nothing holds the lock any more.
    let aws = env.moto.aws().await;
    assert_eq!(lock_now(&aws).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holders_lock_is_taken_over_once_stale() {
    let env = TestEnv::new();
    env.seed(false);
    slow_down(&env, 60);
    let stale = [("DEPLOY_LOCK_STALE_AFTER", "3s")];
    let apply = ["apply", "-f", STACK, "--auto-approve"];
    let mut first = spawn(&env, &apply, "first", &stale);
    let holder = wait_for_lock(&env, &mut first).await;
    first.kill().expect("kill -9 the holder");
    first.wait().unwrap();
    env.proxy.wait_idle();
    env.proxy.clear_faults();

    // Without a timeout: refused (a waiter judges staleness only by watching).
    let refused = env.deploy_with_env(&apply, &stale);
    assert_failure(&refused);
    assert!(
        stderr(&refused).contains(&holder.lock_id),
        "{}",
        stderr(&refused)
    );

    let out = env.deploy_with_env(&[&apply[..], &["--lock-timeout", "60s"]].concat(), &stale);
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "warning: took over the stale lock of {STACK_NAME}/{ENVIRONMENT}: unchanged for 3 s, held by apply by"
        )) && err.contains(&format!("(pid {})", holder.pid)),
        "{err}"
    );
    env.proxy.clear();
    assert_success(&env.deploy(&apply));
    assert_eq!(mutating(&env.proxy.calls()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_waiters_racing_for_a_stale_lock_exactly_one_wins() {
    let env = TestEnv::new();
    let aws = env.moto.aws().await;
    state_table::ensure(&aws).await.unwrap();
    let dead = Holder {
        stack: STACK_NAME.into(),
        environment: ENVIRONMENT.into(),
        lock_id: "dead-holder".into(),
        version: "v0".into(),
        who: "arn:aws:iam::123456789012:user/gone".into(),
        host: "gone".into(),
        pid: 1,
        operation: "apply".into(),
        started: 0,
        ci_url: None,
    };
    assert!(state_table::put_lock(&aws, &dead, Expect::Free)
        .await
        .unwrap());
    // The compare-and-swap itself: two takeovers expecting the same version, one wins.
    let contender = |id: &str| Holder {
        lock_id: id.into(),
        version: format!("{id}-v"),
        ..dead.clone()
    };
    let (a, b) = (contender("a"), contender("b"));
    let (won_a, won_b) = tokio::join!(
        state_table::put_lock(&aws, &a, Expect::Version("v0")),
        state_table::put_lock(&aws, &b, Expect::Version("v0")),
    );
    assert_ne!(won_a.unwrap(), won_b.unwrap(), "exactly one takeover wins");

    // Whole waiters: each sees the lock unchanged for the stale age, both try; one holds it
    // (and renews it, so the other never sees it stale again and gives up naming it).
    let opts = LockOptions {
        timeout: Duration::from_secs(4),
        stale_after: Duration::from_secs(1),
    };
    let aws_b = aws.clone();
    let (x, y) = tokio::join!(
        lock::take_for(&aws, STACK_NAME, ENVIRONMENT, Operation::Apply, &opts),
        lock::take_for(&aws_b, STACK_NAME, ENVIRONMENT, Operation::Apply, &opts),
    );
    let (guard, lost) = match (x, y) {
        (Ok(g), Err(e)) | (Err(e), Ok(g)) => (g, e),
        (Ok(_), Ok(_)) => panic!("both waiters took the lock"),
        (Err(a), Err(b)) => panic!("neither took the lock: {a:?} / {b:?}"),
    };
    let held = guard.held();
    let now = lock_now(&aws).await.expect("held");
    assert_eq!(now.lock_id, held.lock_id);
    assert!(
        format!("{lost:?}").contains(&held.lock_id),
        "the loser names the winner: {lost:?}"
    );
    held.check().await.unwrap();
    guard.release().await.unwrap();
    assert_eq!(lock_now(&aws).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_that_lost_its_lock_stops_before_its_next_write() {
    let env = TestEnv::new();
    env.seed(false);
    // The task definitions take long: the services, which need them, come after.
    env.proxy.inject(serde_json::json!([
        {"action": "RegisterTaskDefinition", "delay_ms": 8000, "times": 10}
    ]));
    let mut apply = spawn(
        &env,
        &["apply", "-f", STACK, "--auto-approve"],
        "holder",
        &[],
    );
    let holder = wait_for_lock(&env, &mut apply).await;
    // Read its progress as it comes; unlock once a task definition is being registered.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let progress = apply.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(progress)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the apply registers a task definition");
        if line.contains("registering a new revision") {
            break;
        }
    }
    let unlock = env.deploy(&["force-unlock", &holder.lock_id, "--region", REGION]);
    assert_success(&unlock);
    assert!(
        stderr(&unlock).contains(&format!("Unlocked {STACK_NAME}/{ENVIRONMENT}")),
        "{}",
        stderr(&unlock)
    );
    let status = apply.wait().expect("wait for the apply");
    let err = reader.join().expect("the stderr reader");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("the lock of monitoring/production was removed (force-unlock); stopped before the next write"),
        "{err}"
    );
    let calls = env.proxy.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.service == "ecs" && c.action == "CreateService"),
        "an ECS service was created after the lock was lost"
    );
    // force-unlock freed it at once: the next apply takes it without waiting.
    env.proxy.clear_faults();
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_works_while_the_lock_is_held_and_force_unlock_frees_it_at_once() {
    let env = TestEnv::new();
    env.seed(false);
    let aws = env.moto.aws().await;
    let opts = LockOptions {
        timeout: Duration::ZERO,
        stale_after: Duration::from_secs(120),
    };
    let guard = lock::take_for(&aws, STACK_NAME, ENVIRONMENT, Operation::Rollback, &opts)
        .await
        .unwrap();
    let lock_id = guard.held().lock_id.clone();

    env.proxy.clear();
    let plan = env.deploy(&["plan", "-f", STACK]);
    assert_success(&plan);
    // plan never touches the lock table.
    assert!(
        !env.proxy.calls().iter().any(|c| c.service == "dynamodb"),
        "{:?}",
        env.proxy.calls()
    );
    // (An unprotected copy: production's protection would refuse before the lock is asked.)
    let unprotected = env.unprotected_stack();
    let refused = env.deploy(&["destroy", "-f", &unprotected, "--auto-approve"]);
    assert_failure(&refused);
    assert!(
        stderr(&refused).contains("is held: rollback by"),
        "{}",
        stderr(&refused)
    );

    let unknown = env.deploy(&["force-unlock", "no-such-lock", "--region", REGION]);
    assert_failure(&unknown);
    assert!(stderr(&unknown).contains("no lock with id no-such-lock"));
    assert_success(&env.deploy(&["force-unlock", &lock_id, "--region", REGION]));
    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    // The old holder finds out before its next write.
    let err = guard.held().check().await.unwrap_err();
    assert!(err.to_string().contains("taken over") || err.to_string().contains("removed"));
    drop(guard);
}
