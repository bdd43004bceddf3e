// A real Prometheus on a loopback port for the tests that run one (the Debian package's
// binary, as scripts/setup.sh installs it), or another server beside it, killed on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The prometheus binary: Debian's, else one on PATH; missing fails with how to install it.
pub fn binary() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.is_file() {
        return debian;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "prometheus is not installed: run `bash scripts/setup.sh` (apt-get install \
                 prometheus on Debian/Ubuntu), or put a prometheus binary on PATH"
            )
        })
}

/// A started Prometheus: its child process (killed on drop) and the file its log goes to.
pub struct Server {
    child: Child,
    pub log: PathBuf,
}

impl Server {
    /// Starts `prometheus ARGS` with its data under `dir`/data and its log in `dir`/NAME.log,
    /// no AWS setting of the host's and `env` set.
    pub fn start(dir: &Path, name: &str, args: &[String], env: &[(&str, &str)]) -> Server {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        super::scrub_aws_env(&mut cmd);
        cmd.envs(env.iter().copied());
        Server::spawn(cmd, log)
    }

    /// Spawns `cmd` (its stderr already set up to go to `log`), killed on drop.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Server {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        Server { child, log }
    }

    /// Whether it exited (with its log's end), for a clearer failure than a timeout.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{status}:\n{}", super::tail(&self.log, 20))),
            _ => None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        super::kill(&mut self.child);
    }
}
