//! `deploy validate`: the stack checked offline (schema, references, templates, request
//! sizes); makes no AWS call.

use super::load_valid;
use crate::cli::StackArgs;
use crate::model::Lookups;
use crate::render::requests::{self, TASK_DEFINITION_LIMIT};
use crate::render::Templates;
use crate::run::Failure;
use crate::spec;

/// `deploy validate`: parse and check offline, and measure the task definition requests.
pub fn run(args: &StackArgs) -> Result<(), Failure> {
    let loaded = load_valid(args)?;
    let region = loaded
        .stack
        .region
        .clone()
        .unwrap_or_else(|| "<region>".into());
    let lookups = Lookups::placeholders(&region);
    let built = spec::build_desired(&loaded, &lookups, &Templates::new(&args.templates))?;
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
