//! `deploy policy`: prints the least-privilege IAM policy a role needs for this stack, made
//! offline from the stack and the kinds' descriptors (see `src/policy.rs`). The README's
//! policies are this command's output for the reference stack (a test holds them to it).

use super::{build_offline, load_valid};
use crate::cli::StackArgs;
use crate::policy::{self, Role};
use crate::printer::{json_output, to_json};
use crate::render::Templates;
use crate::report;
use crate::run::Failure;

/// `deploy policy`: the document on stdout (or the JSON report); the reasons for each `*`
/// on stderr.
pub fn run(
    args: &StackArgs,
    role: Role,
    account: &str,
    region: Option<&str>,
) -> Result<(), Failure> {
    let loaded = load_valid(args)?;
    let stack = &loaded.stack;
    let region = region
        .map(str::to_string)
        .or_else(|| stack.region.clone())
        .unwrap_or_else(|| "*".to_string());
    let (_, built) = build_offline(&loaded, Some(&region), &Templates::new(&args.templates))?;
    let mut external_secrets = Vec::new();
    let mut external_parameters = false;
    for (store, name) in stack.external_secrets() {
        match store {
            "ssm" => external_parameters = true,
            _ => external_secrets.push(name),
        }
    }
    let generated = policy::generate(
        role,
        &policy::Input {
            stack: &stack.stack,
            environment: &stack.environment,
            account,
            region: &region,
            load_balancer: &stack.lookups.load_balancer.name,
            desired: &built.desired,
            external_secrets: &external_secrets,
            external_parameters,
        },
    );
    if json_output() {
        println!(
            "{}",
            to_json(&report::policy_report(
                &stack.stack,
                &stack.environment,
                account,
                &region,
                generated
            ))
        );
    } else {
        eprintln!("Granted on \"*\" (IAM cannot narrow them):");
        for u in &generated.unscoped {
            eprintln!("  {}: {}", u.action, u.why);
        }
        println!("{}", to_json(&generated.document));
    }
    Ok(())
}
