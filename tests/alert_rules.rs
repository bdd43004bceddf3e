//! Proves the Prometheus rules of templates/rules/ with the real promtool: they load, every
//! alert fires just above its threshold and stays quiet just below it and during a breach
//! shorter than its `for`, every recorded series is checked, the unit tests follow the stack's
//! thresholds and names (they are rendered from tests/fixtures/rules-tests with the same vars),
//! and every alert links to a heading of docs/runbook.md. A real Prometheus then loads and
//! evaluates them and shows that the metrics its own health alerts watch exist; it runs with
//! the stack's web config (HTTPS and basic auth, real generated credentials), as in the task.

mod common;

use common::render::{context, context_for, promtool, reference_stack, render_with};
use common::web::WebAuth;
use deploy::render::{RenderContext, Templates};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The alerts whose threshold is a number of the stack's vars (the rest fire on any failure).
const THRESHOLD_ALERTS: [&str; 9] = [
    "BackendHighErrorRatio",
    "BackendHighLatencyP99",
    "BackendHighCpu",
    "BackendHighMemory",
    "BackendEventLoopLag",
    "BackendErrorBudgetBurn1h",
    "BackendErrorBudgetBurn6h",
    "BackendErrorBudgetBurn1d",
    "BackendErrorBudgetBurn3d",
];

/// The rule templates, as named in the stack's `files:` (relative to templates/).
const RULE_TEMPLATES: [&str; 2] = ["rules/recording.yml", "rules/alerts.yml"];

fn cases_dir() -> PathBuf {
    common::fixtures_dir().join("rules-tests")
}

/// The unit-test templates (file names in tests/fixtures/rules-tests), sorted.
fn case_templates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cases_dir())
        .expect("tests/fixtures/rules-tests")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no unit-test templates in {:?}",
        cases_dir()
    );
    names
}

fn parse_yaml(what: &str, text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}\n{text}"))
}

/// Every `alert:` rule of a rendered rule file.
fn alert_rules(rendered: &str) -> Vec<Value> {
    rules_of(rendered)
        .into_iter()
        .filter(|r| r.get("alert").is_some())
        .collect()
}

fn rules_of(rendered: &str) -> Vec<Value> {
    let doc = parse_yaml("a rendered rule file", rendered);
    doc["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

/// Expands an annotation template for an alert with `labels`: only `{{ $labels.NAME }}` is
/// allowed (alerts.yml promises that), and every label it names must be among `labels`.
fn expand(template: &str, labels: &serde_json::Map<String, Value>, alert: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("{alert}: unclosed {{{{ in {template:?}"));
        let action = rest[start + 2..start + end].trim();
        let name = action.strip_prefix("$labels.").unwrap_or_else(|| {
            panic!("{alert}: annotation uses {{{{ {action} }}}}; only $labels.NAME is allowed")
        });
        let value = labels.get(name).and_then(Value::as_str).unwrap_or_else(|| {
            panic!("{alert}: annotation uses label {name:?}, which the alert does not carry")
        });
        out.push_str(value);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Fills in exp_annotations of the expected alerts that leave them out, from the rendered rule
/// (promtool compares annotations too; the cases are about labels and timing).
fn fill_annotations(case: &mut Value, alerts: &[Value]) {
    for group in case["tests"].as_array_mut().into_iter().flatten() {
        for test in group
            .get_mut("alert_rule_test")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let name = test["alertname"].as_str().unwrap().to_string();
            let rule = alerts
                .iter()
                .find(|a| a["alert"] == name.as_str())
                .unwrap_or_else(|| panic!("a case tests {name}, which is not an alert"));
            for exp in test["exp_alerts"].as_array_mut().into_iter().flatten() {
                if exp.get("exp_annotations").is_some() {
                    continue;
                }
                let mut labels = exp["exp_labels"].as_object().cloned().unwrap_or_default();
                labels.insert("alertname".into(), json!(name));
                let annotations: serde_json::Map<String, Value> = rule["annotations"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, t)| {
                        (
                            k.clone(),
                            json!(expand(t.as_str().unwrap(), &labels, &name)),
                        )
                    })
                    .collect();
                exp["exp_annotations"] = Value::Object(annotations);
            }
        }
    }
}

/// Rendered rules, prometheus.yml and unit tests in a temp dir laid out like /etc/prometheus:
/// DIR/prometheus.yml, DIR/rules/*.yml, DIR/tests/*.yml (whose rule_files say ../rules/*.yml).
struct Tree {
    dir: tempfile::TempDir,
    /// Rendered rule files by template name.
    rules: BTreeMap<String, String>,
    /// Rendered (and annotation-filled) unit tests by file name.
    cases: BTreeMap<String, Value>,
}

impl Tree {
    /// Rules and prometheus.yml rendered with `rules_ctx`, unit tests with `cases_ctx` (the
    /// same context, except in the tests that show a mismatch is caught).
    fn new(rules_ctx: &RenderContext, cases_ctx: &RenderContext) -> Tree {
        let dir = tempfile::Builder::new()
            .prefix("alert-rules-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::create_dir_all(dir.path().join("tests")).unwrap();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            render_with("prometheus.yml", rules_ctx),
        )
        .unwrap();
        let mut rules = BTreeMap::new();
        for name in RULE_TEMPLATES {
            let text = render_with(name, rules_ctx);
            parse_yaml(name, &text);
            std::fs::write(dir.path().join(name), &text).unwrap();
            rules.insert(name.to_string(), text);
        }
        let alerts = alert_rules(&rules["rules/alerts.yml"]);
        let templates = Templates::new(cases_dir());
        let mut cases = BTreeMap::new();
        for name in case_templates() {
            let text = templates
                .render(&name, cases_ctx)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut case = parse_yaml(&name, &text);
            fill_annotations(&mut case, &alerts);
            // JSON is YAML: promtool reads it as it is.
            std::fs::write(
                dir.path().join("tests").join(&name),
                serde_json::to_string_pretty(&case).unwrap(),
            )
            .unwrap();
            cases.insert(name, case);
        }
        Tree { dir, rules, cases }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn rule_files(&self) -> Vec<PathBuf> {
        RULE_TEMPLATES.iter().map(|n| self.path().join(n)).collect()
    }

    fn case_files(&self) -> Vec<PathBuf> {
        self.cases
            .keys()
            .map(|n| self.path().join("tests").join(n))
            .collect()
    }

    /// `promtool check rules` on every rule file and `promtool check config` on
    /// prometheus.yml (which must find both rule files through its relative glob).
    fn check(&self) {
        for file in self.rule_files() {
            let (ok, text) = promtool(&["check", "rules"], std::slice::from_ref(&file));
            assert!(
                ok && text.contains("SUCCESS"),
                "{}:\n{text}",
                file.display()
            );
        }
        let (ok, text) = promtool(&["check", "config"], &[self.path().join("prometheus.yml")]);
        assert!(ok, "promtool check config:\n{text}");
        assert!(
            text.contains(&format!(
                "SUCCESS: {} rule files found",
                RULE_TEMPLATES.len()
            )),
            "prometheus.yml's rule_files do not find the rendered rules:\n{text}"
        );
    }

    /// `promtool test rules` on every unit-test file: (success, output).
    fn unit_tests(&self) -> (bool, String) {
        promtool(&["test", "rules"], &self.case_files())
    }
}

/// Seconds of a Prometheus duration such as `15m`, `1h30m` or `0s`.
fn seconds(duration: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => panic!("unknown unit in duration {duration:?}"),
        };
        total += number.parse::<u64>().expect(duration) * unit;
        number.clear();
    }
    assert!(number.is_empty(), "duration {duration:?} lacks a unit");
    total
}

/// GitHub's anchor for a Markdown heading: lower-case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of docs/runbook.md's headings (outside code fences).
fn runbook_anchors() -> BTreeSet<String> {
    let text = std::fs::read_to_string(common::repo_root().join("docs/runbook.md"))
        .expect("docs/runbook.md");
    let mut fenced = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            anchors.insert(anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

/// One alert_rule_test of a unit-test group: (group name, alertname, eval seconds, fires).
fn alert_cases(tree: &Tree) -> Vec<(String, String, u64, bool)> {
    let mut out = Vec::new();
    for case in tree.cases.values() {
        for group in case["tests"].as_array().expect("tests") {
            let name = group["name"].as_str().unwrap_or_default().to_string();
            for t in group["alert_rule_test"].as_array().into_iter().flatten() {
                let fires = t["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                out.push((
                    name.clone(),
                    t["alertname"].as_str().unwrap().to_string(),
                    seconds(t["eval_time"].as_str().unwrap()),
                    fires,
                ));
            }
        }
    }
    out
}

#[test]
fn rendered_rules_pass_promtool_and_prometheus_yml_finds_them() {
    let tree = Tree::new(&context(), &context());
    tree.check();
    // The alerting block: the Alertmanager beside Prometheus in the same task, over HTTPS
    // with basic auth (tests/alertmanager_config.rs proves the delivery).
    let config = parse_yaml(
        "prometheus.yml",
        &std::fs::read_to_string(tree.path().join("prometheus.yml")).unwrap(),
    );
    assert_eq!(config["rule_files"], json!(["rules/*.yml"]));
    assert_eq!(
        config["alerting"]["alertmanagers"],
        json!([{
            "scheme": "https",
            "basic_auth": {"username": "grafana", "password_file": "secrets/web_password"},
            "tls_config": {"ca_file": "secrets/tls.crt", "server_name": "localhost"},
            "static_configs": [{"targets": ["localhost:9093"]}]
        }])
    );
}

#[test]
fn the_stack_delivers_every_rule_file_where_prometheus_yml_looks() {
    let stack = reference_stack();
    let files = &stack["task_definitions"]["prometheus"]["containers"]["prometheus"]["files"];
    let config = parse_yaml("prometheus.yml", &render_with("prometheus.yml", &context()));
    let config_path = files
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| *t == "prometheus.yml")
        .map(|(p, _)| p.clone())
        .expect("prometheus.yml is delivered");
    let config_dir = &config_path[..config_path.rfind('/').unwrap()];
    for name in RULE_TEMPLATES {
        let path = format!("/etc/prometheus/{name}");
        assert_eq!(files[&path], name, "{path} must be delivered from {name}");
        // rule_files are globs relative to the config file's directory.
        let relative = path
            .strip_prefix(&format!("{config_dir}/"))
            .expect("rules live under the config dir");
        let (dir, file) = relative.rsplit_once('/').unwrap();
        assert!(
            config["rule_files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g.as_str() == Some(&format!("{dir}/*.yml")) && file.ends_with(".yml")),
            "no rule_files glob of prometheus.yml matches {path}"
        );
    }
}

#[test]
fn every_alert_fires_above_and_stays_quiet_below_its_threshold() {
    let tree = Tree::new(&context(), &context());
    let (ok, text) = tree.unit_tests();
    assert!(ok, "promtool test rules:\n{text}");
    assert_eq!(
        text.matches("SUCCESS").count(),
        tree.cases.len(),
        "every unit-test file ran:\n{text}"
    );
}

#[test]
fn every_alert_has_its_three_cases_labels_annotations_and_runbook_heading() {
    let ctx = context();
    let tree = Tree::new(&ctx, &ctx);
    let alerts = alert_rules(&tree.rules["rules/alerts.yml"]);
    assert!(alerts.len() >= 15, "expected the full set of alerts");
    let cases = alert_cases(&tree);
    let anchors = runbook_anchors();
    let base = ctx.vars["alerts"]["runbook_base_url"].as_str().unwrap();
    let mut problems = Vec::new();
    for rule in &alerts {
        let name = rule["alert"].as_str().unwrap();
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        let expected_severities: &[&str] = if name == "Watchdog" {
            &["none", "heartbeat"]
        } else {
            &["critical", "warning"]
        };
        if !expected_severities.contains(&severity) {
            problems.push(format!("{name}: severity {severity:?}"));
        }
        for key in ["summary", "description", "runbook_url"] {
            if rule["annotations"][key]
                .as_str()
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                problems.push(format!("{name}: no {key} annotation"));
            }
        }
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        match url.strip_prefix(&format!("{base}#")) {
            Some(a) if anchors.contains(a) => {}
            _ => problems.push(format!(
                "{name}: runbook_url {url:?} is not {base}#<a heading of docs/runbook.md>"
            )),
        }
        let for_secs = rule["for"].as_str().map(seconds).unwrap_or(0);
        let has = |kind: &str, fires: bool, min_eval: u64| {
            cases.iter().any(|(group, alert, eval, f)| {
                group.split_whitespace().take(2).eq([name, kind])
                    && alert == name
                    && *f == fires
                    && *eval >= min_eval
            })
        };
        if name == "Watchdog" {
            if !has("fires", true, 0) {
                problems.push("Watchdog: no case shows it firing".into());
            }
            continue;
        }
        if for_secs == 0 {
            problems.push(format!("{name}: no `for`"));
        }
        // Fires once `for` has passed; below: quiet even after `for` (so the threshold, not
        // the wait, keeps it quiet); short: quiet while the breach is younger than `for`.
        if !has("fires", true, for_secs) {
            problems.push(format!(
                "{name}: no \"{name} fires\" case firing at eval_time >= for"
            ));
        }
        if !has("below", false, for_secs) {
            problems.push(format!(
                "{name}: no \"{name} below\" case quiet at eval_time >= for"
            ));
        }
        if !has("short", false, 0) {
            problems.push(format!("{name}: no quiet \"{name} short\" case"));
        }
    }
    // A case for an alert that does not exist would pass vacuously; fill_annotations refuses
    // those, and every group name must start with a real alert or describe a recording test.
    let names: BTreeSet<&str> = alerts
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    for (group, alert, _, _) in &cases {
        if !group.starts_with(alert.as_str()) || !names.contains(alert.as_str()) {
            problems.push(format!("case {group:?} tests {alert}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // One heading per alert in the runbook.
    for name in &names {
        assert!(
            anchors.contains(&name.to_lowercase()),
            "docs/runbook.md has no heading `{name}`"
        );
    }
}

#[test]
fn every_recording_rule_is_unit_tested() {
    let tree = Tree::new(&context(), &context());
    let recorded: Vec<String> = rules_of(&tree.rules["rules/recording.yml"])
        .iter()
        .filter_map(|r| r["record"].as_str().map(String::from))
        .collect();
    assert!(recorded.len() >= 12, "{recorded:?}");
    let tested: BTreeSet<String> = tree
        .cases
        .values()
        .flat_map(|c| c["tests"].as_array().unwrap().clone())
        .flat_map(|g| {
            g["promql_expr_test"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|t| t["exp_samples"].as_array().is_some_and(|s| !s.is_empty()))
        .flat_map(|t| {
            // The names an expression uses, e.g. round(job:x:rate5m * 1000) uses job:x:rate5m.
            t["expr"]
                .as_str()
                .unwrap()
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let untested: Vec<&String> = recorded.iter().filter(|r| !tested.contains(*r)).collect();
    assert!(
        untested.is_empty(),
        "recording rules no promql_expr_test (with expected samples) evaluates: {untested:?}"
    );
}

/// The reference stack with other metric and label names for the backend.
fn renamed_context() -> RenderContext {
    let mut stack = reference_stack();
    stack["vars"]["http_metrics"] = json!({
        "requests_total": "api_requests_total",
        "duration_seconds": "api_request_duration_seconds",
        "method_label": "verb",
        "route_label": "path",
        "status_label": "code",
    });
    context_for(&stack)
}

#[test]
fn non_default_metric_and_label_names_reach_the_rules() {
    let renamed = renamed_context();
    let tree = Tree::new(&renamed, &renamed);
    tree.check();
    let recording = &tree.rules["rules/recording.yml"];
    for used in [
        "api_requests_total{",
        "api_request_duration_seconds_bucket{",
        r#"code=~"5..""#,
        "(job, verb, path)",
        "(job, path, le)",
    ] {
        assert!(recording.contains(used), "{used} missing in\n{recording}");
    }
    for gone in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "status_code",
        "route,",
        "route)",
        "route=",
        "method,",
        "method=",
    ] {
        for (name, text) in &tree.rules {
            assert!(!text.contains(gone), "{name} still uses {gone}:\n{text}");
        }
    }
    // The unit tests, rendered with the same names, pass against these rules…
    let (ok, text) = tree.unit_tests();
    assert!(ok, "promtool test rules with renamed labels:\n{text}");
    // …and the reference-named series do not: the names really are what the rules match.
    let mixed = Tree::new(&renamed, &context());
    let (ok, text) = mixed.unit_tests();
    assert!(
        !ok,
        "series with the default names still satisfied the renamed rules:\n{text}"
    );
}

#[test]
fn changed_thresholds_move_the_unit_tests_with_them() {
    let mut stack = reference_stack();
    let vars = &mut stack["vars"];
    vars["alerts"]["error_ratio"] = json!(0.2);
    vars["alerts"]["latency_p99_seconds"] = json!(0.25);
    vars["alerts"]["cpu_ratio"] = json!(0.75);
    vars["alerts"]["memory_ratio"] = json!(0.8);
    vars["alerts"]["event_loop_lag_seconds"] = json!(0.1);
    vars["backend"]["task_cpu_units"] = json!(2048);
    vars["backend"]["task_memory_mib"] = json!(4096);
    vars["slo"]["availability"] = json!(0.99);
    let changed = context_for(&stack);

    let tree = Tree::new(&changed, &changed);
    tree.check();
    let alerts = &tree.rules["rules/alerts.yml"];
    for threshold in [
        "> 0.2",
        "> 0.25",
        "2048 / 1024 * 0.75",
        "4096 * 1024 * 1024 * 0.8",
        "> 0.1",
        "(1 - 0.99)",
    ] {
        assert!(
            alerts.contains(threshold),
            "{threshold} missing in\n{alerts}"
        );
    }
    let (ok, text) = tree.unit_tests();
    assert!(ok, "promtool test rules with changed thresholds:\n{text}");

    // Cases rendered for the reference thresholds fail against the changed rules, alert by
    // alert: the cases sit close to the thresholds they were rendered for.
    let stale = Tree::new(&changed, &context());
    let (ok, text) = stale.unit_tests();
    assert!(!ok, "stale cases still passed:\n{text}");
    for alert in THRESHOLD_ALERTS {
        assert!(
            text.contains(&format!("alertname: {alert},")),
            "stale cases of {alert} did not fail:\n{text}"
        );
    }
}

#[test]
fn below_cases_sit_just_under_their_thresholds() {
    // Rules with every numeric threshold 15% lower, cases rendered for the reference ones:
    // each "below" case (at 90-98% of its threshold) is then above it and must fail, alert by
    // alert. A "below" case far under its threshold would still pass here and prove little.
    let reference = reference_stack();
    let mut stack = reference.clone();
    let lower = |v: &Value| json!(v.as_f64().unwrap() * 0.85);
    for key in [
        "error_ratio",
        "latency_p99_seconds",
        "cpu_ratio",
        "memory_ratio",
        "event_loop_lag_seconds",
    ] {
        stack["vars"]["alerts"][key] = lower(&reference["vars"]["alerts"][key]);
    }
    // The burn-rate thresholds are multiples of the error budget (1 - availability).
    let availability = reference["vars"]["slo"]["availability"].as_f64().unwrap();
    stack["vars"]["slo"]["availability"] = json!(1.0 - (1.0 - availability) * 0.85);
    let (ok, text) = Tree::new(&context_for(&stack), &context()).unit_tests();
    assert!(!ok, "no case failed under lowered thresholds:\n{text}");
    // promtool names each failing group (`name: <Alert> below,`) before its alert.
    let failed_groups: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name: "))
        .map(|n| n.trim_end_matches(','))
        .collect();
    for alert in THRESHOLD_ALERTS {
        let group = format!("{alert} below");
        assert!(
            failed_groups.contains(group.as_str()),
            "the \"{group}\" case still passed with its threshold 15% lower: it does not sit \
             near the threshold\n{text}"
        );
    }
    // Every failure is a case expected quiet that fired ("below" cases, and "short" ones of
    // gauges whose tail now sits above the lowered threshold): "fires" cases stay above it.
    for group in &failed_groups {
        assert!(
            group.ends_with(" below") || group.ends_with(" short"),
            "{group} failed under lowered thresholds\n{text}"
        );
    }
}

/// A real Prometheus (the Debian package, 2.42) on a free loopback port, killed on drop.
struct Prometheus {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    web: WebAuth,
}

impl Prometheus {
    /// Starts Prometheus on `config` with its TSDB under `data` and the stack's web config
    /// (credentials installed beside `config`, where its relative paths look), and waits
    /// until it is ready.
    fn start(config: &Path, data: &Path) -> Prometheus {
        let dir = config.parent().unwrap();
        let web = WebAuth::install(dir, &context());
        let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "prometheus is not installed, so the rules cannot be loaded by a real \
                     server: apt-get install prometheus (Debian/Ubuntu)"
                )
            });
        let log = data.with_extension("log");
        // A free port is only free until someone takes it: retry a clash.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let child = Command::new(&binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--web.config.file={}",
                    dir.join("web.yml").display()
                ))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut prometheus = Prometheus {
                child,
                port,
                log: log.clone(),
                web: web.clone(),
            };
            let ready = poll(Duration::from_secs(60), || {
                if let Ok(Some(_)) = prometheus.child.try_wait() {
                    return Some(false);
                }
                matches!(prometheus.web.get(port, "/-/ready"), Ok((200, _))).then_some(true)
            });
            if ready == Some(true) {
                return prometheus;
            }

            eprintln!(
                "prometheus on {port} did not start:\n{}",
                prometheus.log_text()
            );
        }
        panic!("prometheus failed to start three times")
    }

    fn get(&self, path: &str) -> String {
        match self.web.get(self.port, path) {
            Ok((200, body)) => body,
            other => panic!("GET {path}: {other:?}\n{}", self.log_text()),
        }
    }

    fn api(&self, path: &str) -> Value {
        let body = self.get(path);
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls `f` every 200 ms until it returns Some or `timeout` passes.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn real_prometheus_evaluates_every_rule_and_exposes_the_metrics_its_alerts_watch() {
    let tree = Tree::new(&context(), &context());
    let prometheus = Prometheus::start(
        &tree.path().join("prometheus.yml"),
        &tree.path().join("data"),
    );
    let expected: BTreeSet<String> = tree
        .rules
        .values()
        .flat_map(|text| rules_of(text))
        .map(|r| {
            r.get("alert")
                .unwrap_or(&r["record"])
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    // Every rule loaded and evaluated at least once (evaluation_interval is 15s).
    let never = "0001-01-01T00:00:00Z";
    let rules = poll(Duration::from_secs(120), || {
        let data = prometheus.api("/api/v1/rules");
        let rules: Vec<Value> = data["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated =
            rules.len() == expected.len() && rules.iter().all(|r| r["lastEvaluation"] != never);
        evaluated.then_some(rules)
    })
    .unwrap_or_else(|| {
        panic!(
            "the rules were not all loaded and evaluated within 120s:\n{}\n{}",
            prometheus.get("/api/v1/rules"),
            prometheus.log_text()
        )
    });
    let loaded: BTreeSet<String> = rules
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(loaded, expected);
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    // The dead man's switch fires from the first evaluation.
    let alerts = prometheus.api("/api/v1/alerts");
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "Watchdog" && a["state"] == "firing"),
        "Watchdog is not firing: {alerts}"
    );

    // Every prometheus_* metric an alert watches is one this Prometheus really exposes (the
    // labelled ones appear once rules and an Alertmanager are configured, as here).
    let exposition = poll(Duration::from_secs(60), || {
        let text = prometheus.get("/metrics");
        text.contains("prometheus_notifications_errors_total{")
            .then_some(text)
    })
    .expect("the notifier's per-Alertmanager counters never appeared");
    let exposed: BTreeSet<&str> = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let watched: BTreeSet<String> = alert_rules(&tree.rules["rules/alerts.yml"])
        .iter()
        .flat_map(|r| {
            r["expr"]
                .as_str()
                .unwrap()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("prometheus_"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(watched.len() >= 8, "{watched:?}");
    let missing: Vec<&String> = watched
        .iter()
        .filter(|m| !exposed.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "alerts watch metrics this Prometheus does not expose: {missing:?}"
    );
}
