//! The compact plan view (the default), so a reviewer can read every resource and every changed
//! attribute: a delivered file is one line (container path, bytes, the first 12 hex digits of
//! its sha256; `deploy render` writes it in full) and, on update, a unified diff; an IAM policy
//! is one line per statement; a security group one line per rule; a container its image, size,
//! ports, program and the names (never the values) of its environment and secrets. `--full`
//! prints the values instead (the parent module).

use crate::model::{Container, Kind, Rule};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// How many hex digits of a delivered file's sha256 the plan shows.
const SHA_DIGITS: usize = 12;

/// The lines an attribute reads as in the compact view, when it has a line form: IAM policy
/// documents (one line per statement, prefixed with the policy's name for inline policies) and
/// security group rules (one line per rule). `None`: the attribute is shown as its value.
pub(super) fn lines(kind: Kind, attr: &str, value: Option<&Value>) -> Option<Vec<String>> {
    let value = value.unwrap_or(&Value::Null);
    match (kind, attr) {
        (Kind::IamRole, "assume_role_policy") => Some(policy_lines(value)),
        (Kind::IamRole, "inline_policies") => {
            let docs: BTreeMap<String, Value> = match value {
                Value::Null => BTreeMap::new(),
                v => serde_json::from_value(v.clone()).ok()?,
            };
            let mut lines = Vec::new();
            for (name, doc) in &docs {
                let statements = policy_lines(doc);
                if statements.is_empty() {
                    lines.push(format!("{name}: (no statements)"));
                }
                lines.extend(statements.iter().map(|l| format!("{name}: {l}")));
            }
            Some(lines)
        }
        (Kind::SecurityGroup, "ingress" | "egress") => {
            let rules: Vec<Rule> = match value {
                Value::Null => Vec::new(),
                v => serde_json::from_value(v.clone()).ok()?,
            };
            Some(rules.iter().map(Rule::to_string).collect())
        }
        _ => None,
    }
}

/// One line per statement of a policy document, plus any top-level key besides `Statement`
/// and the usual `Version`.
fn policy_lines(doc: &Value) -> Vec<String> {
    let statements = match &doc["Statement"] {
        Value::Array(list) => list.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    let mut lines: Vec<String> = statements.into_iter().map(statement_line).collect();
    if let Value::Object(m) = doc {
        for (k, v) in m {
            let usual = k == "Statement" || (k == "Version" && v == "2012-10-17");
            if !usual {
                lines.push(format!("{k}: {v}"));
            }
        }
    }
    lines
}

/// A statement as `[Sid] Effect ACTIONS by PRINCIPAL on RESOURCES when CONDITION`; keys it
/// does not know are appended as `Key: JSON`, so nothing in a statement goes unseen.
fn statement_line(statement: &Value) -> String {
    let Value::Object(m) = statement else {
        return statement.to_string();
    };
    let list = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let principal = |v: &Value| match v {
        Value::Object(p) => p
            .iter()
            .map(|(k, v)| format!("{k} {}", list(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => list(other),
    };
    let mut parts = Vec::new();
    if let Some(sid) = m.get("Sid") {
        parts.push(format!("[{}]", list(sid)));
    }
    parts.push(m.get("Effect").map_or_else(|| "?".to_string(), list));
    type Show<'a> = &'a dyn Fn(&Value) -> String;
    let known: [(&str, &str, Show); 7] = [
        ("Action", "", &list),
        ("NotAction", "every action but ", &list),
        ("Principal", "by ", &principal),
        ("NotPrincipal", "by anyone but ", &principal),
        ("Resource", "on ", &list),
        ("NotResource", "on everything but ", &list),
        ("Condition", "when ", &|v: &Value| v.to_string()),
    ];
    for (key, lead, show) in known {
        if let Some(v) = m.get(key) {
            parts.push(format!("{lead}{}", show(v)));
        }
    }
    for (k, v) in m {
        if k != "Sid" && k != "Effect" && !known.iter().any(|(key, ..)| key == k) {
            parts.push(format!("{k}: {v}"));
        }
    }
    parts.join(" ")
}

/// A word as a shell would need it: bare when it is plainly one word, else quoted.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What identifies a delivered file in the compact view: `N bytes, sha256 0123456789ab` of
/// the file as `deploy render` writes it, and the secrets the container fills in at start
/// (a file that is one secret's value is named as such: its bytes are not known here).
fn file_line(content: &str, secrets: &[String]) -> String {
    if let [only] = secrets {
        if content == format!("<secret:{only}>") {
            return format!("the value of secret {only}");
        }
    }
    let digest = Sha256::digest(content.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let with = if secrets.is_empty() {
        String::new()
    } else {
        format!(", with secret {} filled in at start", secrets.join(", "))
    };
    format!(
        "{} bytes, sha256 {}{with}",
        content.len(),
        &hex[..SHA_DIGITS]
    )
}

/// One container as the compact view reads it. Built by destructuring every field of
/// [`Container`], so a field added there fails to compile here until it is shown.
struct ContainerView {
    name: String,
    /// `(what, text)` in reading order: image, essential, size, ports, user, runs, log,
    /// health check, mounts, start order.
    facts: Vec<(&'static str, String)>,
    /// Environment names → values (compared, never shown); delivered files' variables aside.
    environment: BTreeMap<String, String>,
    /// Secret variable names → where ECS reads them from (never a value).
    secrets: BTreeMap<String, String>,
    /// Delivered files: container path → content as `deploy render` writes it.
    files: BTreeMap<String, String>,
    /// Delivered files' secret variables: container path → names.
    file_secrets: BTreeMap<String, Vec<String>>,
}

impl ContainerView {
    fn of(c: &Container) -> ContainerView {
        let Container {
            name,
            image,
            essential,
            cpu,
            memory_reservation,
            user,
            entry_point,
            command,
            environment,
            secrets,
            port_mappings,
            log,
            health_check,
            mount_points,
            readonly_root_filesystem,
            capabilities_drop,
            depends_on,
        } = c;
        let script = command.first().map(String::as_str).unwrap_or("");
        let program = crate::render::delivered_program(script);
        let delivers = program.is_some()
            && entry_point == &["/bin/sh", "-c"]
            && command.get(1).map(String::as_str) == Some(crate::render::ARGV0);
        let runs: Vec<&str> = if delivers {
            program
                .into_iter()
                .chain(command[2..].iter().map(String::as_str))
                .collect()
        } else {
            entry_point
                .iter()
                .chain(command)
                .map(String::as_str)
                .collect()
        };
        let (files, file_secrets) = if delivers {
            (
                crate::render::delivered_files(script, environment),
                crate::render::delivered_file_secrets(script),
            )
        } else {
            (BTreeMap::new(), BTreeMap::new())
        };
        let mut facts = vec![
            ("image", image.clone()),
            (
                "essential",
                if *essential { "yes" } else { "no" }.to_string(),
            ),
            (
                "size",
                format!(
                    "cpu {cpu}, memory reservation {}",
                    memory_reservation.map_or_else(|| "none".to_string(), |m| format!("{m} MiB"))
                ),
            ),
            (
                "ports",
                if port_mappings.is_empty() {
                    "none".to_string()
                } else {
                    port_mappings
                        .iter()
                        .map(|p| format!("{}/{}", p.container_port, p.protocol))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
        ];
        if let Some(user) = user {
            facts.push(("user", user.clone()));
        }
        if *readonly_root_filesystem {
            facts.push(("root file system", "read-only".to_string()));
        }
        if !capabilities_drop.is_empty() {
            facts.push(("capabilities dropped", capabilities_drop.join(", ")));
        }
        if !runs.is_empty() {
            let words: Vec<String> = runs.iter().map(|w| shell_word(w)).collect();
            facts.push(("runs", words.join(" ")));
        }
        if let Some(log) = log {
            let options: Vec<String> = log
                .options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            facts.push(("log", format!("{} {}", log.driver, options.join(" "))));
        }
        if let Some(h) = health_check {
            facts.push((
                "health check",
                format!(
                    "{}; every {} s, timeout {} s, {} retries, start period {} s",
                    h.command.join(" "),
                    h.interval,
                    h.timeout,
                    h.retries,
                    h.start_period
                ),
            ));
        }
        if !mount_points.is_empty() {
            let mounts: Vec<String> = mount_points
                .iter()
                .map(|m| {
                    let ro = if m.read_only { " (read-only)" } else { "" };
                    format!("{} at {}{ro}", m.volume, m.path)
                })
                .collect();
            facts.push(("mounts", mounts.join(", ")));
        }
        if !depends_on.is_empty() {
            let after: Vec<String> = depends_on
                .iter()
                .map(|(name, condition)| format!("{name} is {}", condition.to_lowercase()))
                .collect();
            facts.push(("starts when", after.join(", ")));
        }
        let file_vars = |k: &String| delivers && k.starts_with("DEPLOY_FILE_");
        ContainerView {
            name: name.clone(),
            facts,
            environment: environment
                .iter()
                .filter(|(k, _)| !file_vars(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: secrets
                .iter()
                .map(|(k, s)| {
                    let key = s
                        .json_key
                        .as_ref()
                        .map(|k| format!(" key {k}"))
                        .unwrap_or_default();
                    (k.clone(), format!("{}{key}", s.from))
                })
                .collect(),
            files,
            file_secrets,
        }
    }

    fn file_line(&self, path: &str) -> String {
        let secrets = self
            .file_secrets
            .get(path)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        file_line(&self.files[path], secrets)
    }

    fn names(map: &BTreeMap<String, String>) -> String {
        if map.is_empty() {
            "none".into()
        } else {
            map.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    fn secret_list(secrets: &BTreeMap<String, String>) -> String {
        if secrets.is_empty() {
            "none".into()
        } else {
            secrets
                .iter()
                .map(|(k, from)| format!("{k} from {from}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The container as created: its name and image, then one line per fact, its environment
    /// and secret names, and one line per delivered file.
    fn created(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (what, text) in &self.facts {
            if *what == "image" {
                lines.push(format!("{}: {text}", self.name));
            } else {
                lines.push(format!("  {what}: {text}"));
            }
        }
        lines.push(format!("  environment: {}", Self::names(&self.environment)));
        lines.push(format!("  secrets: {}", Self::secret_list(&self.secrets)));
        for path in self.files.keys() {
            lines.push(format!("  file {path}: {}", self.file_line(path)));
        }
        lines
    }
}

fn parse_containers(v: Option<&Value>) -> Option<Vec<Container>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).ok(),
    }
}

/// The `containers` attribute of a created task definition; `None` when it does not read as
/// containers (the caller then shows it in full).
pub(super) fn containers_created(after: Option<&Value>) -> Option<Vec<String>> {
    let containers = parse_containers(after)?;
    Some(
        containers
            .iter()
            .flat_map(|c| ContainerView::of(c).created())
            .collect(),
    )
}

/// A changed `containers` attribute: containers added and removed, each fact that changed
/// (`~ prometheus image: A -> B`), environment and secret names added, removed or changed,
/// delivered files added or removed as one line and changed ones as unified diffs. `None`
/// when either side does not read as containers.
pub(super) fn containers_changed(before: Option<&Value>, after: Option<&Value>) -> Option<String> {
    let views = |v| -> Option<Vec<ContainerView>> {
        Some(parse_containers(v)?.iter().map(ContainerView::of).collect())
    };
    let (old, new) = (views(before)?, views(after)?);
    let mut out = String::new();
    let find = |list: &[ContainerView], name: &str| list.iter().position(|c| c.name == name);
    for c in &new {
        let Some(i) = find(&old, &c.name) else {
            for (n, line) in c.created().iter().enumerate() {
                let mark = if n == 0 { "+ container " } else { "  " };
                let _ = writeln!(out, "{mark}{line}");
            }
            continue;
        };
        container_changes(&old[i], c, &mut out);
    }
    for c in old.iter().filter(|c| find(&new, &c.name).is_none()) {
        let image = c.facts.first().map(|f| f.1.as_str()).unwrap_or("");
        let _ = writeln!(out, "- container {}: {image}", c.name);
    }
    Some(out)
}

fn container_changes(old: &ContainerView, new: &ContainerView, out: &mut String) {
    let name = &new.name;
    let fact = |v: &ContainerView, what: &str| {
        v.facts
            .iter()
            .find(|f| f.0 == what)
            .map_or_else(|| "(none)".to_string(), |f| f.1.clone())
    };
    let mut whats: Vec<&str> = new.facts.iter().map(|f| f.0).collect();
    whats.extend(
        old.facts
            .iter()
            .map(|f| f.0)
            .filter(|w| !whats.contains(w))
            .collect::<Vec<_>>(),
    );
    for what in whats {
        let (a, b) = (fact(old, what), fact(new, what));
        if a != b {
            let _ = writeln!(out, "~ {name} {what}: {a} -> {b}");
        }
    }
    for (k, change) in entry_changes(&old.environment, &new.environment) {
        let line = match change {
            (None, Some(_)) => format!("+ {name} environment {k}"),
            (Some(_), None) => format!("- {name} environment {k}"),
            _ => format!("~ {name} environment {k}: value changed (`--full` shows values)"),
        };
        let _ = writeln!(out, "{line}");
    }
    for (k, change) in entry_changes(&old.secrets, &new.secrets) {
        let line = match change {
            (None, Some(b)) => format!("+ {name} secret {k} from {b}"),
            (Some(a), None) => format!("- {name} secret {k} from {a}"),
            (a, b) => format!(
                "~ {name} secret {k}: from {} -> from {}",
                a.unwrap(),
                b.unwrap()
            ),
        };
        let _ = writeln!(out, "{line}");
    }
    for (path, change) in entry_changes(&old.files, &new.files) {
        match change {
            (None, Some(_)) => {
                let _ = writeln!(out, "+ {name} file {path}: {}", new.file_line(path));
            }
            (Some(_), None) => {
                let _ = writeln!(out, "- {name} file {path}: was {}", old.file_line(path));
            }
            (a, b) => {
                out.push_str(&super::unified(
                    &super::reviewable(path, a.unwrap()),
                    &super::reviewable(path, b.unwrap()),
                    &format!("{name}:{path} (live)"),
                    &format!("{name}:{path} (stack)"),
                ));
            }
        }
    }
}

/// An entry on each side of a change (`None`: absent there).
type Sides<'a> = (Option<&'a String>, Option<&'a String>);

/// The keys whose entries differ between two maps, with the entry on each side, in key order.
fn entry_changes<'a>(
    old: &'a BTreeMap<String, String>,
    new: &'a BTreeMap<String, String>,
) -> Vec<(&'a String, Sides<'a>)> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .map(|k| (k, (old.get(k), new.get(k))))
        .filter(|(_, (a, b))| a != b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_policy_is_one_line_per_statement() {
        let doc = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                 "Resource": ["arn:aws:logs:r:1:log-group:/a:*", "arn:aws:logs:r:1:log-group:/b:*"]},
                {"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "ecs-tasks.amazonaws.com"}},
                {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Sid": "tls"}
            ]
        });
        assert_eq!(
            policy_lines(&doc),
            [
                "Allow logs:CreateLogStream, logs:PutLogEvents on arn:aws:logs:r:1:log-group:/a:*, arn:aws:logs:r:1:log-group:/b:*",
                "Allow sts:AssumeRole by Service ecs-tasks.amazonaws.com",
                r#"[tls] Deny every action but s3:* on * when {"Bool":{"aws:SecureTransport":"false"}}"#,
            ]
        );
        let odd = json!({"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "*", "Extra": 1}});
        assert_eq!(
            policy_lines(&odd),
            ["Allow a:b on * Extra: 1", "Version: \"2008-10-17\""]
        );
    }

    #[test]
    fn inline_policies_and_rules_read_as_lines() {
        let policies = json!({"b": {"Statement": [{"Effect": "Allow", "Action": "x:Y", "Resource": "*"}]},
                              "a": {"Statement": []}});
        assert_eq!(
            lines(Kind::IamRole, "inline_policies", Some(&policies)).unwrap(),
            ["a: (no statements)", "b: Allow x:Y on *"]
        );
        let rules = json!([{"protocol": "tcp", "from_port": 9090, "to_port": 9090,
                            "peer": {"group": "security_group.grafana"}, "description": "Grafana"}]);
        assert_eq!(
            lines(Kind::SecurityGroup, "ingress", Some(&rules)).unwrap(),
            ["tcp/9090 security_group.grafana (Grafana)"]
        );
        assert_eq!(
            lines(Kind::LogGroup, "retention_days", Some(&json!(30))),
            None
        );
    }

    fn container(files: &[(&str, &str)], image: &str, env: &[(&str, &str)]) -> Value {
        let files: BTreeMap<String, String> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        let d = crate::render::deliver_files(
            &files,
            "/bin/prometheus",
            &["--config.file=/etc/prometheus/prometheus.yml".into()],
        )
        .unwrap();
        let mut environment = d.environment.clone();
        environment.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        json!([{
            "name": "prometheus", "image": image, "essential": true, "cpu": 0,
            "memory_reservation": null, "user": null,
            "entry_point": d.entry_point, "command": d.command, "environment": environment,
            "secrets": {"WEB_PASSWORD": {"from": "secret.prometheus_auth", "json_key": "password"}},
            "port_mappings": [{"container_port": 9090, "protocol": "tcp"}],
            "log": null, "health_check": null
        }])
    }

    #[test]
    fn a_container_shows_names_and_file_digests_never_values() {
        let secret = crate::render::secret_marker("WEB_PASSWORD");
        let web = format!("user: grafana\npassword: {secret}\n");
        let c = container(
            &[
                ("/etc/prometheus/prometheus.yml", "global: {}\n"),
                ("/etc/prometheus/web_password", &secret),
                ("/etc/prometheus/web.yml", &web),
            ],
            "prom/prometheus:v2.53.4",
            &[("TZ", "Europe/Berlin")],
        );
        let text = containers_created(Some(&c)).unwrap().join("\n");
        let sha = |content: &str| -> String {
            Sha256::digest(content.as_bytes())
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let web_as_rendered = "user: grafana\npassword: <secret:WEB_PASSWORD>\n";
        assert_eq!(
            text,
            format!(
                "prometheus: prom/prometheus:v2.53.4\n  essential: yes\n  size: cpu 0, memory reservation none\n  ports: 9090/tcp\n  runs: /bin/prometheus --config.file=/etc/prometheus/prometheus.yml\n  environment: TZ\n  secrets: WEB_PASSWORD from secret.prometheus_auth key password\n  file /etc/prometheus/prometheus.yml: 11 bytes, sha256 {}\n  file /etc/prometheus/web.yml: {} bytes, sha256 {}, with secret WEB_PASSWORD filled in at start\n  file /etc/prometheus/web_password: the value of secret WEB_PASSWORD",
                sha("global: {}\n"),
                web_as_rendered.len(),
                sha(web_as_rendered),
            )
        );
        assert!(!text.contains("Europe/Berlin"), "{text}");
    }

    #[test]
    fn a_changed_container_shows_what_changed_and_file_diffs() {
        let before = container(
            &[
                ("/etc/prometheus/prometheus.yml", "a: 1\nb: 2\n"),
                ("/etc/old.yml", "x\n"),
            ],
            "prom/prometheus:v2.53.4",
            &[("TZ", "UTC"), ("GONE", "1")],
        );
        let after = container(
            &[
                ("/etc/prometheus/prometheus.yml", "a: 1\nb: 3\n"),
                ("/etc/new.yml", "y\n"),
            ],
            "prom/prometheus:v3.0.0",
            &[("TZ", "Europe/Berlin"), ("NEW", "1")],
        );
        let text = containers_changed(Some(&before), Some(&after)).unwrap();
        assert!(
            text.contains(
                "~ prometheus image: prom/prometheus:v2.53.4 -> prom/prometheus:v3.0.0\n"
            ),
            "{text}"
        );
        assert!(text.contains("+ prometheus environment NEW\n"), "{text}");
        assert!(text.contains("- prometheus environment GONE\n"), "{text}");
        assert!(
            text.contains("~ prometheus environment TZ: value changed"),
            "{text}"
        );
        assert!(
            !text.contains("Europe/Berlin") && !text.contains("UTC"),
            "{text}"
        );
        assert!(
            text.contains("+ prometheus file /etc/new.yml: 2 bytes, sha256 "),
            "{text}"
        );
        assert!(
            text.contains("- prometheus file /etc/old.yml: was 2 bytes"),
            "{text}"
        );
        assert!(
            text.contains("--- prometheus:/etc/prometheus/prometheus.yml (live)"),
            "{text}"
        );
        assert!(
            text.contains("-b: 2") && text.contains("+b: 3") && text.contains(" a: 1"),
            "{text}"
        );
        assert!(
            !text.contains("runs:"),
            "the program did not change: {text}"
        );
        assert_eq!(
            containers_changed(Some(&before), Some(&before)).unwrap(),
            ""
        );
    }
}
