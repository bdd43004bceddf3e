//! Decides, once per run, where output goes and how it looks: the colour style and detail,
//! and whether stdout carries the JSON document of `--format json` (human text then goes to
//! stderr) or the pull request comment of `--format markdown`. Commands print plans and
//! results through it, never deciding the stream themselves.

use crate::cli::{Command, Format};
use crate::output;
use crate::plan::Plan;
use crate::report;

/// The output style of this run, decided once in `main`.
static STYLE: std::sync::OnceLock<output::Style> = std::sync::OnceLock::new();
/// The `--format` of this run, decided once in `main`.
static FORMAT: std::sync::OnceLock<Format> = std::sync::OnceLock::new();

/// Sets the run's style and format (the first call wins). Markdown is a pull request comment
/// of a plan: only `plan` and `show` print one.
pub fn init(style: output::Style, format: Format, command: &Command) -> Result<(), String> {
    if format == Format::Markdown && !matches!(command, Command::Plan { .. } | Command::Show { .. })
    {
        return Err(
            "--format markdown is for `deploy plan` and `deploy show` (a pull request comment); this command prints text or json".into(),
        );
    }
    if format == Format::Sarif && !matches!(command, Command::Lint { .. }) {
        return Err("--format sarif is for `deploy lint` (code-scanning upload); this command prints text or json".into());
    }
    let _ = STYLE.set(style);
    let _ = FORMAT.set(format);
    Ok(())
}

pub fn json_output() -> bool {
    FORMAT.get() == Some(&Format::Json)
}

/// The `--format` of this run.
pub fn format() -> Format {
    FORMAT.get().copied().unwrap_or(Format::Text)
}

pub fn to_json<T: serde::Serialize>(doc: &T) -> String {
    serde_json::to_string_pretty(doc).expect("reports serialize")
}

pub fn style() -> output::Style {
    STYLE.get().copied().unwrap_or_default()
}

/// The plan as the command's result: text, the JSON document, or a markdown comment (which
/// names `everything`, the command printing the whole plan, if it has to leave blocks out).
pub fn emit_plan(plan: &Plan, everything: &str) {
    match FORMAT.get() {
        Some(Format::Json) => println!("{}", to_json(&report::plan_report(plan))),
        Some(Format::Markdown) => print!("{}", output::plan_markdown(plan, style(), everything)),
        Some(Format::Text | Format::Sarif) | None => {
            print!("{}", output::plan_text(plan, style()))
        }
    }
}

/// `--full` when this run prints plans in full: commands naming another command that prints
/// the same plan pass it on.
pub fn full_flag() -> &'static str {
    if style().full {
        " --full"
    } else {
        ""
    }
}

/// The plan before an apply carries it out: on stdout as text, or on stderr when stdout
/// is reserved for the JSON result.
pub fn preview_plan(plan: &Plan) {
    if json_output() {
        eprint!("{}", output::plan_text(plan, style()));
    } else {
        print!("{}", output::plan_text(plan, style()));
    }
}

/// Writes generated text (a completion script, a man page) to stdout as is; a reader that
/// stops early (`deploy man | head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), crate::run::Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(crate::run::Failure::Other(format!(
            "cannot write to stdout: {e}"
        ))),
    }
}
