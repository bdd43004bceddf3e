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
    let (lookups, built) = build_offline(&loaded, None, &Templates::new(&args.templates))?;
    let sizes = requests::check_sizes(&loaded, &built, &lookups)?;
    println!(
        "{}: valid ({} resources; lookups not performed: values shown as <lookup:…>)",
        args.file().display(),
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
