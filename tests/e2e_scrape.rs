// End-to-end proof that the dashboards show real data: the instrumented test app (tests/app)
// runs with NON-default metric and label names, the stack's own rendered prometheus.yml (only
// the backend target moved to the app) scrapes it with real Prometheus, and every Prometheus
// query of every dashboard panel and variable is run through the HTTP API and must return
// series carrying the labels its panel shows. The stack's rule files must load: every
// recording rule must produce series, and BackendHighErrorRatio and BackendHighLatencyP99 (by
// those names) must fire.
//
// Prometheus runs with the stack's rendered web config and real generated credentials (the
// functions `deploy apply` generates them with): it serves only HTTPS with basic auth, every
// request here verifies its certificate and authenticates, and the rendered self-scrape job
// (HTTPS, basic auth from the password file, the certificate as CA) must report `up == 1`.
//
// When is a result "real"? (the rule this test enforces)
//   1. The query must contain at least one selector of a metric Prometheus has scraped, and
//      every such selector (with its label matchers, variables filled in) must itself select
//      series. So `vector(1)`, `0`, or a misspelt metric/label never pass.
//   2. The query must return at least one series.
//   3. Each series must carry, with a non-empty value: the labels of the query's outermost
//      `by (…)` (less `le` under histogram_quantile), every label its legend shows
//      (`{{label}}`), and `instance` when the query does not aggregate. A series without any
//      label is thus accepted only for a total aggregate (`sum(…)`, a quantile of `sum by
//      (le)`), whose inputs rule 1 has already proven real.
//   4. Where a series carries the route label while $route is one route, it is that route.

mod common;

use common::render::{context_for, reference_stack, render_with, DNS_NAME};
use common::web::{plain_http_refused, WebAuth};
use common::{free_port, http_request, tail};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The names the app and the stack copy use: none is prom-client's or the stack's default.
const REQUESTS_TOTAL: &str = "shop_http_requests_total";
const DURATION_SECONDS: &str = "shop_http_request_duration_seconds";
const METHOD_LABEL: &str = "verb";
const ROUTE_LABEL: &str = "path";
const STATUS_LABEL: &str = "code";

/// The route that also answers 5xx: the specific $route value the queries are run with.
const ERROR_ROUTE: &str = "/api/orders/:id";

/// Grafana's values for its builtins: $__rate_interval = max(4 × scrape interval,
/// $__interval + scrape interval) with the data source's 15 s scrape interval.
const BUILTINS: &[(&str, &str)] = &[
    ("$__rate_interval", "1m"),
    ("$__interval", "15s"),
    ("$__range_s", "300"),
    ("$__range", "5m"),
];

/// Wall-time budgets (generous: a shared 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);
const QUERIES_DEADLINE: Duration = Duration::from_secs(100);
const RULES_DEADLINE: Duration = Duration::from_secs(60);

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn prometheus_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.is_file() {
        return debian;
    }
    on_path("prometheus").unwrap_or_else(|| {
        panic!(
            "prometheus is not installed (needed to run the dashboards' queries against real \
             data): apt-get install prometheus (Debian/Ubuntu), or put a prometheus binary on PATH"
        )
    })
}

fn app_dir() -> PathBuf {
    let dir = common::repo_root().join("tests/app");
    for module in ["express", "prom-client"] {
        assert!(
            dir.join("node_modules").join(module).is_dir(),
            "tests/app/node_modules/{module} is missing: run `bash scripts/setup.sh` (it runs \
             `npm ci` in tests/app; needs node and npm: apt-get install nodejs npm)"
        );
    }
    dir
}

fn node_binary() -> PathBuf {
    on_path("node").unwrap_or_else(|| {
        panic!("node is not installed: apt-get install nodejs npm (Node.js 18 or later)")
    })
}

/// A child process killed on drop, with the file its output goes to.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts tests/app with the test's names; returns it and the port it printed.
fn start_app(dir: &Path) -> (Running, u16) {
    let log = dir.join("app.stderr");
    let mut child = Command::new(node_binary())
        .arg("server.js")
        .current_dir(app_dir())
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("HTTP_REQUESTS_TOTAL", REQUESTS_TOTAL)
        .env("HTTP_DURATION_SECONDS", DURATION_SECONDS)
        .env("HTTP_METHOD_LABEL", METHOD_LABEL)
        .env("HTTP_ROUTE_LABEL", ROUTE_LABEL)
        .env("HTTP_STATUS_LABEL", STATUS_LABEL)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node tests/app/server.js: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {} // keep draining
    });
    let app = Running { child, log };
    let port = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the app printed {line:?}, expected `LISTENING <port>`")),
        other => panic!(
            "the app did not print `LISTENING <port>` ({other:?}); stderr:\n{}",
            tail(&app.log, 30)
        ),
    };
    (app, port)
}

/// The credentials Prometheus's web config was given, for every request of [`get`]
/// (one Prometheus per test process).
static WEB: OnceLock<WebAuth> = OnceLock::new();

/// Starts Prometheus on a free port with `config` and `dir`/web.yml (see [`WebAuth`]); waits
/// until it is ready. Its self-scrape target (localhost:9090 in the container) is moved to
/// the port it got.
fn start_prometheus(dir: &Path, config: &Path) -> (Running, u16) {
    let bin = prometheus_binary();
    let text = std::fs::read_to_string(config).unwrap();
    assert_eq!(text.matches("localhost:9090").count(), 1, "{text}");
    for _attempt in 0..3 {
        let port = free_port();
        std::fs::write(
            config,
            text.replace("localhost:9090", &format!("localhost:{port}")),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let mut prom = Running {
            child: Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--web.config.file={}",
                    dir.join("web.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display())),
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = prom.child.try_wait() {
                eprintln!(
                    "prometheus exited early ({status}):\n{}",
                    tail(&prom.log, 20)
                );
                break;
            }
            if let Ok((200, _)) = get(port, "/-/ready") {
                return (prom, port);
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "prometheus not ready on port {port} within {START_TIMEOUT:?}:\n{}",
                tail(&prom.log, 40)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("prometheus failed to start three times");
}

/// A GET over HTTPS with basic auth, the certificate verified: (status, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    WEB.get()
        .expect("the test installs the credentials before starting Prometheus")
        .get(port, path)
}

/// GET on the Prometheus HTTP API; returns `data` or the API's error.
fn api(port: u16, path: &str) -> Result<Value, String> {
    let (status, body) = get(port, path).map_err(|e| e.to_string())?;
    let v: Value =
        serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body:.300}"))?;
    if v["status"] != "success" {
        return Err(format!("{status}: {} {}", v["errorType"], v["error"]));
    }
    Ok(v["data"].clone())
}

/// An instant query's series (a scalar or string result is an error: it has no series).
fn query(port: u16, q: &str) -> Result<Vec<Value>, String> {
    let data = api(
        port,
        &format!("/api/v1/query?query={}", urlencoding::encode(q)),
    )?;
    match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => {
            Ok(data["result"].as_array().cloned().unwrap_or_default())
        }
        other => Err(format!("result type {other:?} carries no series")),
    }
}

fn label_values(port: u16, label: &str, matcher: Option<&str>) -> Vec<String> {
    let mut path = format!("/api/v1/label/{label}/values");
    if let Some(m) = matcher {
        path.push_str(&format!("?match[]={}", urlencoding::encode(m)));
    }
    let data = api(port, &path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_value(data).unwrap()
}

/// Background traffic: normal requests, 5xx on demand, 404s and slow requests, until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let s = stop.clone();
        threads.push(thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let get = |p: String| {
                    let _ = http_request(port, "GET", &p, b"");
                };
                get(format!("/api/users/{i}"));
                get(format!("/api/orders/{i}"));
                if i.is_multiple_of(2) {
                    get(format!("/api/orders/{i}?fail=1"));
                }
                if i.is_multiple_of(5) {
                    get(format!("/api/orders/{i}?status=503"));
                    get(format!("/no/such/page/{i}"));
                }
                i += 1;
                thread::sleep(Duration::from_millis(100));
            }
        }));
        // Several slow requests in flight: well over 1% of requests take 1.5 s, so p99
        // crosses the latency alert's 1 s threshold.
        for _ in 0..3 {
            let s = stop.clone();
            threads.push(thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    let _ = http_request(port, "GET", "/api/slow?ms=1500", b"");
                    let _ = http_request(port, "GET", "/api/slow?ms=20", b"");
                }
            }));
        }
        Traffic { stop, threads }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Grafana's escaping of a variable value used in `=~"…"`: regex metacharacters escaped, then
/// the backslashes doubled for the PromQL string.
fn prom_regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// The query with its variables filled in.
fn substitute(expr: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut q = expr.to_string();
    for (name, value) in BUILTINS {
        q = q.replace(name, value);
    }
    for (name, value) in vars {
        q = q.replace(&format!("${{{name}}}"), value);
        q = q.replace(&format!("${name}"), value);
    }
    q
}

/// Metric selectors in a PromQL expression: a known metric name plus its `{…}` if any.
fn selectors(expr: &str, metric_names: &BTreeSet<String>) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // Skip a string literal.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ident(c) && !c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if !metric_names.contains(&name) {
                continue;
            }
            let mut sel = name;
            if chars.get(i) == Some(&'{') {
                let open = i;
                let mut in_str = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' if in_str => i += 1,
                        '"' => in_str = !in_str,
                        '}' if !in_str => break,
                        _ => {}
                    }
                    i += 1;
                }
                sel.extend(&chars[open..=i.min(chars.len() - 1)]);
                i += 1;
            }
            out.push(sel);
        } else {
            i += 1;
        }
    }
    out
}

/// The labels of the first `by (…)` in `expr`, if any.
fn by_labels(expr: &str) -> Option<Vec<String>> {
    let at = expr.find("by (")?;
    let rest = &expr[at + 4..];
    let inner = &rest[..rest.find(')')?];
    Some(
        inner
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// `{{label}}` names in a legend format.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}").map(|(l, _)| l.trim().to_string()))
        .collect()
}

fn aggregates(expr: &str) -> bool {
    [
        "sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile",
    ]
    .iter()
    .any(|f| expr.contains(&format!("{f}(")) || expr.contains(&format!("{f} by")))
}

/// The labels each series of `expr` must carry (rule 3 at the top of this file).
fn expected_labels(expr: &str, legend: &str) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = match by_labels(expr) {
        Some(labels) => labels
            .into_iter()
            .filter(|l| !(l == "le" && expr.contains("histogram_quantile")))
            .collect(),
        None if !aggregates(expr) => ["instance".to_string()].into(),
        None => BTreeSet::new(),
    };
    want.extend(legend_labels(legend));
    want
}

/// Checks one dashboard query (rules 1–4); Ok(number of series).
fn check_query(
    port: u16,
    expr: &str,
    legend: &str,
    vars: &BTreeMap<&str, String>,
    route: Option<&str>,
    metric_names: &BTreeSet<String>,
) -> Result<usize, String> {
    let q = substitute(expr, vars);
    if q.contains('$') {
        return Err(format!("unfilled variable in {q}"));
    }
    let sels = selectors(&q, metric_names);
    if sels.is_empty() {
        return Err(format!("{q}: no selector of a scraped metric"));
    }
    for sel in &sels {
        if query(port, sel)?.is_empty() {
            return Err(format!("{q}: selector {sel} matches no series"));
        }
    }
    let series = query(port, &q).map_err(|e| format!("{q}: {e}"))?;
    if series.is_empty() {
        return Err(format!("{q}: empty result"));
    }
    let want = expected_labels(expr, legend);
    for s in &series {
        let metric = &s["metric"];
        for label in &want {
            if metric[label].as_str().is_none_or(str::is_empty) {
                return Err(format!("{q}: series {metric} lacks label {label:?}"));
            }
        }
        if let (Some(route), Some(got)) = (route, metric[ROUTE_LABEL].as_str()) {
            if got != route {
                return Err(format!("{q}: $route={route} but series has {got}"));
            }
        }
    }
    Ok(series.len())
}

/// (dashboard, panel title, expr, legend) of every Prometheus target; (dashboard, name,
/// label_values definition) of every variable.
type PanelQuery = (String, String, String, String);
type VariableQuery = (String, String, String);

fn dashboard_queries(ctx: &deploy::render::RenderContext) -> (Vec<PanelQuery>, Vec<VariableQuery>) {
    let dir = common::repo_root().join("templates/dashboards");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let (mut panels, mut variables) = (Vec::new(), Vec::new());
    for name in names {
        let dash: Value =
            serde_json::from_str(&render_with(&format!("dashboards/{name}"), ctx)).unwrap();
        let mut all = Vec::new();
        for p in dash["panels"].as_array().unwrap() {
            all.push(p.clone());
            all.extend(p["panels"].as_array().cloned().unwrap_or_default());
        }
        for p in all {
            for t in p["targets"].as_array().cloned().unwrap_or_default() {
                if t["datasource"]["type"] == "prometheus" {
                    panels.push((
                        name.clone(),
                        p["title"].as_str().unwrap().to_string(),
                        t["expr"].as_str().unwrap().to_string(),
                        t["legendFormat"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        for v in dash["templating"]["list"].as_array().unwrap() {
            variables.push((
                name.clone(),
                v["name"].as_str().unwrap().to_string(),
                v["definition"].as_str().unwrap().to_string(),
            ));
        }
    }
    (panels, variables)
}

/// Runs a `label_values(selector, label)` variable query the way Grafana does.
fn check_variable(
    port: u16,
    definition: &str,
    vars: &BTreeMap<&str, String>,
) -> Result<Vec<String>, String> {
    let inner = definition
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("not a label_values query: {definition}"))?;
    let (selector, label) = match inner.rsplit_once(',') {
        Some((s, l)) => (Some(substitute(s.trim(), vars)), l.trim()),
        None => (None, inner.trim()),
    };
    let values = label_values(port, label, selector.as_deref());
    if values.is_empty() {
        return Err(format!("{definition}: no values"));
    }
    Ok(values)
}

/// The test's stack: the reference stack with the app's non-default names.
fn stack_copy() -> Value {
    let mut stack = reference_stack();
    stack["vars"]["http_metrics"] = json!({
        "requests_total": REQUESTS_TOTAL,
        "duration_seconds": DURATION_SECONDS,
        "method_label": METHOD_LABEL,
        "route_label": ROUTE_LABEL,
        "status_label": STATUS_LABEL,
    });
    stack
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Writes prometheus.yml, with only the backend target moved to the app, and the rule files it
/// names (rendered from the templates the stack delivers to those paths). Returns the rule
/// files written.
fn write_config(dir: &Path, stack: &Value, app_port: u16) -> Vec<PathBuf> {
    let ctx = context_for(stack);
    let rendered = render_with("prometheus.yml", &ctx);
    let alb_target = format!("{DNS_NAME}:{}", stack["vars"]["backend_port"]);
    let app_target = format!("127.0.0.1:{app_port}");
    assert_eq!(
        rendered.matches(&alb_target).count(),
        1,
        "one backend target in\n{rendered}"
    );
    let moved = rendered.replace(&alb_target, &app_target);

    // Parsed, the two documents differ in exactly that target.
    let (mut want, got) = (yaml(&rendered), yaml(&moved));
    let jobs = want["scrape_configs"].as_array_mut().unwrap();
    let backend = jobs
        .iter_mut()
        .find(|j| j["job_name"] == "backend")
        .unwrap();
    assert_eq!(
        backend["static_configs"],
        json!([{"targets": [alb_target]}])
    );
    backend["static_configs"] = json!([{"targets": [app_target]}]);
    assert_eq!(want, got, "only the backend target may differ");
    std::fs::write(dir.join("prometheus.yml"), &moved).unwrap();

    // Rule files: relative to the config file, delivered by the stack's `files:`.
    let container = &stack["task_definitions"]["prometheus"]["containers"]["prometheus"];
    let files: BTreeMap<String, String> =
        serde_json::from_value(container["files"].clone()).unwrap_or_default();
    let config_path = files
        .iter()
        .find(|(_, t)| *t == "prometheus.yml")
        .map(|(p, _)| p.clone())
        .expect("the stack delivers prometheus.yml");
    let config_dir = &config_path[..config_path.rfind('/').unwrap()];
    let mut written = Vec::new();
    for entry in got["rule_files"].as_array().cloned().unwrap_or_default() {
        let entry = entry.as_str().unwrap();
        assert!(
            !entry.starts_with('/'),
            "rule_files entries must be relative to prometheus.yml: {entry}"
        );
        let container_path = format!("{config_dir}/{entry}");
        let (prefix, suffix) = entry.split_once('*').unwrap_or((entry, ""));
        let glob = entry.contains('*');
        let mut matched: Vec<(String, String)> = files
            .iter()
            .filter(|(p, _)| {
                p.strip_prefix(&format!("{config_dir}/"))
                    .is_some_and(|rel| {
                        if glob {
                            rel.starts_with(prefix)
                                && rel.ends_with(suffix)
                                && !rel[prefix.len()..].contains('/')
                        } else {
                            *p == &container_path
                        }
                    })
            })
            .map(|(p, t)| (p[config_dir.len() + 1..].to_string(), t.clone()))
            .collect();
        if matched.is_empty()
            && !glob
            && common::repo_root().join("templates").join(entry).is_file()
        {
            matched.push((entry.to_string(), entry.to_string()));
        }
        assert!(
            !matched.is_empty(),
            "rule_files entry {entry} is delivered by no `files:` entry of the Prometheus container"
        );
        for (rel, template) in matched {
            let text = render_with(&template, &ctx);
            // Alerts' `for:` holds are shortened in this copy (and only here) so that they can
            // reach `firing` within the test's few minutes; expressions are untouched.
            let shortened: String = text
                .lines()
                .map(|l| match l.trim_start().strip_prefix("for:") {
                    Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let path = dir.join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, shortened + "\n").unwrap();
            written.push(path);
        }
    }
    written
}

/// Polls `check` until it returns no failures or `deadline` passes; returns the last failures.
fn poll(deadline: Duration, mut check: impl FnMut() -> Vec<String>) -> Vec<String> {
    let started = Instant::now();
    loop {
        let failures = check();
        if failures.is_empty() || started.elapsed() > deadline {
            return failures;
        }
        thread::sleep(Duration::from_secs(3));
    }
}

#[test]
fn every_dashboard_query_returns_labelled_series_from_the_instrumented_app() {
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("e2e-scrape-")
        .tempdir()
        .unwrap();
    let stack = stack_copy();
    let (app, app_port) = start_app(dir.path());
    let rule_files = write_config(dir.path(), &stack, app_port);
    let web = WEB.get_or_init(|| WebAuth::install(dir.path(), &context_for(&stack)));
    let (prom, port) = start_prometheus(dir.path(), &dir.path().join("prometheus.yml"));
    // Only HTTPS with basic auth gets an answer.
    let anonymous = web.get_anonymous(port, "/api/v1/status/buildinfo").unwrap();
    assert_eq!(
        anonymous.0, 401,
        "an unauthenticated request: {anonymous:?}"
    );
    assert!(plain_http_refused(port), "plain HTTP got an API answer");
    assert_eq!(
        web.get(port, "/api/v1/status/buildinfo").unwrap().0,
        200,
        "the authenticated request over HTTPS"
    );
    let _traffic = Traffic::start(app_port);
    let fail = |what: &str, failures: &[String]| {
        panic!(
            "{what}:\n  {}\n--- prometheus log:\n{}\n--- app stderr:\n{}",
            failures.join("\n  "),
            tail(&prom.log, 15),
            tail(&app.log, 15)
        )
    };

    // The dashboards rendered with the same (non-default) names.
    let (panels, variables) = dashboard_queries(&context_for(&stack));
    assert!(panels.len() >= 20, "only {} panel queries", panels.len());

    // Wait until the app has been scraped a few times, then read the real label values.
    let up = poll(QUERIES_DEADLINE, || {
        match query(
            port,
            "count_over_time(up{job=\"backend\"}[5m]) >= 3 and up{job=\"backend\"} == 1",
        ) {
            Ok(s) if !s.is_empty() => vec![],
            other => vec![format!("backend not scraped 3 times yet: {other:?}")],
        }
    });
    if !up.is_empty() {
        fail("the app was never scraped", &up);
    }
    // Prometheus's own clients authenticate too: the rendered self-scrape job is up.
    let self_scrape = poll(QUERIES_DEADLINE, || {
        match query(port, "up{job=\"prometheus\"} == 1") {
            Ok(s) if s.len() == 1 => vec![],
            other => vec![format!("the self-scrape is not up: {other:?}")],
        }
    });
    if !self_scrape.is_empty() {
        fail("the HTTPS + basic auth self-scrape failed", &self_scrape);
    }
    let instances = label_values(port, "instance", Some(REQUESTS_TOTAL));
    assert_eq!(instances, [format!("127.0.0.1:{app_port}")]);
    let routes = label_values(port, ROUTE_LABEL, Some(REQUESTS_TOTAL));
    assert!(
        routes.iter().any(|r| r == ERROR_ROUTE),
        "routes: {routes:?}"
    );
    for r in &routes {
        assert!(
            r == "<unmatched>"
                || (r.starts_with("/api/") && !r.chars().any(|c| c.is_ascii_digit())),
            "route label {r:?} is not an Express route pattern (raw URL?)"
        );
    }

    // Every query with $route = All and $route = the route that also fails.
    let instance = prom_regex_escape(&instances[0]);
    let variants: Vec<(BTreeMap<&str, String>, Option<&str>)> = vec![
        (
            [("instance", instance.clone()), ("route", ".*".to_string())].into(),
            None,
        ),
        (
            [
                ("instance", instance),
                ("route", prom_regex_escape(ERROR_ROUTE)),
            ]
            .into(),
            Some(ERROR_ROUTE),
        ),
    ];
    let mut report = Vec::new();
    let failures = poll(QUERIES_DEADLINE, || {
        let metric_names: BTreeSet<String> =
            label_values(port, "__name__", None).into_iter().collect();
        report.clear();
        let mut failures = Vec::new();
        for (vars, route) in &variants {
            for (dash, name, definition) in &variables {
                match check_variable(port, definition, vars) {
                    Ok(values) => report.push(format!("{dash} ${name}: {values:?}")),
                    Err(e) => failures.push(format!("{dash} variable ${name}: {e}")),
                }
            }
            for (dash, panel, expr, legend) in &panels {
                match check_query(port, expr, legend, vars, *route, &metric_names) {
                    Ok(n) => report.push(format!(
                        "{dash} {panel:?} ($route={}): {n} series",
                        route.unwrap_or("All")
                    )),
                    Err(e) => failures.push(format!("{dash} {panel:?}: {e}")),
                }
            }
        }
        failures
    });
    if !failures.is_empty() {
        fail("dashboard queries without real series", &failures);
    }
    println!(
        "checked {} panel queries and {} variables, twice ($route All and {ERROR_ROUTE}):\n  {}",
        panels.len(),
        variables.len(),
        report.join("\n  ")
    );

    check_rules(port, &rule_files, &fail);
    println!("e2e wall time: {:?}", started.elapsed());
}

/// Every recording rule yields series; BackendHighErrorRatio and BackendHighLatencyP99 fire.
/// The stack ships recording and alerting rules, so a config without either is a failure,
/// not a skip.
fn check_rules(port: u16, rule_files: &[PathBuf], fail: &dyn Fn(&str, &[String])) {
    assert!(
        !rule_files.is_empty(),
        "prometheus.yml names no rule_files: the stack's recording rules and alerts are missing"
    );
    println!("rule files: {rule_files:?}");
    let rules = |ty: &str| -> Vec<Value> {
        let data = api(port, &format!("/api/v1/rules?type={ty}")).unwrap();
        data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let records = rules("record");
    let alerts = rules("alert");
    assert!(
        !records.is_empty() && !alerts.is_empty(),
        "rule files {rule_files:?} loaded {} recording and {} alerting rules: the stack ships \
         both",
        records.len(),
        alerts.len()
    );
    let unhealthy: Vec<String> = alerts
        .iter()
        .chain(&records)
        .filter(|r| r["health"] != "ok" && r["health"] != "unknown")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(
        unhealthy.is_empty(),
        "rules failing to evaluate: {unhealthy:?}"
    );

    let failures = poll(RULES_DEADLINE, || {
        let mut failures = Vec::new();
        for r in rules("record") {
            let name = r["name"].as_str().unwrap();
            if r["health"] != "ok" {
                failures.push(format!(
                    "recording rule {name}: {} {}",
                    r["health"], r["lastError"]
                ));
                continue;
            }
            match query(port, name) {
                Ok(s) if !s.is_empty() => {}
                other => failures.push(format!("recording rule {name} has no series: {other:?}")),
            }
        }
        failures
    });
    if !failures.is_empty() {
        fail("recording rules without series", &failures);
    }
    println!("{} recording rules produce series", records.len());

    // The traffic breaches exactly these two: 5xx on one route, and slow requests. Named
    // exactly: a burn-rate alert firing on the same errors must not stand in for them.
    let wanted = ["BackendHighErrorRatio", "BackendHighLatencyP99"];
    for w in wanted {
        assert!(
            alerts.iter().any(|a| a["name"] == w),
            "alert {w} did not load from {rule_files:?}"
        );
    }
    let failures = poll(RULES_DEADLINE, || {
        let alerts = rules("alert");
        let mut failures = Vec::new();
        for w in wanted {
            let state = alerts
                .iter()
                .find(|a| a["name"] == w)
                .map(|a| a["state"].as_str().unwrap_or_default().to_string());
            if state.as_deref() != Some("firing") {
                failures.push(format!("alert {w} is not firing: {state:?}"));
            }
        }
        failures
    });
    let states: Vec<String> = rules("alert")
        .iter()
        .map(|a| format!("{}={}", a["name"].as_str().unwrap(), a["state"]))
        .collect();
    println!("alert states: {}", states.join(", "));
    if !failures.is_empty() {
        fail("alerts that should fire", &failures);
    }
}

#[test]
fn the_real_series_rule_rejects_constants_and_derives_the_expected_labels() {
    let names: BTreeSet<String> = ["up", "x_total"].map(String::from).into();
    assert!(selectors("vector(1)", &names).is_empty());
    assert!(selectors("sum(rate(y_total[1m])) or vector(0)", &names).is_empty());
    assert_eq!(
        selectors(
            r#"sum by (path) (rate(x_total{path=~"a|}b", code="up"}[1m])) / on() up"#,
            &names
        ),
        [r#"x_total{path=~"a|}b", code="up"}"#, "up"]
    );
    let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        expected_labels(
            "histogram_quantile(0.9, sum by (le, path) (rate(x[1m])))",
            "{{path}}"
        ),
        set(&["path"])
    );
    assert_eq!(
        expected_labels("sum by (le) (increase(x[1m]))", "{{le}}"),
        set(&["le"])
    );
    assert_eq!(expected_labels("up", "{{job}}"), set(&["instance", "job"]));
    assert_eq!(expected_labels("sum(rate(x[1m]))", "requests/s"), set(&[]));
    assert_eq!(prom_regex_escape("127.0.0.1:80"), r"127\\.0\\.0\\.1:80");
}
