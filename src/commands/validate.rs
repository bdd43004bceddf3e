//! `deploy validate`: the stack checked offline (schema, references, templates, request
//! sizes); makes no AWS call.

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
    Ok(())
}
