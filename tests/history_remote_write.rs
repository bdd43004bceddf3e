//! The `history:` section as the servers see it: the rendered prometheus.yml remote-writes,
//! signed with SigV4, and a real Prometheus started with it delivers its samples to a second
//! real Prometheus that receives remote writes (standing in for the workspace, which no local
//! server emulates; the receiver ignores the signature); Grafana's provisioned history data
//! source signs with SigV4 and queries the same workspace (no Grafana runs here: the file is
//! checked as a file).

mod common;

use common::prometheus::Server;
use common::render::{context_for, promtool, reference_stack, render_with, DNS_NAME};
use common::web::WebAuth;
use common::{free_port, http_request};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The URLs the templates see for the workspace (its address where its id will go).
const QUERY_URL: &str =
    "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/amp_workspace.history";

fn history_stack() -> Value {
    let mut stack = reference_stack();
    stack["history"] = json!({});
    stack
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn prometheus_config_remote_writes_signed_only_with_history_on() {
    let rendered = render_with("prometheus.yml", &context_for(&history_stack()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, &rendered).unwrap();
    let (ok, text) = promtool(&["check", "config"], &[file]);
    assert!(ok && text.contains("SUCCESS"), "{text}");

    let config = yaml(&rendered);
    assert_eq!(
        config["remote_write"],
        json!([{
            "url": format!("{QUERY_URL}/api/v1/remote_write"),
            "sigv4": {"region": "us-west-2"},
        }]),
        "{rendered}"
    );
    // Off (the reference stack): no remote write at all.
    let off = yaml(&render_with(
        "prometheus.yml",
        &context_for(&reference_stack()),
    ));
    assert!(off.get("remote_write").is_none(), "{off}");
}

#[test]
fn grafana_history_data_source_signs_and_queries_the_workspace_prometheus_writes_to() {
    let ctx = context_for(&history_stack());
    let sources = yaml(&render_with("grafana/datasources.yml", &ctx));
    let list = sources["datasources"].as_array().unwrap();
    let history: Vec<&Value> = list
        .iter()
        .filter(|d| d["name"] == "Prometheus history")
        .collect();
    assert_eq!(history.len(), 1, "{sources}");
    let history = history[0];
    assert_eq!(history["type"], "prometheus");
    assert_eq!(history["access"], "proxy");
    assert_eq!(history["url"], QUERY_URL);
    assert_eq!(
        history["jsonData"]["sigV4Auth"], true,
        "Grafana signs with its task role"
    );
    assert_eq!(history["jsonData"]["sigV4AuthType"], "default");
    assert_eq!(history["jsonData"]["sigV4Region"], "us-west-2");
    assert!(history.get("basicAuth").is_none() && history.get("secureJsonData").is_none());
    // Not the default, and a uid of its own (the dashboards reference uids).
    assert!(history.get("isDefault").is_none() || history["isDefault"] == false);
    let uids: Vec<String> = list.iter().map(|d| d["uid"].to_string()).collect();
    assert_eq!(
        uids.len(),
        uids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        "{uids:?}"
    );
    // The workspace Grafana queries is the one Prometheus writes to.
    let prom = yaml(&render_with("prometheus.yml", &ctx));
    let write_url = prom["remote_write"][0]["url"].as_str().unwrap();
    assert_eq!(
        write_url.strip_suffix("/api/v1/remote_write"),
        history["url"].as_str()
    );
    // Off: three data sources, none of them the history.
    let off = yaml(&render_with(
        "grafana/datasources.yml",
        &context_for(&reference_stack()),
    ));
    assert!(off["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != "Prometheus history"));
}

/// GET over plain HTTP on loopback: the body parsed as JSON (chunked or not).
fn get_json(port: u16, path: &str) -> Result<Value, String> {
    let (status, body) = http_request(port, "GET", path, b"").map_err(|e| e.to_string())?;
    let (start, end) = (body.find('{'), body.rfind('}'));
    match (status, start, end) {
        (200, Some(s), Some(e)) => serde_json::from_str(&body[s..=e]).map_err(|e| e.to_string()),
        _ => Err(format!("{status}: {body}")),
    }
}

fn wait_until(what: &str, deadline: Duration, mut ready: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match ready() {
            Ok(()) => return,
            Err(e) if started.elapsed() > deadline => panic!("{what} within {deadline:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

#[test]
fn remote_write_delivers_samples_to_a_receiving_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context_for(&history_stack());

    // The receiver: a second Prometheus accepting remote writes, plain HTTP on loopback.
    let receiver_dir = dir.path().join("receiver");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let receiver_config = receiver_dir.join("prometheus.yml");
    std::fs::write(&receiver_config, "global:\n  scrape_interval: 1h\n").unwrap();
    let receiver_port = free_port();
    let mut receiver = Server::start(
        &receiver_dir,
        "receiver",
        &[
            format!("--config.file={}", receiver_config.display()),
            format!("--web.listen-address=127.0.0.1:{receiver_port}"),
            "--web.enable-remote-write-receiver".into(),
        ],
        &[],
    );
    wait_until("the receiver is ready", Duration::from_secs(30), || {
        if let Some(e) = receiver.exited() {
            panic!("the receiver exited {e}");
        }
        http_request(receiver_port, "GET", "/-/ready", b"")
            .map_err(|e| e.to_string())
            .and_then(|(s, b)| if s == 200 { Ok(()) } else { Err(b) })
    });

    // The backend: tests/app (Express + prom-client, the reference stack's metric names) on
    // loopback, with a fixed spread of requests (routes, errors, an unmatched path).
    let app_dir = common::repo_root().join("tests/app");
    for module in ["express", "prom-client"] {
        assert!(
            app_dir.join("node_modules").join(module).is_dir(),
            "tests/app/node_modules/{module} is missing: run `bash scripts/setup.sh` (it runs \
             `npm ci` in tests/app; needs node and npm: apt-get install nodejs npm)"
        );
    }
    let app_port = free_port();
    let app_log = dir.path().join("app.log");
    let mut node = std::process::Command::new("node");
    node.arg("server.js")
        .current_dir(&app_dir)
        .env("PORT", app_port.to_string())
        .env("HOST", "127.0.0.1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&app_log).unwrap());
    let _app = Server::spawn(node, app_log);
    wait_until("the app answers", Duration::from_secs(30), || {
        http_request(app_port, "GET", "/metrics", b"")
            .map_err(|e| e.to_string())
            .map(|_| ())
    });
    for i in 0..20 {
        for path in [format!("/api/users/{i}"), format!("/api/orders/{i}")] {
            http_request(app_port, "GET", &path, b"").unwrap();
        }
    }
    for path in [
        "/api/orders/1?fail=1",
        "/api/orders/2?status=503",
        "/no/such/page",
        "/api/slow?ms=20",
    ] {
        http_request(app_port, "GET", path, b"").unwrap();
    }

    // The sender: the rendered config as the task gets it, with its web config and secrets
    // (it scrapes itself over HTTPS with basic auth), the workspace URL pointed at the
    // receiver and its sigv4 block kept: it signs with the credentials in its environment.
    let sender_dir = dir.path().join("sender");
    std::fs::create_dir_all(&sender_dir).unwrap();
    let web = WebAuth::install(&sender_dir, &ctx);
    let sender_port = free_port();
    let rendered = render_with("prometheus.yml", &ctx);
    let workspace_url = format!("{QUERY_URL}/api/v1/remote_write");
    assert_eq!(rendered.matches(&workspace_url).count(), 1, "{rendered}");
    assert_eq!(rendered.matches("localhost:9090").count(), 1, "{rendered}");
    let config = rendered
        .replace(
            &workspace_url,
            &format!("http://127.0.0.1:{receiver_port}/api/v1/write"),
        )
        .replace("localhost:9090", &format!("localhost:{sender_port}"))
        .replace(
            &format!("{DNS_NAME}:3000"),
            &format!("127.0.0.1:{app_port}"),
        );
    // Its rules, where rule_files finds them (rules/*.yml beside the config).
    std::fs::create_dir_all(sender_dir.join("rules")).unwrap();
    for rules in ["rules/recording.yml", "rules/alerts.yml"] {
        std::fs::write(sender_dir.join(rules), render_with(rules, &ctx)).unwrap();
    }
    assert_eq!(
        yaml(&config)["remote_write"][0]["sigv4"],
        json!({"region": "us-west-2"}),
        "the sender signs"
    );
    let sender_config = sender_dir.join("prometheus.yml");
    std::fs::write(&sender_config, &config).unwrap();
    let mut sender = Server::start(
        &sender_dir,
        "sender",
        &[
            format!("--config.file={}", sender_config.display()),
            format!("--web.config.file={}", sender_dir.join("web.yml").display()),
            format!("--web.listen-address=127.0.0.1:{sender_port}"),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLETESTONLY"),
            ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-test-only"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    wait_until("the sender is ready", Duration::from_secs(30), || {
        if let Some(e) = sender.exited() {
            panic!("the sender exited {e}");
        }
        match web.get(sender_port, "/-/ready") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // The sender's own `up`, scraped by it and remote-written, arrives at the receiver with
    // the stack's external labels.
    let query = "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%2Cstack%3D%22monitoring%22%2Cenvironment%3D%22production%22%7D";
    wait_until(
        "the sender's samples arrive at the receiver",
        Duration::from_secs(120),
        || {
            if let Some(e) = sender.exited() {
                panic!("the sender exited {e}");
            }
            let answer = get_json(receiver_port, query)?;
            let result = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            match result.first() {
                Some(series) if series["value"][1] == "1" => Ok(()),
                _ => Err(format!(
                    "{answer}\nsender log:\n{}",
                    common::tail(&sender.log, 15)
                )),
            }
        },
    );
    // What the workspace would ingest: every series the task writes (scrapes, `up` and the
    // scrape metadata series, rules' results), once the backend's and the rules' samples are
    // in and every target was scraped twice more. The README's cost section states it.
    wait_until(
        "the backend's and the recording rules' samples arrive",
        Duration::from_secs(120),
        || {
            let q = "/api/v1/query?query=count(http_requests_total)%20and%20count(%7B__name__%3D~%22.%2B%3A.%2B%22%7D)";
            let answer = get_json(receiver_port, q)?;
            match answer["data"]["result"].as_array().map(Vec::len) {
                Some(1) => Ok(()),
                _ => Err(format!("{answer}")),
            }
        },
    );
    std::thread::sleep(Duration::from_secs(35));
    let series = |q: &str| -> u64 {
        let answer = get_json(receiver_port, q).unwrap();
        answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{answer}"))
    };
    let total = series("/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)");
    let backend = series("/api/v1/query?query=count(%7Bjob%3D%22backend%22%7D)");
    let interval = 15.0;
    eprintln!(
        "remote-written series: {total} (backend job {backend}); at a {interval} s interval \
         that is {:.0} samples a day, {:.1} million a month (30 days)",
        total as f64 * 86_400.0 / interval,
        total as f64 * 2_592_000.0 / interval / 1e6
    );
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let stated: u64 = readme
        .split("the reference stack writes about ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .expect("README states the series count as `the reference stack writes about N series`");
    assert!(
        (total as f64 - stated as f64).abs() <= stated as f64 * 0.25,
        "README says {stated} series, measured {total}: update README \"History that outlives a task\""
    );

    // Nothing it sent was refused.
    let failed = web
        .get(
            sender_port,
            "/api/v1/query?query=sum(prometheus_remote_storage_samples_failed_total)",
        )
        .unwrap();
    let failed: Value = serde_json::from_str(&failed.1).unwrap();
    assert_eq!(failed["data"]["result"][0]["value"][1], "0", "{failed}");
}
