// Records the git commit the binary is built from, for `deploy --version`. Outside a checkout
// (a source tarball, no git installed) the commit is "unknown": this script never fails the build.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DEPLOY_GIT_COMMIT={commit}");

    // Run again when HEAD moves: HEAD itself (a checkout), the branch it names (a commit) and
    // packed-refs (a ref packed by gc). `--git-path` resolves them for worktrees too. Only
    // files that exist are named: a missing one would make cargo rerun this on every build.
    println!("cargo:rerun-if-changed=build.rs");
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
        if branch.starts_with("refs/") {
            watched.push(git(&["rev-parse", "--git-path", &branch]));
        }
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
