//! Renders the config files a stack ships to its containers (templates/prometheus.yml, …).
//!
//! Templates use minijinja with `[[ … ]]`, `[% … %]` and `[# … #]` delimiters, so the
//! `{{ $labels.instance }}` templates that Prometheus and Alertmanager evaluate themselves pass
//! through untouched. Rendering is strict: a misspelt `vars.NAME` is an error naming the
//! template file and line, never an empty string in a production config. How the rendered
//! files then reach a stock image lives in [`delivery`].

mod delivery;
pub mod reload;
pub mod requests;

pub use delivery::{
    deliver_files, delivered_file_secrets, delivered_files, delivered_program, secret_marker,
    secrets_in, shown_content, Delivery, ARGV0, ECS_REQUEST_LIMIT,
};

use crate::model::Lookups;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a template can see: `stack`, `environment`, `region`, `account_id`, `vars`, `lookups`.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderContext {
    pub stack: String,
    pub environment: String,
    pub region: String,
    /// The stack's `vars:`, seen by templates as `vars.NAME`.
    pub vars: BTreeMap<String, Value>,
    /// Looked-up infrastructure (or [`Lookups::placeholders`] under `validate`).
    pub lookups: Lookups,
    /// The stack's `history:` workspace URLs (`None` when the section is off).
    pub history: Option<crate::spec::history::HistoryScope>,
}

/// The names a template sees (the account id is lifted to the top level for convenience).
#[derive(Serialize)]
struct TemplateScope<'a> {
    stack: &'a str,
    environment: &'a str,
    region: &'a str,
    account_id: &'a str,
    vars: &'a BTreeMap<String, Value>,
    lookups: &'a Lookups,
    history: &'a Option<crate::spec::history::HistoryScope>,
}

/// A failed render or delivery, located for the user: `templates/prometheus.yml:12: …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{template}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct RenderError {
    /// The file as the user knows it (`templates/prometheus.yml`), or the container path for
    /// delivery errors.
    pub template: String,
    /// 1-based line in `template`, when known.
    pub line: Option<usize>,
    pub message: String,
}

/// The templates directory of a stack.
#[derive(Debug)]
pub struct Templates {
    dir: PathBuf,
    env: Environment<'static>,
}

impl Templates {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .variable_delimiters("[[", "]]")
            .block_delimiters("[%", "%]")
            .comment_delimiters("[#", "#]")
            .build()
            .expect("the template delimiters are valid");
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        // A block tag alone on its line leaves no blank line or indent behind (YAML cares).
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Config files are not HTML: never escape, whatever the file extension.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_loader(minijinja::path_loader(&dir));
        // `[[ secret("NAME") ]]`: the container's secret variable NAME, filled in when the
        // container starts (see `delivery`); the rendered text holds only a marker.
        env.add_function("secret", |name: String| secret_marker(&name));
        Templates { dir, env }
    }

    /// Renders `name` (a path relative to the templates dir). Strict: an undefined variable is
    /// an error.
    pub fn render(&self, name: &str, ctx: &RenderContext) -> Result<String, RenderError> {
        let scope = TemplateScope {
            stack: &ctx.stack,
            environment: &ctx.environment,
            region: &ctx.region,
            account_id: &ctx.lookups.account_id,
            vars: &ctx.vars,
            lookups: &ctx.lookups,
            history: &ctx.history,
        };
        self.env
            .get_template(name)
            .and_then(|t| t.render(&scope))
            .map_err(|e| self.error(name, &e))
    }

    /// The path a user would open for template `name`.
    fn user_path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn error(&self, requested: &str, err: &minijinja::Error) -> RenderError {
        // An error inside an included template names that template, not the one requested.
        let name = err.name().unwrap_or(requested);
        let message = match err.kind() {
            ErrorKind::UndefinedError => {
                let source = std::fs::read_to_string(self.dir.join(name)).ok();
                match err
                    .range()
                    .and_then(|r| source.as_deref()?.get(r))
                    .map(undefined_expression)
                {
                    Some(expr) if !expr.is_empty() => format!("undefined variable `{expr}`"),
                    _ => "undefined variable".to_string(),
                }
            }
            ErrorKind::TemplateNotFound => {
                format!("no such template in {}", self.dir.display())
            }
            kind => match err.detail() {
                Some(detail) => format!("{kind}: {detail}"),
                None => kind.to_string(),
            },
        };
        RenderError {
            template: self.user_path(name),
            line: err.line(),
            message,
        }
    }
}

/// The expression an undefined error points at, without delimiters or filters' noise.
fn undefined_expression(span: &str) -> String {
    let s = span.trim();
    let s = s.strip_prefix("[[").unwrap_or(s);
    let s = s.strip_suffix("]]").unwrap_or(s);
    s.trim().to_string()
}

/// Checks that a rendered YAML file still parses, so a template that produces broken YAML is
/// caught by `validate`, before any container sees it. `template` is the user path used in
/// the error; the error's message gives the position in the rendered output.
pub fn check_yaml(template: &str, rendered: &str) -> Result<(), RenderError> {
    serde_saphyr::from_str::<Value>(rendered)
        .map(drop)
        .map_err(|e| RenderError {
            template: template.to_string(),
            line: None,
            message: format!("rendered output is not valid YAML: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lookups;
    use serde_json::json;

    fn ctx() -> RenderContext {
        RenderContext {
            stack: "monitoring".into(),
            environment: "production".into(),
            region: "us-west-2".into(),
            vars: [("backend_port".to_string(), json!(3000))].into(),
            lookups: Lookups::placeholders("us-west-2"),
            history: None,
        }
    }

    fn templates(files: &[(&str, &str)]) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let t = Templates::new(dir.path());
        (dir, t)
    }

    #[test]
    fn undefined_variable_names_file_line_and_expression() {
        let (dir, t) = templates(&[(
            "p.yml",
            "a: [[ vars.backend_port ]]\nb: 1\nc: [[ vars.nope ]]\n",
        )]);
        let err = t.render("p.yml", &ctx()).unwrap_err();
        let path = dir.path().join("p.yml").display().to_string();
        assert_eq!(err.template, path);
        assert_eq!(err.line, Some(3));
        assert_eq!(
            err.to_string(),
            format!("{path}:3: undefined variable `vars.nope`")
        );
    }

    #[test]
    fn undefined_top_level_and_nested_names_are_errors_too() {
        let (_dir, t) = templates(&[
            ("a.yml", "x\n[% if vars.missing %]y[% endif %]\n"),
            ("b.yml", "[[ nope.deeper ]]\n"),
            ("c.yml", "[[ lookups.load_balancer.nope ]]\n"),
        ]);
        for (name, line) in [("a.yml", 2), ("b.yml", 1), ("c.yml", 1)] {
            let err = t.render(name, &ctx()).unwrap_err();
            assert_eq!(err.line, Some(line), "{err}");
            assert!(err.message.starts_with("undefined variable"), "{err}");
        }
    }

    #[test]
    fn relative_dir_is_reported_as_given() {
        let t = Templates::new("templates");
        let err = t.render("nope.yml", &ctx()).unwrap_err();
        assert_eq!(err.template, "templates/nope.yml");
        assert_eq!(err.line, None);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let (_dir, t) = templates(&[("s.yml", "a: 1\nb: [[ vars.backend_port \n")]);
        let err = t.render("s.yml", &ctx()).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("syntax error"), "{err}");
    }

    #[test]
    fn prometheus_templates_pass_through_untouched() {
        let text = "summary: '{{ $labels.instance }} down {{ $value | humanize }}'\n\
                    x: {% raw %}{{- range $i := . }}{# c #}\n\
                    port: [[ vars.backend_port ]]\n\
                    account: [[ account_id ]] in [[ region ]]\n\n";
        let (_dir, t) = templates(&[("r.yml", text)]);
        let out = t.render("r.yml", &ctx()).unwrap();
        assert_eq!(
            out,
            "summary: '{{ $labels.instance }} down {{ $value | humanize }}'\n\
             x: {% raw %}{{- range $i := . }}{# c #}\n\
             port: 3000\n\
             account: <lookup:account_id> in us-west-2\n\n"
        );
    }

    #[test]
    fn yaml_values_are_not_escaped_and_blocks_leave_no_blank_lines() {
        let (_dir, t) = templates(&[(
            "e.yaml",
            "a: \"[[ stack ]]&<'>\"\nl:\n  [% for s in lookups.subnet_ids %]\n  - [[ s ]]\n  [% endfor %]\nz: 1",
        )]);
        let out = t.render("e.yaml", &ctx()).unwrap();
        assert_eq!(
            out,
            "a: \"monitoring&<'>\"\nl:\n  - <lookup:subnet_ids>\nz: 1"
        );
    }

    #[test]
    fn check_yaml_rejects_broken_output() {
        assert!(check_yaml("t.yml", "a: [1, 2]\n").is_ok());
        let err = check_yaml("t.yml", "a: [1, 2\n").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("t.yml: rendered output is not valid YAML"));
    }
}
