//! `deploy show PLAN`: prints a saved plan as it was made; also reads saved plans for
//! `apply PLAN`.

use crate::printer::emit_plan;
use crate::run::Failure;
use crate::saved::{self, SavedPlan};
use std::path::Path;

/// `deploy show PLAN`.
pub fn run(plan_file: &Path) -> Result<(), Failure> {
    let saved = read_plan(plan_file)?;
    eprintln!(
        "Saved plan {} (deploy {}{}, stack file {})",
        plan_file.display(),
        saved.tool_version,
        if saved.tool_commit.is_empty() {
            String::new()
        } else {
            format!(", commit {}", saved.tool_commit)
        },
        saved.stack_file
    );
    let everything = format!(
        "deploy show {}{}",
        crate::output::shell_word(&plan_file.display().to_string()),
        crate::printer::full_flag()
    );
    emit_plan(&saved.plan, &everything);
    Ok(())
}

pub fn read_plan(file: &Path) -> Result<SavedPlan, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", file.display())))?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        Failure::Other(format!(
            "{} is not a plan saved by deploy: {e}",
            file.display()
        ))
    })?;
    if saved.format_version != saved::FORMAT_VERSION {
        return Err(Failure::Refused(format!(
            "{} has plan format {}, this deploy reads format {}",
            file.display(),
            saved.format_version,
            saved::FORMAT_VERSION
        )));
    }
    saved::check(&saved).map_err(|why| {
        Failure::Other(format!(
            "{} is not a plan saved by this deploy: {why}",
            file.display()
        ))
    })?;
    Ok(saved)
}
