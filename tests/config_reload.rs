// The reload path, with real parts: files published by deploy's own S3 adapter to moto's S3,
// fetched by the sidecar script (templates/reloader.sh) under busybox's sh through the real
// AWS CLI (PyPI `awscli`, in the moto venv), and a real Prometheus and Alertmanager on
// loopback with the stack's TLS + basic-auth web config. A rule threshold change reaches
// Prometheus by a reload: same process start time, samples from before still there, the new
// rule loaded. A broken rule file is refused: the old rules stay loaded, the previous files are
// back on the volume, the status object says `failed`, and a restarted Prometheus comes up on
// the last good files.

mod common;

use common::render::{context_for, reference_stack, render_with};
use common::web::WebAuth;
use common::{free_port, python_path, tail, Moto};
use deploy::aws::s3;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BUCKET: &str = "monitoring-production-config";
const FAMILY: &str = "prom-task";
const PROMETHEUS: &str = "/usr/bin/prometheus";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const INSTALL: &str = "run `bash scripts/setup.sh` (Debian packages prometheus, \
                       prometheus-alertmanager, busybox; PyPI awscli in the venv)";

fn aws_cli() -> PathBuf {
    let aws = python_path().with_file_name("aws");
    assert!(
        aws.is_file(),
        "the AWS CLI is missing at {}: {INSTALL}",
        aws.display()
    );
    aws
}

fn need(path: &str) {
    assert!(Path::new(path).is_file(), "{path} is missing: {INSTALL}");
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment the AWS CLI needs to reach moto.
fn cli_env(moto: &Moto) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_DEFAULT_REGION", "us-west-2".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn cli(moto: &Moto, args: &[&str]) -> String {
    let out = Command::new(aws_cli())
        .args(args)
        .envs(cli_env(moto))
        .output()
        .expect("run the AWS CLI");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reference stack with a fast self-scrape, and `error_ratio` as given.
fn stack(error_ratio: f64) -> Value {
    let mut stack = reference_stack();
    stack["vars"]["scrape_interval"] = "1s".into();
    stack["vars"]["scrape_timeout"] = "1s".into();
    stack["vars"]["alerts"]["error_ratio"] = error_ratio.into();
    stack
}

/// The files the sidecar of the Prometheus task keeps: PATH (under the config dir) → content.
/// prometheus.yml's self-scrape target moves to the port the test's Prometheus got.
fn files(stack: &Value, prom_port: u16) -> BTreeMap<String, String> {
    let ctx = context_for(stack);
    let prometheus = render_with("prometheus.yml", &ctx);
    assert_eq!(prometheus.matches("localhost:9090").count(), 1);
    let alertmanager = render_with("alertmanager.yml", &ctx);
    [
        (
            "prometheus/prometheus.yml",
            prometheus.replace("localhost:9090", &format!("localhost:{prom_port}")),
        ),
        (
            "prometheus/rules/recording.yml",
            render_with("rules/recording.yml", &ctx),
        ),
        (
            "prometheus/rules/alerts.yml",
            render_with("rules/alerts.yml", &ctx),
        ),
        ("alertmanager/alertmanager.yml", alertmanager),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c))
    .collect()
}

fn start_prometheus(dir: &Path, port: u16) -> Running {
    let config = dir.join("config/prometheus");
    let log = File::create(dir.join("prometheus.log")).unwrap();
    Running(
        Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                config.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--web.config.file={}",
                config.join("web.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    )
}

fn start_alertmanager(dir: &Path, port: u16) -> Running {
    let config = dir.join("config/alertmanager");
    let log = File::create(dir.join("alertmanager.log")).unwrap();
    Running(
        Command::new(ALERTMANAGER)
            .arg(format!(
                "--config.file={}",
                config.join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--web.config.file={}",
                config.join("web.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start alertmanager"),
    )
}

fn wait_for(what: &str, deadline: Duration, log: &Path, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < deadline,
            "{what} within {deadline:?}; log:\n{}",
            tail(log, 40)
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn json_get(web: &WebAuth, port: u16, path: &str) -> Value {
    let (status, body) = web.get(port, path).expect("GET");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Every alerting rule's query, by alert name, as Prometheus has them loaded.
fn loaded_alerts(web: &WebAuth, port: u16) -> BTreeMap<String, String> {
    let v = json_get(web, port, "/api/v1/rules?type=alert");
    v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["query"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn start_time(web: &WebAuth, port: u16) -> String {
    json_get(web, port, "/api/v1/status/runtimeinfo")["data"]["startTime"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The sidecar: templates/reloader.sh as rendered, under busybox sh, polling every second.
fn start_sidecar(dir: &Path, moto: &Moto, web: &WebAuth, targets: &str) -> Running {
    let sidecar = Sidecar {
        bucket: BUCKET.into(),
        family: FAMILY.into(),
        config_dir: dir.join("config"),
        targets: targets.into(),
        task_id: "task-0123".into(),
    };
    sidecar.start(dir, moto, web)
}

/// One task's config sidecar as the test runs it.
struct Sidecar {
    bucket: String,
    family: String,
    config_dir: PathBuf,
    targets: String,
    task_id: String,
}

impl Sidecar {
    /// Runs templates/reloader.sh as rendered under busybox sh, polling every second; its
    /// log is `dir`/sidecar-TASK.log (and `dir`/sidecar.log for the first one).
    fn start(&self, dir: &Path, moto: &Moto, web: &WebAuth) -> Running {
        let script = dir.join("reloader.sh");
        std::fs::write(
            &script,
            render_with("reloader.sh", &context_for(&reference_stack())),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            aws_cli().parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log_path = dir.join("sidecar.log");
        let log_path = if log_path.exists() {
            dir.join(format!("sidecar-{}.log", self.task_id))
        } else {
            log_path
        };
        let log = File::create(log_path).unwrap();
        Running(
            Command::new("busybox")
                .arg("sh")
                .arg(&script)
                .envs(cli_env(moto))
                .env("PATH", path)
                .env("TMPDIR", dir.join(format!("tmp-{}", self.task_id)))
                .env("CONFIG_BUCKET", &self.bucket)
                .env(
                    "CONFIG_MANIFEST",
                    deploy::render::reload::manifest_key(&self.family),
                )
                .env(
                    "CONFIG_PREFIX",
                    deploy::render::reload::files_prefix(&self.family),
                )
                .env("CONFIG_DIR", &self.config_dir)
                .env("POLL_SECONDS", "1")
                .env("RELOAD_TARGETS", &self.targets)
                .env("RELOAD_USER", common::web::USER)
                .env("RELOAD_PASSWORD", &web.password)
                .env("RELOAD_CA_CERT", std::fs::read_to_string(&web.ca).unwrap())
                .env("TASK_ID", &self.task_id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("busybox sh is missing: apt-get install busybox"),
        )
    }
}

async fn status(aws: &deploy::aws::Aws) -> Option<s3::ReloadStatus> {
    s3::reload_statuses(aws, BUCKET, FAMILY)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.task == "task-0123")
}

/// Polls the status object until it reports `version`.
async fn reported(aws: &deploy::aws::Aws, version: &str, log: &Path) -> s3::ReloadStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = status(aws).await.filter(|s| s.manifest_version == version) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no status for manifest version {version} (last: {:?}); sidecar log:\n{}",
            status(aws).await,
            tail(log, 60)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_threshold_change_reloads_prometheus_and_a_broken_rule_keeps_the_last_good_files() {
    need(PROMETHEUS);
    need(ALERTMANAGER);
    need("/usr/bin/busybox");
    let moto = Moto::start();
    let aws = moto.aws().await;
    cli(
        &moto,
        &[
            "s3api",
            "create-bucket",
            "--bucket",
            BUCKET,
            "--create-bucket-configuration",
            "LocationConstraint=us-west-2",
        ],
    );
    cli(
        &moto,
        &[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            BUCKET,
            "--versioning-configuration",
            "Status=Enabled",
        ],
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sidecar_log = dir.join("sidecar.log");
    // The web config and secrets travel in the task definition (they hold secrets); the
    // test writes them where the containers' start scripts do.
    let prom_dir = dir.join("config/prometheus");
    let am_dir = dir.join("config/alertmanager");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let web = WebAuth::install(&prom_dir, &context_for(&reference_stack()));
    std::fs::create_dir_all(am_dir.join("secrets")).unwrap();
    for f in [
        "web.yml",
        "web-client.yml",
        "secrets/tls.crt",
        "secrets/tls.key",
        "secrets/web_password",
    ] {
        std::fs::copy(prom_dir.join(f), am_dir.join(f)).unwrap();
    }
    // The receivers' credentials files alertmanager.yml names (absolute container paths in the
    // rendered file, moved here).
    let (prom_port, am_port) = (free_port(), free_port());

    // First apply: 0.05.
    let mut first = files(&stack(0.05), prom_port);
    relocate_secrets(&mut first, &am_dir);
    let published = s3::publish(&aws, BUCKET, FAMILY, &first, "td-hash-1")
        .await
        .unwrap();
    assert_eq!(published.uploaded.len(), first.len());
    let v1 = published.manifest_version.clone().unwrap();

    let targets = format!(
        "prometheus=https://localhost:{prom_port} alertmanager=https://localhost:{am_port}"
    );
    let _sidecar = start_sidecar(dir, &moto, &web, &targets);
    // The servers start only after the first fetch (dependsOn HEALTHY in ECS).
    wait_for("first fetch", Duration::from_secs(60), &sidecar_log, || {
        dir.join("config/.deploy-ready").is_file()
    });
    let first_status = reported(&aws, &v1, &sidecar_log).await;
    assert_eq!(first_status.result, "completed", "{first_status:?}");
    for (path, content) in &first {
        assert_eq!(
            &std::fs::read_to_string(dir.join("config").join(path)).unwrap(),
            content,
            "{path}"
        );
    }
    let mut prometheus = start_prometheus(dir, prom_port);
    let _alertmanager = start_alertmanager(dir, am_port);
    let prom_log = dir.join("prometheus.log");
    wait_for(
        "prometheus ready",
        Duration::from_secs(60),
        &prom_log,
        || matches!(web.get(prom_port, "/-/ready"), Ok((200, _))),
    );
    wait_for(
        "alertmanager ready",
        Duration::from_secs(60),
        &dir.join("alertmanager.log"),
        || matches!(web.get(am_port, "/-/ready"), Ok((200, _))),
    );
    let started_at = start_time(&web, prom_port);
    let before = loaded_alerts(&web, prom_port);
    let threshold_alert = before
        .iter()
        .find(|(_, q)| q.contains("0.05"))
        .map(|(n, _)| n.clone())
        .expect("an alert compares with vars.alerts.error_ratio (0.05)");
    // Samples scraped before the change.
    wait_for(
        "a self-scrape sample",
        Duration::from_secs(30),
        &prom_log,
        || {
            let v = json_get(
                &web,
                prom_port,
                "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D",
            );
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    );
    let scraped_before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    // Second apply: 0.02. Only the alert rules change, so only they are uploaded.
    let mut second = files(&stack(0.02), prom_port);
    relocate_secrets(&mut second, &am_dir);
    let published = s3::publish(&aws, BUCKET, FAMILY, &second, "td-hash-1")
        .await
        .unwrap();
    assert_eq!(published.uploaded, ["prometheus/rules/alerts.yml"]);
    let v2 = published.manifest_version.clone().unwrap();
    let again = s3::publish(&aws, BUCKET, FAMILY, &second, "td-hash-1")
        .await
        .unwrap();
    assert!(!again.changed && again.uploaded.is_empty(), "{again:?}");
    assert_eq!(again.manifest_version.as_deref(), Some(v2.as_str()));

    let reload = reported(&aws, &v2, &sidecar_log).await;
    assert_eq!(reload.result, "completed", "{reload:?}");
    assert_eq!(
        reload.reload_successful.get("prometheus"),
        Some(&Some(1.0)),
        "{reload:?}"
    );
    assert_eq!(
        reload.reload_successful.get("alertmanager"),
        Some(&Some(1.0)),
        "{reload:?}"
    );
    assert_eq!(
        start_time(&web, prom_port),
        started_at,
        "Prometheus was restarted"
    );
    let after = loaded_alerts(&web, prom_port);
    assert!(
        after[&threshold_alert].contains("0.02"),
        "{}",
        after[&threshold_alert]
    );
    let old = json_get(
        &web,
        prom_port,
        &format!("/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D&time={scraped_before}"),
    );
    assert!(
        old["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "samples from before the reload are gone: {old}"
    );

    // A broken rule file: the reload is refused, the old rules stay, the files go back.
    let good_alerts = second["prometheus/rules/alerts.yml"].clone();
    let mut broken = second.clone();
    broken.insert(
        "prometheus/rules/alerts.yml".into(),
        "groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum(rate(\n"
            .into(),
    );
    let v3 = s3::publish(&aws, BUCKET, FAMILY, &broken, "td-hash-1")
        .await
        .unwrap()
        .manifest_version
        .unwrap();
    let refused = reported(&aws, &v3, &sidecar_log).await;
    assert_eq!(refused.result, "failed", "{refused:?}");
    assert!(refused.error.contains("prometheus"), "{refused:?}");
    assert_eq!(
        refused.reload_successful.get("prometheus"),
        Some(&Some(0.0)),
        "{refused:?}"
    );
    assert_eq!(
        loaded_alerts(&web, prom_port),
        after,
        "the old rules stay loaded"
    );
    assert_eq!(
        std::fs::read_to_string(prom_dir.join("rules/alerts.yml")).unwrap(),
        good_alerts,
        "the previous rule file is back on the volume"
    );
    // A restart comes up on the last good files.
    drop(std::mem::replace(
        &mut prometheus,
        Running(Command::new("true").spawn().unwrap()),
    ));
    let _prometheus = start_prometheus(dir, prom_port);
    wait_for(
        "prometheus ready after a restart",
        Duration::from_secs(60),
        &prom_log,
        || matches!(web.get(prom_port, "/-/ready"), Ok((200, _))),
    );
    assert_eq!(loaded_alerts(&web, prom_port), after);

    // Rollback: the files of the first apply, by the manifest version published with its
    // task definition revision.
    let found = s3::manifest_version_for(&aws, BUCKET, FAMILY, "td-hash-1")
        .await
        .unwrap();
    assert_eq!(
        found.as_deref(),
        Some(v3.as_str()),
        "the newest version of that revision"
    );
    let v4 = s3::restore_manifest(&aws, BUCKET, FAMILY, &v1)
        .await
        .unwrap();
    let restored = reported(&aws, &v4, &sidecar_log).await;
    assert_eq!(restored.result, "completed", "{restored:?}");
    assert!(loaded_alerts(&web, prom_port)[&threshold_alert].contains("0.05"));
    drop(moto);
}

/// alertmanager.yml names its receivers' secret files by container path
/// (/etc/alertmanager/secrets/…): moved to the test's directory, with stand-in values.
fn relocate_secrets(files: &mut BTreeMap<String, String>, am_dir: &Path) {
    let config = files.get_mut("alertmanager/alertmanager.yml").unwrap();
    *config = config.replace("/etc/alertmanager/", &format!("{}/", am_dir.display()));
    for name in [
        "slack_webhook_url",
        "pagerduty_routing_key",
        "smtp_password",
    ] {
        let value = if name == "slack_webhook_url" {
            "https://hooks.slack.invalid/x"
        } else {
            "x"
        };
        std::fs::write(am_dir.join("secrets").join(name), value).unwrap();
    }
}

/// The config bucket as the adapter creates it, read back from moto's S3: private (all four
/// public access blocks), SSE-S3, no bucket policy, versioning on (read through the tolerant
/// reader of moto's GetBucketVersioning answer), the ownership tags.
#[tokio::test(flavor = "multi_thread")]
async fn the_config_bucket_is_private_encrypted_versioned_and_tagged() {
    use deploy::render::reload::{bucket_name, bucket_policy};
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = bucket_name("monitoring", "production", "123456789012", &aws.region);
    assert_eq!(s3::read_config_bucket(&aws, &name).await.unwrap(), None);
    let policy = bucket_policy(&name);
    let tags: deploy::model::Tags = [
        ("deploy:stack".to_string(), "monitoring".to_string()),
        ("deploy:environment".to_string(), "production".to_string()),
        ("team".to_string(), "platform".to_string()),
    ]
    .into();
    let attrs = deploy::model::S3BucketAttrs {
        name: name.clone(),
        versioning: true,
        encryption: Some("AES256".into()),
        public_access_blocked: true,
        policy: policy.clone(),
        tags: Default::default(),
        files: Default::default(),
    };
    s3::create_config_bucket(&aws, &attrs, &tags).await.unwrap();
    let got = s3::read_config_bucket(&aws, &name).await.unwrap().unwrap();
    assert!(got.public_access_blocked, "{got:?}");
    assert_eq!(got.encryption.as_deref(), Some("AES256"));
    assert!(policy.is_null());
    assert_eq!(
        got.policy, None,
        "no bucket policy: IAM alone admits the stack's roles"
    );
    assert!(s3::bucket_versioning(&aws, &name).await.unwrap());
    assert_eq!(got.tags, tags);
}

/// Dashboards reload through Grafana's file provider, not a call: no Grafana server runs here,
/// so its provisioning file is checked as a file. It re-reads its path on an interval, and that
/// path is where the stack puts every dashboard (the directory the sidecar would keep).
#[test]
fn grafana_rereads_the_dashboards_where_the_stack_puts_them() {
    let stack = reference_stack();
    let provisioning: Value =
        serde_saphyr::from_str(&render_with("grafana/dashboards.yml", &context_for(&stack)))
            .unwrap();
    let provider = &provisioning["providers"][0];
    let interval = provider["updateIntervalSeconds"].as_u64().unwrap_or(0);
    assert!(
        (1..=60).contains(&interval),
        "updateIntervalSeconds {interval}: a changed dashboard must be picked up within a minute"
    );
    let path = provider["options"]["path"].as_str().unwrap();
    assert_eq!(path, stack["vars"]["grafana"]["dashboards_path"]);
    let files = stack["task_definitions"]["grafana"]["containers"]["grafana"]["files"]
        .as_object()
        .unwrap();
    let dashboards: Vec<&String> = files
        .iter()
        .filter(|(_, template)| template.as_str().unwrap().starts_with("dashboards/"))
        .map(|(p, _)| p)
        .collect();
    assert!(!dashboards.is_empty());
    for p in dashboards {
        assert!(p.starts_with(&format!("{path}/")), "{p} is outside {path}");
    }
}

/// A copy of templates/ in `dir`, with `edit` applied to rules/alerts.yml.
fn templates_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let to = dir.join("templates");
    let from = common::repo_root().join("templates");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    let alerts = to.join("rules/alerts.yml");
    let text = std::fs::read_to_string(&alerts).unwrap();
    std::fs::write(&alerts, edit(text)).unwrap();
    to
}

/// The JSON document an `--format json` run printed.
fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_str(&common::stdout(out)).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout:\n{}\nstderr:\n{}",
            common::stdout(out),
            common::stderr(out)
        )
    })
}

/// The whole path through deploy itself: `deploy apply` creates the config bucket and
/// publishes the files; the sidecars (the script, busybox sh, the real AWS CLI, run here with
/// the environment the registered task definition gives them) fetch them and a real
/// Prometheus starts on them; apply waits until every running task (moto runs one per
/// service) reported them loaded. Then the threshold change: the plan shows a reload and no
/// new revision, apply uploads one file and waits for the reload, Prometheus keeps its start
/// time and its samples and has the new rule. A broken rule: apply fails the reload, puts the
/// previous manifest back, and Prometheus keeps the last good rules.
#[tokio::test(flavor = "multi_thread")]
async fn a_threshold_change_through_deploy_is_a_reload_not_a_restart() {
    need(PROMETHEUS);
    need("/usr/bin/busybox");
    let env = common::TestEnv::new();
    env.seed(false);
    let aws = env.moto.aws().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bucket = deploy::render::reload::bucket_name(
        "monitoring",
        "production",
        "123456789012",
        &aws.region,
    );

    // What the registered task definition tells its sidecar (checked after the first apply):
    // the test's sidecars get the same bucket and keys, and loopback for the servers.
    let prom_config = dir.join("prom-task");
    let web = WebAuth::install(
        &prom_config.join("prometheus"),
        &context_for(&reference_stack()),
    );
    let prom_port = free_port();
    let _prom_sidecar = Sidecar {
        bucket: bucket.clone(),
        family: "prom-task".into(),
        config_dir: prom_config.clone(),
        targets: format!("prometheus=https://localhost:{prom_port}"),
        task_id: "prom-task-1".into(),
    }
    .start(dir, &env.moto, &web);
    let _grafana_sidecar = Sidecar {
        bucket: bucket.clone(),
        family: "grafana-task".into(),
        config_dir: dir.join("grafana-task"),
        targets: String::new(),
        task_id: "grafana-task-1".into(),
    }
    .start(dir, &env.moto, &web);
    let sidecar_log = dir.join("sidecar.log");

    let first = env.stack_copy("first.yaml", |t| t);
    let out = env.deploy(&[
        "apply",
        "-f",
        &first,
        "--auto-approve",
        "--format",
        "json",
        "--wait-timeout",
        "120",
    ]);
    common::assert_success(&out);
    let report = json_of(&out);
    common::schema_check(&report).unwrap();
    let reloads = report["reloads"].as_array().expect("reloads in the report");
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    // Created services: their tasks start after their sidecars' first fetch, so the rollout
    // covers the files.
    for r in reloads {
        assert_eq!(r["outcome"], "completed", "{r}");
        assert!(r["reason"].as_str().unwrap().contains("rollout"), "{r}");
    }

    // The task definition wires the sidecar as the test runs it.
    let td = env
        .deploy(&[
            "render",
            "-f",
            &first,
            "--out",
            &dir.join("out").to_string_lossy(),
        ])
        .status;
    assert!(td.success());
    let prom_td: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/task-definitions/prom-task.json")).unwrap(),
    )
    .unwrap();
    let containers = prom_td["containerDefinitions"].as_array().unwrap();
    let sidecar = containers.iter().find(|c| c["name"] == "config").unwrap();
    let sidecar_env: BTreeMap<String, String> = sidecar["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(sidecar_env["CONFIG_BUCKET"], bucket);
    assert_eq!(sidecar_env["CONFIG_MANIFEST"], "manifest/prom-task");
    assert_eq!(
        sidecar_env["RELOAD_TARGETS"],
        "alertmanager=https://localhost:9093 prometheus=https://localhost:9090"
    );
    let prometheus_def = containers
        .iter()
        .find(|c| c["name"] == "prometheus")
        .unwrap();
    assert_eq!(
        prometheus_def["dependsOn"],
        serde_json::json!([{"containerName": "config", "condition": "HEALTHY"}])
    );
    assert!(prometheus_def["command"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--web.enable-lifecycle"));

    // Prometheus starts on the fetched files (after the sidecar's first fetch, as dependsOn
    // HEALTHY has it in ECS).
    wait_for(
        "the sidecar's first fetch",
        Duration::from_secs(60),
        &sidecar_log,
        || prom_config.join(".deploy-ready").is_file(),
    );
    let prom_dir = dir.join("prom");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let log = File::create(prom_dir.join("prometheus.log")).unwrap();
    let _prometheus = Running(
        Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                prom_config.join("prometheus/prometheus.yml").display()
            ))
            .arg(format!(
                "--web.config.file={}",
                prom_config.join("prometheus/web.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let prom_log = prom_dir.join("prometheus.log");
    wait_for(
        "prometheus ready",
        Duration::from_secs(60),
        &prom_log,
        || matches!(web.get(prom_port, "/-/ready"), Ok((200, _))),
    );
    let started_at = start_time(&web, prom_port);
    // The backend behind moto's ALB does not answer: its `up` samples are 0, but they are
    // samples in the TSDB all the same.
    let up_query = "/api/v1/query?query=up%7Bjob%3D%22backend%22%7D";
    wait_for(
        "a backend scrape sample",
        Duration::from_secs(60),
        &prom_log,
        || {
            json_get(&web, prom_port, up_query)["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    );
    let sampled_at = json_get(&web, prom_port, up_query)["data"]["result"][0]["value"][0]
        .as_f64()
        .unwrap();
    let threshold =
        |alerts: &BTreeMap<String, String>, t: &str| alerts.iter().any(|(_, q)| q.contains(t));
    assert!(threshold(&loaded_alerts(&web, prom_port), "0.05"));

    // The threshold change: a reload, no revision, no restart.
    let second = env.stack_copy("second.yaml", |t| {
        t.replace("error_ratio: 0.05", "error_ratio: 0.02")
    });
    let out = env.deploy(&["plan", "-f", &second]);
    common::assert_success(&out);
    let plan = common::stdout(&out) + &common::stderr(&out);
    assert!(
        plan.contains("~ file prom-task/prometheus/rules/alerts.yml (reload, no restart)"),
        "{plan}"
    );
    assert!(
        plan.contains("-      expr:") || plan.contains("0.02"),
        "{plan}"
    );
    assert!(
        !plan.contains("task_definition."),
        "no new revision: {plan}"
    );
    assert!(!plan.contains("ecs_service."), "no restart: {plan}");
    let out = env.deploy(&[
        "apply",
        "-f",
        &second,
        "--auto-approve",
        "--format",
        "json",
        "--wait-timeout",
        "120",
    ]);
    common::assert_success(&out);
    let report = json_of(&out);
    common::schema_check(&report).unwrap();
    assert_eq!(
        report["rollouts"],
        serde_json::json!([]),
        "nothing restarts"
    );
    // The threshold is in the alert rules and on the overview dashboard's error panel: one
    // file of each task, each reloaded.
    let reloads = report["reloads"].as_array().unwrap();
    let uploaded: Vec<(&str, &Value)> = reloads
        .iter()
        .map(|r| (r["family"].as_str().unwrap(), &r["uploaded"]))
        .collect();
    assert_eq!(
        uploaded,
        [
            (
                "grafana-task",
                &serde_json::json!(["grafana/overview.json"])
            ),
            (
                "prom-task",
                &serde_json::json!(["prometheus/rules/alerts.yml"])
            ),
        ],
        "{reloads:?}"
    );
    assert!(
        reloads.iter().all(|r| r["outcome"] == "completed"),
        "{reloads:?}"
    );
    assert!(dir.join("grafana-task/grafana/overview.json").is_file());
    assert_eq!(start_time(&web, prom_port), started_at, "the same process");
    let at = format!("/api/v1/query?query=up%7Bjob%3D%22backend%22%7D&time={sampled_at}");
    assert_eq!(
        json_get(&web, prom_port, &at)["data"]["result"][0]["value"][0].as_f64(),
        Some(sampled_at),
        "a sample from before the change is still there"
    );
    let alerts = loaded_alerts(&web, prom_port);
    assert!(
        threshold(&alerts, "0.02") && !threshold(&alerts, "0.05"),
        "{alerts:?}"
    );
    let out = env.deploy(&["plan", "-f", &second, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // deploy status: what each task's sidecar reported, per server.
    let out = env.deploy(&["status", "-f", &second, "--format", "json"]);
    let status = json_of(&out);
    common::schema_check(&status).unwrap();
    let prom_files = status["config_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["family"] == "prom-task")
        .unwrap()
        .clone();
    let task = &prom_files["tasks"][0];
    assert_eq!(task["task"], "prom-task-1", "{prom_files}");
    assert_eq!(task["result"], "completed");
    assert_eq!(task["manifest_version"], prom_files["manifest_version"]);
    assert_eq!(task["reload_successful"]["prometheus"], 1.0);
    let text = common::stdout(&env.deploy(&["status", "-f", &second]));
    assert!(text.contains("prometheus reload ok"), "{text}");

    // A rule Prometheus refuses: the reload fails, apply says so and puts the last good set
    // back; Prometheus keeps the 0.02 rules, and so would a restarted task.
    let broken = templates_copy(dir, |t| t.replacen("expr:", "expr: sum(", 1));
    let out = env.deploy(&[
        "apply",
        "-f",
        &second,
        "--templates",
        &broken.to_string_lossy(),
        "--auto-approve",
        "--format",
        "json",
        "--wait-timeout",
        "120",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let report = json_of(&out);
    common::schema_check(&report).unwrap();
    let failed = report["reloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["family"] == "prom-task")
        .unwrap()
        .clone();
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(
        failed["reason"].as_str().unwrap().contains("prometheus"),
        "{failed}"
    );
    let restored = failed["restored_version"].as_str().unwrap().to_string();
    let (manifest, current) = s3::read_manifest(&aws, &bucket, "prom-task")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current, restored);
    let good = std::fs::read_to_string(prom_config.join("prometheus/rules/alerts.yml")).unwrap();
    assert_eq!(
        manifest.files["prometheus/rules/alerts.yml"].sha256,
        deploy::render::reload::sha256_hex(&good),
        "the current manifest names the last good rules, which are on the volume"
    );
    let alerts = loaded_alerts(&web, prom_port);
    assert!(threshold(&alerts, "0.02"), "{alerts:?}");
    assert_eq!(start_time(&web, prom_port), started_at);

    // A new revision (another image) with another threshold, then a rollback: the revision it
    // returns to brings back the files recorded with it (0.02), not the newest (0.03).
    let third = env.stack_copy("third.yaml", |t| {
        t.replace("error_ratio: 0.05", "error_ratio: 0.03")
            .replace("prom/prometheus:v2.53.4", "prom/prometheus:v2.53.5")
    });
    let out = env.deploy(&[
        "apply",
        "-f",
        &third,
        "--auto-approve",
        "--wait-timeout",
        "120",
    ]);
    common::assert_success(&out);
    wait_for(
        "the 0.03 rules",
        Duration::from_secs(60),
        &sidecar_log,
        || threshold(&loaded_alerts(&web, prom_port), "0.03"),
    );
    let out = env.deploy(&["rollback", "prometheus", "-f", &third, "--auto-approve"]);
    common::assert_success(&out);
    assert!(
        common::stderr(&out).contains("the config files of prom-task:1 are current again"),
        "{}",
        common::stderr(&out)
    );
    wait_for(
        "the 0.02 rules again",
        Duration::from_secs(60),
        &sidecar_log,
        || {
            let alerts = loaded_alerts(&web, prom_port);
            threshold(&alerts, "0.02") && !threshold(&alerts, "0.03")
        },
    );
}

/// The task definitions' sizes the README quotes are the ones `deploy validate` prints for the
/// reference stack (they dropped when the files moved to the config bucket).
#[test]
fn the_readme_quotes_the_sizes_validate_prints() {
    let root = common::repo_root();
    let out = Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args(["validate", "-f", "stacks/monitoring.yaml"])
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let sizes: Vec<&str> = printed
        .lines()
        .filter(|l| l.trim_start().starts_with("task definition "))
        .collect();
    assert_eq!(sizes.len(), 2, "{printed}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for line in sizes {
        assert!(
            readme.contains(line),
            "README.md should quote `deploy validate`'s line {line:?}"
        );
    }
}
