//! Gets rendered config files into a stock container image without building a custom image.
//!
//! Each file travels in its own environment variable of the task definition; the container
//! starts `/bin/sh -c SCRIPT`, which writes the files with `printf '%s'` and then `exec`s the
//! image's own program with its arguments, so that program runs as PID 1 and gets ECS's
//! SIGTERM. The values never pass through a shell parser (only `"$VAR"` expansions do), so
//! `$`, backslashes, `%` and `{{ }}` arrive byte for byte. The price: the files count against
//! the 64 KiB RegisterTaskDefinition limit, and changing one means a new revision and a task
//! restart.

use super::RenderError;
use std::collections::BTreeMap;

/// `$0` of the delivery script: what `sh` names itself in its own error messages.
pub const ARGV0: &str = "deploy-files";

/// ECS refuses a RegisterTaskDefinition request larger than this many bytes.
pub const ECS_REQUEST_LIMIT: usize = 64 * 1024;

/// How rendered files reach a stock container image: the container's `entryPoint`, `command`
/// and `environment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub entry_point: Vec<String>,
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
}

/// files: container absolute path -> file content. entry_point: the image's own program (e.g.
/// /bin/prometheus). args: its arguments.
pub fn deliver_files(
    files: &BTreeMap<String, String>,
    entry_point: &str,
    args: &[String],
) -> Result<Delivery, RenderError> {
    let refuse = |what: &str, message: String| RenderError {
        template: what.to_string(),
        line: None,
        message,
    };

    check_quotable(entry_point).map_err(|m| refuse(entry_point, format!("entry point {m}")))?;
    if entry_point.is_empty() {
        return Err(refuse(entry_point, "entry point is empty".into()));
    }
    if let Some(arg) = args.iter().find(|a| a.contains('\0')) {
        return Err(refuse(
            entry_point,
            format!("argument {arg:?} contains a NUL byte"),
        ));
    }

    let mut dirs: Vec<&str> = Vec::new();
    for (path, content) in files {
        check_path(path).map_err(|m| refuse(path, m))?;
        if content.contains('\0') {
            return Err(refuse(
                path,
                "content contains a NUL byte, which an environment variable cannot carry".into(),
            ));
        }
        let parent = &path[..path.rfind('/').unwrap_or(0)];
        if !parent.is_empty() && !dirs.contains(&parent) {
            dirs.push(parent);
        }
    }
    if let Some(path) = files.keys().find(|p| {
        dirs.iter()
            .any(|d| d == p || d.starts_with(&format!("{p}/")))
    }) {
        return Err(refuse(
            path,
            "is both a file and a directory of another file".into(),
        ));
    }

    let mut script = String::from("set -eu\n");
    if !dirs.is_empty() {
        script.push_str("mkdir -p");
        for dir in &dirs {
            script.push_str(&format!(" '{dir}'"));
        }
        script.push('\n');
    }
    let mut environment = BTreeMap::new();
    for (n, (path, content)) in files.iter().enumerate() {
        let var = format!("DEPLOY_FILE_{n}");
        script.push_str(&format!("printf '%s' \"${var}\" > '{path}'\n"));
        environment.insert(var, content.clone());
    }
    script.push_str(&format!("exec '{entry_point}' \"$@\"\n"));

    let mut command = vec![script, ARGV0.to_string()];
    command.extend(args.iter().cloned());
    let delivery = Delivery {
        entry_point: vec!["/bin/sh".into(), "-c".into()],
        command,
        environment,
    };
    let size = delivery.request_bytes();
    if size > ECS_REQUEST_LIMIT {
        let what = files.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(refuse(
            &what,
            format!(
                "the delivered files take {size} bytes of the task definition, over the \
                 64 KiB ({ECS_REQUEST_LIMIT} bytes) ECS allows a RegisterTaskDefinition request"
            ),
        ));
    }
    Ok(delivery)
}

impl Delivery {
    /// Bytes these fields take in a RegisterTaskDefinition JSON request (escapes included).
    fn request_bytes(&self) -> usize {
        let json = |s: &str| serde_json::to_string(s).map_or(0, |j| j.len());
        let list: usize = self
            .entry_point
            .iter()
            .chain(&self.command)
            .map(|s| json(s) + 1)
            .sum();
        let env: usize = self
            .environment
            .iter()
            .map(|(k, v)| json(k) + json(v) + r#"{"name":,"value":},"#.len())
            .sum();
        list + env + r#""entryPoint":[],"command":[],"environment":[],"#.len()
    }
}

/// A container file path the script can single-quote and write.
fn check_path(path: &str) -> Result<(), String> {
    check_quotable(path).map_err(|m| format!("container path {m}"))?;
    let Some(rest) = path.strip_prefix('/') else {
        return Err("container path must be absolute (start with /)".into());
    };
    if rest
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(
            "container path must name a file: no empty, `.` or `..` component, no trailing /"
                .into(),
        );
    }
    Ok(())
}

/// Single quotes in sh protect every byte except the quote itself; newlines are refused
/// too so the script stays one command per line.
fn check_quotable(s: &str) -> Result<(), String> {
    if s.contains('\'') {
        Err("must not contain a single quote".into())
    } else if s.contains('\n') || s.contains('\r') {
        Err("must not contain a line break".into())
    } else if s.contains('\0') {
        Err("must not contain a NUL byte".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn script_writes_files_in_path_order_then_execs() {
        let d = deliver_files(
            &files(&[
                ("/etc/prometheus/prometheus.yml", "a: $x\n"),
                ("/etc/a b/r.yml", ""),
            ]),
            "/bin/prometheus",
            &["--config.file=/etc/prometheus/prometheus.yml".into()],
        )
        .unwrap();
        assert_eq!(d.entry_point, ["/bin/sh", "-c"]);
        assert_eq!(
            d.command[0],
            "set -eu\n\
             mkdir -p '/etc/a b' '/etc/prometheus'\n\
             printf '%s' \"$DEPLOY_FILE_0\" > '/etc/a b/r.yml'\n\
             printf '%s' \"$DEPLOY_FILE_1\" > '/etc/prometheus/prometheus.yml'\n\
             exec '/bin/prometheus' \"$@\"\n"
        );
        assert_eq!(
            d.command[1..],
            [ARGV0, "--config.file=/etc/prometheus/prometheus.yml"]
        );
        assert_eq!(d.environment["DEPLOY_FILE_0"], "");
        assert_eq!(d.environment["DEPLOY_FILE_1"], "a: $x\n");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "etc/prometheus.yml",
            "/etc/it's.yml",
            "/etc/a\nb.yml",
            "/etc/prometheus/",
            "/etc/../x.yml",
            "/etc//x.yml",
            "/",
        ] {
            let err = deliver_files(&files(&[(bad, "x")]), "/bin/prometheus", &[]).unwrap_err();
            assert_eq!(err.template, bad);
            assert!(err.message.starts_with("container path"), "{err}");
        }
        let err = deliver_files(&files(&[("/a", "x"), ("/a/b", "y")]), "/bin/p", &[]).unwrap_err();
        assert_eq!(err.template, "/a", "{err}");
        assert!(deliver_files(&files(&[("/x", "a\0b")]), "/bin/p", &[]).is_err());
        assert!(deliver_files(&files(&[]), "/bin/it's", &[]).is_err());
        assert!(deliver_files(&files(&[]), "", &[]).is_err());
    }

    #[test]
    fn oversized_files_are_refused_before_ecs_does() {
        let big = "x\"".repeat(ECS_REQUEST_LIMIT / 3);
        let err = deliver_files(&files(&[("/etc/big", &big)]), "/bin/p", &[]).unwrap_err();
        assert!(err.message.contains("64"), "{err}");
        let fits = "x".repeat(ECS_REQUEST_LIMIT / 2);
        assert!(deliver_files(&files(&[("/etc/ok", &fits)]), "/bin/p", &[]).is_ok());
    }
}
