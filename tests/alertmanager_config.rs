//! The rendered Alertmanager config (templates/alertmanager.yml) passes amtool, routes every
//! severity as its header documents for any subset of receivers, and, loaded into a real
//! Alertmanager pointed at loopback sinks (Slack, PagerDuty, SMTP, heartbeat), delivers every
//! route, inhibits the matching warning and never logs a credential. The real Alertmanager
//! runs with the stack's web config (HTTPS and basic auth, real generated credentials), and a
//! real Prometheus with the rendered prometheus.yml delivers its alerts to it over TLS with
//! basic auth, as the task does.

mod common;

use common::render::{context, context_for, reference_stack, render, render_with};
use common::web::{plain_http_refused, WebAuth};
use deploy::render::{check_yaml, Templates};
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const TEMPLATE: &str = "alertmanager.yml";
/// Where the container keeps its config and the secret files the start script writes.
const PREFIX: &str = "/etc/alertmanager/";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const INSTALL: &str = "apt-get install prometheus-alertmanager (Debian/Ubuntu)";

// ---------------------------------------------------------------------------------------------
// Rendering and amtool

/// The reference stack with `vars.alerting` replaced.
fn stack_with_alerting(alerting: Value) -> Value {
    let mut stack = reference_stack();
    stack["vars"]["alerting"] = alerting;
    stack
}

fn render_alerting(alerting: Value) -> String {
    let out = render_with(TEMPLATE, &context_for(&stack_with_alerting(alerting)));
    check_yaml("templates/alertmanager.yml", &out).unwrap_or_else(|e| panic!("{e}"));
    out
}

fn reference_alerting() -> Value {
    reference_stack()["vars"]["alerting"].clone()
}

/// The secret files the container's start script writes (no trailing newline, as
/// `printf '%s'` writes a Secrets Manager value).
struct Secrets {
    slack_webhook_url: String,
    pagerduty_routing_key: String,
    smtp_password: String,
}

impl Secrets {
    fn placeholders() -> Secrets {
        Secrets {
            slack_webhook_url: "https://hooks.slack.invalid/services/T0/B0/placeholder".into(),
            pagerduty_routing_key: "placeholder-routing-key".into(),
            smtp_password: "placeholder-password".into(),
        }
    }

    fn values(&self) -> [(&'static str, &str); 3] {
        [
            ("slack_webhook_url", &self.slack_webhook_url),
            ("pagerduty_routing_key", &self.pagerduty_routing_key),
            ("smtp_password", &self.smtp_password),
        ]
    }
}

/// The rendered config as the test runs it: `/etc/alertmanager/` moved into a temp dir that
/// holds the secret files.
struct Installed {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// Writes `secrets` under DIR/secrets/ and the config to DIR/alertmanager.yml with the
/// `/etc/alertmanager/` prefix rewritten to DIR/, insisting that this is the only change.
fn install(rendered: &str, secrets: &Secrets) -> Installed {
    let dir = tempfile::Builder::new()
        .prefix("alertmanager-")
        .tempdir()
        .unwrap();
    let root = format!("{}/", dir.path().display());
    fs::create_dir(dir.path().join("secrets")).unwrap();
    for (name, value) in secrets.values() {
        fs::write(dir.path().join("secrets").join(name), value).unwrap();
    }
    assert!(
        !rendered.contains(&root),
        "the temp dir is already in the config"
    );
    let copy = rendered.replace(PREFIX, &root);
    // The rewrite is the only change: undoing it gives the rendered file back, and every
    // changed line differs by the prefix alone.
    assert_eq!(copy.replace(&root, PREFIX), rendered);
    assert_eq!(copy.lines().count(), rendered.lines().count());
    for (ours, theirs) in copy.lines().zip(rendered.lines()) {
        if ours != theirs {
            assert_eq!(ours.replacen(&root, PREFIX, 1), theirs);
        }
    }
    let config = dir.path().join("alertmanager.yml");
    fs::write(&config, copy).unwrap();
    Installed { dir, config }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs amtool; amtool missing is a failure that says how to install it.
fn amtool(args: &[&str]) -> std::process::Output {
    match Command::new("amtool").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("amtool is not installed, so the rendered config cannot be checked: {INSTALL}")
        }
        Err(e) => panic!("cannot run amtool: {e}"),
    }
}

fn amtool_check_config(config: &Path) {
    let out = amtool(&["check-config", &config.display().to_string()]);
    let text = output_text(&out);
    assert!(out.status.success(), "amtool check-config failed:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

/// Checks `rendered` with amtool (secrets as placeholders); returns the installed copy.
fn checked(rendered: &str) -> Installed {
    let installed = install(rendered, &Secrets::placeholders());
    amtool_check_config(&installed.config);
    installed
}

/// The receivers amtool routes `labels` to, in routing-tree order; with `--verify.receivers`
/// so amtool itself also fails on a difference.
#[track_caller]
fn assert_routes(config: &Path, labels: &[&str], expected: &[&str]) {
    let verify = format!("--verify.receivers={}", expected.join(","));
    let mut args = vec![
        "config".to_string(),
        "routes".into(),
        "test".into(),
        format!("--config.file={}", config.display()),
        verify,
    ];
    args.extend(labels.iter().map(|l| l.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = amtool(&args);
    let text = output_text(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = stdout.trim().split(',').collect();
    assert_eq!(got, expected, "{labels:?} routes to:\n{text}");
    assert!(out.status.success(), "{labels:?}: {text}");
}

/// The integrations (`slack_configs`, …) of receiver `name` in the rendered config.
fn integrations(config: &Value, name: &str) -> Vec<String> {
    let receiver = config["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no receiver {name}"));
    let mut kinds: Vec<String> = receiver
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "name")
        .cloned()
        .collect();
    kinds.sort();
    kinds
}

fn receiver_names(config: &Value) -> Vec<String> {
    let mut names: Vec<String> = config["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// Offline checks

#[test]
fn reference_config_passes_amtool_and_names_credentials_by_file_only() {
    let rendered = render(TEMPLATE);
    checked(&rendered);
    assert!(rendered.starts_with("# Rendered by deploy for stack \"monitoring\""));

    let config: Value = serde_saphyr::from_str(&rendered).unwrap();
    let route = &config["route"];
    assert_eq!(route["group_by"], json!(["alertname", "job"]));
    assert_eq!(route["group_wait"], "30s");
    assert_eq!(route["group_interval"], "5m");
    assert_eq!(route["repeat_interval"], "4h");
    let watchdog = &route["routes"][0];
    assert_eq!(watchdog["matchers"], json!(["alertname=\"Watchdog\""]));
    assert_eq!(watchdog["repeat_interval"], "1m");
    assert_eq!(watchdog["group_interval"], "1m");
    assert_eq!(
        config["inhibit_rules"],
        json!([{
            "source_matchers": ["severity=\"critical\""],
            "target_matchers": ["severity=\"warning\""],
            "equal": ["job"],
        }])
    );

    let receiver = |name: &str| {
        config["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no receiver {name} in\n{rendered}"))
            .clone()
    };
    let team = receiver("slack-and-email");
    let slack = &team["slack_configs"][0];
    assert_eq!(
        slack["api_url_file"],
        "/etc/alertmanager/secrets/slack_webhook_url"
    );
    assert_eq!(slack["channel"], "#alerts");
    let email = &team["email_configs"][0];
    assert_eq!(email["to"], "oncall@example.com");
    assert_eq!(email["smarthost"], "smtp.example.com:587");
    assert_eq!(email["auth_username"], "alertmanager");
    assert_eq!(
        email["auth_password_file"],
        "/etc/alertmanager/secrets/smtp_password"
    );
    assert_eq!(email["require_tls"], true, "production mail goes over TLS");
    assert!(
        rendered.contains("require_tls: true\n"),
        "booleans as Go's YAML writes them"
    );
    let pagerduty = &receiver("pagerduty")["pagerduty_configs"][0];
    assert_eq!(
        pagerduty["routing_key_file"],
        "/etc/alertmanager/secrets/pagerduty_routing_key"
    );
    assert!(
        pagerduty.get("url").is_none(),
        "production leaves PagerDuty's endpoint to Alertmanager's default"
    );
    assert_eq!(
        receiver("heartbeat")["webhook_configs"][0]["url"],
        "https://heartbeat.example.com/ping/monitoring"
    );
    // No inline credential of any kind.
    for key in [
        "api_url:",
        "routing_key:",
        "service_key",
        "auth_password:",
        "auth_secret",
        "smtp_auth_password",
    ] {
        assert!(!rendered.contains(key), "{key} in\n{rendered}");
    }
}

#[test]
fn reference_config_routes_each_severity_where_documented() {
    let installed = checked(&render(TEMPLATE));
    let config = &installed.config;
    let team = "slack-and-email";
    assert_routes(
        config,
        &["alertname=BackendDown", "severity=critical", "job=backend"],
        &["pagerduty", team],
    );
    assert_routes(
        config,
        &["alertname=HighLatency", "severity=warning", "job=backend"],
        &[team],
    );
    // Watchdog goes to the heartbeat only, whatever its severity says.
    assert_routes(
        config,
        &["alertname=Watchdog", "severity=none"],
        &["heartbeat"],
    );
    assert_routes(
        config,
        &["alertname=Watchdog", "severity=critical"],
        &["heartbeat"],
    );
    // An alert without a severity still reaches someone.
    assert_routes(config, &["alertname=Unlabelled"], &[team]);
}

#[test]
fn every_receiver_subset_renders_passes_amtool_and_routes_as_documented() {
    let reference = reference_alerting();
    let pick = |keys: &[&str]| -> Value {
        let mut a = serde_json::Map::new();
        for k in keys {
            a.insert(k.to_string(), reference[*k].clone());
        }
        Value::Object(a)
    };
    struct Case {
        keys: &'static [&'static str],
        team: &'static str,
        team_integrations: &'static [&'static str],
        critical: &'static [&'static str],
        watchdog: &'static str,
    }
    let cases = [
        Case {
            keys: &["email"],
            team: "email",
            team_integrations: &["email_configs"],
            critical: &["email"],
            watchdog: "blackhole",
        },
        Case {
            keys: &["slack", "pagerduty"],
            team: "slack",
            team_integrations: &["slack_configs"],
            critical: &["pagerduty", "slack"],
            watchdog: "blackhole",
        },
        Case {
            keys: &["email", "pagerduty", "heartbeat"],
            team: "email",
            team_integrations: &["email_configs"],
            critical: &["pagerduty", "email"],
            watchdog: "heartbeat",
        },
        Case {
            keys: &["email", "slack", "pagerduty", "heartbeat"],
            team: "slack-and-email",
            team_integrations: &["email_configs", "slack_configs"],
            critical: &["pagerduty", "slack-and-email"],
            watchdog: "heartbeat",
        },
    ];
    for case in cases {
        let rendered = render_alerting(pick(case.keys));
        let installed = checked(&rendered);
        let config: Value = serde_saphyr::from_str(&rendered).unwrap();
        assert_eq!(
            integrations(&config, case.team),
            case.team_integrations,
            "{:?}",
            case.keys
        );
        // Exactly the receivers configured, plus the black hole for Watchdog.
        let mut expected: Vec<String> = vec!["blackhole".into(), case.team.into()];
        for k in ["pagerduty", "heartbeat"] {
            if case.keys.contains(&k) {
                expected.push(k.into());
            }
        }
        expected.sort();
        assert_eq!(receiver_names(&config), expected, "{:?}", case.keys);
        assert!(
            integrations(&config, "blackhole").is_empty(),
            "the black hole sends nothing"
        );

        let file = &installed.config;
        assert_routes(
            file,
            &["alertname=BackendDown", "severity=critical", "job=backend"],
            case.critical,
        );
        assert_routes(
            file,
            &["alertname=HighLatency", "severity=warning", "job=backend"],
            &[case.team],
        );
        assert_routes(
            file,
            &["alertname=Watchdog", "severity=none"],
            &[case.watchdog],
        );
    }
}

#[test]
fn no_chat_and_no_email_is_a_render_error_not_lost_warnings() {
    let stack = stack_with_alerting(json!({"pagerduty": {}}));
    let err = Templates::new(common::repo_root().join("templates"))
        .render(TEMPLATE, &context_for(&stack))
        .unwrap_err();
    assert!(err.to_string().contains("alerting.email`"), "{err}");
    assert!(
        err.template.ends_with("templates/alertmanager.yml"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Loopback sinks

/// One HTTP request a sink received.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    body: String,
}

/// What a sink keeps of one exchange, searchable by its text.
trait Recorded: Clone + Send + 'static {
    fn text(&self) -> &str;
}

impl Recorded for Request {
    fn text(&self) -> &str {
        &self.body
    }
}

impl Recorded for Mail {
    fn text(&self) -> &str {
        &self.data
    }
}

/// A server on a loopback port that runs `session` for each connection on its own thread
/// and keeps what the sessions record.
struct Sink<T> {
    port: u16,
    received: Arc<Mutex<Vec<T>>>,
}

impl<T: Recorded> Sink<T> {
    fn start(session: impl Fn(TcpStream, &Mutex<Vec<T>>) + Clone + Send + 'static) -> Sink<T> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, session) = (log.clone(), session.clone());
                thread::spawn(move || session(stream, &log));
            }
        });
        Sink { port, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn all(&self) -> Vec<T> {
        self.received.lock().unwrap().clone()
    }

    /// What was received that mentions `needle`.
    fn mentioning(&self, needle: &str) -> Vec<T> {
        self.all()
            .into_iter()
            .filter(|r| r.text().contains(needle))
            .collect()
    }
}

/// An HTTP/1.1 sink that records every request and answers each with a fixed response (one
/// request per connection: it answers `Connection: close`).
fn http_sink(
    status: &'static str,
    content_type: &'static str,
    body: &'static str,
) -> Sink<Request> {
    Sink::start(move |stream, log| {
        if let Some(request) = read_http_request(&stream) {
            log.lock().unwrap().push(request);
        }
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}

fn read_http_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request {
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One message the SMTP sink accepted.
#[derive(Clone, Debug)]
struct Mail {
    /// The decoded `AUTH PLAIN` response (`\0user\0password`), if the client authenticated.
    auth: Option<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

/// Just enough SMTP for Alertmanager's email notifier: EHLO/HELO, AUTH PLAIN, MAIL, RCPT,
/// DATA, RSET, NOOP, QUIT. No STARTTLS is offered (the test's vars set `require_tls: false`).
fn smtp_sink() -> Sink<Mail> {
    Sink::start(|stream, log| {
        let _ = smtp_session(stream, log);
    })
}

fn smtp_session(stream: TcpStream, log: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let mut auth = None;
    let mut mail = Mail {
        auth: None,
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = line["AUTH PLAIN".len()..].trim();
            auth = Some(String::from_utf8_lossy(&base64_decode(encoded)).into_owned());
            b"235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = address(&line["MAIL FROM:".len()..]);
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(address(&line["RCPT TO:".len()..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            mail.data = data;
            mail.auth = auth.clone();
            log.lock().unwrap().push(mail.clone());
            mail.to.clear();
            b"250 OK: queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        out.write_all(reply)?;
    }
}

/// `<a@b>` from a MAIL/RCPT argument, without ESMTP parameters such as `BODY=8BITMIME`.
fn address(arg: &str) -> String {
    arg.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base64: {text:?}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A real Alertmanager

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port()
}

/// `/usr/bin/prometheus-alertmanager` on a loopback port, clustering off, killed on drop;
/// HTTPS with basic auth through the rendered web.yml, installed beside `config` with real
/// credentials.
struct Alertmanager {
    child: Child,
    port: u16,
    log: PathBuf,
    web: WebAuth,
}

impl Alertmanager {
    fn start(config: &Path, dir: &Path) -> Alertmanager {
        let config_dir = config.parent().unwrap();
        let web = WebAuth::install(config_dir, &context());
        assert!(
            Path::new(ALERTMANAGER).is_file(),
            "{ALERTMANAGER} is missing, so the rendered config cannot be run: {INSTALL}"
        );
        let log = dir.join("alertmanager.log");
        // The free port is only free until someone else takes it: retry a clash.
        for _attempt in 0..3 {
            let port = free_port();
            let file = fs::File::create(&log).unwrap();
            let mut child = Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--web.config.file={}",
                    config_dir.join("web.yml").display()
                ))
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug")
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {ALERTMANAGER}: {e}"));
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!(
                        "alertmanager on port {port} exited ({status}):\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                if let Ok((200, _)) = web.get(port, "/-/ready") {
                    return Alertmanager {
                        child,
                        port,
                        log,
                        web,
                    };
                }
                if started.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "alertmanager not ready on port {port} after 60s:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("alertmanager failed to start three times");
    }

    fn post_alerts(&self, alerts: Value) {
        let (status, body) = self
            .web
            .post_json(self.port, "/api/v2/alerts", &alerts.to_string())
            .expect("POST /api/v2/alerts");
        assert_eq!(status, 200, "POST /api/v2/alerts: {body}");
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .web
            .get(self.port, path)
            .expect("GET from alertmanager");
        assert_eq!(status, 200, "GET {path}: {body}");
        let body = dechunk(&body);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- alertmanager log ---\n{}", self.log());
        }
    }
}

/// The body of a `Transfer-Encoding: chunked` response (the shared client returns it raw);
/// any other body unchanged.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if size == 0 {
            return out;
        }
        match tail.get(..size) {
            Some(chunk) => out.push_str(chunk),
            None => return body.to_string(),
        }
        rest = tail[size..].trim_start_matches("\r\n");
    }
    body.to_string()
}

/// Polls `done` every 100 ms until it holds; fails after `timeout` naming `what`.
#[track_caller]
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn alert(labels: Value) -> Value {
    json!({
        "labels": labels,
        "annotations": {"summary": "raised by tests/alertmanager_config.rs"},
    })
}

#[test]
fn real_alertmanager_delivers_every_route_and_inhibits_the_matching_warning() {
    let slack = http_sink("200 OK", "text/plain", "ok");
    let pagerduty = http_sink(
        "202 Accepted",
        "application/json",
        r#"{"status":"success","message":"Event processed","dedup_key":"sink"}"#,
    );
    let heartbeat = http_sink("200 OK", "text/plain", "OK");
    let smtp = smtp_sink();

    // A unique piece in every secret, so a leak into the log can be searched for.
    let nonce = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let slack_path = format!("/services/T0/B0/slacktoken{nonce}");
    let secrets = Secrets {
        slack_webhook_url: slack.url(&slack_path),
        pagerduty_routing_key: format!("pdkey{nonce}"),
        smtp_password: format!("smtppass{nonce}"),
    };

    // The reference receivers, pointed at the sinks, with short timing knobs.
    let mut alerting = reference_alerting();
    alerting["email"]["smarthost"] = json!(format!("127.0.0.1:{}", smtp.port));
    alerting["email"]["require_tls"] = json!(false);
    alerting["pagerduty"]["url"] = json!(pagerduty.url("/v2/enqueue"));
    alerting["heartbeat"]["url"] = json!(heartbeat.url("/ping/monitoring"));
    alerting["heartbeat"]["interval"] = json!("1s");
    alerting["group_wait"] = json!("1s");
    alerting["group_interval"] = json!("1s");
    alerting["repeat_interval"] = json!("1h");
    let rendered = render_alerting(alerting);
    let installed = install(&rendered, &secrets);
    amtool_check_config(&installed.config);
    let am = Alertmanager::start(&installed.config, installed.dir.path());
    let patience = Duration::from_secs(60);
    // Only HTTPS with basic auth gets an answer.
    let anonymous = am.web.get_anonymous(am.port, "/api/v2/status").unwrap();
    assert_eq!(
        anonymous.0, 401,
        "an unauthenticated request: {anonymous:?}"
    );
    assert!(plain_http_refused(am.port), "plain HTTP got an API answer");

    // A critical and the dead man's switch.
    am.post_alerts(json!([
        alert(json!({"alertname": "BackendDown", "severity": "critical", "job": "backend"})),
        alert(json!({"alertname": "Watchdog", "severity": "none"})),
    ]));
    wait_for("BackendDown at PagerDuty", patience, || {
        !pagerduty.mentioning("BackendDown").is_empty()
    });
    wait_for("BackendDown in Slack", patience, || {
        !slack.mentioning("BackendDown").is_empty()
    });
    wait_for("BackendDown by email", patience, || {
        !smtp.mentioning("BackendDown").is_empty()
    });
    // Watchdog repeats on the heartbeat's short interval.
    wait_for("two Watchdog heartbeats", patience, || {
        heartbeat.mentioning("Watchdog").len() >= 2
    });

    // A warning of the paging job (inhibited) and one of another job (delivered).
    am.post_alerts(json!([
        alert(json!({"alertname": "LatencyHigh", "severity": "warning", "job": "backend"})),
        alert(json!({"alertname": "QueueBacklog", "severity": "warning", "job": "worker"})),
    ]));
    wait_for("QueueBacklog in Slack", patience, || {
        !slack.mentioning("QueueBacklog").is_empty()
    });
    wait_for("QueueBacklog by email", patience, || {
        !smtp.mentioning("QueueBacklog").is_empty()
    });
    // Alertmanager itself says the warning is muted by the critical…
    wait_for("LatencyHigh marked inhibited", patience, || {
        let alerts = am.get("/api/v2/alerts?filter=alertname%3D%22LatencyHigh%22");
        alerts.as_array().is_some_and(|a| {
            a.len() == 1
                && a[0]["status"]["state"] == "suppressed"
                && !a[0]["status"]["inhibitedBy"]
                    .as_array()
                    .unwrap_or(&vec![])
                    .is_empty()
        })
    });
    // …and it reaches no sink, several group intervals after its sibling was delivered.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(8) {
        assert!(
            slack.mentioning("LatencyHigh").is_empty(),
            "inhibited warning in Slack"
        );
        assert!(
            smtp.mentioning("LatencyHigh").is_empty(),
            "inhibited warning mailed"
        );
        assert!(
            pagerduty.mentioning("LatencyHigh").is_empty(),
            "inhibited warning paged"
        );
        assert!(heartbeat.mentioning("LatencyHigh").is_empty());
        thread::sleep(Duration::from_millis(200));
    }

    // Nothing went where it should not.
    assert!(
        pagerduty.mentioning("QueueBacklog").is_empty(),
        "a warning paged"
    );
    for (sink, name) in [(&pagerduty, "PagerDuty"), (&slack, "Slack")] {
        assert!(sink.mentioning("Watchdog").is_empty(), "Watchdog in {name}");
    }
    assert!(smtp.mentioning("Watchdog").is_empty(), "Watchdog mailed");
    assert!(heartbeat.mentioning("BackendDown").is_empty());
    assert!(heartbeat.mentioning("QueueBacklog").is_empty());

    // Payloads: each carries the alertname and the credential from its file.
    let page: Value = serde_json::from_str(&pagerduty.mentioning("BackendDown")[0].body).unwrap();
    assert_eq!(page["routing_key"], secrets.pagerduty_routing_key.as_str());
    assert_eq!(page["event_action"], "trigger");
    assert_eq!(page["payload"]["severity"], "critical");
    assert!(
        page["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("BackendDown"),
        "{page}"
    );
    assert_eq!(pagerduty.all()[0].path, "/v2/enqueue");

    for request in slack.all() {
        assert_eq!(
            request.path, slack_path,
            "the webhook URL comes from its file"
        );
    }
    let chat: Value = serde_json::from_str(&slack.mentioning("QueueBacklog")[0].body).unwrap();
    assert_eq!(chat["channel"], "#alerts");
    assert!(chat["attachments"][0]["title"]
        .as_str()
        .unwrap()
        .contains("QueueBacklog"));

    let mail = &smtp.mentioning("BackendDown")[0];
    assert_eq!(
        mail.auth.as_deref(),
        Some(format!("\0alertmanager\0{}", secrets.smtp_password).as_str()),
        "AUTH PLAIN with the password from its file"
    );
    assert_eq!(mail.from, "<alertmanager@example.com>");
    assert_eq!(mail.to, ["<oncall@example.com>"]);
    assert!(
        mail.data.contains("Subject: [FIRING:1] BackendDown"),
        "{}",
        mail.data
    );

    let beat: Value = serde_json::from_str(&heartbeat.all()[0].body).unwrap();
    assert_eq!(beat["alerts"][0]["labels"]["alertname"], "Watchdog");
    assert_eq!(heartbeat.all()[0].path, "/ping/monitoring");

    // No credential in Alertmanager's (debug) log or in the config it serves.
    let log = am.log();
    assert!(
        log.contains("Completed loading of configuration file"),
        "{log}"
    );
    let status = am.get("/api/v2/status").to_string();
    assert!(status.contains("pagerduty_routing_key"), "{status}");
    for (name, value) in secrets.values() {
        let piece = value.rsplit('/').next().unwrap();
        assert!(
            !log.contains(piece),
            "{name} in the alertmanager log:\n{log}"
        );
        assert!(!status.contains(piece), "{name} in /api/v2/status");
    }
}

/// A real Prometheus (2.42) with the rendered prometheus.yml and rules sends the always-firing
/// Watchdog to the real Alertmanager through the rendered `alerting:` block: HTTPS, the
/// certificate as CA, basic auth from the password file; only the port moves.
#[test]
fn real_prometheus_delivers_alerts_to_alertmanager_over_tls_with_basic_auth() {
    let prometheus = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("prometheus is not installed: apt-get install prometheus"));
    let installed = checked(&render_alerting(reference_alerting()));
    let am = Alertmanager::start(&installed.config, installed.dir.path());

    // prometheus.yml and its rules beside alertmanager.yml, so its relative secrets/ paths
    // find the credentials the Alertmanager was given (as in the task, where both
    // containers get the same secrets).
    let dir = installed.config.parent().unwrap();
    let ctx = context();
    let rendered = render_with("prometheus.yml", &ctx);
    assert_eq!(rendered.matches("localhost:9093").count(), 1, "{rendered}");
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        rendered.replace("localhost:9093", &format!("localhost:{}", am.port)),
    )
    .unwrap();
    fs::create_dir_all(dir.join("rules")).unwrap();
    for name in ["rules/recording.yml", "rules/alerts.yml"] {
        fs::write(dir.join(name), render_with(name, &ctx)).unwrap();
    }
    let log = dir.join("prometheus.log");
    let mut child = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!(
            "--web.config.file={}",
            dir.join("web.yml").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", prometheus.display()));
    let started = Instant::now();
    let delivered = loop {
        let alerts = am.get("/api/v2/alerts");
        if alerts
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["labels"]["alertname"] == "Watchdog"))
        {
            break true;
        }
        if started.elapsed() > Duration::from_secs(90) || matches!(child.try_wait(), Ok(Some(_))) {
            break false;
        }
        thread::sleep(Duration::from_secs(1));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        delivered,
        "Prometheus's Watchdog never reached Alertmanager:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
}
