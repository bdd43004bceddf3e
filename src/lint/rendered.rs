//! The lint rules over what the stack's containers run with: Prometheus's, Alertmanager's and
//! Grafana's arguments, environment and rendered configuration files. Findings in a rendered
//! file point at its template's line under templates/, never at the rendered copy.

use super::{Finding, Input};
use crate::model::{Address, Kind};
use crate::spec::{ContainerSpec, RenderedFile};
use serde_json::Value;

/// Which program a container runs, by its image.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Program {
    Prometheus,
    Alertmanager,
    Grafana,
    Other,
}

fn program(image: &str) -> Program {
    let repo = image.split(['@']).next().unwrap_or(image);
    let name = repo.rsplit('/').next().unwrap_or(repo);
    let name = name.split(':').next().unwrap_or(name);
    match name {
        "prometheus" => Program::Prometheus,
        "alertmanager" => Program::Alertmanager,
        "grafana" | "grafana-oss" | "grafana-enterprise" => Program::Grafana,
        _ => Program::Other,
    }
}

/// One container under check.
struct Container<'a> {
    task: &'a str,
    name: &'a str,
    spec: &'a ContainerSpec,
    address: String,
    /// `task_definitions.T.containers.C`.
    path: String,
}

impl Container<'_> {
    fn who(&self) -> String {
        format!("container `{}` of task `{}`", self.name, self.task)
    }

    /// The value of `--flag=value` or `--flag value`, and the index of the argument.
    fn arg(&self, flag: &str) -> Option<(usize, String)> {
        let args = &self.spec.args;
        args.iter().enumerate().find_map(|(n, a)| {
            if let Some(v) = a.strip_prefix(flag).and_then(|rest| rest.strip_prefix('=')) {
                Some((n, v.to_string()))
            } else if a == flag {
                Some((n, args.get(n + 1).cloned().unwrap_or_default()))
            } else {
                None
            }
        })
    }

    /// The file the stack delivers at `path` in this container.
    fn file<'b>(&self, i: &'b Input<'_>, path: &str) -> Option<&'b RenderedFile> {
        i.built
            .files
            .iter()
            .find(|f| f.task == self.task && f.container == self.name && f.path == path)
    }
}

pub fn files(i: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (t, td) in &i.loaded.stack.task_definitions {
        for (c, spec) in &td.containers {
            let k = Container {
                task: t,
                name: c,
                spec,
                address: Address::new(Kind::TaskDefinition, t).to_string(),
                path: format!("task_definitions.{t}.containers.{c}"),
            };
            match program(&spec.image) {
                Program::Prometheus => prometheus(i, &k, &mut out),
                Program::Alertmanager => alertmanager(i, &k, &mut out),
                Program::Grafana => grafana(i, &k, &mut out),
                Program::Other => {}
            }
        }
    }
    out
}

/// Parses a rendered YAML file (secret markers shown as `<secret:NAME>`).
fn parse(f: &RenderedFile) -> Option<Value> {
    serde_saphyr::from_str::<Value>(&crate::render::shown_content(&f.content)).ok()
}

/// DL030 / DL040: served over HTTPS with basic auth, from the web config file.
fn web_config(i: &Input<'_>, k: &Container<'_>, rule: &'static str, out: &mut Vec<Finding>) {
    let Some((n, path)) = k.arg("--web.config.file") else {
        out.push(i.at_stack(
            rule,
            k.address.clone(),
            &format!("{}.args", k.path),
            format!(
                "{} has no --web.config.file: it serves plain HTTP to anyone",
                k.who()
            ),
        ));
        return;
    };
    let Some(f) = k.file(i, &path) else {
        out.push(i.at_stack(
            rule,
            k.address.clone(),
            &format!("{}.args.{n}", k.path),
            format!("{} reads its web config from {path}, which the stack does not deliver (under `files:`)", k.who()),
        ));
        return;
    };
    let doc = parse(f).unwrap_or(Value::Null);
    let tls = &doc["tls_server_config"];
    let has_cert = [&tls["cert_file"], &tls["cert"]]
        .iter()
        .any(|v| v.as_str().is_some_and(|s| !s.is_empty()));
    let has_users = doc["basic_auth_users"]
        .as_object()
        .is_some_and(|m| !m.is_empty());
    for (missing, key, consequence) in [
        (!has_cert, "tls_server_config", "serves plain HTTP"),
        (!has_users, "basic_auth_users", "answers anyone"),
    ] {
        if missing {
            out.push(i.at_template(
                rule,
                k.address.clone(),
                &f.template,
                key,
                format!(
                    "{} ({}) has no {key}: {} {consequence}",
                    f.template,
                    f.path,
                    k.who()
                ),
            ));
        }
    }
}

fn prometheus(i: &Input<'_>, k: &Container<'_>, out: &mut Vec<Finding>) {
    web_config(i, k, "DL030", out);
    for flag in ["--web.enable-admin-api", "--web.enable-lifecycle"] {
        if let Some(n) = k
            .spec
            .args
            .iter()
            .position(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            out.push(i.at_stack(
                "DL031",
                k.address.clone(),
                &format!("{}.args.{n}", k.path),
                format!("{} turns on {flag}", k.who()),
            ));
        }
    }
    let missing: Vec<&str> = [
        "--storage.tsdb.retention.time",
        "--storage.tsdb.retention.size",
    ]
    .into_iter()
    .filter(|f| k.arg(f).is_none_or(|(_, v)| v.is_empty()))
    .collect();
    if !missing.is_empty() {
        out.push(i.at_stack(
            "DL062",
            k.address.clone(),
            &format!("{}.args", k.path),
            format!("{} has no {}", k.who(), missing.join(" and no ")),
        ));
    }
    let config = k
        .arg("--config.file")
        .map(|(_, p)| p)
        .unwrap_or_else(|| "/etc/prometheus/prometheus.yml".into());
    if let Some(f) = k.file(i, &config) {
        if let Some(doc) = parse(f) {
            scrape_configs(i, k, f, &doc, out);
            credentials(i, k, f, &doc, PROMETHEUS_CREDENTIALS, "DL034", out);
        }
    }
}

/// Keys that hold a credential in Prometheus's configuration (each has a `*_file` twin).
const PROMETHEUS_CREDENTIALS: &[&str] =
    &["password", "credentials", "bearer_token", "client_secret"];

/// Keys that hold a credential in Alertmanager's configuration (each has a `*_file` twin, or
/// is given by a file through the start script).
const ALERTMANAGER_CREDENTIALS: &[&str] = &[
    "api_url",
    "slack_api_url",
    "routing_key",
    "service_key",
    "auth_password",
    "auth_secret",
    "smtp_auth_password",
    "smtp_auth_secret",
    "api_key",
    "opsgenie_api_key",
    "victorops_api_key",
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "bot_token",
    "token",
];

/// DL034 / DL042: a credential key with a value written into the file (a `<secret:…>`
/// filled in at container start is not written: it never enters the task definition).
fn credentials(
    i: &Input<'_>,
    k: &Container<'_>,
    f: &RenderedFile,
    doc: &Value,
    keys: &[&str],
    rule: &'static str,
    out: &mut Vec<Finding>,
) {
    fn walk(v: &Value, keys: &[&str], found: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (key, val) in m {
                    let written = val
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty() && !s.trim().starts_with("<secret:"));
                    if keys.contains(&key.as_str()) && written {
                        found.push(key.clone());
                    }
                    walk(val, keys, found);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, keys, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(doc, keys, &mut found);
    for key in found {
        out.push(i.at_template(
            rule,
            k.address.clone(),
            &f.template,
            &format!("{key}:"),
            format!(
                "{} ({}) of {} writes `{key}` into the file (the value is not repeated): use `{key}_file` and a `secret_files:` entry",
                f.template,
                f.path,
                k.who()
            ),
        ));
    }
}

/// A Prometheus duration (`15s`, `1m30s`, `500ms`) in milliseconds.
pub fn duration_ms(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total += n * ms;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A scrape whose every target is this task (Prometheus itself): not a backend scrape.
fn is_local(sc: &Value) -> bool {
    let statics = sc["static_configs"].as_array();
    let only_static = sc
        .as_object()
        .is_some_and(|m| !m.keys().any(|k| k.ends_with("_sd_configs")));
    only_static
        && statics.is_some_and(|s| {
            s.iter()
                .flat_map(|c| c["targets"].as_array().into_iter().flatten())
                .all(|t| {
                    t.as_str()
                        .is_some_and(|t| t.starts_with("localhost:") || t.starts_with("127.0.0.1:"))
                })
        })
}

/// The label names a `labeldrop` regex drops, when it is an alternation of plain names
/// (`email|user_id`, `(email|user_id)`); other regexes drop nothing this check can tell.
fn dropped_labels(sc: &Value) -> Vec<String> {
    sc["metric_relabel_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"].as_str() == Some("labeldrop"))
        .filter_map(|r| r["regex"].as_str())
        .flat_map(|re| {
            let re = re.trim().trim_start_matches('(').trim_end_matches(')');
            re.split('|')
                .map(str::trim)
                .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn scrape_configs(
    i: &Input<'_>,
    k: &Container<'_>,
    f: &RenderedFile,
    doc: &Value,
    out: &mut Vec<Finding>,
) {
    let global = &doc["global"];
    let global_interval = global["scrape_interval"].as_str().unwrap_or("1m");
    let global_timeout = global["scrape_timeout"].as_str().unwrap_or("10s");
    let sensitive: Vec<String> = i
        .loaded
        .stack
        .vars
        .get("sensitive_labels")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut said_no_list = false;
    for sc in doc["scrape_configs"].as_array().into_iter().flatten() {
        let job = sc["job_name"].as_str().unwrap_or("?");
        let at = format!("job_name: {job}");
        let here = |rule: &'static str, needle: &str, message: String| {
            let needle = if super::template_line(
                &std::fs::read_to_string(i.templates.join(&f.template)).unwrap_or_default(),
                needle,
            )
            .is_some()
            {
                needle.to_string()
            } else {
                at.clone()
            };
            i.at_template(rule, k.address.clone(), &f.template, &needle, message)
        };
        let scrape = format!("scrape `{job}` in {} ({})", f.template, f.path);
        if sc["scheme"].as_str().unwrap_or("http") != "https" {
            out.push(here("DL035", &at, format!("{scrape} uses plain HTTP")));
        }
        let interval = sc["scrape_interval"].as_str().unwrap_or(global_interval);
        let timeout = sc["scrape_timeout"].as_str().unwrap_or(global_timeout);
        if let (Some(iv), Some(to)) = (duration_ms(interval), duration_ms(timeout)) {
            if to > iv {
                out.push(here(
                    "DL033",
                    "scrape_timeout",
                    format!(
                        "{scrape} times out after {timeout}, longer than its interval {interval}"
                    ),
                ));
            }
        }
        if is_local(sc) {
            continue;
        }
        let missing: Vec<&str> = ["sample_limit", "label_limit"]
            .into_iter()
            .filter(|key| sc[*key].as_u64().is_none_or(|n| n == 0))
            .collect();
        if !missing.is_empty() {
            out.push(here(
                "DL032",
                &at,
                format!("{scrape} has no {}", missing.join(" and no ")),
            ));
        }
        if sc["label_value_length_limit"]
            .as_u64()
            .is_none_or(|n| n == 0)
        {
            out.push(here(
                "DL060",
                &at,
                format!("{scrape} has no label_value_length_limit"),
            ));
        }
        if sensitive.is_empty() {
            if !said_no_list {
                said_no_list = true;
                out.push(i.at_stack(
                    "DL061",
                    "lint".into(),
                    "vars",
                    "the stack lists no sensitive label names (vars.sensitive_labels: [email, user_id, token, authorization, …]) for the backend scrapes to drop".into(),
                ));
            }
            continue;
        }
        let dropped = dropped_labels(sc);
        let kept: Vec<&str> = sensitive
            .iter()
            .filter(|l| !dropped.contains(l))
            .map(String::as_str)
            .collect();
        if !kept.is_empty() {
            out.push(here(
                "DL061",
                "labeldrop",
                format!("{scrape} keeps the sensitive labels {}", kept.join(", ")),
            ));
        }
    }
}

fn alertmanager(i: &Input<'_>, k: &Container<'_>, out: &mut Vec<Finding>) {
    web_config(i, k, "DL040", out);
    let s = &i.loaded.stack;
    let replicas = s
        .services
        .values()
        .filter(|svc| svc.task_definition == k.task)
        .map(|svc| svc.desired_count)
        .max()
        .unwrap_or(1);
    let gossip_off = k
        .arg("--cluster.listen-address")
        .is_some_and(|(_, v)| v.is_empty());
    if replicas <= 1 && !gossip_off {
        out.push(i.at_stack(
            "DL041",
            k.address.clone(),
            &format!("{}.args", k.path),
            format!("{} is the only Alertmanager but listens for gossip peers (no empty --cluster.listen-address=)", k.who()),
        ));
    }
    let config = k
        .arg("--config.file")
        .map(|(_, p)| p)
        .unwrap_or_else(|| "/etc/alertmanager/alertmanager.yml".into());
    if let Some(f) = k.file(i, &config) {
        if let Some(doc) = parse(f) {
            credentials(i, k, f, &doc, ALERTMANAGER_CREDENTIALS, "DL042", out);
        }
    }
}

fn grafana(i: &Input<'_>, k: &Container<'_>, out: &mut Vec<Finding>) {
    let env = &k.spec.environment;
    let env_path = |name: &str| {
        if env.contains_key(name) {
            format!("{}.environment.{name}", k.path)
        } else {
            format!("{}.environment", k.path)
        }
    };
    let is_true = |name: &str| {
        env.get(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    if is_true("GF_AUTH_ANONYMOUS_ENABLED") {
        out.push(i.at_stack(
            "DL050",
            k.address.clone(),
            &env_path("GF_AUTH_ANONYMOUS_ENABLED"),
            format!("{} lets anonymous users in", k.who()),
        ));
    }
    if is_true("GF_USERS_ALLOW_SIGN_UP") {
        out.push(i.at_stack(
            "DL051",
            k.address.clone(),
            &env_path("GF_USERS_ALLOW_SIGN_UP"),
            format!("{} lets anyone sign up", k.who()),
        ));
    }
    let admin = "GF_SECURITY_ADMIN_PASSWORD";
    if !k.spec.secrets.contains_key(admin) {
        out.push(i.at_stack(
            "DL052",
            k.address.clone(),
            &env_path(admin),
            format!("{} does not take {admin} from `secrets:` (without it Grafana's admin password is `admin`)", k.who()),
        ));
    }
    if !is_true("GF_SECURITY_COOKIE_SECURE") {
        out.push(i.at_stack(
            "DL053",
            k.address.clone(),
            &env_path("GF_SECURITY_COOKIE_SECURE"),
            format!(
                "{} sends its session cookie without the Secure flag",
                k.who()
            ),
        ));
    }
    root_url(i, k, &env_path("GF_SERVER_ROOT_URL"), out);
    for f in i.built.files.iter().filter(|f| {
        f.task == k.task && f.container == k.name && f.path.contains("/provisioning/datasources/")
    }) {
        if let Some(doc) = parse(f) {
            data_sources(i, k, f, &doc, out);
        }
    }
}

/// DL054: HTTPS, on a host the listener rule forwards to this task's target group.
fn root_url(i: &Input<'_>, k: &Container<'_>, path: &str, out: &mut Vec<Finding>) {
    let s = &i.loaded.stack;
    let url = k
        .spec
        .environment
        .get("GF_SERVER_ROOT_URL")
        .map(|u| u.trim());
    let hosts: Vec<&String> = s
        .services
        .values()
        .filter(|svc| svc.task_definition == k.task)
        .flat_map(|svc| svc.load_balancers.iter())
        .filter(|lb| lb.container == k.name)
        .flat_map(|lb| {
            s.listener_rules
                .values()
                .filter(move |r| r.target_group == lb.target_group)
        })
        .flat_map(|r| r.host_headers.iter())
        .collect();
    let problem = match url {
        None => Some("has no GF_SERVER_ROOT_URL".to_string()),
        Some(u) => match u.strip_prefix("https://") {
            None => Some(format!("has root_url {u}, not HTTPS")),
            Some(rest) => {
                let host = rest.split(['/', ':']).next().unwrap_or(rest);
                (!hosts.is_empty() && !hosts.iter().any(|h| h.as_str() == host)).then(|| {
                    let list: Vec<&str> = hosts.iter().map(|h| h.as_str()).collect();
                    format!(
                        "has root_url on host {host}, but the listener rule forwards {}",
                        list.join(", ")
                    )
                })
            }
        },
    };
    if let Some(p) = problem {
        out.push(i.at_stack("DL054", k.address.clone(), path, format!("{} {p}", k.who())));
    }
}

/// DL055: every HTTP data source over HTTPS, verifying TLS, with authentication.
fn data_sources(
    i: &Input<'_>,
    k: &Container<'_>,
    f: &RenderedFile,
    doc: &Value,
    out: &mut Vec<Finding>,
) {
    for ds in doc["datasources"].as_array().into_iter().flatten() {
        let Some(url) = ds["url"].as_str() else {
            continue; // AWS data sources (CloudWatch) sign their calls; there is no URL.
        };
        let name = ds["name"].as_str().unwrap_or("?");
        let json = &ds["jsonData"];
        let mut problems = Vec::new();
        if !url.starts_with("https://") {
            problems.push(format!("its URL {url} is not HTTPS"));
        }
        if json["tlsSkipVerify"].as_bool() == Some(true) {
            problems.push("it skips TLS verification".to_string());
        }
        let authenticated = ds["basicAuth"].as_bool() == Some(true)
            || json["oauthPassThru"].as_bool() == Some(true)
            || json["sigV4Auth"].as_bool() == Some(true)
            || json["tlsAuth"].as_bool() == Some(true)
            || json["httpHeaderName1"].is_string();
        if !authenticated {
            problems.push("it sends no credentials".to_string());
        }
        if !problems.is_empty() {
            out.push(i.at_template(
                "DL055",
                k.address.clone(),
                &f.template,
                &format!("name: {name}"),
                format!(
                    "data source `{name}` in {} ({}): {}",
                    f.template,
                    f.path,
                    problems.join("; ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::duration_ms;

    #[test]
    fn prometheus_durations() {
        assert_eq!(duration_ms("15s"), Some(15_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("1h"), Some(3_600_000));
        assert_eq!(duration_ms("fast"), None);
        assert_eq!(duration_ms(""), None);
    }
}
