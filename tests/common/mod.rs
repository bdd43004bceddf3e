// The shared harness for every integration test (`mod common;`): each test gets its own moto
// server (a local AWS), a recording/fault-injecting proxy in front of it, and a temp dir, then
// runs the real `deploy` binary against the proxy and checks AWS state with the SDK directly.
#![allow(dead_code)]

pub mod prometheus;
pub mod redact;
pub mod render;
pub mod web;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use serde_json::Value;

/// The region of the reference stack (stacks/monitoring.yaml) and the seed's default.
pub const REGION: &str = "us-west-2";
/// moto's fixed account id.
pub const ACCOUNT_ID: &str = "123456789012";

const INSTALL_HINT: &str = "run `bash scripts/setup.sh` from the repository root: it installs \
     moto[server]==5.2.5 (with boto3) into ~/.cache/deploy/venv. Or point DEPLOY_MOTO_SERVER at a \
     moto_server and DEPLOY_PYTHON at a python that has boto3.";

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is not set"))
}

fn venv_bin(name: &str) -> PathBuf {
    home().join(".cache/deploy/venv/bin").join(name)
}

fn tool(var: &str, default_name: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => venv_bin(default_name),
    };
    if !path.is_file() {
        panic!(
            "{} not found at {} (override with {var}).\nTo install: {INSTALL_HINT}",
            default_name,
            path.display()
        );
    }
    path
}

/// `$DEPLOY_MOTO_SERVER`, else `~/.cache/deploy/venv/bin/moto_server`; panics with how to install.
pub fn moto_server_path() -> PathBuf {
    tool("DEPLOY_MOTO_SERVER", "moto_server")
}

/// `$DEPLOY_PYTHON`, else `~/.cache/deploy/venv/bin/python`; panics with how to install.
pub fn python_path() -> PathBuf {
    tool("DEPLOY_PYTHON", "python")
}

/// The repository root (where Cargo.toml and stacks/ are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// tests/fixtures (seed.py, proxy.py).
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port()
}

/// A tiny HTTP/1.1 client (one request per connection) for moto's and the proxy's control
/// endpoints, so the harness needs no HTTP crate. Returns (status, body).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn duration_from_env(var: &str, default_secs: u64) -> Duration {
    let secs = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_secs);
    Duration::from_secs(secs)
}

/// Environment for child processes: the host's AWS_* variables are dropped so a developer's
/// profile, region or service-specific endpoint can never leak into a test.
fn scrub_aws_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
}

/// One moto server on its own loopback port, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` on a free port and waits until it answers
    /// `GET /moto-api/` (timeout `DEPLOY_MOTO_START_TIMEOUT` seconds, default 30).
    /// AWS-managed IAM policies are loaded (as in AWS) unless MOTO_IAM_LOAD_MANAGED_POLICIES is
    /// set to something else.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// [`Moto::start`] with extra environment variables for moto (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT` to make it enforce IAM policies).
    pub fn start_with_env(extra_env: &[(&str, &str)]) -> Moto {
        let server = moto_server_path();
        let dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir()
            .expect("temp dir for moto");
        let log_path = dir.path().join("moto.log");
        let timeout = duration_from_env("DEPLOY_MOTO_START_TIMEOUT", 30);
        // The free port is only free until someone else takes it: retry a clash a few times.
        for _attempt in 0..3 {
            let port = free_port();
            let log = File::create(&log_path).expect("moto log file");
            let mut cmd = Command::new(&server);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log);
            if std::env::var_os("MOTO_IAM_LOAD_MANAGED_POLICIES").is_none() {
                cmd.env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
            }
            // moto runs no task: it reports this many running (and completes a service's
            // rollout when that reaches the desired count, 1 in the reference stack), so an
            // apply's rollout wait ends. A test of tasks that never start sets it to 0.
            if std::env::var_os("MOTO_ECS_SERVICE_RUNNING").is_none() {
                cmd.env("MOTO_ECS_SERVICE_RUNNING", "1");
            }
            cmd.envs(extra_env.iter().copied());
            let mut child = cmd.spawn().unwrap_or_else(|e| {
                panic!("cannot start {}: {e}\n{INSTALL_HINT}", server.display())
            });
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!(
                        "moto on port {port} exited early ({status}); log:\n{}",
                        tail(&log_path, 20)
                    );
                    break;
                }
                if let Ok((200, _)) = http_request(port, "GET", "/moto-api/", b"") {
                    return Moto {
                        child,
                        port,
                        log_path,
                        _dir: dir,
                    };
                }
                if started.elapsed() > timeout {
                    kill(&mut child);
                    panic!(
                        "moto_server ({}) did not answer GET /moto-api/ on port {port} within \
                         {timeout:?}; its log:\n{}",
                        server.display(),
                        tail(&log_path, 40)
                    );
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "moto_server failed to start three times; last log:\n{}",
            tail(&log_path, 40)
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forget all state (`POST /moto-api/reset`).
    /// The project's own AWS clients, pointed straight at this moto.
    pub async fn aws(&self) -> deploy::aws::Aws {
        let config = sdk_config_for(&self.endpoint(), REGION).await;
        deploy::aws::Aws::from_config(&config, REGION.to_string())
    }

    pub fn reset(&self) {
        let (status, body) =
            http_request(self.port, "POST", "/moto-api/reset", b"").expect("moto reset");
        assert_eq!(status, 200, "moto reset failed: {body}");
    }

    /// The last lines moto printed (its request log), for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One AWS API call as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// SigV4 signing name: `ec2`, `ecs`, `logs`, `iam`, `elasticloadbalancing`, `sts`, ...
    /// Empty when the proxy could not name it.
    pub service: String,
    /// Operation name, e.g. `DescribeLogGroups`; empty when the proxy could not name it.
    pub action: String,
    pub method: String,
    pub status: u16,
    /// true when the proxy answered with an injected fault instead of forwarding.
    pub injected: bool,
    /// The proxy's classification (see [`AwsActions`]): false only for a listed read or
    /// bookkeeping.
    pub write: bool,
    /// A write to deploy's own table of locks and environment records (never to the
    /// stack's resources).
    pub bookkeeping: bool,
    /// The access key id the call was signed with (tests give concurrent processes their
    /// own keys to tell their calls apart).
    pub key: String,
}

impl Call {
    /// Whether the call may have changed the stack's resources: everything but a listed read
    /// or bookkeeping (a write to the lock and record table).
    pub fn is_mutating(&self) -> bool {
        self.write
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} -> {}", self.service, self.action, self.status)?;
        if self.injected {
            write!(f, " (injected)")?;
        }
        Ok(())
    }
}

/// tests/fixtures/aws_actions.json: the actions deploy calls, per signing name, as reads and
/// writes. The proxy classifies every call by it (a call is a write unless listed as a read).
pub struct AwsActions {
    pub reads: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    pub writes: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Writes to deploy's own lock and record table.
    pub bookkeeping: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl AwsActions {
    pub fn load() -> AwsActions {
        let path = fixtures_dir().join("aws_actions.json");
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).expect("aws_actions.json"))
            .expect("aws_actions.json is JSON");
        let lists = |key: &str| {
            serde_json::from_value(v[key].clone())
                .unwrap_or_else(|e| panic!("aws_actions.json {key}: {e}"))
        };
        AwsActions {
            reads: lists("reads"),
            writes: lists("writes"),
            bookkeeping: lists("bookkeeping"),
        }
    }

    /// Action names compare as IAM compares them, ignoring case: the SDK's method names
    /// (`describe_ssl_policies`) do not keep the API's capitals (`DescribeSSLPolicies`).
    fn lists(
        list: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        service: &str,
        action: &str,
    ) -> bool {
        list.get(service)
            .is_some_and(|a| a.iter().any(|x| x.eq_ignore_ascii_case(action)))
    }

    pub fn is_read(&self, service: &str, action: &str) -> bool {
        Self::lists(&self.reads, service, action)
    }

    pub fn is_write(&self, service: &str, action: &str) -> bool {
        Self::lists(&self.writes, service, action)
    }

    pub fn is_bookkeeping(&self, service: &str, action: &str) -> bool {
        Self::lists(&self.bookkeeping, service, action)
    }
}

/// tests/fixtures/proxy.py in front of a moto server, killed on drop.
pub struct Proxy {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl Proxy {
    /// Starts the proxy on a free port, forwarding to `moto`, appending JSON lines to `log_path`.
    pub fn start(moto: &Moto, log_path: &Path) -> Proxy {
        let python = python_path();
        let script = fixtures_dir().join("proxy.py");
        let stderr_path = log_path.with_extension("stderr");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--upstream", &moto.endpoint(), "--port", "0", "--log"])
            .arg(log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("proxy stderr file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} {}: {e}",
                    python.display(),
                    script.display()
                )
            });
        let stdout = child.stdout.take().expect("proxy stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the proxy can never block on a full pipe.
            for _ in lines {}
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line
                .strip_prefix("PORT ")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("proxy printed {line:?}, expected `PORT <n>`")),
            other => {
                kill(&mut child);
                panic!(
                    "proxy did not print `PORT <n>` ({other:?}); stderr:\n{}",
                    tail(&stderr_path, 40)
                );
            }
        };
        Proxy {
            child,
            port,
            log_path: log_path.to_path_buf(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn control(&self, method: &str, path: &str, body: &[u8]) -> String {
        let (status, text) = http_request(self.port, method, path, body)
            .unwrap_or_else(|e| panic!("proxy control {method} {path}: {e}"));
        assert_eq!(status, 200, "proxy control {method} {path}: {text}");
        text
    }

    /// Every call since the last `clear()`, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.control("GET", "/__proxy/log", b"")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad proxy log line {line:?}: {e}"));
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                Call {
                    service: text("service"),
                    action: text("action"),
                    method: text("method"),
                    status: v["status"].as_u64().unwrap_or(0) as u16,
                    injected: v["injected"].as_bool().unwrap_or(false),
                    write: v["write"]
                        .as_bool()
                        .unwrap_or_else(|| panic!("proxy log line without `write`: {line}")),
                    bookkeeping: v["bookkeeping"]
                        .as_bool()
                        .unwrap_or_else(|| panic!("proxy log line without `bookkeeping`: {line}")),
                    key: text("key"),
                }
            })
            .collect()
    }

    /// The calls that may change the stack's resources: every call but a listed read or
    /// bookkeeping (see [`AwsActions`]).
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    /// The writes to deploy's own lock and record table.
    pub fn bookkeeping_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.bookkeeping).collect()
    }

    /// Forget the recorded calls (fault rules stay).
    pub fn clear(&self) {
        self.control("POST", "/__proxy/clear", b"");
    }

    /// Adds fault rules, e.g. `json!([{"action": "DescribeLogGroups", "status": 400,
    /// "code": "ThrottlingException", "message": "Rate exceeded", "times": 2}])`.
    /// Optional keys: `service` (signing name), `times` (default 1), `status` (default 400).
    pub fn inject(&self, rules: Value) {
        self.control("POST", "/__proxy/faults", rules.to_string().as_bytes());
    }

    /// Plays ECS's deployment lifecycle (which moto lacks) for the named services, from their
    /// next CreateService/UpdateService: a simulation of AWS's answers, see
    /// tests/fixtures/ecs_play.py, e.g. `json!({"service": "grafana", "scenario": "breaker"})`.
    pub fn play_ecs(&self, scenarios: Value) {
        self.control("POST", "/__proxy/ecs", scenarios.to_string().as_bytes());
    }

    /// What the proxy plays per service (its deployments and whether a rollback was asked).
    pub fn played_ecs(&self) -> Value {
        serde_json::from_str(&self.control("GET", "/__proxy/ecs", b"")).expect("played ECS state")
    }

    /// Drops all fault rules, used or not.
    pub fn clear_faults(&self) {
        self.control("DELETE", "/__proxy/faults", b"");
    }

    /// Waits until no request is in flight: a request a killed client left delayed in the
    /// proxy still reaches moto, and a re-run must not race it (on AWS a request is handled
    /// in milliseconds; the test's delay holds it far longer).
    pub fn wait_idle(&self) {
        let started = Instant::now();
        loop {
            let n: usize = self
                .control("GET", "/__proxy/inflight", b"")
                .trim()
                .parse()
                .expect("the proxy's in-flight count");
            if n == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{n} requests still in flight at the proxy after 60 s"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// moto + proxy + temp dir for one test. Fields drop in order: proxy, moto, dir.
pub struct TestEnv {
    pub proxy: Proxy,
    pub moto: Moto,
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::with_moto_env(&[])
    }

    /// A test env whose moto gets extra environment variables.
    pub fn with_moto_env(moto_env: &[(&str, &str)]) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("deploy-test-")
            .tempdir()
            .expect("temp dir");
        let moto = Moto::start_with_env(moto_env);
        let proxy = Proxy::start(&moto, &dir.path().join("proxy.jsonl"));
        TestEnv { proxy, moto, dir }
    }

    /// The test's own temp dir (deleted on drop).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of the reference stack (stacks/monitoring.yaml) in the temp dir, edited by
    /// `edit`; returns its path.
    pub fn stack_copy(&self, name: &str, edit: impl Fn(String) -> String) -> String {
        let text = std::fs::read_to_string(repo_root().join("stacks/monitoring.yaml"))
            .expect("the reference stack");
        let path = self.path().join(name);
        std::fs::write(&path, edit(text)).expect("write the stack copy");
        path.to_string_lossy().into_owned()
    }

    /// A copy of the reference stack with `production`'s protection lifted (the edit the
    /// README documents), for tests that destroy it or delete its data; returns its path.
    pub fn unprotected_stack(&self) -> String {
        self.stack_copy("unprotected.yaml", unprotected)
    }

    /// A rule made by hand (untagged, directly in moto) on the seeded HTTPS listener at
    /// `priority`, forwarding to the backend; returns its ARN.
    pub async fn handmade_rule(&self, seeded: &Value, priority: i32) -> String {
        use aws_sdk_elasticloadbalancingv2 as elb;
        elb::Client::new(&self.sdk_config(REGION).await)
            .create_rule()
            .listener_arn(seeded["https_listener_arn"].as_str().unwrap())
            .priority(priority)
            .conditions(
                elb::types::RuleCondition::builder()
                    .field("path-pattern")
                    .values("/admin/*")
                    .build(),
            )
            .actions(
                elb::types::Action::builder()
                    .r#type(elb::types::ActionTypeEnum::Forward)
                    .target_group_arn(seeded["target_group_arn"].as_str().unwrap())
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .rules()[0]
            .rule_arn()
            .unwrap()
            .to_string()
    }

    /// moto itself: calls made here are not recorded.
    pub fn endpoint(&self) -> String {
        self.moto.endpoint()
    }

    /// The recording proxy: what `deploy` talks to.
    pub fn proxy_endpoint(&self) -> String {
        self.proxy.endpoint()
    }

    /// Runs tests/fixtures/seed.py against moto directly (not counted by the proxy) in
    /// `REGION`; returns its JSON (vpc_id, private_subnet_ids, public_subnet_ids, alb_arn,
    /// alb_dns_name, alb_security_group_id, target_group_arn, listener_arn,
    /// https_listener_arn, certificate_arn, and with `handmade` log_group_name and
    /// task_definition_arn).
    pub fn seed(&self, handmade: bool) -> Value {
        self.seed_region(REGION, handmade)
    }

    pub fn seed_region(&self, region: &str, handmade: bool) -> Value {
        self.seed_args(region, if handmade { &["--handmade"] } else { &[] })
    }

    /// `seed(false)` without the ALB's HTTPS listener on 443 (`seed.py --no-https`).
    pub fn seed_without_https(&self) -> Value {
        self.seed_args(REGION, &["--no-https"])
    }

    fn seed_args(&self, region: &str, extra: &[&str]) -> Value {
        let mut cmd = Command::new(python_path());
        cmd.arg(fixtures_dir().join("seed.py")).args([
            "--endpoint",
            &self.endpoint(),
            "--region",
            region,
        ]);
        cmd.args(extra);
        scrub_aws_env(&mut cmd);
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
        let out = cmd.output().expect("run seed.py");
        assert!(
            out.status.success(),
            "seed.py failed ({}):\n{}",
            out.status,
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("seed.py printed no JSON ({e}):\n{}", stdout(&out)))
    }

    /// Runs the `deploy` binary with cwd = repo root against the proxy.
    pub fn deploy(&self, args: &[&str]) -> Output {
        self.deploy_in(&repo_root(), args, &[])
    }

    /// Like `deploy`, with extra environment variables set last (they win).
    pub fn deploy_with_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        self.deploy_in(&repo_root(), args, extra_env)
    }

    /// Runs `deploy` in `cwd`. The environment: the host's minus every AWS_* variable, plus
    /// AWS_ENDPOINT_URL = the proxy, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY = testing,
    /// AWS_EC2_METADATA_DISABLED (no IMDS probing), AWS config/credentials files pointed into
    /// the temp dir (a developer's ~/.aws cannot leak in), NO_COLOR=1; HOME kept. Killed and
    /// reported after `DEPLOY_TEST_TIMEOUT_SECS` (default 300).
    pub fn deploy_in(&self, cwd: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut cmd = self.deploy_command(args);
        cmd.current_dir(cwd);
        run_deploy(cmd, args, extra_env)
    }

    /// The `deploy` command as `deploy_in` runs it (cwd = repo root), for tests that spawn it
    /// and signal or kill it midway.
    pub fn deploy_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deploy"));
        cmd.args(args).current_dir(repo_root()).stdin(Stdio::null());
        scrub_aws_env(&mut cmd);
        cmd.env("AWS_ENDPOINT_URL", self.proxy_endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path().join("aws-credentials"),
            )
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs `deploy` in `cwd` as someone new to it would: HOME = `home`, none of the AWS_*
    /// settings `deploy_command` gives (no credentials, no config file paths, no metadata
    /// switch), only AWS_ENDPOINT_URL = the proxy so that any request it sends is recorded;
    /// then `extra_env`.
    pub fn deploy_as_new_user(
        &self,
        home: &Path,
        cwd: &Path,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deploy"));
        cmd.args(args).current_dir(cwd).stdin(Stdio::null());
        scrub_aws_env(&mut cmd);
        cmd.env("HOME", home)
            .env("AWS_ENDPOINT_URL", self.proxy_endpoint())
            .env("NO_COLOR", "1");
        run_deploy(cmd, args, extra_env)
    }

    /// SDK config pointed DIRECTLY at moto (test-side setup and drift; not recorded), with
    /// fake credentials, standard retry (3 attempts) and none of the host's AWS settings.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        sdk_config_for(&self.endpoint(), region).await
    }

    /// SDK config pointed at the proxy (recorded, faults apply): for testing the harness.
    pub async fn proxy_sdk_config(&self, region: &str) -> SdkConfig {
        sdk_config_for(&self.proxy_endpoint(), region).await
    }

    /// Drift: sets a log group's retention in `REGION` behind deploy's back (not recorded).
    pub async fn set_log_retention(&self, log_group: &str, days: i32) {
        aws_sdk_cloudwatchlogs::Client::new(&self.sdk_config(REGION).await)
            .put_retention_policy()
            .log_group_name(log_group)
            .retention_in_days(days)
            .send()
            .await
            .unwrap();
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if thread::panicking() {
            // Shown by the test runner with the failure: what deploy asked AWS, and moto's end.
            let calls = fs::read_to_string(self.proxy.log_path()).unwrap_or_default();
            eprintln!(
                "--- proxy log ({} calls) ---\n{}--- moto log tail ---\n{}",
                calls.lines().count(),
                calls,
                self.moto.log_tail(20)
            );
        }
    }
}

/// A certificate for `domain` requested from ACM (moto issues it at once); returns its ARN.
pub async fn request_certificate(conf: &SdkConfig, domain: &str) -> String {
    aws_sdk_acm::Client::new(conf)
        .request_certificate()
        .domain_name(domain)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string()
}

/// An SdkConfig for `endpoint` that ignores the host's environment and profile files.
pub async fn sdk_config_for(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "deploy-test-harness",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// Runs a prepared `deploy` command with `extra_env` set last (they win), killed and reported
/// after `DEPLOY_TEST_TIMEOUT_SECS` (default 300).
fn run_deploy(mut cmd: Command, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    run_with_timeout(
        cmd,
        duration_from_env("DEPLOY_TEST_TIMEOUT_SECS", 300),
        &format!("deploy {}", args.join(" ")),
    )
}

/// Runs a program with `input` on its standard input and collects both streams; panics with
/// `install` (how to get the program) when it cannot be started.
pub fn run_with_input(mut cmd: Command, input: &[u8], install: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); to install it: {install}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to the program's stdin");
    child.wait_with_output().expect("wait for the program")
}

fn run_with_timeout(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out_thread = reader(Box::new(child.stdout.take().expect("stdout")));
    let err_thread = reader(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for deploy") {
            break status;
        }
        if started.elapsed() > timeout {
            kill(&mut child);
            let out = String::from_utf8_lossy(&out_thread.join().unwrap_or_default()).into_owned();
            let err = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
            panic!("`{what}` still running after {timeout:?}; killed.\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// A registered container's environment (DescribeTaskDefinition) as name → value.
pub fn registered_environment(
    c: &aws_sdk_ecs::types::ContainerDefinition,
) -> std::collections::BTreeMap<String, String> {
    c.environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_string(),
                kv.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The process's stdout as (lossy) UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The process's stderr as (lossy) UTF-8.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Panics with both streams unless the process exited 0.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "expected success, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Panics with both streams unless the process exited non-zero.
#[track_caller]
pub fn assert_failure(out: &Output) {
    assert!(
        !out.status.success(),
        "expected failure, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Validates a document against schemas/deploy-v1.schema.json (see [`json_schema_check`]).
pub fn schema_check(doc: &serde_json::Value) -> Result<(), String> {
    json_schema_check(&repo_root().join("schemas/deploy-v1.schema.json"), doc)
}

/// Validates a document against the JSON schema in `schema` with the Python `jsonschema`
/// package (installed with moto in the test venv): a real validator, not ours, of the draft
/// the schema names. `Err` holds the validator's findings, one line each (validator, path,
/// message; every branch of a `oneOf`): the document is invalid. When the check cannot run at
/// all (no python, no jsonschema, a broken schema) this panics instead, so a negative test
/// can never pass because the validator failed to start.
pub fn json_schema_check(schema: &Path, doc: &serde_json::Value) -> Result<(), String> {
    use std::io::Write;
    // Exit 0: valid; 3: invalid (the messages on stdout); anything else: could not run.
    const INVALID: i32 = 3;
    let mut child = std::process::Command::new(python_path())
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             cls = jsonschema.validators.validator_for(schema)\n\
             cls.check_schema(schema)\n\
             errors = list(cls(schema).iter_errors(json.load(sys.stdin)))\n\
             leaves = lambda e: [l for c in e.context for l in leaves(c)] if e.context else [e]\n\
             [print(e.validator, list(e.absolute_path), e.message[:300]) for t in errors for e in leaves(t)]\n\
             sys.exit(3 if errors else 0)",
        ])
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python with jsonschema (bash scripts/setup.sh installs it with moto)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(INVALID) if !stdout(&out).trim().is_empty() => Err(stdout(&out)),
        _ => panic!(
            "the schema check could not run ({}): {}{}\nTo install: {INSTALL_HINT}",
            out.status,
            stdout(&out),
            stderr(&out)
        ),
    }
}

/// Stack text with `protected: true` (the reference stack's `production`) made `false`.
pub fn unprotected(text: String) -> String {
    let lifted = text.replace("    protected: true\n", "    protected: false\n");
    assert_ne!(lifted, text, "the stack protects no environment any more");
    lifted
}
