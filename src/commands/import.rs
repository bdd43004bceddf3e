//! `deploy import ADDRESS ID`: adopts an existing resource by adding an `imports` entry to the
//! stack file (as text, keeping the user's formatting) once the plan shows it matches.

use super::Context;
use crate::cli::{AwsArgs, StackArgs};
use crate::model::Address;
use crate::output;
use crate::printer::style;
use crate::run::Failure;
use crate::spec;
use std::collections::BTreeMap;
use std::path::Path;

/// `deploy import ADDRESS ID`.
pub async fn run(
    stack_args: &StackArgs,
    aws_args: &AwsArgs,
    address: &str,
    id: &str,
    lock: &crate::lock::LockOptions,
) -> Result<(), Failure> {
    let addr: Address = address.parse().map_err(Failure::Other)?;
    let lock = (crate::lock::Operation::Import, lock);
    let ctx = Context::load_locked(stack_args, aws_args, &[], lock).await?;
    if !ctx.built.desired.iter().any(|d| d.address == addr) {
        return Err(Failure::Other(format!(
            "{addr} is not defined in {}: add it to the stack first, then import",
            stack_args.file().display()
        )));
    }
    if ctx
        .loaded
        .stack
        .imports
        .iter()
        .any(|i| i.address == address)
    {
        return Err(Failure::Other(format!(
            "{} already has an import for {addr}",
            stack_args.file().display()
        )));
    }
    let extra: BTreeMap<Address, String> = [(addr.clone(), id.to_string())].into();
    let planned = ctx.plan(false, &extra).await?;
    if let Some(c) = planned
        .plan
        .conflicts
        .iter()
        .find(|c| c.address == addr && c.id == id)
    {
        return Err(Failure::Refused(format!(
            "{}; {} expects {}",
            c.message,
            addr.kind,
            addr.kind.import_id_hint()
        )));
    }
    if let Some(c) = planned.plan.changes.iter().find(|c| c.address == addr) {
        if c.cause != Some(crate::plan::Cause::Import) {
            return Err(Failure::Refused(format!(
                "{addr} is already managed by this stack (or nothing matches {id}); no import is needed"
            )));
        }
    }
    // An import for an environment other than the stack's own says which.
    let home = spec::load(&stack_args.file())?.stack.environment;
    let environment = &ctx.loaded.stack.environment;
    let for_env = (*environment != home).then_some(environment.as_str());
    append_import(&stack_args.file(), address, id, for_env)?;
    println!(
        "Added to {}: import {addr} = {id}",
        stack_args.file().display()
    );
    print!("{}", output::plan_text(&planned.plan, style()));
    println!(
        "\nRun `deploy apply` to adopt it (the apply adds the ownership tags and converges it)."
    );
    Ok(())
}

/// Adds an `imports` entry to the stack file as text, keeping the user's formatting and
/// comments.
fn append_import(
    file: &Path,
    address: &str,
    id: &str,
    environment: Option<&str>,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", file.display())))?;
    let mut entry = format!("  - address: {address}\n    id: {}\n", yaml_quote(id));
    if let Some(env) = environment {
        entry.push_str(&format!("    environment: {env}\n"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let new_text = match lines.iter().position(|l| l.starts_with("imports:")) {
        None => {
            let sep = if text.ends_with('\n') || text.is_empty() { "" } else { "\n" };
            format!("{text}{sep}\nimports:\n{entry}")
        }
        Some(i) if lines[i].trim_end() == "imports:" => {
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out.insert(i + 1, entry.trim_end().to_string());
            out.join("\n") + "\n"
        }
        Some(i) if lines[i].trim_end() == "imports: []" => {
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[i] = format!("imports:\n{}", entry.trim_end());
            out.join("\n") + "\n"
        }
        Some(_) => {
            return Err(Failure::Other(format!(
                "{} writes `imports:` in a form this command cannot extend; add `- address: {address}` / `id: {id}` to it by hand",
                file.display()
            )))
        }
    };
    // The result must still load, or the file is left as it was.
    spec::parse(file, &new_text)?;
    std::fs::write(file, new_text)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", file.display())))
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
