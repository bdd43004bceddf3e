//! `deploy validate`: the stack checked offline (schema, references, templates, request
//! sizes, the offline lint rules); makes no AWS call.

use super::{build_offline, load_valid};
use crate::cli::StackArgs;
use crate::render::requests::{self, TASK_DEFINITION_LIMIT};
use crate::render::Templates;
use crate::run::Failure;

/// `deploy validate`: parse and check offline, and measure the task definition requests.
pub fn run(args: &StackArgs) -> Result<(), Failure> {
    let loaded = load_valid(args)?;
    // Names shared with another environment would make the two fight over one resource.
    let clashes =
        crate::spec::environments::clashes(&crate::spec::load(&args.file())?, args.env.as_deref())?;
    if !clashes.is_empty() {
        return Err(Failure::Refused(format!(
            "environment `{}` would share names with another environment of this stack:\n  {}",
            loaded.stack.environment,
            clashes.join("\n  ")
        )));
    }
    let (lookups, built) = build_offline(&loaded, None, &Templates::new(&args.templates))?;
    let sizes = requests::check_sizes(&loaded, &built, &lookups)?;
    println!(
        "{}: valid for environment {} ({} resources; lookups not performed: values shown as <lookup:…>)",
        args.file().display(),
        loaded.stack.environment,
        built.desired.len()
    );
    for (family, size) in sizes {
        println!(
            "  task definition {family}: {size} bytes of {TASK_DEFINITION_LIMIT} allowed ({:.1}%)",
            size as f64 * 100.0 / TASK_DEFINITION_LIMIT as f64
        );
    }
    // The offline lint rules: an error among them fails validate (apply would refuse).
    let report = super::lint::offline_report(&loaded, args)?;
    for f in report.active() {
        println!("  {}", crate::lint::output::line(f));
    }
    // Each error as a located spec error (FILE:LINE:COLUMN: PATH: MESSAGE), as validate
    // reports every problem.
    let errors: Vec<crate::spec::SpecError> = report
        .active()
        .filter(|f| f.rule.severity == crate::lint::Severity::Error)
        .map(|f| crate::spec::SpecError {
            file: f.location.file.clone(),
            line: f.location.line,
            column: f.location.column,
            path: f.field.clone().unwrap_or_else(|| f.address.clone()),
            message: format!("{} [{}; `deploy lint` shows the fix]", f.message, f.rule.id),
        })
        .collect();
    if !errors.is_empty() {
        return Err(Failure::Spec(crate::spec::SpecErrors(errors)));
    }
    Ok(())
}
