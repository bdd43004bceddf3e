// Static checks of the Grafana dashboards (templates/dashboards/) and provisioning files
// (templates/grafana/): what Grafana would refuse or silently break on (bad JSON, clashing ids
// and uids, overlapping panels, dangling data source uids, Angular panel types) and what AWS
// would answer with empty graphs (misspelt CloudWatch namespaces, metrics and dimensions).
// tests/e2e_scrape.rs proves the Prometheus queries against real data.

mod common;

use common::render::{context, context_for, reference_stack, render, render_with};
use deploy::render::RenderContext;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Every dashboard template, as `dashboards/NAME.json`, sorted.
fn dashboard_templates() -> Vec<String> {
    let dir = common::repo_root().join("templates/dashboards");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .map(|n| format!("dashboards/{n}"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 4,
        "expected the four dashboards, found {names:?}"
    );
    names
}

fn parse_dashboard(name: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}\n{text}"))
}

fn dashboards_with(ctx: &RenderContext) -> Vec<(String, Value)> {
    dashboard_templates()
        .into_iter()
        .map(|n| {
            let v = parse_dashboard(&n, &render_with(&n, ctx));
            (n, v)
        })
        .collect()
}

fn dashboards() -> Vec<(String, Value)> {
    dashboards_with(&context())
}

/// Top-level panels plus the panels nested in (collapsed) rows.
fn all_panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels array") {
        out.push(p);
        if let Some(children) = p["panels"].as_array() {
            out.extend(children);
        }
    }
    out
}

/// The panels that draw data (rows only group).
fn data_panels(dash: &Value) -> Vec<&Value> {
    all_panels(dash)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .collect()
}

fn targets(panel: &Value) -> &[Value] {
    panel["targets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap_or("<untitled>")
}

#[test]
fn dashboards_render_to_json_with_stable_unique_uids_and_a_current_schema() {
    let mut uids = BTreeSet::new();
    // Another stack with other names must get the same uids: links and bookmarks survive.
    let mut other = reference_stack();
    other["stack"] = json!("other");
    other["vars"]["http_metrics"]["route_label"] = json!("path");
    let others: BTreeMap<String, Value> =
        dashboards_with(&context_for(&other)).into_iter().collect();
    for (name, dash) in dashboards() {
        let uid = dash["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no uid"));
        assert!(
            !uid.is_empty()
                && uid.len() <= 40
                && uid
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}: uid {uid:?} must be 1-40 of [a-z0-9-]"
        );
        assert!(uids.insert(uid.to_string()), "{name}: uid {uid} used twice");
        assert_eq!(others[&name]["uid"], uid, "{name}: uid depends on vars");
        // Grafana 11.0 writes 39; later 11.x releases migrate it forward on load.
        let schema = dash["schemaVersion"].as_u64().unwrap_or(0);
        assert!(
            (39..=41).contains(&schema),
            "{name}: schemaVersion {schema}"
        );
        assert!(
            dash["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        assert!(
            dash.get("id").is_none_or(Value::is_null),
            "{name}: a provisioned dashboard carries no database id"
        );
    }
}

#[test]
fn panel_ids_are_unique_per_dashboard_including_rows() {
    for (name, dash) in dashboards() {
        let mut ids = BTreeSet::new();
        for p in all_panels(&dash) {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: panel {:?} has no numeric id", title(p)));
            assert!(ids.insert(id), "{name}: panel id {id} used twice");
        }
    }
}

/// (x, y, w, h) of a panel, checked to lie within Grafana's 24 columns.
fn grid(name: &str, p: &Value) -> (u64, u64, u64, u64) {
    let g = &p["gridPos"];
    let n = |k: &str| {
        g[k].as_u64()
            .unwrap_or_else(|| panic!("{name}: panel {:?} gridPos.{k} missing", title(p)))
    };
    let (x, y, w, h) = (n("x"), n("y"), n("w"), n("h"));
    assert!(
        w > 0 && h > 0 && x + w <= 24,
        "{name}: panel {:?} at x={x} w={w} h={h} leaves the 24 columns",
        title(p)
    );
    (x, y, w, h)
}

fn assert_no_overlap(name: &str, panels: &[&Value]) {
    let boxes: Vec<_> = panels.iter().map(|p| (title(p), grid(name, p))).collect();
    for (i, (ta, (ax, ay, aw, ah))) in boxes.iter().enumerate() {
        for (tb, (bx, by, bw, bh)) in &boxes[i + 1..] {
            let apart = ax + aw <= *bx || bx + bw <= *ax || ay + ah <= *by || by + bh <= *ay;
            assert!(apart, "{name}: panels {ta:?} and {tb:?} overlap");
        }
    }
}

#[test]
fn grid_positions_fit_24_columns_and_do_not_overlap() {
    for (name, dash) in dashboards() {
        let top: Vec<&Value> = dash["panels"].as_array().unwrap().iter().collect();
        assert_no_overlap(&name, &top);
        // A collapsed row keeps its panels aside; they are laid out below the row when opened.
        for row in top.iter().filter(|p| p["type"] == "row") {
            let children: Vec<&Value> = row["panels"]
                .as_array()
                .map(|c| c.iter().collect())
                .unwrap_or_default();
            if !children.is_empty() {
                assert_eq!(row["collapsed"], true, "{name}: only collapsed rows nest");
            }
            let row_y = grid(&name, row).1;
            for c in &children {
                assert!(
                    grid(&name, c).1 > row_y,
                    "{name}: {:?} above its row",
                    title(c)
                );
            }
            assert_no_overlap(&name, &children);
        }
    }
}

/// Grafana 11's built-in, non-Angular panel plugins this project uses.
const CURRENT_PANEL_TYPES: &[&str] = &[
    "timeseries",
    "stat",
    "gauge",
    "table",
    "heatmap",
    "bargauge",
    "piechart",
    "barchart",
    "histogram",
    "state-timeline",
    "status-history",
    "text",
    "row",
];

#[test]
fn every_panel_has_a_description_a_current_type_and_queries() {
    for (name, dash) in dashboards() {
        for p in all_panels(&dash) {
            let ty = p["type"].as_str().unwrap_or_default();
            assert!(
                CURRENT_PANEL_TYPES.contains(&ty),
                "{name}: panel {:?} has type {ty:?} (graph, singlestat and other Angular \
                 panels are gone in Grafana 11)",
                title(p)
            );
            assert!(
                p["description"]
                    .as_str()
                    .is_some_and(|d| d.trim().len() > 10),
                "{name}: panel {:?} needs a description",
                title(p)
            );
            if ty == "row" {
                continue;
            }
            let ts = targets(p);
            assert!(!ts.is_empty(), "{name}: panel {:?} has no query", title(p));
            let refs: BTreeSet<&str> = ts.iter().filter_map(|t| t["refId"].as_str()).collect();
            assert_eq!(refs.len(), ts.len(), "{name}: {:?} refIds", title(p));
        }
    }
}

/// uid -> type of the data sources in the rendered datasources.yml.
fn provisioned_datasources() -> BTreeMap<String, String> {
    let text = render("grafana/datasources.yml");
    let doc: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    doc["datasources"]
        .as_array()
        .expect("datasources list")
        .iter()
        .map(|d| {
            (
                d["uid"].as_str().expect("pinned uid").to_string(),
                d["type"].as_str().expect("type").to_string(),
            )
        })
        .collect()
}

/// Every `datasource` reference anywhere in a dashboard (panels, targets, variables,
/// annotations), with where it was found.
fn datasource_refs(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{path}.{k}");
                if k == "datasource" {
                    out.push((here.clone(), child.clone()));
                }
                datasource_refs(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                datasource_refs(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_datasource_uid_resolves_to_a_provisioned_one() {
    let provisioned = provisioned_datasources();
    assert_eq!(
        provisioned.values().collect::<BTreeSet<_>>(),
        ["alertmanager", "cloudwatch", "prometheus"]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect()
    );
    for (name, dash) in dashboards() {
        let mut refs = Vec::new();
        datasource_refs(&dash, "", &mut refs);
        assert!(!refs.is_empty(), "{name}: no data source used");
        for (path, r) in refs {
            // The built-in annotation source is Grafana itself.
            if r["uid"] == "-- Grafana --" && r["type"] == "grafana" {
                continue;
            }
            let uid = r["uid"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}{path}: {r} is not a {{type, uid}} reference"));
            let ty = provisioned
                .get(uid)
                .unwrap_or_else(|| panic!("{name}{path}: uid {uid:?} is not provisioned"));
            assert_eq!(r["type"].as_str(), Some(ty.as_str()), "{name}{path}");
        }
    }
}

/// `$name` and `${name}` references in a query (builtins start with `__`).
fn variable_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('$') {
        let rest = &text[i + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && bytes.get(i.wrapping_sub(1)) != Some(&b'$') {
            out.insert(name);
        }
    }
    out
}

fn query_texts(dash: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in data_panels(dash) {
        for t in targets(p) {
            if let Some(e) = t["expr"].as_str() {
                out.push(e.to_string());
            }
        }
    }
    out
}

#[test]
fn template_variables_are_label_values_queries_and_used_by_the_panels() {
    let builtins = ["__rate_interval", "__interval", "__range", "__range_s"];
    let mut seen = BTreeSet::new();
    for (name, dash) in dashboards() {
        let vars = dash["templating"]["list"].as_array().unwrap();
        let defined: BTreeSet<String> = vars
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        for v in vars {
            let q = v["definition"].as_str().unwrap_or_default();
            assert!(
                q.starts_with("label_values(") && v["query"]["query"] == q,
                "{name}: variable {} is not a label_values query: {v}",
                v["name"]
            );
            for used in variable_refs(q) {
                assert!(
                    defined.contains(&used),
                    "{name}: {q} uses undefined ${used}"
                );
            }
        }
        let used: BTreeSet<String> = query_texts(&dash)
            .iter()
            .flat_map(|q| variable_refs(q))
            .collect();
        for u in &used {
            assert!(
                defined.contains(u) || builtins.contains(&u.as_str()),
                "{name}: ${u} is neither a dashboard variable nor a Grafana builtin"
            );
        }
        for d in &defined {
            assert!(
                used.contains(d),
                "{name}: variable ${d} is used by no panel"
            );
        }
        seen.extend(defined);
    }
    assert!(
        seen.contains("instance") && seen.contains("route"),
        "{seen:?}"
    );
}

/// Whether `word` occurs in `text` as a whole identifier (not as part of a longer name, and
/// not as a `$variable`).
fn has_identifier(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| ident(c) || c == '$') && !after.is_some_and(ident)
    })
}

#[test]
fn metric_and_label_names_come_only_from_vars_http_metrics() {
    let mut stack = reference_stack();
    stack["vars"]["http_metrics"] = json!({
        "requests_total": "svc_requests_total",
        "duration_seconds": "svc_latency_seconds",
        "method_label": "verb",
        "route_label": "path",
        "status_label": "code",
    });
    let renamed = dashboards_with(&context_for(&stack));
    let mut all = String::new();
    for (name, dash) in &renamed {
        let mut texts = query_texts(dash);
        for v in dash["templating"]["list"].as_array().unwrap() {
            texts.push(v["definition"].as_str().unwrap().to_string());
        }
        for p in data_panels(dash) {
            for t in targets(p) {
                texts.push(t["legendFormat"].as_str().unwrap_or_default().to_string());
            }
        }
        for text in texts {
            for default in [
                "http_requests_total",
                "http_request_duration_seconds",
                "method",
                "route",
                "status_code",
            ] {
                assert!(
                    !has_identifier(&text, default),
                    "{name}: {default:?} is hard-coded in {text:?}"
                );
            }
            all.push_str(&text);
            all.push('\n');
        }
    }
    for renamed in [
        "svc_requests_total",
        "svc_latency_seconds_bucket",
        "verb",
        "path",
        "code",
    ] {
        assert!(has_identifier(&all, renamed), "{renamed} never used");
    }
}

/// CloudWatch names as AWS documents them: (namespace, metric, dimension sets the metric is
/// published with). Sources, by AWS documentation page:
/// - "Amazon ECS CloudWatch metrics" (Amazon ECS Developer Guide, available-metrics):
///   AWS/ECS CPUUtilization and MemoryUtilization with ClusterName, ServiceName.
/// - "Amazon ECS Container Insights metrics" (CloudWatch User Guide,
///   Container-Insights-metrics-ECS): ECS/ContainerInsights task counts, CpuUtilized/Reserved,
///   MemoryUtilized/Reserved, Network{Rx,Tx}Bytes, Storage{Read,Write}Bytes with
///   ClusterName, ServiceName (also ClusterName alone or with TaskDefinitionFamily).
/// - "CloudWatch metrics for your Application Load Balancer" (Elastic Load Balancing User
///   Guide, load-balancer-cloudwatch-metrics): AWS/ApplicationELB with LoadBalancer
///   (value `app/NAME/ID`).
/// - "Amazon CloudWatch metrics for Amazon RDS" (Amazon RDS User Guide, rds-metrics):
///   AWS/RDS instance metrics with DBInstanceIdentifier.
const CLOUDWATCH: &[(&str, &[&str], &[&str])] = &[
    (
        "AWS/ECS",
        &["CPUUtilization", "MemoryUtilization"],
        &["ClusterName", "ServiceName"],
    ),
    (
        "ECS/ContainerInsights",
        &[
            "RunningTaskCount",
            "DesiredTaskCount",
            "PendingTaskCount",
            "CpuUtilized",
            "CpuReserved",
            "MemoryUtilized",
            "MemoryReserved",
            "NetworkRxBytes",
            "NetworkTxBytes",
            "StorageReadBytes",
            "StorageWriteBytes",
        ],
        &["ClusterName", "ServiceName"],
    ),
    (
        "AWS/ApplicationELB",
        &[
            "RequestCount",
            "HTTPCode_Target_5XX_Count",
            "HTTPCode_ELB_5XX_Count",
            "TargetResponseTime",
            "ActiveConnectionCount",
            "NewConnectionCount",
        ],
        &["LoadBalancer"],
    ),
    (
        "AWS/RDS",
        &[
            "DatabaseConnections",
            "ReadLatency",
            "WriteLatency",
            "FreeStorageSpace",
            "CPUUtilization",
            "FreeableMemory",
        ],
        &["DBInstanceIdentifier"],
    ),
];

fn valid_statistic(s: &str) -> bool {
    ["Average", "Sum", "Minimum", "Maximum", "SampleCount"].contains(&s)
        || s.strip_prefix('p')
            .is_some_and(|n| n.parse::<f64>().is_ok_and(|n| n > 0.0 && n < 100.0))
}

#[test]
fn cloudwatch_targets_use_documented_namespaces_metrics_and_dimensions() {
    let stack = reference_stack();
    let backend = &stack["vars"]["backend"];
    // The `LoadBalancer` dimension is the ARN's part after `loadbalancer/`.
    let expected_values: BTreeMap<&str, String> = [
        (
            "ClusterName",
            backend["cluster"].as_str().unwrap().to_string(),
        ),
        (
            "ServiceName",
            backend["service"].as_str().unwrap().to_string(),
        ),
        (
            "DBInstanceIdentifier",
            backend["rds_instance"].as_str().unwrap().to_string(),
        ),
        (
            "LoadBalancer",
            "app/application-load-balancer/50dc6c495c0c9188".to_string(),
        ),
    ]
    .into();
    let mut namespaces = BTreeSet::new();
    for (name, dash) in dashboards() {
        for p in data_panels(&dash) {
            for t in targets(p) {
                if t["datasource"]["type"] != "cloudwatch" {
                    continue;
                }
                let at = format!("{name}: {:?} {}", title(p), t["refId"]);
                let ns = t["namespace"].as_str().unwrap_or_default();
                let metric = t["metricName"].as_str().unwrap_or_default();
                let (_, metrics, dims) = CLOUDWATCH
                    .iter()
                    .find(|(n, _, _)| *n == ns)
                    .unwrap_or_else(|| panic!("{at}: undocumented namespace {ns:?}"));
                assert!(metrics.contains(&metric), "{at}: {metric} not in {ns}");
                let keys: BTreeSet<&str> = t["dimensions"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{at}: no dimensions"))
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, dims.iter().copied().collect(), "{at}: dimensions");
                for (k, v) in t["dimensions"].as_object().unwrap() {
                    assert_eq!(
                        v.as_str(),
                        Some(expected_values[k.as_str()].as_str()),
                        "{at}"
                    );
                }
                let stat = t["statistic"].as_str().unwrap_or_default();
                assert!(valid_statistic(stat), "{at}: statistic {stat:?}");
                assert_eq!(t["queryMode"], "Metrics", "{at}");
                assert_eq!(t["matchExact"], true, "{at}");
                namespaces.insert(ns.to_string());
            }
        }
    }
    assert_eq!(
        namespaces.len(),
        CLOUDWATCH.len(),
        "every namespace is shown"
    );
}

#[test]
fn datasources_reach_monitoring_services_by_name_with_the_password_from_the_environment() {
    let text = render("grafana/datasources.yml");
    assert!(text.starts_with("# Rendered by deploy"), "{text}");
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(doc["apiVersion"], 1);
    let by_type = |ty: &str| {
        doc["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} data source in\n{text}"))
            .clone()
    };
    let prom = by_type("prometheus");
    assert_eq!(prom["url"], "https://prometheus.monitoring.internal:9090");
    assert_eq!(prom["isDefault"], true);
    assert_eq!(prom["jsonData"]["timeInterval"], "15s");
    let am = by_type("alertmanager");
    assert_eq!(am["url"], "https://prometheus.monitoring.internal:9093");
    for ds in [&prom, &am] {
        assert_eq!(ds["basicAuth"], true);
        assert_eq!(ds["basicAuthUser"], "grafana");
        // A reference Grafana expands from its environment, never a literal password.
        assert_eq!(
            ds["secureJsonData"]["basicAuthPassword"],
            "$PROMETHEUS_BASIC_AUTH_PASSWORD"
        );
    }
    let cw = by_type("cloudwatch");
    assert_eq!(cw["jsonData"]["defaultRegion"], "us-west-2");
    assert_eq!(cw["jsonData"]["authType"], "default");

    let text = render("grafana/dashboards.yml");
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let providers = doc["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["type"], "file");
    // The provider reads where the Grafana container writes every dashboard.
    let path = providers[0]["options"]["path"].as_str().unwrap();
    assert_eq!(path, "/etc/grafana/provisioning/dashboards/deploy");
    let stack = common::render::reference_stack();
    let files = &stack["task_definitions"]["grafana"]["containers"]["grafana"]["files"];
    let mut delivered: Vec<&str> = files
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, template)| template.as_str().unwrap().starts_with("dashboards/"))
        .map(|(at, _)| at.strip_prefix(&format!("{path}/")).unwrap_or(at))
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            "http.json",
            "infrastructure.json",
            "overview.json",
            "runtime.json"
        ]
    );
    for (at, template) in files.as_object().unwrap() {
        if at.contains("/provisioning/datasources/") {
            assert_eq!(template, "grafana/datasources.yml");
        }
    }
}

/// The names and the user the data sources use are the ones the secrets are generated for:
/// the stack writes each twice (vars for the templates, generate for the secret).
#[test]
fn datasource_names_and_user_match_the_generated_certificate_and_credentials() {
    let stack = common::render::reference_stack();
    let text = render("grafana/datasources.yml");
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let cert_names: Vec<&str> = stack["secrets"]["prometheus_tls"]["generate"]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let user = &stack["secrets"]["prometheus_auth"]["generate"]["username"];
    for ds in doc["datasources"].as_array().unwrap() {
        if ds["basicAuth"] != true {
            continue;
        }
        assert_eq!(&ds["basicAuthUser"], user, "{ds}");
        let server = ds["jsonData"]["serverName"].as_str().unwrap();
        assert!(
            cert_names.contains(&server),
            "{server} not in {cert_names:?}"
        );
        let host = ds["url"]
            .as_str()
            .unwrap()
            .trim_start_matches("https://")
            .split(':')
            .next()
            .unwrap();
        assert_eq!(host, server, "{ds}");
    }
    // Grafana's own certificate names the host its listener rule answers to.
    let host = stack["listener_rules"]["grafana"]["host_headers"][0]
        .as_str()
        .unwrap();
    let grafana_names = &stack["secrets"]["grafana_tls"]["generate"]["names"];
    assert!(
        grafana_names.as_array().unwrap().iter().any(|n| n == host),
        "{grafana_names}"
    );
    let env = &stack["task_definitions"]["grafana"]["containers"]["grafana"]["environment"];
    assert_eq!(env["GF_SERVER_ROOT_URL"], format!("https://{host}/"));
}
