//! Plans sized for review: the first plan of the reference stack, rendered against a freshly
//! seeded moto, must come to 20,000 characters or less by default while still naming every
//! address, action, cause, warning and attribute (each delivered file by its size and sha256,
//! checked against what `deploy render` writes); `--full` prints everything. The markdown of
//! `plan` and `show` (a pull request comment) is snapshot-tested for a first plan and for an
//! update, and stays under GitHub's 65,536 characters even when `--full` makes it too long.

mod common;

use common::redact::redact;
use common::render::files_under;
use common::{assert_success, stdout, TestEnv};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const STACK: &str = "stacks/monitoring.yaml";
/// What the issue asks of the default plan of the reference stack.
const REVIEW_LIMIT: usize = 20_000;
/// GitHub's limit for a comment body.
const COMMENT_LIMIT: usize = 65_536;

fn run(env: &TestEnv, args: &[&str]) -> String {
    let out = env.deploy(args);
    assert_success(&out);
    stdout(&out)
}

/// The text plan cut into one block per change: head line address → the block's lines.
fn blocks(text: &str) -> BTreeMap<String, String> {
    let mut blocks: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let head = line.len() > 4
            && ["+", "~", "-", "-/+"].contains(&line[..3].trim())
            && line.as_bytes()[3] == b' '
            && line.as_bytes()[4] != b' ';
        if head {
            let address = line[4..].split_whitespace().next().unwrap().to_string();
            current = Some(address.clone());
            blocks.insert(address, format!("{line}\n"));
        } else if line.starts_with("  ") {
            if let Some(a) = &current {
                blocks.get_mut(a).unwrap().push_str(&format!("{line}\n"));
            }
        } else {
            current = None;
        }
    }
    blocks
}

/// Every file `deploy render` wrote under `dir/files`: (task key, container, container path,
/// bytes).
fn rendered_files(dir: &Path) -> Vec<(String, String, String, Vec<u8>)> {
    files_under(&dir.join("files"))
        .into_iter()
        .map(|(rel, bytes)| {
            let mut parts = rel.splitn(3, '/');
            let task = parts.next().unwrap().to_string();
            let container = parts.next().unwrap().to_string();
            (
                task,
                container,
                format!("/{}", parts.next().unwrap()),
                bytes,
            )
        })
        .collect()
}

#[test]
fn the_first_plan_of_the_reference_stack_fits_a_review_and_omits_nothing() {
    let env = TestEnv::new();
    env.seed(false);
    let compact = run(&env, &["plan", "-f", STACK]);
    let full = run(&env, &["plan", "-f", STACK, "--full"]);
    let (compact_len, full_len) = (compact.chars().count(), full.chars().count());
    // The figures the README quotes (`cargo test --test snapshots_review -- --nocapture`).
    println!("first plan of {STACK}: {compact_len} characters by default, {full_len} with --full");
    assert!(
        compact_len <= REVIEW_LIMIT,
        "the default plan is {compact_len} characters, over {REVIEW_LIMIT}"
    );

    // Every change, attribute and warning of the plan is in the compact text.
    let report: Value =
        serde_json::from_str(&run(&env, &["plan", "-f", STACK, "--format", "json"])).unwrap();
    let by_address = blocks(&compact);
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 25);
    assert_eq!(by_address.len(), changes.len(), "{compact}");
    for c in changes {
        let address = c["address"].as_str().unwrap();
        let block = &by_address[address];
        assert!(block.starts_with("  + "), "{address} is a create: {block}");
        for a in c["changed_attributes"].as_array().unwrap() {
            let name = a["name"].as_str().unwrap();
            assert!(
                block.contains(&format!("\n      {name}:")),
                "{address}.{name} is missing:\n{block}"
            );
        }
        for w in c["warnings"].as_array().unwrap() {
            assert!(block.contains(w.as_str().unwrap()), "{block}");
        }
    }
    for w in report["warnings"].as_array().unwrap() {
        assert!(compact.contains(w.as_str().unwrap()), "{w}");
    }
    assert!(compact.contains("Plan: 25 to add, 0 to change, 0 to replace, 0 to destroy."));

    // Each delivered file is one line whose size and sha256 are those of the file `deploy
    // render` writes; `--full` shows the files themselves.
    let out = env.path().join("rendered");
    run(
        &env,
        &["render", "-f", STACK, "--out", out.to_str().unwrap()],
    );
    // (Files that are one secret's value, `secret_files`, are named as such and not rendered.)
    let files = rendered_files(&out);
    let digests = compact.matches(" bytes, sha256 ").count();
    // Files that reload travel in the config bucket: one line each in its block, its key
    // (FAMILY/CONTAINER/PATH, PATH under the container's reload dir) and size.
    let bucket = &by_address["s3_bucket.config"];
    let in_bucket: Vec<(String, usize)> = bucket
        .lines()
        .filter_map(|l| {
            let (key, size) = l.trim().rsplit_once(" (")?;
            let n = size.strip_suffix(" bytes)")?.parse().ok()?;
            Some((key.to_string(), n))
        })
        .collect();
    let mut shown_in_bucket = 0;
    for (task, container, path, bytes) in &files {
        let reloads = in_bucket.iter().any(|(key, n)| {
            let mut p = key.splitn(3, '/');
            let (_family, c, rel) = (p.next(), p.next(), p.next());
            c == Some(container.as_str())
                && rel.is_some_and(|rel| path.ends_with(&format!("/{rel}")))
                && *n == bytes.len()
        });
        if reloads {
            shown_in_bucket += 1;
            continue;
        }
        let block = &by_address[&format!("task_definition.{task}")];
        let sha: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let line = format!("file {path}: {} bytes, sha256 {}", bytes.len(), &sha[..12]);
        assert!(block.contains(&line), "`{line}` is not in:\n{block}");
        if !path.ends_with(".json") {
            for l in String::from_utf8(bytes.clone()).unwrap().lines() {
                assert!(
                    full.contains(&format!("        +{l}\n")),
                    "--full lacks {path}: {l}"
                );
            }
        }
    }
    assert_eq!(
        files.len(),
        digests + shown_in_bucket,
        "one line per rendered file:\n{compact}"
    );
    assert_eq!(shown_in_bucket, in_bucket.len(), "{bucket}");
    assert!(shown_in_bucket > 0, "{bucket}");
    assert_eq!(
        compact.matches(": the value of secret ").count(),
        full.matches(" +<secret:").count(),
        "each file that is a secret's value"
    );
    // Policies are one line per statement, rules one line per rule.
    let execution = &by_address["iam_role.execution"];
    assert!(execution.contains("\n        write-logs: Allow logs:CreateLogStream, logs:PutLogEvents on arn:aws:logs:us-west-2:123456789012:log-group:/ecs/grafana-task:*, arn:aws:logs:us-west-2:123456789012:log-group:/ecs/prom-task:*\n"), "{execution}");
    let prometheus_group = &by_address["security_group.prometheus"];
    assert!(
        prometheus_group.contains(
            "\n        tcp/9090 security_group.grafana (Grafana's Prometheus data source)\n"
        ),
        "{prometheus_group}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_of_a_first_plan_and_of_an_update() {
    let env = TestEnv::new();
    env.seed(false);
    let create = run(&env, &["plan", "-f", STACK, "--format", "markdown"]);
    let length = create.chars().count();
    println!("first plan of {STACK} as markdown: {length} characters");
    assert!(length <= COMMENT_LIMIT);
    insta::assert_snapshot!("markdown_create", redact(&create));

    // In full it fits too, now that the dashboards travel in the config bucket, not in the
    // Grafana task definition.
    let full = run(
        &env,
        &["plan", "-f", STACK, "--format", "markdown", "--full"],
    );
    let length = full.chars().count();
    let kept = full.matches("\n<details>").count();
    println!("first plan as markdown with --full: {length} characters, {kept} of 25 blocks kept");
    assert!(length <= COMMENT_LIMIT, "{length} characters");
    assert_eq!(kept, 25);

    // Too long in full (a 40,000-character argument): whole blocks are cut, the comment says
    // how many and how to see them.
    let big = env.stack_copy("big.yaml", |t| {
        t.replacen(
            "          - --storage.tsdb.path=/prometheus\n",
            &format!(
                "          - --storage.tsdb.path=/prometheus\n          - --web.page-title={}\n",
                "x".repeat(40_000)
            ),
            1,
        )
    });
    let full = run(
        &env,
        &["plan", "-f", &big, "--format", "markdown", "--full"],
    );
    let length = full.chars().count();
    assert!(length <= COMMENT_LIMIT, "{length} characters");
    let kept = full.matches("\n<details>").count();
    assert_eq!(
        kept,
        full.matches("\n</details>\n").count(),
        "whole blocks only"
    );
    assert!(
        kept < 25,
        "the big plan does not fit a comment: {kept} blocks"
    );
    assert!(
        full.contains(&format!(
            "{} of 25 resource blocks left out. `deploy plan -f {big} --full` prints the whole plan.",
            25 - kept
        )),
        "{}",
        &full[..1000]
    );
    assert_eq!(
        full.matches("\n| `+` | `").count(),
        25,
        "the table names every change"
    );
    // `show` of the saved plan cuts the same and names itself.
    let first = env.path().join("first.plan");
    let first = first.to_str().unwrap();
    run(&env, &["plan", "-f", &big, "--out", first]);
    let shown = run(&env, &["show", first, "--format", "markdown", "--full"]);
    assert!(
        shown.contains(&format!(
            "`deploy show {first} --full` prints the whole plan."
        )),
        "{}",
        &shown[..1000]
    );
    assert_eq!(shown.matches("\n<details>").count(), kept);

    assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
    // Drift, an edit of the stack, and a scrape interval change: Prometheus reloads it,
    // Grafana restarts (its data source, provisioned at start, carries the interval).
    env.set_log_retention("/ecs/prom-task", 7).await;
    let edited = env.stack_copy("edited.yaml", |t| {
        t.replace("retention_days: 30", "retention_days: 60")
            .replace("scrape_interval: 15s", "scrape_interval: 30s")
    });
    let saved = env.path().join("update.plan");
    run(
        &env,
        &["plan", "-f", &edited, "--out", saved.to_str().unwrap()],
    );
    let update = run(
        &env,
        &["show", saved.to_str().unwrap(), "--format", "markdown"],
    );
    assert!(update.chars().count() <= COMMENT_LIMIT);
    insta::assert_snapshot!("markdown_update", redact(&update));
    // The same plan printed by `plan` reads the same.
    let planned = run(&env, &["plan", "-f", &edited, "--format", "markdown"]);
    assert_eq!(redact(&planned), redact(&update));
}

#[test]
fn markdown_is_for_plans_only() {
    let env = TestEnv::new();
    let out = env.deploy(&[
        "apply",
        "-f",
        STACK,
        "--format",
        "markdown",
        "--auto-approve",
    ]);
    common::assert_failure(&out);
    assert!(
        common::stderr(&out).contains("--format markdown is for `deploy plan` and `deploy show`"),
        "{}",
        common::stderr(&out)
    );
    assert!(env.proxy.calls().is_empty(), "refused before any AWS call");
}
