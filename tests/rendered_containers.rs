//! Every container of every rendered task definition, started as ECS would start it (its
//! entry point, command and environment, plus stand-in values for the secrets ECS injects)
//! under a POSIX shell: it must write exactly the files `deploy render` wrote, and those must
//! pass the real checkers (promtool for Prometheus's config and rules, amtool for
//! Alertmanager's; a YAML/JSON parse and `sh -n` for Grafana's provisioning, dashboards and
//! start script). What is checked is what the containers run.

mod common;

use common::render::files_under;
use common::{assert_success, stderr, stdout, TestEnv};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const STACK: &str = "stacks/monitoring.yaml";

/// A tool on PATH, or a failure saying how to install it.
fn tool(name: &str, package: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: apt-get install {package} (or run scripts/setup.sh)")
        })
}

fn check(tool: &Path, args: &[&str], file: &Path) {
    let out = Command::new(tool).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{} {} {} failed:\n{}{}",
        tool.display(),
        args.join(" "),
        file.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// Stand-ins for the fields of JSON secrets whose values must be real for the checkers to
/// pass: basic-auth credentials (a password and its bcrypt hash) and a self-signed
/// certificate with its key, made by the same code deploy generates them with.
struct RealStandIns {
    by_json_key: BTreeMap<String, String>,
}

impl RealStandIns {
    fn new() -> RealStandIns {
        let password = "stand-in-password-9f2k";
        let auth: Value =
            serde_json::from_str(&deploy::aws::secrets::basic_auth("grafana", password).unwrap())
                .unwrap();
        let tls: Value = serde_json::from_str(
            &deploy::aws::secrets::self_signed(&["localhost".to_string()], 1).unwrap(),
        )
        .unwrap();
        let mut by_json_key = BTreeMap::new();
        for (key, doc) in [
            ("password", &auth),
            ("bcrypt", &auth),
            ("cert", &tls),
            ("key", &tls),
        ] {
            by_json_key.insert(key.to_string(), doc[key].as_str().unwrap().to_string());
        }
        RealStandIns { by_json_key }
    }

    /// The stand-in for a secret whose `valueFrom` is `value_from` (ARN, then `:KEY::` for
    /// a JSON key).
    fn for_value_from(&self, value_from: &str) -> Option<String> {
        let key = value_from.strip_suffix("::")?.rsplit(':').next()?;
        self.by_json_key.get(key).cloned()
    }
}

struct Started {
    /// The arguments the image's program was exec'd with.
    args: Vec<String>,
    /// The stand-in value given for each secret variable.
    secrets: BTreeMap<String, String>,
}

/// Runs a container's delivery script with its paths moved under `root` and the image's
/// program replaced by a recorder of its arguments.
fn start(container: &Value, root: &Path, real: &RealStandIns) -> Started {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(strings(&container["entryPoint"]), ["/bin/sh", "-c"]);
    let command = strings(&container["command"]);
    let mut env: BTreeMap<String, String> = container["environment"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            (
                kv["name"].as_str().unwrap().to_string(),
                kv["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let secrets: BTreeMap<String, String> = container["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let name = s["name"].as_str().unwrap().to_string();
            // A real value where a checker reads it, else one with the characters that
            // break naive quoting.
            let value = real
                .for_value_from(s["valueFrom"].as_str().unwrap())
                .unwrap_or_else(|| format!("stand-in $'\"\\ {name} %s\n"));
            (name, value)
        })
        .collect();
    env.extend(secrets.clone());

    std::fs::create_dir_all(root).unwrap();
    let recorder = root.join("program-args");
    let stub = root.join("program-stub");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            recorder.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = root.display().to_string();
    let script: String = command[0]
        .lines()
        .map(|line| {
            if line.starts_with("exec '") {
                format!("exec '{}' \"$@\"\n", stub.display())
            } else if line.starts_with("mkdir -p ") || line.starts_with("printf '%s' ") {
                // Every absolute path is single-quoted: move it under the root.
                format!("{}\n", line.replace(" '/", &format!(" '{r}/")))
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let run = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .args(&command[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(&env)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}\n{script}", stderr(&run));
    let args = std::fs::read_to_string(&recorder)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    std::fs::remove_file(&recorder).unwrap();
    std::fs::remove_file(&stub).unwrap();
    Started { args, secrets }
}

#[test]
fn every_container_writes_exactly_the_checked_files() {
    let promtool = tool("promtool", "prometheus");
    let amtool = tool("amtool", "prometheus-alertmanager");
    let env = TestEnv::new();
    env.seed(false);
    let dir = env.path().join("rendered");
    let out = env.deploy(&["render", "-f", STACK, "--out", dir.to_str().unwrap()]);
    assert_success(&out);

    let mut checked = Vec::new();
    let real = RealStandIns::new();
    for td_file in std::fs::read_dir(dir.join("task-definitions")).unwrap() {
        let td: Value =
            serde_json::from_slice(&std::fs::read(td_file.unwrap().path()).unwrap()).unwrap();
        let family = td["family"].as_str().unwrap().to_string();
        let task_key = std::fs::read_dir(dir.join("files"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // The task whose every delivering container has files (the config sidecar, in
            // both tasks, does not tell them apart).
            .find(|k| {
                td["containerDefinitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| {
                        c["entryPoint"][0] != "/bin/sh"
                            || (dir.join("files").join(k))
                                .join(c["name"].as_str().unwrap())
                                .is_dir()
                    })
            })
            .unwrap_or_else(|| panic!("no rendered files for {family}"));
        for c in td["containerDefinitions"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let rendered_dir = dir.join("files").join(&task_key).join(name);
            if c["entryPoint"][0] != "/bin/sh" {
                assert!(!rendered_dir.exists(), "{name} has files but no delivery");
                continue;
            }
            let root = env.path().join("containers").join(&family).join(name);
            let started = start(c, &root, &real);
            let rendered = files_under(&rendered_dir);
            // A rendered file under a reload dir (a `config-*` volume) that the start script
            // did not write comes from the config bucket: the sidecar puts it there
            // (tests/config_reload.rs runs it against S3). The bucket never holds a secret.
            // Put in as the sidecar would, it is checked below like the rest.
            let reload_dirs: Vec<String> = (c["mountPoints"].as_array().into_iter().flatten())
                .filter(|m| (m["sourceVolume"].as_str()).is_some_and(|v| v.starts_with("config-")))
                .map(|m| {
                    m["containerPath"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches('/')
                        .to_string()
                })
                .collect();
            let by_script = files_under(&root);
            for (path, bytes) in &rendered {
                let reloads = reload_dirs
                    .iter()
                    .any(|d| path.starts_with(&format!("{d}/")));
                if !reloads || by_script.contains_key(path) {
                    continue;
                }
                let text = String::from_utf8_lossy(bytes);
                assert!(
                    !text.contains("<secret:"),
                    "{family}/{name}: /{path} from the bucket holds a secret"
                );
                let file = root.join(path);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, bytes).unwrap();
            }
            let written = files_under(&root);
            // Every rendered file, byte for byte, with the secret the start script filled in
            // where `deploy render` shows `<secret:NAME>`.
            for (path, bytes) in &rendered {
                let mut expected = String::from_utf8(bytes.clone()).unwrap();
                for (secret, value) in &started.secrets {
                    expected = expected.replace(&format!("<secret:{secret}>"), value);
                }
                assert!(!expected.contains("<secret:"), "{path}: {expected}");
                assert_eq!(
                    written
                        .get(path)
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    Some(expected),
                    "{family}/{name} wrote a different /{path} than deploy render"
                );
            }
            // Anything else it wrote is a secret file holding exactly its secret's value,
            // readable by the container's user only.
            for (path, bytes) in &written {
                if rendered.contains_key(path) {
                    continue;
                }
                let value = String::from_utf8(bytes.clone()).unwrap();
                assert!(
                    started.secrets.values().any(|v| *v == value),
                    "{family}/{name} wrote /{path}, which is neither rendered nor a secret"
                );
                let mode = std::os::unix::fs::PermissionsExt::mode(
                    &std::fs::metadata(root.join(path)).unwrap().permissions(),
                );
                assert_eq!(mode & 0o077, 0, "/{path} is readable by others");
            }
            // The checkers, on the files as the container wrote them.
            for path in written.keys() {
                let file = root.join(path);
                if path.ends_with("prometheus.yml") {
                    check(&promtool, &["check", "config"], &file);
                } else if path.contains("/rules/") {
                    check(&promtool, &["check", "rules"], &file);
                } else if path.ends_with("alertmanager.yml") {
                    // Its secret files live under /etc/alertmanager: point the copy there.
                    let text = std::fs::read_to_string(&file).unwrap();
                    let moved = text.replace(
                        "/etc/alertmanager/",
                        &format!("{}/etc/alertmanager/", root.display()),
                    );
                    let copy = root.join("alertmanager-check.yml");
                    std::fs::write(&copy, moved).unwrap();
                    check(&amtool, &["check-config"], &copy);
                } else if path.ends_with("/web.yml") {
                    // Certificate and key paths are relative to the file: the ones the
                    // container wrote beside it.
                    check(&promtool, &["check", "web-config"], &file);
                } else if path.ends_with("/web-client.yml") {
                    // No checker reads an HTTP client file alone: every file it names must
                    // be one the container wrote.
                    let doc: serde_json::Value =
                        serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
                    let dir = file.parent().unwrap();
                    for named in [
                        &doc["basic_auth"]["password_file"],
                        &doc["tls_config"]["ca_file"],
                    ] {
                        let named = named.as_str().expect("the client file names its files");
                        assert!(
                            dir.join(named).is_file(),
                            "{path} names {named}, not written"
                        );
                    }
                } else if path.contains("grafana/provisioning/") && path.ends_with(".yml") {
                    // Grafana's provisioning files: YAML of apiVersion 1 (Grafana itself is
                    // not installable here; tests/dashboards.rs checks their content).
                    let doc: serde_json::Value =
                        serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap())
                            .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
                    assert_eq!(doc["apiVersion"], 1, "{path}");
                } else if path.ends_with(".json") {
                    // Dashboards travel as compact JSON: still JSON, with a uid.
                    let doc: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(&file).unwrap())
                            .unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
                    assert!(doc["uid"].is_string(), "{path} has no uid");
                } else if path.ends_with(".sh") {
                    let out = Command::new("/bin/sh")
                        .arg("-n")
                        .arg(&file)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{path}: {}", stderr(&out));
                } else {
                    continue;
                }
                checked.push(format!("{family}/{name}:/{path}"));
            }
            assert!(
                !started.args.is_empty(),
                "{family}/{name}: the image's program was not started"
            );
        }
    }
    eprintln!("checked as the containers wrote them: {checked:#?}");
    for must in [
        "prom-task/prometheus:/etc/prometheus/prometheus.yml",
        "prom-task/prometheus:/etc/prometheus/rules/alerts.yml",
        "prom-task/alertmanager:/etc/alertmanager/alertmanager.yml",
        "prom-task/prometheus:/etc/prometheus/web.yml",
        "prom-task/alertmanager:/etc/alertmanager/web.yml",
        "prom-task/prometheus:/etc/prometheus/web-client.yml",
        "prom-task/alertmanager:/etc/alertmanager/web-client.yml",
        "grafana-task/grafana:/tmp/deploy/start.sh",
        "grafana-task/grafana:/etc/grafana/provisioning/datasources/deploy.yml",
        "grafana-task/grafana:/etc/grafana/provisioning/dashboards/deploy.yml",
        "grafana-task/grafana:/etc/grafana/provisioning/dashboards/deploy/overview.json",
        "grafana-task/grafana:/etc/grafana/provisioning/dashboards/deploy/http.json",
        "grafana-task/grafana:/etc/grafana/provisioning/dashboards/deploy/runtime.json",
        "grafana-task/grafana:/etc/grafana/provisioning/dashboards/deploy/infrastructure.json",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} was not checked: {checked:?}"
        );
    }
}
