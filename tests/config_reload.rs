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
    let log = File::create(dir.join("sidecar.log")).unwrap();
    Running(
        Command::new("busybox")
            .arg("sh")
            .arg(&script)
            .envs(cli_env(moto))
            .env("PATH", path)
            .env("TMPDIR", dir.join("sidecar-tmp"))
            .env("CONFIG_BUCKET", BUCKET)
            .env(
                "CONFIG_MANIFEST",
                deploy::render::reload::manifest_key(FAMILY),
            )
            .env(
                "CONFIG_PREFIX",
                deploy::render::reload::files_prefix(FAMILY),
            )
            .env("CONFIG_DIR", dir.join("config"))
            .env("POLL_SECONDS", "1")
            .env("RELOAD_TARGETS", targets)
            .env("RELOAD_USER", common::web::USER)
            .env("RELOAD_PASSWORD", &web.password)
            .env("RELOAD_CA_CERT", std::fs::read_to_string(&web.ca).unwrap())
            .env("TASK_ID", "task-0123")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("busybox sh is missing: apt-get install busybox"),
    )
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
    s3::create_config_bucket(&aws, &name, &policy, &tags)
        .await
        .unwrap();
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
