//! A lint report as people and machines read it: text grouped by severity with
//! file:line:col, the versioned JSON document (`kind: lint`, schemas/deploy-v1.schema.json)
//! and SARIF 2.1.0 for code-scanning upload.

use super::{Finding, Report, Severity, RULES};
use serde_json::{json, Value};

/// The text report: errors, then warnings, then suppressed findings, then what was not
/// checked and why.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for (severity, heading) in [(Severity::Error, "Errors"), (Severity::Warning, "Warnings")] {
        let list: Vec<&Finding> = report
            .active()
            .filter(|f| f.rule.severity == severity)
            .collect();
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("{heading} ({}):\n", list.len()));
        for f in list {
            out.push_str(&format!("  {}\n", line(f)));
            out.push_str(&format!("      fix: {}\n", f.rule.fix));
        }
        out.push('\n');
    }
    let suppressed: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.suppressed.is_some())
        .collect();
    if !suppressed.is_empty() {
        out.push_str(&format!("Suppressed ({}):\n", suppressed.len()));
        for f in suppressed {
            let s = f.suppressed.as_ref().expect("filtered");
            let until = s
                .expires
                .as_ref()
                .map(|e| format!(", until {e}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}\n      suppressed at {}{until}: {}\n",
                line(f),
                f.address,
                s.reason
            ));
        }
        out.push('\n');
    }
    if !report.not_checked.is_empty() {
        out.push_str("Not checked here:\n");
        for (r, why) in &report.not_checked {
            out.push_str(&format!("  {} {}: {why}\n", r.id, r.title));
        }
        out.push('\n');
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// `file:line:col: severity[DLnnn] message`.
pub fn line(f: &Finding) -> String {
    format!(
        "{}:{}:{}: {}[{}] {}",
        f.location.file.display(),
        f.location.line,
        f.location.column,
        f.rule.severity.as_str(),
        f.rule.id,
        f.message
    )
}

pub fn summary(report: &Report) -> String {
    let suppressed = report
        .findings
        .iter()
        .filter(|f| f.suppressed.is_some())
        .count();
    format!(
        "lint: {} error(s), {} warning(s), {suppressed} suppressed",
        report.count(Severity::Error),
        report.count(Severity::Warning)
    )
}

/// The JSON document (`kind: lint`).
pub fn json(report: &Report, stack: &str, environment: &str) -> Value {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule.id,
                "severity": f.rule.severity,
                "title": f.rule.title,
                "address": f.address,
                "field": f.field,
                "message": f.message,
                "location": f.location,
                "suppressed": f.suppressed,
            })
        })
        .collect();
    let not_checked: Vec<Value> = report
        .not_checked
        .iter()
        .map(|(r, why)| json!({"rule": r.id, "why": why}))
        .collect();
    json!({
        "format_version": crate::report::FORMAT_VERSION,
        "tool_version": crate::version::RELEASE,
        "kind": "lint",
        "stack": stack,
        "environment": environment,
        "findings": findings,
        "not_checked": not_checked,
        "summary": {
            "errors": report.count(Severity::Error),
            "warnings": report.count(Severity::Warning),
            "suppressed": report.findings.iter().filter(|f| f.suppressed.is_some()).count(),
        },
    })
}

/// SARIF 2.1.0: one run, every rule of the table as a reporting descriptor, each finding a
/// result at its file and line (paths relative to the working directory, as the repository
/// checkout is), suppressed ones with `suppressions`.
pub fn sarif(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let mut peers = Vec::new();
            peers.extend(r.checkov.iter().map(|i| format!("checkov:{i}")));
            peers.extend(r.prowler.iter().map(|i| format!("prowler:{i}")));
            peers.extend(r.security_hub.iter().map(|i| format!("securityhub:{i}")));
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.why},
                "help": {"text": format!("Fix: {}", r.fix)},
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {"tags": peers},
            })
        })
        .collect();
    let index = |id: &str| RULES.iter().position(|r| r.id == id).unwrap_or(0);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule.id,
                "ruleIndex": index(f.rule.id),
                "level": level(f.rule.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.location.file)},
                        "region": {"startLine": f.location.line.max(1), "startColumn": f.location.column.max(1)},
                    },
                    "logicalLocations": [{"fullyQualifiedName": f.address}],
                }],
            });
            if let Some(s) = &f.suppressed {
                result["suppressions"] = json!([{
                    "kind": "external",
                    "status": "accepted",
                    "justification": s.reason,
                    "properties": {"expires": s.expires},
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "deploy lint",
                "version": crate::version::RELEASE,
                "informationUri": "https://github.com/example/deploy#lint",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A relative path as a URI reference (forward slashes, percent-encoded).
fn uri(path: &std::path::Path) -> String {
    path.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => {
                Some(urlencoding::encode(&s.to_string_lossy()).into_owned())
            }
            std::path::Component::RootDir => Some(String::new()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The README's rule table (Markdown), from the table: what `scripts/readme-lint.sh` writes
/// between its markers.
pub fn readme_table() -> String {
    let mut out = String::from(
        "| id | severity | rule | checked | checkov | prowler | Security Hub |\n|---|---|---|---|---|---|---|\n",
    );
    for r in RULES {
        let list = |ids: &[&str]| {
            if ids.is_empty() {
                "—".to_string()
            } else {
                ids.join(", ")
            }
        };
        let checked = match r.scope {
            super::Scope::Offline => "offline".to_string(),
            super::Scope::Live => "`--live`".to_string(),
            super::Scope::NotChecked(why) => format!("not yet: {why}"),
            super::Scope::Enforced(why) => format!("always holds: {why}"),
            super::Scope::NotOnFargate(why) => format!("n/a on Fargate: {why}"),
        };
        out.push_str(&format!(
            "| {} | {} | {} — {} | {} | {} | {} | {} |\n",
            r.id,
            r.severity.as_str(),
            r.title.replace('|', "\\|"),
            r.why.replace('|', "\\|"),
            checked.replace('|', "\\|"),
            list(r.checkov),
            list(r.prowler),
            list(r.security_hub)
        ));
    }
    out
}
