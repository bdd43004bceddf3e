//! Which `deploy` this is: the release version, which saved plans record and compare, and the
//! git commit it was built from (build.rs), which `--version` shows but nothing compares — so a
//! plan made by a pull request's build applies from the build of its merge commit.

/// The release version (Cargo.toml's): what a saved plan must match to be applied.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

/// The short git commit of the build, or "unknown" outside a git checkout.
pub const COMMIT: &str = env!("DEPLOY_GIT_COMMIT");

/// What `deploy --version` prints after the program name.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DEPLOY_GIT_COMMIT"),
    ")"
);

/// Whether a plan saved by deploy `saved_release` may be applied by this build: the release
/// versions are equal. The commit is deliberately not part of it.
pub fn can_apply_plan_from(saved_release: &str) -> bool {
    saved_release == RELEASE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_release_and_commit() {
        assert_eq!(LONG, format!("{RELEASE} (commit {COMMIT})"));
        assert!(!COMMIT.is_empty());
    }

    #[test]
    fn plans_are_matched_on_the_release_alone() {
        assert!(can_apply_plan_from(RELEASE));
        assert!(!can_apply_plan_from("0.0.0-other"));
        assert!(!can_apply_plan_from(LONG));
    }
}
