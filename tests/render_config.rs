//! The rendered Prometheus config is valid for Prometheus itself (promtool), and the
//! delivery script writes every file byte for byte, as it will inside the busybox-based
//! prom/prometheus image.

mod common;

use common::render::{context, promtool, reference_stack, DNS_NAME};
use deploy::render::{check_yaml, deliver_files, Delivery, Templates};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CONFIG_PATH: &str = "/etc/prometheus/prometheus.yml";

fn render_prometheus() -> String {
    let out = Templates::new(Path::new(ROOT).join("templates"))
        .render("prometheus.yml", &context())
        .unwrap_or_else(|e| panic!("{e}"));
    check_yaml("templates/prometheus.yml", &out).unwrap_or_else(|e| panic!("{e}"));
    out
}

/// The Prometheus container of the reference stack: (entry point, args).
fn prometheus_container() -> (String, Vec<String>) {
    let c = &reference_stack()["task_definitions"]["prometheus"]["containers"]["prometheus"];
    let entry = c["entry_point"].as_str().unwrap().to_string();
    let args = serde_json::from_value(c["args"].clone()).unwrap();
    (entry, args)
}

/// Runs `promtool check config` on a file; promtool missing is a failure, not a skip.
fn promtool_check_config(file: &Path) {
    let (ok, text) = promtool(&["check", "config"], &[file.to_path_buf()]);
    assert!(ok, "promtool check config failed:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn rendered_prometheus_config_passes_promtool_and_scrapes_the_alb() {
    let rendered = render_prometheus();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, &rendered).unwrap();
    promtool_check_config(&file);

    assert!(rendered.starts_with("# Rendered by deploy for stack \"monitoring\""));
    assert!(
        rendered.ends_with("localhost:9090\n"),
        "trailing newline kept"
    );
    let config: Value = serde_saphyr::from_str(&rendered).unwrap();
    let global = &config["global"];
    assert_eq!(global["scrape_interval"], "15s");
    assert_eq!(global["scrape_timeout"], "10s");
    assert_eq!(global["evaluation_interval"], "15s");
    assert_eq!(
        global["external_labels"],
        json!({"stack": "monitoring", "environment": "production"})
    );

    let jobs = config["scrape_configs"].as_array().unwrap();
    let job = |name: &str| {
        jobs.iter()
            .find(|j| j["job_name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in\n{rendered}"))
    };
    let backend = job("backend");
    assert_eq!(
        backend["static_configs"],
        json!([{"targets": [format!("{DNS_NAME}:3000")]}])
    );
    assert_eq!(backend["metrics_path"], "/metrics");
    assert_eq!(backend["scrape_interval"], "15s");
    assert_eq!(backend["sample_limit"], 50000);
    assert_eq!(backend["label_limit"], 64);
    assert_eq!(backend["label_name_length_limit"], 128);
    assert_eq!(backend["label_value_length_limit"], 2048);
    assert_eq!(
        job("prometheus")["static_configs"],
        json!([{"targets": ["localhost:9090"]}])
    );
}

/// The shells to run the delivery under: the container's own `/bin/sh` line, dash (Debian's
/// /bin/sh) and busybox's `sh` (the shell of the prom/prometheus and alertmanager images).
/// A missing one fails with how to install it: the delivery must be proven under each.
fn shells() -> Vec<Vec<String>> {
    let mut shells = vec![vec![]]; // empty: exactly the Delivery's entry point
    let find = |name: &str, package: &str| -> String {
        ["/bin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "{name} is not installed: run `bash scripts/setup.sh` (or \
                     `apt-get install {package}`)"
                )
            })
            .display()
            .to_string()
    };
    shells.push(vec![find("dash", "dash")]);
    shells.push(vec![find("busybox", "busybox"), "sh".into()]);
    shells
}

/// Replaces the single-quoted word `'from'` with `'to'` in the script, insisting it was there.
fn rewrite(script: &str, from: &str, to: &str) -> String {
    let needle = format!("'{from}'");
    assert!(
        script.contains(&needle),
        "the script does not mention {needle}:\n{script}"
    );
    script.replace(&needle, &format!("'{to}'"))
}

/// Runs a delivery as the container would (`/bin/sh -c SCRIPT ARGV0 args…`, environment =
/// the delivery's only), with container paths moved under `root` and the exec target replaced
/// by a stub that records its arguments. Returns the recorded arguments.
fn run_delivery(
    delivery: &Delivery,
    files: &BTreeMap<String, String>,
    entry_point: &str,
    shell: &[String],
    root: &Path,
) -> Vec<String> {
    let record = root.join("recorded-args");
    let stub = root.join("stub-entry-point");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > '{}'\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let root_s = root.display().to_string();
    let mut script = delivery.command[0].clone();
    let dirs: BTreeSet<&str> = files.keys().map(|p| &p[..p.rfind('/').unwrap()]).collect();
    for dir in dirs.into_iter().filter(|d| !d.is_empty()) {
        script = rewrite(&script, dir, &format!("{root_s}{dir}"));
    }
    for path in files.keys() {
        script = rewrite(&script, path, &format!("{root_s}{path}"));
    }
    script = rewrite(&script, entry_point, &stub.display().to_string());
    // Every quoted word now points into the temp dir (odd pieces are inside quotes).
    for word in script.split('\'').skip(1).step_by(2) {
        assert!(
            word == "%s" || word.starts_with(&root_s),
            "unrewritten path {word:?} in:\n{script}"
        );
    }

    assert_eq!(delivery.entry_point, ["/bin/sh", "-c"]);
    let mut argv: Vec<String> = if shell.is_empty() {
        delivery.entry_point.clone()
    } else {
        let mut a = shell.to_vec();
        a.push("-c".into());
        a
    };
    argv.push(script);
    argv.extend(delivery.command[1..].iter().cloned());
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(&delivery.environment)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());

    for (path, content) in files {
        let written = std::fs::read(format!("{root_s}{path}")).unwrap();
        assert!(
            written == content.as_bytes(),
            "{path} under {shell:?} differs:\n  want {content:?}\n  got  {:?}",
            String::from_utf8_lossy(&written)
        );
    }
    let recorded = std::fs::read(&record).unwrap();
    let mut args: Vec<String> = recorded
        .split(|b| *b == 0)
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    assert_eq!(args.pop().as_deref(), Some(""), "NUL-terminated record");
    args
}

#[test]
fn delivery_writes_tricky_files_byte_for_byte() {
    let files: BTreeMap<String, String> = [
        (
            "/etc/tricky/no-trailing-newline.txt",
            "a: $HOME $$ ${PATH} $(id) `id` $1 $0 \"$@\" $*\n\
             summary: '{{ $labels.instance }} is {{ $value | humanize }}%'\n\
             back\\slash \\n \\\\ \\0 \\t \\c \\e \\x41\n\
             printf: %s %d %% %b %n\n\
             quotes: 'single' \"double\" '\"'\"'\n\
             unicode: héllo ✓ 日本語 🚀\n\
             crlf\r\n\ttab  trailing space ",
        ),
        (
            "/etc/tricky/with trailing newline $HOME \"q\" \\ %s.yml",
            "-n -e --\n{{ template \"x\" . }}\n[[ not.rendered ]]\n",
        ),
        ("/etc/tricky/-n", "x\n\n\n"),
        ("/var/lib/empty", ""),
        ("/top-level", "EOF\n'EOF'\n"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    let args: Vec<String> = [
        "--config.file=/etc/prometheus/prometheus.yml",
        "$HOME",
        "a b",
        "",
        "it's",
        "-n",
        "{{ $labels }}",
        "back\\slash",
        "new\nline",
        "%s",
    ]
    .map(String::from)
    .to_vec();
    let delivery = deliver_files(&files, "/bin/prometheus", &args).unwrap();
    assert_eq!(delivery.environment.len(), files.len());
    for shell in shells() {
        let root = tempfile::tempdir().unwrap();
        let recorded = run_delivery(&delivery, &files, "/bin/prometheus", &shell, root.path());
        assert_eq!(recorded, args, "under {shell:?}");
    }
}

#[test]
fn delivery_of_the_rendered_config_reaches_prometheus_intact() {
    let rendered = render_prometheus();
    let (entry_point, args) = prometheus_container();
    let files: BTreeMap<String, String> = [(CONFIG_PATH.to_string(), rendered.clone())].into();
    let delivery = deliver_files(&files, &entry_point, &args).unwrap();
    assert_eq!(delivery.environment["DEPLOY_FILE_0"], rendered);
    assert!(
        delivery.command[0].len() < 200,
        "the script stays short: {}",
        delivery.command[0]
    );

    for shell in shells() {
        let root = tempfile::tempdir().unwrap();
        let recorded = run_delivery(&delivery, &files, &entry_point, &shell, root.path());
        assert_eq!(recorded, args, "under {shell:?}");
        let written: PathBuf = root.path().join(CONFIG_PATH.trim_start_matches('/'));
        promtool_check_config(&written);
    }
}

#[test]
fn per_task_discovery_scrapes_each_backend_task_by_dns() {
    let mut stack = reference_stack();
    stack["vars"]["backend"]["discovery"] = json!("dns");
    stack["vars"]["backend"]["dns_name"] = json!("backend.monitoring.internal");
    let rendered =
        common::render::render_with("prometheus.yml", &common::render::context_for(&stack));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    for rules in ["recording.yml", "alerts.yml"] {
        std::fs::write(
            dir.path().join("rules").join(rules),
            common::render::render(&format!("rules/{rules}")),
        )
        .unwrap();
    }
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, &rendered).unwrap();
    promtool_check_config(&file);
    let config: Value = serde_saphyr::from_str(&rendered).unwrap();
    let backend = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "backend")
        .unwrap();
    assert_eq!(
        backend["dns_sd_configs"],
        json!([{"names": ["backend.monitoring.internal"], "type": "A", "port": 3000, "refresh_interval": "30s"}])
    );
    assert!(backend.get("static_configs").is_none());
    assert!(
        !rendered.contains(DNS_NAME),
        "no scrape through the ALB left"
    );
}
