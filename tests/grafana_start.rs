//! Grafana's admin password follows its secret. Grafana reads GF_SECURITY_ADMIN_PASSWORD only
//! when it creates its database, so the container starts through templates/grafana/start.sh,
//! which sets the password from the secret on every start once a database exists. These tests
//! run that script under /bin/sh with stand-ins for the image's `grafana` CLI and `/run.sh`
//! (recorders of their arguments and standard input), check the rendered task definition
//! wires it with the password only in `secrets`, and check against moto that rotating the
//! secret plans a restart of the Grafana service (the new task is what sets the password).

mod common;

use common::{assert_success, stderr, stdout, TestEnv};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STACK: &str = "stacks/monitoring.yaml";
const PASSWORD: &str = "new-secret-pw $'\" 42";

/// A container file system for one start: the data directory, recorders and the script.
struct Start {
    root: PathBuf,
}

impl Start {
    /// `grafana_exit`: what the stand-in `grafana` CLI exits with.
    fn new(dir: &Path, grafana_exit: i32) -> Start {
        let root = dir.to_path_buf();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        let write_exec = |name: &str, body: String| {
            let p = root.join("bin").join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        };
        let r = root.display();
        write_exec(
            "grafana",
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{r}/grafana-args'\ncat > '{r}/grafana-stdin'\nexit {grafana_exit}\n"
            ),
        );
        write_exec(
            "run.sh",
            format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{r}/run-args'\n"),
        );
        // The rendered script, with the image's /run.sh replaced by the recorder.
        let script = common::render::render_with("grafana/start.sh", &common::render::context());
        assert!(script.contains("exec /run.sh \"$@\""), "{script}");
        std::fs::write(
            root.join("start.sh"),
            script.replace("exec /run.sh", &format!("exec '{r}/bin/run.sh'")),
        )
        .unwrap();
        Start { root }
    }

    fn run(&self) -> Output {
        Command::new("/bin/sh")
            .arg(self.root.join("start.sh"))
            .arg("--extra")
            .env_clear()
            .env("PATH", format!("{}/bin:/usr/bin:/bin", self.root.display()))
            .env("GF_PATHS_DATA", self.root.join("data"))
            .env("GF_PATHS_HOME", "/usr/share/grafana")
            .env("GF_PATHS_CONFIG", "/etc/grafana/grafana.ini")
            .env("GF_SECURITY_ADMIN_PASSWORD", PASSWORD)
            .output()
            .unwrap()
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(name)).ok()
    }

    fn with_database(self) -> Start {
        std::fs::write(self.root.join("data/grafana.db"), "SQLite format 3\0").unwrap();
        self
    }
}

#[test]
fn first_start_creates_the_admin_from_the_variable_and_resets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::new(dir.path(), 0);
    let out = start.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(start.read("grafana-args"), None, "no database: no reset");
    assert_eq!(start.read("run-args").as_deref(), Some("--extra\n"));
}

#[test]
fn a_later_start_sets_the_password_from_the_secret_through_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::new(dir.path(), 0).with_database();
    let out = start.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let args = start.read("grafana-args").expect("grafana cli ran");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "cli",
            "--homepath",
            "/usr/share/grafana",
            "--config",
            "/etc/grafana/grafana.ini",
            "admin",
            "reset-admin-password",
            "--password-from-stdin"
        ]
    );
    assert!(
        !args.contains("new-secret-pw"),
        "the password is never an argument"
    );
    assert_eq!(
        start.read("grafana-stdin").as_deref(),
        Some(format!("{PASSWORD}\n").as_str())
    );
    assert!(
        stdout(&out).contains("admin password set"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("new-secret-pw") && !stderr(&out).contains("new-secret-pw"));
    assert_eq!(start.read("run-args").as_deref(), Some("--extra\n"));
}

#[test]
fn a_failed_reset_stops_before_grafana_starts() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::new(dir.path(), 3).with_database();
    let out = start.run();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could not set the admin password"),
        "{}",
        stderr(&out)
    );
    assert_eq!(start.read("run-args"), None, "Grafana must not start");
}

fn grafana_container(td: &Value) -> &Value {
    td["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "grafana")
        .expect("the grafana container")
}

#[test]
fn the_task_definition_runs_the_script_and_takes_the_password_by_reference() {
    let env = TestEnv::new();
    env.seed(false);
    let dir = env.path().join("rendered");
    assert_success(&env.deploy(&["render", "-f", STACK, "--out", dir.to_str().unwrap()]));
    let td: Value = serde_json::from_slice(
        &std::fs::read(dir.join("task-definitions/grafana-task.json")).unwrap(),
    )
    .unwrap();
    let c = grafana_container(&td);
    let command: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        command[0].ends_with("exec '/bin/sh' \"$@\"\n"),
        "{}",
        command[0]
    );
    assert_eq!(command[2..], ["/tmp/deploy/start.sh"]);
    assert!(command[0].contains("> '/tmp/deploy/start.sh'"));
    let env_names: Vec<&str> = c["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(!env_names.contains(&"GF_SECURITY_ADMIN_PASSWORD"));
    let secret = c["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "GF_SECURITY_ADMIN_PASSWORD")
        .expect("the admin password comes from Secrets Manager");
    // Before an apply the render names the stack's generated secret; apply puts its ARN there.
    assert_eq!(secret["valueFrom"], "secret.grafana_admin", "{secret}");
    // Sign-up and anonymous access off, Viewer by default, HTTPS served.
    let env_value = |name: &str| {
        c["environment"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        env_value("GF_USERS_ALLOW_SIGN_UP").as_deref(),
        Some("false")
    );
    assert_eq!(
        env_value("GF_AUTH_ANONYMOUS_ENABLED").as_deref(),
        Some("false")
    );
    assert_eq!(
        env_value("GF_USERS_AUTO_ASSIGN_ORG_ROLE").as_deref(),
        Some("Viewer")
    );
    assert_eq!(env_value("GF_SERVER_PROTOCOL").as_deref(), Some("https"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_admin_password_restarts_grafana_only() {
    let env = TestEnv::new();
    env.seed(false);
    let file = env.stack_copy("grafana.yaml", |t| t);
    assert_success(&env.deploy(&["apply", "-f", &file, "--auto-approve"]));
    let sm = aws_sdk_secretsmanager::Client::new(&env.sdk_config(common::REGION).await);
    let admin_password = || async {
        sm.get_secret_value()
            .secret_id("monitoring/grafana/admin-password")
            .send()
            .await
            .unwrap()
            .secret_string
            .unwrap()
    };
    let generated = admin_password().await;
    assert!(generated.len() >= 32, "a generated password");
    let rotated = env.stack_copy("grafana-rotated.yaml", |t| {
        let from = "    generate: { length: 32, exclude_punctuation: true }\n";
        assert_eq!(t.matches(from).count(), 1, "the stack changed shape");
        t.replace(from, &format!("{from}    rotation: 1\n"))
    });
    let out = env.deploy(&["plan", "-f", &rotated, "--format", "json"]);
    assert_success(&out);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        ["secret.grafana_admin", "ecs_service.grafana"],
        "{plan:#}"
    );
    let text = plan.to_string();
    assert!(text.contains("(restart)"), "{text}");
    assert!(
        !text.contains(&generated) && !stderr(&out).contains(&generated),
        "the generated admin password is in the plan's output"
    );

    // Applied: a new password, which no output shows either; nor the old one.
    let out = env.deploy(&["apply", "-f", &rotated, "--auto-approve"]);
    assert_success(&out);
    let rotated_password = admin_password().await;
    assert_ne!(rotated_password, generated, "the rotation made a new value");
    for value in [&generated, &rotated_password] {
        assert!(
            !stdout(&out).contains(value.as_str()) && !stderr(&out).contains(value.as_str()),
            "an admin password is in apply's output"
        );
    }
}
