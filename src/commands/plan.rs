//! `deploy plan`: the diff of the stack against live AWS, printed (text or JSON) and optionally
//! saved for `show` and `apply PLAN`; refuses (exit 1) on ownership conflicts.

use super::{refuse_conflicts, Context, Planned};
use crate::cli::{AwsArgs, StackArgs};
use crate::printer::emit_plan;
use crate::run::Failure;
use crate::saved::{self, SavedPlan};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `deploy plan` was asked for.
pub struct PlanArgs<'a> {
    pub stack: &'a StackArgs,
    pub aws: &'a AwsArgs,
    pub destroy: bool,
    pub delete_data: bool,
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    pub targets: &'a [String],
}

/// Returns the exit code of a success: 2 with `--detailed-exitcode` when there are changes.
pub async fn run(args: PlanArgs<'_>) -> Result<i32, Failure> {
    let mut ctx = Context::load(args.stack, args.aws, true, args.targets).await?;
    ctx.delete_data |= args.delete_data;
    let mut planned = ctx.plan(args.destroy, &BTreeMap::new()).await?;
    if !args.destroy {
        // The lint findings (apply refuses on an error among them).
        let lines = super::lint::plan_finding_lines(&ctx, args.stack)?;
        planned
            .plan
            .warnings
            .extend(lines.into_iter().map(|l| format!("lint: {l}")));
    }
    emit_plan(&planned.plan, &everything(&args));
    refuse_conflicts(&planned.plan)?;
    crate::protection::refuse_plan(&ctx.loaded.stack, &planned.plan)?;
    if let Some(out) = args.out {
        save_plan(&ctx, &planned, &out)?;
        eprintln!(
            "\nSaved the plan to {0}: `deploy show {0}` prints it, `deploy apply {0}` carries it out.",
            out.display()
        );
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() {
        2
    } else {
        0
    })
}

/// The command that prints this whole plan as text (what a markdown comment names when it
/// has to leave blocks out): `deploy show` of the saved plan, else this plan command again.
fn everything(args: &PlanArgs<'_>) -> String {
    use crate::output::shell_word;
    let full = crate::printer::full_flag();
    if let Some(out) = &args.out {
        return format!(
            "deploy show {}{full}",
            shell_word(&out.display().to_string())
        );
    }
    let mut cmd = format!(
        "deploy plan -f {}",
        shell_word(&args.stack.file().display().to_string())
    );
    if args.stack.templates != Path::new("templates") {
        let dir = args.stack.templates.display().to_string();
        cmd.push_str(&format!(" --templates {}", shell_word(&dir)));
    }
    if args.destroy {
        cmd.push_str(" --destroy");
    }
    if args.delete_data {
        cmd.push_str(" --delete-data");
    }
    for t in args.targets {
        cmd.push_str(&format!(" --target {}", shell_word(t)));
    }
    if let Some(region) = &args.aws.region {
        cmd.push_str(&format!(" --region {}", shell_word(region)));
    }
    if let Some(profile) = &args.aws.profile {
        cmd.push_str(&format!(" --profile {}", shell_word(profile)));
    }
    cmd + full
}

fn save_plan(ctx: &Context, planned: &Planned, out: &Path) -> Result<(), Failure> {
    let saved = SavedPlan {
        format_version: saved::FORMAT_VERSION,
        tool_version: crate::version::RELEASE.to_string(),
        tool_commit: crate::version::COMMIT.to_string(),
        stack_file: ctx.loaded.file.display().to_string(),
        stack_text: ctx.loaded.text.clone(),
        lookups: ctx.lookups.clone(),
        desired: ctx.built.desired.clone(),
        plan: planned.plan.clone(),
        refs: planned.refs.clone(),
        live: saved::live_fingerprints(&planned.plan, &planned.world),
        owned_elsewhere: saved::owned_elsewhere_ids(&planned.world),
    };
    let text = serde_json::to_string_pretty(&saved).expect("plans serialize");
    std::fs::write(out, text + "\n")
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", out.display())))
}
