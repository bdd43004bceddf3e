//! `deploy render`: does the lookups and writes what apply would deliver — every rendered file
//! and every RegisterTaskDefinition request — so they can be read and checked before applying.

use super::Context;
use crate::cli::{AwsArgs, StackArgs};
use crate::render::requests;
use crate::run::Failure;
use std::path::Path;

/// `deploy render`: writes every rendered file and task definition request under `out`.
pub async fn run(stack_args: &StackArgs, aws_args: &AwsArgs, out: &Path) -> Result<(), Failure> {
    let ctx = Context::load(stack_args, aws_args, false, &[]).await?;
    let write = |path: &Path, bytes: &[u8]| -> Result<(), Failure> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::Other(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(path, bytes)
            .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))
    };
    let mut written = Vec::new();
    for f in &ctx.built.files {
        let path = out
            .join("files")
            .join(&f.task)
            .join(&f.container)
            .join(f.path.trim_start_matches('/'));
        write(&path, crate::render::shown_content(&f.content).as_bytes())?;
        written.push(path);
    }
    for (_, family, body) in
        requests::task_definition_requests(&ctx.loaded, &ctx.built, &ctx.lookups)
    {
        let text = serde_json::to_string_pretty(&body).expect("JSON serializes");
        let path = out.join("task-definitions").join(format!("{family}.json"));
        write(&path, format!("{text}\n").as_bytes())?;
        written.push(path);
    }
    println!(
        "Rendered for account {}, region {} (load balancer {}):",
        ctx.lookups.account_id, ctx.lookups.region, ctx.lookups.load_balancer.dns_name
    );
    for p in written {
        println!("  {}", p.display());
    }
    Ok(())
}
