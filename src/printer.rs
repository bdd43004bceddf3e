//! Decides, once per run, where output goes and how it looks: the colour style, and whether
//! stdout carries the JSON document of `--format json` (human text then goes to stderr).
//! Commands print plans and results through it, never deciding the stream themselves.

use crate::output;
use crate::plan::Plan;
use crate::report;

/// The output style of this run, decided once in `main`.
static STYLE: std::sync::OnceLock<output::Style> = std::sync::OnceLock::new();
/// Whether stdout carries the JSON documents of `--format json`, decided once in `main`.
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Sets the run's style and format (the first call wins).
pub fn init(style: output::Style, json: bool) {
    let _ = STYLE.set(style);
    let _ = JSON.set(json);
}

pub fn json_output() -> bool {
    JSON.get().copied().unwrap_or(false)
}

pub fn to_json<T: serde::Serialize>(doc: &T) -> String {
    serde_json::to_string_pretty(doc).expect("reports serialize")
}

pub fn style() -> output::Style {
    STYLE.get().copied().unwrap_or_default()
}

/// The plan as the command's result: text, or the JSON document.
pub fn emit_plan(plan: &Plan) {
    if json_output() {
        println!("{}", to_json(&report::plan_report(plan)));
    } else {
        print!("{}", output::plan_text(plan, style()));
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
