//! `deploy lint`: the security rules over the stack and its rendered files (offline, no AWS
//! call), and with `--live` the network rules; printed as text, JSON or SARIF, exit 1 by
//! `--fail-on`. Also what `validate`, `plan` and `apply` run before their own work.

use super::{build_offline, load_valid};
use crate::cli::{AwsArgs, Format, StackArgs};
use crate::lint::{self, FailOn, Input, Report};
use crate::render::Templates;
use crate::run::Failure;
use crate::spec::LoadedStack;

/// The offline rules over a loaded stack.
pub fn offline_report(loaded: &LoadedStack, args: &StackArgs) -> Result<Report, Failure> {
    let (lookups, built) = build_offline(loaded, None, &Templates::new(&args.templates))?;
    Ok(lint::offline(
        &Input {
            loaded,
            built: &built,
            lookups: &lookups,
            templates: &args.templates,
        },
        lint::today(),
    ))
}

/// `deploy lint`: returns the exit code (1 when a finding at `--fail-on` or above is active).
pub async fn run(
    args: &StackArgs,
    aws: &AwsArgs,
    live: bool,
    fail_on: FailOn,
) -> Result<i32, Failure> {
    let loaded = load_valid(args)?;
    let mut report = offline_report(&loaded, args)?;
    if live {
        // The lookups (ALB, VPC, subnets) as plan makes them; then read-only network reads.
        let ctx = super::context::Context::load(args, aws, false, &[]).await?;
        let inputs = crate::lint_live::LiveInputs::from_desired(&ctx.built.desired);
        let found = crate::aws::network_audit::run(&ctx.aws, &ctx.lookups, &inputs).await?;
        // Suppressions apply to the live findings too (expiries were reported offline).
        let mut findings = lint::live_findings(&loaded, found);
        findings.extend(parameter_findings(&ctx));
        lint::suppress::mark(&loaded, &mut findings, lint::today());
        report.findings.extend(findings);
    }
    let s = &loaded.stack;
    match crate::printer::format() {
        Format::Json => println!(
            "{}",
            crate::printer::to_json(&lint::output::json(&report, &s.stack, &s.environment))
        ),
        Format::Sarif => println!("{}", crate::printer::to_json(&lint::output::sarif(&report))),
        Format::Text | Format::Markdown => print!("{}", lint::output::text(&report)),
    }
    Ok(if report.fails(fail_on) { 1 } else { 0 })
}

/// DL018 over the SSM parameters the stack's containers read, by the types the lookups found.
pub fn parameter_findings(ctx: &super::context::Context) -> Vec<lint::Finding> {
    lint::parameter_findings(&ctx.loaded, &ctx.lookups.parameter_types)
}

/// For `apply`: refuses, before any AWS call, when an error-level finding is not suppressed.
pub fn refuse_errors(loaded: &LoadedStack, args: &StackArgs) -> Result<(), Failure> {
    let report = offline_report(loaded, args)?;
    let errors: Vec<String> = report
        .active()
        .filter(|f| f.rule.severity == lint::Severity::Error)
        .map(lint::output::line)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(Failure::Refused(format!(
        "{} lint error(s): fix them or suppress each in the stack's `lint.ignore` with the reason; nothing was changed:\n  {}",
        errors.len(),
        errors.join("\n  ")
    )))
}

/// For `plan`: the active findings as lines (printed with the plan's warnings): the offline
/// rules and DL018, whose parameter types the plan's lookups read.
pub fn plan_finding_lines(
    ctx: &super::context::Context,
    args: &StackArgs,
) -> Result<Vec<String>, Failure> {
    let mut report = offline_report(&ctx.loaded, args)?;
    let mut live = parameter_findings(ctx);
    lint::suppress::mark(&ctx.loaded, &mut live, lint::today());
    report.findings.extend(live);
    Ok(report.active().map(lint::output::line).collect())
}
