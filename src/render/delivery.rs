//! Gets rendered config files into a stock container image without building a custom image.
//!
//! Each file travels in its own environment variable of the task definition; the container
//! starts `/bin/sh -c SCRIPT`, which writes the files with `printf '%s'` and then `exec`s the
//! image's own program with its arguments, so that program runs as PID 1 and gets ECS's
//! SIGTERM. The values never pass through a shell parser (only `"$VAR"` expansions do), so
//! `$`, backslashes, `%` and `{{ }}` arrive byte for byte. The price: the files count against
//! the 64 KiB RegisterTaskDefinition limit, and changing one means a new revision and a task
//! restart.
//!
//! A file may contain secrets: a template's `[[ secret("NAME") ]]` (or a container's
//! `secret_files`) leaves a marker that is never filled in here. The script writes such a file
//! as `printf '%s' "$DEPLOY_FILE_3_0" "$NAME" "$DEPLOY_FILE_3_1"`, so the value comes from the
//! variable ECS injects from Secrets Manager at task start and is written with `umask 077`;
//! the task definition, the plan and every output hold only the variable's name.

use super::RenderError;
use std::collections::BTreeMap;

/// Delimits a secret reference inside rendered content (a control character no config file
/// contains; templates cannot produce it except through `secret()`).
const SECRET_MARK: char = '\u{1}';

/// The marker `secret("NAME")` renders to: the container's secret variable NAME, filled in at
/// container start.
pub fn secret_marker(name: &str) -> String {
    format!("{SECRET_MARK}{name}{SECRET_MARK}")
}

/// Rendered content as people see it: each secret marker shown as `<secret:NAME>`.
pub fn shown_content(content: &str) -> String {
    split_secrets(content)
        .into_iter()
        .map(|p| match p {
            Part::Text(t) => t.to_string(),
            Part::Secret(n) => format!("<secret:{n}>"),
        })
        .collect()
}

/// The secret variables a rendered content refers to.
pub fn secrets_in(content: &str) -> Vec<String> {
    split_secrets(content)
        .into_iter()
        .filter_map(|p| match p {
            Part::Secret(n) => Some(n.to_string()),
            Part::Text(_) => None,
        })
        .collect()
}

enum Part<'a> {
    Text(&'a str),
    Secret(&'a str),
}

fn split_secrets(content: &str) -> Vec<Part<'_>> {
    content
        .split(SECRET_MARK)
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 0 {
                Part::Text(p)
            } else {
                Part::Secret(p)
            }
        })
        .collect()
}

fn is_env_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

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
        if content.matches(SECRET_MARK).count() % 2 != 0 {
            return Err(refuse(path, "an unterminated secret reference".into()));
        }
        if let Some(bad) = secrets_in(content).iter().find(|n| !is_env_name(n)) {
            return Err(refuse(
                path,
                format!("secret `{bad}` is not an environment variable name"),
            ));
        }
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
    if files.values().any(|c| c.contains(SECRET_MARK)) {
        // Files that hold secrets are readable by the container's user only.
        script.push_str("umask 077\n");
    }
    let mut environment = BTreeMap::new();
    for (n, (path, content)) in files.iter().enumerate() {
        let var = format!("DEPLOY_FILE_{n}");
        if !content.contains(SECRET_MARK) {
            script.push_str(&format!("printf '%s' \"${var}\" > '{path}'\n"));
            environment.insert(var, content.clone());
            continue;
        }
        let mut args = Vec::new();
        for (k, part) in split_secrets(content).into_iter().enumerate() {
            match part {
                Part::Text("") => {}
                Part::Text(t) => {
                    let chunk = format!("{var}_{k}");
                    args.push(format!("\"${chunk}\""));
                    environment.insert(chunk, t.to_string());
                }
                Part::Secret(name) => args.push(format!("\"${name}\"")),
            }
        }
        script.push_str(&format!("printf '%s' {} > '{path}'\n", args.join(" ")));
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

/// The files a delivery script writes, read back from a container's `command` and
/// `environment` (as a plan shows them): container path → content, secrets shown as
/// `<secret:NAME>`. The inverse of [`deliver_files`], for output.
pub fn delivered_files(
    script: &str,
    environment: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for (path, vars) in printf_lines(script) {
        let mut content = String::new();
        for var in vars {
            if var.starts_with("DEPLOY_FILE_") {
                content.push_str(environment.get(var).map(String::as_str).unwrap_or(""));
            } else {
                content.push_str(&format!("<secret:{var}>"));
            }
        }
        files.insert(path.to_string(), content);
    }
    files
}

/// The secret variables each delivered file is written with (container path → names; files
/// without secrets left out), read back from a delivery script.
pub fn delivered_file_secrets(script: &str) -> BTreeMap<String, Vec<String>> {
    printf_lines(script)
        .into_iter()
        .map(|(path, vars)| {
            let secrets: Vec<String> = vars
                .iter()
                .filter(|v| !v.starts_with("DEPLOY_FILE_"))
                .map(|v| v.to_string())
                .collect();
            (path.to_string(), secrets)
        })
        .filter(|(_, secrets)| !secrets.is_empty())
        .collect()
}

/// The script's `printf '%s' "$A" "$B" > 'PATH'` lines as (PATH, [A, B]).
fn printf_lines(script: &str) -> Vec<(&str, Vec<&str>)> {
    let mut lines = Vec::new();
    for line in script.lines() {
        let Some(rest) = line.strip_prefix("printf '%s' ") else {
            continue;
        };
        let Some((args, path)) = rest.rsplit_once(" > '") else {
            continue;
        };
        let vars = args
            .split(' ')
            .map(|arg| arg.trim_matches('"').trim_start_matches('$'))
            .collect();
        lines.push((path.trim_end_matches('\''), vars));
    }
    lines
}

/// The program a delivery script `exec`s (the image's own entry point), read back from the
/// script as a plan shows it; `None` for a command that is not a delivery script.
pub fn delivered_program(script: &str) -> Option<&str> {
    script
        .lines()
        .find_map(|line| line.strip_prefix("exec '")?.strip_suffix("' \"$@\""))
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
        assert_eq!(delivered_program(&d.command[0]), Some("/bin/prometheus"));
        assert_eq!(delivered_program("prometheus --config.file=x"), None);
    }

    #[test]
    fn secrets_are_filled_in_by_the_container_and_never_carried() {
        let content = format!(
            "user: grafana\npassword: {}\n",
            secret_marker("ADMIN_PASSWORD")
        );
        let d = deliver_files(
            &files(&[("/etc/x/web.yml", &content), ("/etc/x/plain.yml", "a: 1\n")]),
            "/bin/p",
            &[],
        )
        .unwrap();
        assert_eq!(
            d.command[0],
            "set -eu\n\
             mkdir -p '/etc/x'\n\
             umask 077\n\
             printf '%s' \"$DEPLOY_FILE_0\" > '/etc/x/plain.yml'\n\
             printf '%s' \"$DEPLOY_FILE_1_0\" \"$ADMIN_PASSWORD\" \"$DEPLOY_FILE_1_2\" > '/etc/x/web.yml'\n\
             exec '/bin/p' \"$@\"\n"
        );
        assert_eq!(
            d.environment["DEPLOY_FILE_1_0"],
            "user: grafana\npassword: "
        );
        assert_eq!(d.environment["DEPLOY_FILE_1_2"], "\n");
        let shown = delivered_files(&d.command[0], &d.environment);
        assert_eq!(
            shown["/etc/x/web.yml"],
            "user: grafana\npassword: <secret:ADMIN_PASSWORD>\n"
        );
        assert_eq!(shown["/etc/x/plain.yml"], "a: 1\n");
        assert_eq!(
            delivered_file_secrets(&d.command[0]),
            BTreeMap::from([(
                "/etc/x/web.yml".to_string(),
                vec!["ADMIN_PASSWORD".to_string()]
            )])
        );
        assert_eq!(shown_content(&content), shown["/etc/x/web.yml"]);
        let bad = secret_marker("NOT A NAME");
        assert!(deliver_files(&files(&[("/x", &bad)]), "/bin/p", &[]).is_err());
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
