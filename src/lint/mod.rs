//! `deploy lint`: security rules over what deploy alone knows whole — the stack, the files it
//! renders from templates/ and (with `--live`) the account's network — so an edit that breaks
//! one of the seed's promises is stopped before `apply` makes it. One rule table
//! ([`rules::RULES`]), checks that produce located findings, suppressions from the stack's
//! `lint:` block, and the text / JSON / SARIF outputs. Nothing here calls AWS.

mod checks;
pub mod output;
mod rendered;
pub mod rules;
pub mod suppress;
mod unscopable;

pub use rules::{Rule, Scope, Severity, RULES};
pub use suppress::check_spec as check_suppressions_spec;

use crate::spec::{Built, LoadedStack};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a finding points: a file of the repository (the stack file or a template under
/// templates/), 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// A suppression from the stack that hides a finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Suppressed {
    pub reason: String,
    pub expires: Option<String>,
}

/// One rule broken at one place.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    #[serde(serialize_with = "rule_id")]
    pub rule: &'static Rule,
    /// The resource of the stack it concerns (`task_definition.grafana`), what a suppression
    /// names; `lint` for the stack's own lint settings.
    pub address: String,
    /// The dotted field path in the stack file, for findings in the stack.
    pub field: Option<String>,
    pub message: String,
    pub location: Location,
    pub suppressed: Option<Suppressed>,
}

fn rule_id<S: serde::Serializer>(r: &&'static Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.id)
}

/// What a lint run found, and which rules it did not check and why.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Rules that were not run here, with why (Fargate, enforced by deploy, needs live state).
    pub not_checked: Vec<(&'static Rule, String)>,
}

impl Report {
    /// Findings no suppression hides.
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.suppressed.is_none())
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.active()
            .filter(|f| f.rule.severity == severity)
            .count()
    }

    /// Whether the run fails under `--fail-on`.
    pub fn fails(&self, fail_on: FailOn) -> bool {
        match fail_on {
            FailOn::Never => false,
            FailOn::Error => self.count(Severity::Error) > 0,
            FailOn::Warning => self.active().next().is_some(),
        }
    }
}

/// `--fail-on`: which findings make `lint` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Never,
}

/// What the checks work from: the stack as loaded, what it builds to offline, and where the
/// templates live (rendered findings point at the template's line).
pub struct Input<'a> {
    pub loaded: &'a LoadedStack,
    pub built: &'a Built,
    /// The lookups the build used (placeholders offline): policy resources are resolved with them.
    pub lookups: &'a crate::model::Lookups,
    pub templates: &'a Path,
}

impl Input<'_> {
    /// A finding at a dotted path of the stack file.
    fn at_stack(
        &self,
        rule: &'static str,
        address: String,
        path: &str,
        message: String,
    ) -> Finding {
        at_stack(self.loaded, rule, address, path, message)
    }

    /// A finding in a rendered file, at the first line of its template that contains
    /// `needle` (line 1 when none does: what is missing is missing from the whole file).
    fn at_template(
        &self,
        rule: &'static str,
        address: String,
        template: &str,
        needle: &str,
        message: String,
    ) -> Finding {
        let file = self.templates.join(template);
        let line = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| template_line(&t, needle))
            .unwrap_or(1);
        finding(
            rule,
            address,
            message,
            Location {
                file,
                line,
                column: 1,
            },
        )
    }
}

/// The 1-based line of the first line of `text` containing `needle` (after the template's
/// opening comment, which documents names rather than using them).
pub fn template_line(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let body_start = match text.find("#]") {
        Some(i) if text.trim_start().starts_with("[#") => text[..i].lines().count(),
        _ => 0,
    };
    text.lines()
        .enumerate()
        .skip(body_start)
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

/// A finding at a dotted path of the stack file.
fn at_stack(
    loaded: &LoadedStack,
    rule: &'static str,
    address: String,
    path: &str,
    message: String,
) -> Finding {
    let (line, column) = loaded.locator.locate(path);
    let mut f = finding(
        rule,
        address,
        message,
        Location {
            file: loaded.file.clone(),
            line,
            column,
        },
    );
    f.field = Some(path.to_string());
    f
}

fn finding(rule: &'static str, address: String, message: String, location: Location) -> Finding {
    Finding {
        rule: rules::rule(rule).expect("checks name rules of the table"),
        address,
        field: None,
        message,
        location,
        suppressed: None,
    }
}

/// Every offline rule over the stack and its rendered files, with the stack's suppressions
/// applied (an expired one is itself a finding). Makes no AWS call.
pub fn offline(input: &Input<'_>, today: time::Date) -> Report {
    let mut findings = checks::stack(input);
    findings.extend(rendered::files(input));
    findings.sort_by(|a, b| {
        (
            a.rule.severity,
            &a.location.file,
            a.location.line,
            a.rule.id,
        )
            .cmp(&(
                b.rule.severity,
                &b.location.file,
                b.location.line,
                b.rule.id,
            ))
    });
    let mut report = Report {
        findings,
        not_checked: not_checked(false),
    };
    suppress::apply(input.loaded, &mut report.findings, today);
    report
}

/// The rules not checked by a run (`live`: with `--live`, the network rules are checked).
fn not_checked(live: bool) -> Vec<(&'static Rule, String)> {
    RULES
        .iter()
        .filter_map(|r| match r.scope {
            Scope::Offline => None,
            Scope::Live if live => None,
            Scope::Live => Some((r, "checked only with `deploy lint --live`".to_string())),
            Scope::NotChecked(why) => Some((r, format!("not checked offline: {why}"))),
            Scope::Enforced(why) => Some((r, format!("always holds: {why}"))),
            Scope::NotOnFargate(why) => Some((r, format!("does not apply on Fargate: {why}"))),
        })
        .collect()
}

/// The `--live` network rules' findings (DL070-DL075, read by `aws::network_audit` and judged
/// by `lint_live`) as findings of the stack: each concerns what the stack looks up, so it is
/// located at that lookup in the stack file (`lookups.load_balancer` for the ALB's listeners,
/// attributes and certificate, `lookups.subnets` for the tasks' routes) and suppressed by that
/// address; the AWS resource it was found on leads its message.
pub fn live_findings(
    loaded: &LoadedStack,
    found: Vec<crate::lint_live::LiveFinding>,
) -> Vec<Finding> {
    found
        .into_iter()
        .map(|f| {
            let lookup = match f.rule {
                "DL073" | "DL075" => "lookups.subnets",
                _ => "lookups.load_balancer",
            };
            at_stack(
                loaded,
                f.rule,
                lookup.to_string(),
                lookup,
                format!("{}: {}", f.subject, f.message),
            )
        })
        .collect()
}

/// DL018 over the SSM parameters the containers read (`types`: name as written → its type,
/// read live): each one that is not a SecureString, at the container secret that names it.
pub fn parameter_findings(loaded: &LoadedStack, types: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (t, td) in &loaded.stack.task_definitions {
        for (c, spec) in &td.containers {
            for (var, r) in &spec.secrets {
                let Some(name) = &r.ssm else { continue };
                match types.get(name) {
                    Some(kind) if kind != "SecureString" => out.push(at_stack(
                        loaded,
                        "DL018",
                        format!("task_definition.{t}"),
                        &format!("task_definitions.{t}.containers.{c}.secrets.{var}"),
                        format!("SSM parameter {name} (secret {var} of container `{c}`) is a {kind}, stored and shown in clear text"),
                    )),
                    _ => {}
                }
            }
        }
    }
    out
}

/// Today's date (UTC), for suppressions' `expires`.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// The two rules that were spec errors before lint existed (a literal secret in a container's
/// environment, ingress from the whole internet) still stop every command at load, with
/// their ids, unless the stack suppresses them with a reason.
pub fn refuse_at_load(loaded: &LoadedStack) -> Result<(), crate::spec::SpecErrors> {
    let mut found = checks::refused_at_load(loaded);
    suppress::apply(loaded, &mut found, today());
    let errors: Vec<crate::spec::SpecError> = found
        .into_iter()
        .filter(|f| f.suppressed.is_none() && f.rule.id != "DL069")
        .map(|f| crate::spec::SpecError {
            file: f.location.file,
            line: f.location.line,
            column: f.location.column,
            path: f.field.unwrap_or(f.address),
            message: format!("{} [{}]", f.message, f.rule.id),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(crate::spec::SpecErrors(errors))
    }
}

#[cfg(test)]
mod tests;
