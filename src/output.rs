//! Human-readable plans and apply reports. The printers build strings; the caller decides
//! where they go (plans to stdout, progress to stderr).

mod compact;
mod markdown;

pub use compact::shell_word;
pub use markdown::{plan_markdown, COMMENT_LIMIT};

use crate::apply::{Outcome, Report};
use crate::plan::{Action, Cause, Change, Plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

fn cause_text(c: Option<Cause>) -> &'static str {
    match c {
        Some(Cause::New) | None => "",
        Some(Cause::StackEdit) => "  (changed in the stack)",
        Some(Cause::Drift) => "  (changed outside deploy)",
        Some(Cause::DriftAndStackEdit) => "  (changed outside deploy and in the stack)",
        Some(Cause::Removed) => "  (no longer in the stack)",
        Some(Cause::Import) => "  (adopted: ownership tags are added)",
        Some(Cause::Destroy) => "",
        Some(Cause::Dependency) => "  (follows a replacement it depends on)",
    }
}

/// A value on one line when short, else pretty JSON indented under its attribute (4 columns
/// deeper). An absent value and JSON null read the same (`(none)`): a saved plan keeps no
/// difference between them.
fn value(v: &Option<Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => return "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    };
    match v {
        Some(v @ (Value::Array(_) | Value::Object(_))) if text.len() > 80 => {
            let pretty = serde_json::to_string_pretty(v).expect("JSON value serializes");
            pretty.replace('\n', "\n    ")
        }
        _ => text,
    }
}

/// How output looks (decided once): whether it carries ANSI colours (`--color`, `NO_COLOR`),
/// and whether plans print every value in full (`--full`) or compactly (the default: files as
/// digests, policies and rules as lines, containers as what they run; see [`compact`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    pub full: bool,
}

impl Style {
    /// `always` and `never` decide; `auto` colours a terminal unless `NO_COLOR` is set
    /// (non-empty), as no-color.org asks.
    pub fn resolve(
        choice: crate::cli::ColorChoice,
        is_terminal: bool,
        no_color: Option<&str>,
    ) -> Style {
        use crate::cli::ColorChoice::*;
        let color = match choice {
            Always => true,
            Never => false,
            Auto => is_terminal && no_color.is_none_or(str::is_empty),
        };
        Style { color, full: false }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn action(self, c: &Change, text: &str) -> String {
        let code = match c.action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::NoOp => "0",
        };
        self.paint(code, text)
    }

    fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// A delivered file as a reviewer reads it: dashboards travel compact, a reviewer reads them
/// pretty.
fn reviewable(path: &str, content: &str) -> String {
    match serde_json::from_str::<Value>(content) {
        Ok(v) if path.ends_with(".json") => serde_json::to_string_pretty(&v).expect("JSON") + "\n",
        _ => content.to_string(),
    }
}

/// Files delivered into containers through `DEPLOY_FILE_n` variables (see `render::delivery`),
/// by `container:path`, read back from a `containers` attribute value.
fn delivered_files(containers: Option<&Value>) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for c in containers.and_then(Value::as_array).into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("?");
        let script = c["command"][0].as_str().unwrap_or("");
        let environment: BTreeMap<String, String> =
            serde_json::from_value(c["environment"].clone()).unwrap_or_default();
        for (path, content) in crate::render::delivered_files(script, &environment) {
            let content = reviewable(&path, &content);
            files.insert(format!("{name}:{path}"), content);
        }
    }
    files
}

/// The `containers` value with delivered file contents replaced by a short note (the files
/// are shown as diffs of their own).
fn without_file_contents(containers: &Value) -> Value {
    let mut v = containers.clone();
    for c in v.as_array_mut().into_iter().flatten() {
        if let Some(env) = c.get_mut("environment").and_then(Value::as_object_mut) {
            for (k, val) in env.iter_mut() {
                if k.starts_with("DEPLOY_FILE_") {
                    let len = val.as_str().map(str::len).unwrap_or(0);
                    *val = Value::String(format!("(delivered file, {len} bytes: see its diff)"));
                }
            }
        }
    }
    v
}

/// Every line of `text` moved `columns` to the right.
fn indent(text: &str, columns: usize) -> String {
    text.lines()
        .map(|l| format!("{:columns$}{l}\n", ""))
        .collect()
}

/// A unified diff with 3 lines of context.
fn unified(before: &str, after: &str, from: &str, to: &str) -> String {
    let diff = similar::TextDiff::from_lines(before, after);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string();
    text.lines().map(|l| format!("{l}\n")).collect()
}

/// Lines removed (`- `) and added (`+ `) between two lists of lines, in order; unchanged
/// lines are left out.
fn line_changes(before: &[String], after: &[String]) -> Vec<String> {
    let text = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let (a, b) = (text(before), text(after));
    similar::TextDiff::from_lines(&a, &b)
        .iter_all_changes()
        .filter_map(|change| {
            let mark = match change.tag() {
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
                similar::ChangeTag::Equal => return None,
            };
            Some(format!("{mark} {}", change.value().trim_end_matches('\n')))
        })
        .collect()
}

/// A changed `containers` attribute in full: the container definitions as a diff of their
/// JSON, and each delivered file (prometheus.yml…) as a diff of its text.
fn containers_diff(before: Option<&Value>, after: Option<&Value>) -> String {
    let pretty = |v: Option<&Value>| {
        v.map(|v| serde_json::to_string_pretty(&without_file_contents(v)).expect("JSON") + "\n")
            .unwrap_or_default()
    };
    let mut out = unified(
        &pretty(before),
        &pretty(after),
        "containers (live)",
        "containers (stack)",
    );
    let (old, new) = (delivered_files(before), delivered_files(after));
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (a, b) = (old.get(name), new.get(name));
        if a != b {
            let (a, b) = (
                a.map(String::as_str).unwrap_or(""),
                b.map(String::as_str).unwrap_or(""),
            );
            out.push_str(&unified(
                a,
                b,
                &format!("{name} (live)"),
                &format!("{name} (stack)"),
            ));
        }
    }
    out
}

/// A config bucket's changed `files` (`FAMILY/CONTAINER/PATH` → content): one line per file
/// that is added, changed or removed, saying it reloads, and the unified diff of each.
fn reloaded_files_diff(before: Option<&Value>, after: Option<&Value>) -> String {
    let files = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    let (old, new) = (files(before), files(after));
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = String::new();
    for name in names {
        let (a, b) = (old.get(name), new.get(name));
        let mark = match (a, b) {
            (None, Some(_)) => "+",
            (Some(_), None) => "-",
            (Some(a), Some(b)) if a != b => "~",
            _ => continue,
        };
        let _ = writeln!(out, "{mark} file {name} (reload, no restart)");
        let shown = |c: Option<&String>| c.map(|c| reviewable(name, c)).unwrap_or_default();
        out.push_str(&indent(
            &unified(
                &shown(a),
                &shown(b),
                &format!("{name} (live)"),
                &format!("{name} (stack)"),
            ),
            2,
        ));
    }
    out
}

fn head_line(c: &Change, style: Style) -> String {
    let what = if c.new_revision && c.observed.is_none() {
        "  (first revision)".to_string()
    } else if c.new_revision {
        let family = c
            .desired
            .as_ref()
            .map(|d| d.attrs.aws_name().to_string())
            .unwrap_or_default();
        format!("  (new revision of {family}; services using it roll to it)")
    } else {
        String::new()
    };
    let id = match (&c.observed, c.action) {
        (Some(o), Action::Delete | Action::Replace) => format!("  [{}]", o.id),
        _ => String::new(),
    };
    format!(
        "{} {}{}{}{}",
        style.action(c, &format!("{:>3}", c.action.symbol())),
        style.bold(&c.address.to_string()),
        id,
        what,
        cause_text(c.cause)
    )
}

/// What a change does to each attribute, and its warnings, as lines under its head line:
/// a created resource's attributes (`name: value`), an updated one's changes (`~ name: before
/// -> after`), compact or in full as the style says.
fn change_body(c: &Change, style: Style) -> String {
    let mut out = String::new();
    let kind = c.address.kind;
    let compact_lines = |v: &Option<Value>, name: &str| {
        (!style.full)
            .then(|| compact::lines(kind, name, v.as_ref()))
            .flatten()
    };
    if c.action == Action::Create && c.observed.is_none() {
        for a in &c.attrs {
            if kind == crate::model::Kind::S3Bucket && a.name == "files" {
                let files: BTreeMap<String, String> = a
                    .after
                    .as_ref()
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                let _ = writeln!(out, "files: loaded by the tasks' config sidecars");
                for (name, content) in &files {
                    let _ = writeln!(out, "  {name} ({} bytes)", content.len());
                }
                continue;
            }
            if a.name == "containers" {
                let _ = writeln!(out, "containers:");
                let lines = (!style.full)
                    .then(|| compact::containers_created(a.after.as_ref()))
                    .flatten();
                match lines {
                    Some(lines) => out.push_str(&indent(&lines.join("\n"), 2)),
                    None => out.push_str(&indent(&containers_diff(None, a.after.as_ref()), 2)),
                }
                continue;
            }
            match compact_lines(&a.after, &a.name).as_deref() {
                Some([]) => {
                    let _ = writeln!(out, "{}: (none)", a.name);
                }
                Some([one]) => {
                    let _ = writeln!(out, "{}: {one}", a.name);
                }
                Some(lines) => {
                    let _ = writeln!(out, "{}:", a.name);
                    out.push_str(&indent(&lines.join("\n"), 2));
                }
                None => {
                    let _ = writeln!(out, "{}: {}", a.name, value(&a.after));
                }
            }
        }
    } else if c.action != Action::Delete {
        for a in &c.attrs {
            let forces = if a.forces_replacement {
                style.action(c, "   # forces replacement")
            } else {
                String::new()
            };
            if kind == crate::model::Kind::S3Bucket && a.name == "files" {
                out.push_str(&reloaded_files_diff(a.before.as_ref(), a.after.as_ref()));
                continue;
            }
            if a.name == "containers" {
                let _ = writeln!(out, "~ containers:{forces}");
                let changed = (!style.full)
                    .then(|| compact::containers_changed(a.before.as_ref(), a.after.as_ref()))
                    .flatten();
                let text =
                    changed.unwrap_or_else(|| containers_diff(a.before.as_ref(), a.after.as_ref()));
                out.push_str(&indent(&text, 2));
                continue;
            }
            let changed = match (
                compact_lines(&a.before, &a.name),
                compact_lines(&a.after, &a.name),
            ) {
                (Some(old), Some(new)) => line_changes(&old, &new),
                _ => Vec::new(),
            };
            if changed.is_empty() {
                let _ = writeln!(
                    out,
                    "~ {}: {} -> {}{forces}",
                    a.name,
                    value(&a.before),
                    value(&a.after),
                );
            } else {
                let _ = writeln!(out, "~ {}:{forces}", a.name);
                out.push_str(&indent(&changed.join("\n"), 2));
            }
        }
    }
    for w in &c.warnings {
        let _ = writeln!(out, "{}", style.warn(&format!("! {w}")));
    }
    out
}

/// The plan as a reviewer reads it.
pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Stack {} ({}) in account {}, region {}",
        plan.stack, plan.environment, plan.account_id, plan.region
    );
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "\nConflicts (nothing will be changed until they are resolved):"
        );
        for c in &plan.conflicts {
            let _ = writeln!(
                out,
                "  {}",
                style.paint("31", &format!("! {}: {}", c.address, c.message))
            );
        }
    }
    if !plan.kept.is_empty() {
        let _ = writeln!(
            out,
            "\nKept, because they hold data (--delete-data, or `disposable: true` in the stack, deletes them):"
        );
        for k in &plan.kept {
            let _ = writeln!(out, "  {} [{}]: {}", k.address, k.id, k.data);
        }
    }
    let changes: Vec<&Change> = plan.changes.iter().filter(|c| !c.is_noop()).collect();
    if changes.is_empty() {
        if plan.conflicts.is_empty() {
            let _ = writeln!(out, "\nNo changes.");
        }
        // What an unchanged resource says of itself still matters (a rollout in progress).
        let notes: Vec<&String> = plan.changes.iter().flat_map(|c| &c.warnings).collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "\nWarnings:");
            for w in notes {
                let _ = writeln!(out, "  {}", style.warn(&format!("! {w}")));
            }
        }
        return out;
    }
    let drift: Vec<&&Change> = changes
        .iter()
        .filter(|c| matches!(c.cause, Some(Cause::Drift | Cause::DriftAndStackEdit)))
        .collect();
    if !drift.is_empty() {
        let _ = writeln!(out, "\nChanged outside deploy (will be repaired):");
        for c in drift {
            let names: Vec<&str> = c.attrs.iter().map(|a| a.name.as_str()).collect();
            let _ = writeln!(out, "  {}: {}", c.address, names.join(", "));
        }
    }
    let _ = writeln!(out);
    for c in &changes {
        let _ = writeln!(out, "{}", head_line(c, style));
        out.push_str(&indent(&change_body(c, style), 6));
    }
    if !plan.deregister_revisions.is_empty() {
        let _ = writeln!(
            out,
            "\nOld revisions deregistered once the rollouts complete (keep_revisions):"
        );
        for arn in &plan.deregister_revisions {
            let _ = writeln!(out, "  - {}", crate::rollout::revision_of(arn));
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &plan.warnings {
            let _ = writeln!(out, "  {}", style.warn(&format!("! {w}")));
        }
    }
    let s = plan.summary();
    let _ = writeln!(
        out,
        "\nPlan: {} to add, {} to change, {} to replace, {} to destroy.",
        s.add, s.change, s.replace, s.destroy
    );
    out
}

/// What an apply did, for the end of its output.
/// How the followed rollouts ended; a failed one with the evidence that explains it.
pub fn rollouts_text(rollouts: &[crate::apply::wait::RolloutResult]) -> String {
    use crate::rollout::Outcome;
    let mut out = String::from("Rollouts:\n");
    for r in rollouts {
        out.push_str(&format!(
            "  {}: {}{} — {}\n",
            r.address,
            crate::apply::wait::outcome_word(r.outcome),
            r.deployment
                .as_deref()
                .map(|d| format!(" (deployment {d})"))
                .unwrap_or_default(),
            r.reason
        ));
        if let Some(e) = &r.evidence {
            out.push_str(&e.text());
        }
        if let Some(arn) = &r.stopped_service_deployment {
            out.push_str(&format!(
                "    --rollback-on-failure stopped service deployment {arn} with a rollback.\n"
            ));
        } else if matches!(r.outcome, Outcome::Failed | Outcome::TimedOut) {
            out.push_str(
                "    ECS goes on with this deployment (its circuit breaker rolls it back if it keeps failing); \
                 `apply --rollback-on-failure` stops a failing one with a rollback.\n",
            );
        }
    }
    out
}

pub fn report_text(report: &Report) -> String {
    let mut out = String::new();
    let (mut done, mut failed, mut not_started) = (vec![], vec![], vec![]);
    for (addr, op, o) in &report.outcomes {
        let label = format!("{addr} ({})", format!("{op:?}").to_lowercase());
        match o {
            Outcome::Done => done.push(label),
            Outcome::Failed(m) => failed.push(format!("{label}: {m}")),
            Outcome::NotStarted => not_started.push(label),
        }
    }
    if report.succeeded() {
        // Not "complete" yet: the rollouts the steps started may still fail.
        let _ = writeln!(out, "All {} steps done.", done.len());
        return out;
    }
    if report.interrupted {
        let _ = writeln!(
            out,
            "Interrupted: no new change was started; changes in flight finished."
        );
    }
    let _ = writeln!(out, "Done ({}):", done.len());
    for d in &done {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(out, "Failed ({}):", failed.len());
    for f in &failed {
        let _ = writeln!(out, "  {f}");
    }
    let _ = writeln!(out, "Not started ({}):", not_started.len());
    for n in &not_started {
        let _ = writeln!(out, "  {n}");
    }
    let _ = writeln!(out, "Run the same command again to converge.");
    out
}

/// A change of one attribute caused by a stack edit, with nothing else: what the printers'
/// unit tests print.
#[cfg(test)]
fn edit_of_one_attribute(
    address: crate::model::Address,
    action: Action,
    name: &str,
    before: Value,
    after: Value,
) -> Change {
    Change {
        address,
        action,
        cause: Some(Cause::StackEdit),
        attrs: vec![crate::plan::AttrChange {
            name: name.into(),
            before: Some(before),
            after: Some(after),
            forces_replacement: false,
        }],
        desired: None,
        observed: None,
        live_references: Default::default(),
        new_revision: false,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ColorChoice;

    #[test]
    fn colour_follows_the_flag_the_terminal_and_no_color() {
        assert!(Style::resolve(ColorChoice::Always, false, Some("1")).color);
        assert!(!Style::resolve(ColorChoice::Never, true, None).color);
        assert!(Style::resolve(ColorChoice::Auto, true, None).color);
        assert!(Style::resolve(ColorChoice::Auto, true, Some("")).color);
        assert!(!Style::resolve(ColorChoice::Auto, true, Some("1")).color);
        assert!(!Style::resolve(ColorChoice::Auto, false, None).color);
    }

    #[test]
    fn null_reads_as_absent_so_a_saved_plan_shows_the_same() {
        let saved: Option<Value> = serde_json::from_str("null").unwrap();
        assert_eq!(saved, None, "serde reads a saved null as None");
        assert_eq!(value(&Some(Value::Null)), value(&saved));
        assert_eq!(value(&Some(Value::from(30))), "30");
    }
}

#[cfg(test)]
mod diff_tests {
    use super::*;
    use serde_json::json;

    fn container(config: &str) -> Value {
        json!([{
            "name": "prometheus",
            "image": "prom/prometheus:v2.53.4",
            "command": ["set -eu\nmkdir -p '/etc/prometheus'\nprintf '%s' \"$DEPLOY_FILE_1\" > '/etc/prometheus/prometheus.yml'\nexec '/bin/prometheus' \"$@\"\n", "--config.file=/etc/prometheus/prometheus.yml"],
            "environment": {"DEPLOY_FILE_1": config},
        }])
    }

    #[test]
    fn delivered_files_are_shown_as_unified_diffs() {
        let before = container("global:\n  scrape_interval: 15s\nscrape_configs: []\n");
        let after = container("global:\n  scrape_interval: 30s\nscrape_configs: []\n");
        let text = containers_diff(Some(&before), Some(&after));
        assert!(
            text.contains("--- prometheus:/etc/prometheus/prometheus.yml (live)"),
            "{text}"
        );
        assert!(text.contains("-  scrape_interval: 15s"), "{text}");
        assert!(text.contains("+  scrape_interval: 30s"), "{text}");
        assert!(text.contains(" global:"), "context lines: {text}");
        assert!(
            !text.contains("scrape_interval: 15s\\n"),
            "no escaped file in the JSON diff: {text}"
        );
    }

    fn update(kind: crate::model::Kind, name: &str, before: Value, after: Value) -> Change {
        let address = crate::model::Address::new(kind, "prometheus");
        edit_of_one_attribute(address, Action::Update, name, before, after)
    }

    #[test]
    fn changed_rules_and_statements_are_lines_removed_and_added() {
        let rule = |port: i32, from: &str| {
            json!({"protocol": "tcp", "from_port": port, "to_port": port,
                   "peer": {"group": from}, "description": "Grafana"})
        };
        let c = update(
            crate::model::Kind::SecurityGroup,
            "ingress",
            json!([
                rule(9090, "security_group.grafana"),
                rule(9093, "security_group.grafana")
            ]),
            json!([
                rule(9090, "security_group.grafana"),
                rule(9093, "sg-0123456789abcdef0")
            ]),
        );
        assert_eq!(
            change_body(&c, Style::default()),
            "~ ingress:\n  - tcp/9093 security_group.grafana (Grafana)\n  + tcp/9093 sg-0123456789abcdef0 (Grafana)\n"
        );
        let policy = |action: &str| {
            json!({"logs": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": action, "Resource": "*"}]}})
        };
        let c = update(
            crate::model::Kind::IamRole,
            "inline_policies",
            policy("logs:PutLogEvents"),
            policy("logs:*"),
        );
        assert_eq!(
            change_body(&c, Style::default()),
            "~ inline_policies:\n  - logs: Allow logs:PutLogEvents on *\n  + logs: Allow logs:* on *\n"
        );
        // In full, the values themselves; and a change the lines cannot show falls back to them.
        let full = change_body(
            &c,
            Style {
                full: true,
                ..Style::default()
            },
        );
        assert!(
            full.starts_with("~ inline_policies: {\n      \"logs\": {"),
            "{full}"
        );
        let c = update(
            crate::model::Kind::IamRole,
            "inline_policies",
            json!({"logs": {"Statement": [], "Version": "2012-10-17"}}),
            json!({"logs": {"Statement": []}}),
        );
        assert!(change_body(&c, Style::default()).starts_with("~ inline_policies: {"));
    }
}
