// `deploy` as an installed command: `--version` names the release and the commit it was built
// from, a plan saved by another commit's build of the same release applies, and the shell
// completions and man page are generated for every command.

mod common;

use common::{assert_success, repo_root, run_with_input, stderr, stdout, TestEnv};
use std::process::{Command, Output};

fn deploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run deploy")
}

/// The commit of the checkout, when this is one and git is installed.
fn checkout_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit `deploy --version` names: `deploy 0.1.0 (commit abc1234)`.
fn version_commit() -> String {
    let out = deploy(&["--version"]);
    assert_success(&out);
    let line = stdout(&out);
    let prefix = format!("deploy {} (commit ", env!("CARGO_PKG_VERSION"));
    line.trim()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version printed {line:?}, expected `{prefix}…)`"))
        .to_string()
}

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let commit = version_commit();
    match checkout_commit() {
        Some(head) => assert_eq!(commit, head, "built from another commit than HEAD"),
        None => assert_eq!(commit, "unknown"),
    }
}

#[test]
fn a_plan_saved_by_another_commits_build_of_the_release_applies() {
    // A pull request's build plans; the merge commit's build (same release, other commit)
    // applies. Saved plans record both, and only the release is compared.
    let env = TestEnv::new();
    env.seed(false);
    let plan = env.path().join("pr.plan");
    let plan_path = plan.to_str().unwrap();
    let out = env.deploy(&[
        "plan",
        "--target",
        "log_group.prometheus",
        "--out",
        plan_path,
    ]);
    assert_success(&out);
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(saved["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(saved["tool_commit"], version_commit().as_str());

    // As if made by the pull request's build: another commit.
    saved["tool_commit"] = "0badc0d".into();
    std::fs::write(&plan, serde_json::to_string_pretty(&saved).unwrap()).unwrap();
    let out = env.deploy(&["show", plan_path]);
    assert_success(&out);
    assert!(
        stderr(&out).contains(&format!(
            "deploy {}, commit 0badc0d",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        stderr(&out)
    );
    env.proxy.clear();
    let out = env.deploy(&["apply", plan_path]);
    assert_success(&out);
    let mutating = env.proxy.mutating_calls();
    let creates = mutating.iter().filter(|c| c.action == "CreateLogGroup");
    assert_eq!(creates.count(), 1, "{mutating:?}");

    // Another release is still refused, changing nothing.
    saved["tool_version"] = "0.0.0-other".into();
    std::fs::write(&plan, serde_json::to_string_pretty(&saved).unwrap()).unwrap();
    env.proxy.clear();
    let out = env.deploy(&["apply", plan_path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deploy 0.0.0-other"),
        "{}",
        stderr(&out)
    );
    assert!(env.proxy.calls().is_empty(), "{:?}", env.proxy.calls());
}

/// Every command's name, from the same clap definitions the binary parses.
fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    let names: Vec<String> = deploy::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for expected in ["plan", "apply", "destroy", "completions", "man"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

#[test]
fn completions_for_each_shell_name_every_command() {
    let names = command_names();
    for shell in ["bash", "zsh", "fish"] {
        let out = deploy(&["completions", shell]);
        assert_success(&out);
        let script = stdout(&out);
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        for name in &names {
            assert!(script.contains(name.as_str()), "{shell}: no {name}");
        }
        // fish spells long flags `-l detailed-exitcode`.
        assert!(
            script.contains("detailed-exitcode"),
            "{shell}: no plan flags"
        );
    }
    let out = deploy(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_bash_completion_script_is_valid_bash() {
    let out = deploy(&["completions", "bash"]);
    assert_success(&out);
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), &out.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(path.path())
        .output()
        .expect("bash is needed for this test: apt-get install bash");
    assert!(check.status.success(), "bash -n: {}", stderr(&check));
}

/// Renders roff as `man` does in a UTF-8 terminal (preconv, the man macros), as plain text,
/// with every warning on (`-ww`); returns the text and what groff said on stderr.
fn groff(roff: &[u8]) -> (String, String) {
    let mut groff = Command::new("groff");
    groff.args(["-k", "-man", "-Tutf8", "-P-cbou", "-ww", "-rLL=200n"]);
    let out = run_with_input(
        groff,
        roff,
        "`bash scripts/setup.sh` installs it (apt-get install groff-base)",
    );
    assert!(out.status.success(), "groff failed: {}", stderr(&out));
    // Some groff builds render `\-` as a Unicode minus or hyphen; flags read as typed. groff
    // justifies lines by widening spaces: runs of spaces read as one.
    let text = stdout(&out).replace(['\u{2212}', '\u{2010}'], "-");
    let text = text
        .lines()
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, stderr(&out))
}

#[test]
fn the_man_page_renders_and_names_every_command() {
    let out = deploy(&["man"]);
    assert_success(&out);
    let roff = stdout(&out);
    assert!(roff.contains(".TH deploy 1"), "{roff}");
    let (text, warnings) = groff(&out.stdout);
    assert_eq!(warnings, "", "groff warnings");
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS", "VERSION"] {
        assert!(text.contains(section), "no {section}:\n{text}");
    }
    assert!(text.contains("Exit codes: 0 success"), "{text}");
    for name in command_names() {
        assert!(
            text.contains(&format!("deploy-{name}(1)")),
            "no {name}:\n{text}"
        );

        // Each command has its own page, deploy-COMMAND(1), with its options.
        let out = deploy(&["man", &name]);
        assert_success(&out);
        let (page, warnings) = groff(&out.stdout);
        assert_eq!(warnings, "", "groff warnings for deploy-{name}");
        assert!(page.contains(&format!("deploy-{name}")), "{page}");
        assert!(page.contains(&format!("deploy {name}")), "{page}");
    }
    let (plan_page, _) = groff(&deploy(&["man", "plan"]).stdout);
    assert!(plan_page.contains("--detailed-exitcode"), "{plan_page}");
    let out = deploy(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no command `nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn destroy_dry_run_with_a_stack_file_is_refused_and_points_at_plan_destroy() {
    let out = deploy(&["destroy", "--dry-run", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`deploy plan --destroy` lists what destroy would remove"),
        "{}",
        stderr(&out)
    );
}
