//! Every offline rule: an edit of the reference stack (or of a template) that trips it, with
//! the location asserted, and the reference stack that does not.

use super::*;
use std::path::Path;

const REFERENCE: &str = include_str!("../../stacks/monitoring.yaml");

/// Text replacements, each applied once: (find, replace).
type Edits = &'static [(&'static str, &'static str)];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The report for stack text, with templates from `templates` (the repository's by default).
fn lint_with(text: &str, templates: &Path, today: time::Date) -> Report {
    let loaded = crate::spec::parse(Path::new("stack.yaml"), text).expect("parses");
    let lookups = crate::model::Lookups::placeholders("us-west-2");
    let built =
        crate::spec::build_desired(&loaded, &lookups, &crate::render::Templates::new(templates))
            .expect("builds");
    offline(
        &Input {
            loaded: &loaded,
            built: &built,
            lookups: &lookups,
            templates,
        },
        today,
    )
}

fn lint(text: &str) -> Report {
    lint_with(text, &repo().join("templates"), today())
}

/// The reference stack without the suppression of `rule` at `address`.
fn unsuppressed(rule: &str, address: &str) -> String {
    let head = format!("    - rule: {rule}\n      address: {address}\n");
    let start = REFERENCE
        .find(&head)
        .expect("the reference stack suppresses it");
    let rest = &REFERENCE[start + head.len()..];
    let end = rest
        .find("    - rule: ")
        .or_else(|| rest.find("\n\n"))
        .unwrap_or(rest.len());
    format!("{}{}", &REFERENCE[..start], &rest[end..])
}

/// The 1-based line of the first line containing `needle`, plus `offset`.
fn line_of(text: &str, needle: &str, offset: isize) -> usize {
    let i = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}`"));
    (i as isize + 1 + offset) as usize
}

fn edit(text: &str, edits: &[(&str, &str)]) -> String {
    let mut t = text.to_string();
    for (find, replace) in edits {
        assert!(t.contains(find), "`{find}` is not in the text");
        t = t.replacen(find, replace, 1);
    }
    t
}

fn assert_found(report: &Report, rule: &str, file: &Path, line: usize) {
    let hits: Vec<&Finding> = report.active().filter(|f| f.rule.id == rule).collect();
    assert!(
        hits.iter()
            .any(|f| f.location.file == file && f.location.line == line),
        "{rule} expected at {}:{line}, found: {:#?}",
        file.display(),
        hits.iter().map(|f| output::line(f)).collect::<Vec<_>>()
    );
}

#[test]
fn the_reference_stack_lints_clean() {
    let report = lint(REFERENCE);
    let active: Vec<String> = report.active().map(output::line).collect();
    assert_eq!(active, Vec::<String>::new());
    // What it accepts is listed as suppressed, with the reason.
    assert!(report
        .findings
        .iter()
        .any(|f| f.rule.id == "DL035" && f.suppressed.is_some()));
}

#[test]
fn each_stack_rule_is_found_where_the_stack_says_it() {
    // (rule, edits of the reference stack, needle of the expected line, offset from it)
    let cases: &[(&str, Edits, &str, isize)] = &[
        (
            "DL001",
            &[(
                "        log_group: prometheus\n",
                "        log_group: prometheus\n        environment:\n          ALERT_WEBHOOK: https://hooks.slack.com/services/T1/B2/xyz\n",
            )],
            "ALERT_WEBHOOK",
            0,
        ),
        ("DL003", &[("        user: \"65534\"\n", "")], "image: prom/prometheus:v2.53.4", 0),
        ("DL003", &[("user: \"472\"", "user: root")], "user: root", 0),
        (
            "DL004",
            &[("        linux_parameters: { capabilities: { drop: [ALL] } }\n", "")],
            "image: prom/prometheus:v2.53.4",
            0,
        ),
        ("DL005", &[("        log_group: prometheus\n", "")], "image: prom/prometheus:v2.53.4", 0),
        ("DL006", &[("prom/prometheus:v2.53.4", "prom/prometheus:latest")], "prom/prometheus:latest", 0),
        ("DL006", &[("grafana/grafana:12.2.0", "grafana/grafana")], "image: grafana/grafana", 0),
        ("DL007", &[("    task_role: prometheus\n", "    task_role: execution\n")], "task_role: execution", 0),
        (
            "DL012",
            &[("    enable_execute_command: true\n", "    enable_execute_command: true\n    assign_public_ip: true\n")],
            "assign_public_ip",
            0,
        ),
        ("DL014", &[("container_insights: true", "container_insights: false")], "container_insights: false", 0),
        (
            "DL015",
            &[("    name: /ecs/prom-task\n    retention_days: 30\n", "    name: /ecs/prom-task\n")],
            "name: /ecs/prom-task",
            0,
        ),
        (
            "DL020",
            &[("      - port: 9090\n        from: grafana\n", "      - port: 9090\n        cidr: 0.0.0.0/0\n")],
            "cidr: 0.0.0.0/0",
            0,
        ),
        (
            "DL021",
            &[("      - port: 443\n        cidr: 0.0.0.0/0\n", "      - port: 8443\n        cidr: 0.0.0.0/0\n")],
            "port: 8443",
            0,
        ),
        (
            "DL022",
            &[("        description: Grafana's Prometheus data source\n", "")],
            "      - port: 9090",
            0,
        ),
        (
            "DL023",
            &[("security_groups:\n", "security_groups:\n  spare:\n    name: monitoring-spare\n    description: nothing uses it\n")],
            "name: monitoring-spare",
            0,
        ),
        (
            "DL024",
            &[("        - actions: [logs:CreateLogStream, logs:PutLogEvents]", "        - actions: [\"logs:*\"]")],
            "actions: [\"logs:*\"]",
            0,
        ),
        (
            "DL025",
            &[("            - ssmmessages:OpenDataChannel\n", "            - ssmmessages:OpenDataChannel\n            - logs:GetLogEvents\n")],
            "resources: [\"*\"]",
            0,
        ),
        (
            "DL026",
            &[("resources: [efs_file_system.grafana]", "resources: [\"arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/*\"]")],
            "file-system/*",
            0,
        ),
        (
            "DL027",
            &[("[elasticfilesystem:ClientMount,", "[iam:PassRole, elasticfilesystem:ClientMount,")],
            "iam:PassRole",
            0,
        ),
        (
            "DL029",
            &[("data: { file_system: grafana, access_point: grafana }", "data: { file_system: grafana }")],
            "data: { file_system: grafana }",
            0,
        ),
        ("DL029", &[("    root_directory: /grafana", "    root_directory: /")], "root_directory: /", 0),
        (
            "DL030",
            &[("          - --web.config.file=/etc/prometheus/web.yml\n", "")],
            "- --config.file=/etc/prometheus/prometheus.yml",
            0,
        ),
        (
            "DL026",
            &[("resources: [efs_file_system.grafana]", "resources: [\"arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/*\"]")],
            "file-system/*",
            0,
        ),
        (
            "DL040",
            &[("          - --web.config.file=/etc/alertmanager/web.yml\n", "")],
            "- --config.file=/etc/alertmanager/alertmanager.yml",
            0,
        ),
        (
            "DL041",
            &[("          - --cluster.listen-address=\n", "")],
            "- --config.file=/etc/alertmanager/alertmanager.yml",
            0,
        ),
        ("DL050", &[("GF_AUTH_ANONYMOUS_ENABLED: \"false\"", "GF_AUTH_ANONYMOUS_ENABLED: \"true\"")], "GF_AUTH_ANONYMOUS_ENABLED", 0),
        ("DL051", &[("GF_USERS_ALLOW_SIGN_UP: \"false\"", "GF_USERS_ALLOW_SIGN_UP: \"true\"")], "GF_USERS_ALLOW_SIGN_UP", 0),
        (
            "DL052",
            &[("          GF_SECURITY_ADMIN_PASSWORD: { secret: grafana_admin }\n", "")],
            "GF_SERVER_PROTOCOL: https",
            0,
        ),
        ("DL053", &[("GF_SECURITY_COOKIE_SECURE: \"true\"", "GF_SECURITY_COOKIE_SECURE: \"false\"")], "GF_SECURITY_COOKIE_SECURE", 0),
        (
            "DL054",
            &[("GF_SERVER_ROOT_URL: https://grafana.showcase.example.com/", "GF_SERVER_ROOT_URL: http://grafana.showcase.example.com/")],
            "GF_SERVER_ROOT_URL",
            0,
        ),
        (
            "DL054",
            &[("GF_SERVER_ROOT_URL: https://grafana.showcase.example.com/", "GF_SERVER_ROOT_URL: https://grafana.elsewhere.example.com/")],
            "GF_SERVER_ROOT_URL",
            0,
        ),
        (
            "DL061",
            &[("  sensitive_labels: [email, user_id, username, token, authorization, session_id, password]\n", "")],
            "backend_port: 3000",
            0,
        ),
        // The config sidecar's image, unpinned.
        (
            "DL006",
            &[("sidecar_image: public.ecr.aws/aws-cli/aws-cli:2.15.0", "sidecar_image: public.ecr.aws/aws-cli/aws-cli")],
            "sidecar_image:",
            0,
        ),
        (
            "DL062",
            &[("          - --storage.tsdb.retention.size=25GB\n", "")],
            "- --config.file=/etc/prometheus/prometheus.yml",
            0,
        ),
    ];
    let clean = lint(REFERENCE);
    for (rule, edits, needle, offset) in cases {
        assert!(
            clean.active().all(|f| f.rule.id != *rule),
            "the reference stack trips {rule}"
        );
        let text = edit(REFERENCE, edits);
        assert_found(
            &lint(&text),
            rule,
            Path::new("stack.yaml"),
            line_of(&text, needle, *offset),
        );
    }
}

#[test]
fn suppressed_rules_are_found_without_their_suppression() {
    for (rule, address, needle, offset) in [
        (
            "DL002",
            "task_definition.prometheus",
            "image: prom/prometheus:v2.53.4",
            0,
        ),
        (
            "DL002",
            "task_definition.grafana",
            "image: grafana/grafana:12.2.0",
            0,
        ),
        // The config sidecar deploy adds, found at the stack's `config_bucket` section (its
        // first line).
        ("DL002", "config_bucket", "sidecar_image:", 0),
        ("DL003", "config_bucket", "sidecar_image:", 0),
        ("DL004", "config_bucket", "sidecar_image:", 0),
        // The sidecar reloads Prometheus through /-/reload: --web.enable-lifecycle.
        (
            "DL031",
            "task_definition.prometheus",
            "- --web.enable-lifecycle",
            0,
        ),
    ] {
        let text = unsuppressed(rule, address);
        let report = lint(&text);
        assert_found(
            &report,
            rule,
            Path::new("stack.yaml"),
            line_of(&text, needle, offset),
        );
        assert!(report
            .active()
            .all(|f| f.rule.id != rule || f.address == address));
    }
    // DL035 is in the rendered prometheus.yml: found at the template's backend job.
    let report = lint(&unsuppressed("DL035", "task_definition.prometheus"));
    let template = repo().join("templates/prometheus.yml");
    let text = std::fs::read_to_string(&template).unwrap();
    assert_found(
        &report,
        "DL035",
        &template,
        template_line(&text, "job_name: backend").unwrap(),
    );
}

#[test]
fn each_rendered_file_rule_points_at_its_template_line() {
    // (rule, template, edits of it, stack edits, needle of the expected template line)
    let cases: &[(&str, &str, Edits, Edits, &str)] = &[
        (
            "DL032",
            "prometheus.yml",
            &[("    sample_limit: [[ vars.sample_limit ]]\n", "")],
            &[],
            "job_name: backend",
        ),
        (
            "DL033",
            "prometheus.yml",
            &[],
            &[("  scrape_timeout: 10s", "  scrape_timeout: 20s")],
            "scrape_timeout:",
        ),
        (
            "DL034",
            "prometheus.yml",
            &[(
                "      password_file: secrets/web_password\n",
                "      password: hunter2\n",
            )],
            &[],
            "password: hunter2",
        ),
        (
            "DL060",
            "prometheus.yml",
            &[("    label_value_length_limit: 2048\n", "")],
            &[],
            "job_name: backend",
        ),
        (
            "DL061",
            "prometheus.yml",
            &[(
                "regex: \"[[ vars.sensitive_labels | join(\"|\") ]]\"",
                "regex: \"email|token\"",
            )],
            &[],
            "action: labeldrop",
        ),
        (
            "DL042",
            "alertmanager.yml",
            &[(
                "      - api_url_file: [[ secrets ]]slack_webhook_url",
                "      - api_url: https://hooks.example.com/x",
            )],
            &[],
            "api_url: https://hooks.example.com/x",
        ),
        (
            "DL055",
            "grafana/datasources.yml",
            &[("    basicAuth: true\n", "    basicAuth: false\n")],
            &[],
            "name: Prometheus",
        ),
        (
            "DL055",
            "grafana/datasources.yml",
            &[(
                "      tlsAuthWithCACert: true\n",
                "      tlsAuthWithCACert: true\n      tlsSkipVerify: true\n",
            )],
            &[],
            "name: Prometheus",
        ),
    ];
    for (rule, template, edits, stack_edits, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("templates"), dir.path());
        let file = dir.path().join(template);
        let text = edit(&std::fs::read_to_string(&file).unwrap(), edits);
        std::fs::write(&file, &text).unwrap();
        let report = lint_with(&edit(REFERENCE, stack_edits), dir.path(), today());
        assert_found(&report, rule, &file, template_line(&text, needle).unwrap());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn what_cannot_happen_on_fargate_is_said_not_found() {
    let report = lint(REFERENCE);
    for id in ["DL009", "DL010", "DL011"] {
        let (_, why) = report.not_checked.iter().find(|(r, _)| r.id == id).unwrap();
        assert!(why.starts_with("does not apply on Fargate"), "{id}: {why}");
    }
    assert!(report
        .findings
        .iter()
        .all(|f| !matches!(f.rule.scope, Scope::NotOnFargate(_))));
    let text = output::text(&report);
    assert!(
        text.contains("DL009 No privileged container: does not apply on Fargate"),
        "{text}"
    );
    assert!(
        text.contains("DL017") && text.contains("not checked offline"),
        "{text}"
    );
}

#[test]
fn a_suppression_needs_a_reason_a_known_rule_and_address() {
    for (find, replace, path, says) in [
        (
            "      reason: the backend (not this stack's)",
            "      why: the backend (not this stack's)",
            "",
            "unknown field",
        ),
        (
            "    - rule: DL035\n",
            "    - rule: DL999\n",
            "lint.ignore.6.rule",
            "not a lint rule",
        ),
        (
            "    - rule: DL035\n",
            "    - rule: DL009\n",
            "lint.ignore.6.rule",
            "never a finding",
        ),
        (
            "      address: task_definition.grafana\n",
            "      address: task_definition.nope\n",
            "lint.ignore.1.address",
            "not an address",
        ),
    ] {
        let text = edit(REFERENCE, &[(find, replace)]);
        let errors = match crate::spec::parse(Path::new("s.yaml"), &text) {
            Err(e) => e.0,
            Ok(loaded) => loaded.validate().unwrap_err().0,
        };
        let e = &errors[0];
        assert!(e.path.starts_with(path) && e.message.contains(says), "{e}");
        assert!(e.line > 0, "{e}");
    }
    // Without `reason`: refused, located at the entry.
    let text = edit(
        REFERENCE,
        &[(
            "      reason: the backend (not this stack's) serves /metrics only over plain HTTP on :3000 inside the VPC; scrape it over HTTPS once its listener offers it\n",
            "",
        )],
    );
    let loaded = crate::spec::parse(Path::new("s.yaml"), &text).unwrap();
    let e = &loaded.validate().unwrap_err().0[0];
    assert_eq!(e.path, "lint.ignore.6.reason", "{e}");
    assert_eq!(e.line, line_of(&text, "    - rule: DL035", 0), "{e}");
    assert!(e.message.contains("needs a reason"), "{e}");
    // ... and it hides nothing.
    assert!(lint(&text).active().any(|f| f.rule.id == "DL035"));
}

#[test]
fn an_expired_suppression_is_itself_a_finding_and_hides_nothing() {
    let text = edit(
        REFERENCE,
        &[(
            "      address: task_definition.prometheus\n      reason: the backend",
            "      address: task_definition.prometheus\n      expires: 2026-03-01\n      reason: the backend",
        )],
    );
    let before = time::Date::from_calendar_date(2026, time::Month::February, 28).unwrap();
    let after = time::Date::from_calendar_date(2026, time::Month::March, 2).unwrap();
    let templates = repo().join("templates");
    let valid = lint_with(&text, &templates, before);
    assert!(valid.active().next().is_none());
    let s = valid
        .findings
        .iter()
        .find(|f| f.rule.id == "DL035")
        .unwrap();
    assert_eq!(
        s.suppressed.as_ref().unwrap().expires.as_deref(),
        Some("2026-03-01")
    );
    let expired = lint_with(&text, &templates, after);
    assert_found(
        &expired,
        "DL069",
        Path::new("stack.yaml"),
        line_of(&text, "expires: 2026-03-01", 0),
    );
    assert!(expired.active().any(|f| f.rule.id == "DL035"));
    assert!(expired.fails(FailOn::Error));
}

#[test]
fn fail_on_decides_the_outcome() {
    let text = edit(
        REFERENCE,
        &[("container_insights: true", "container_insights: false")],
    );
    let report = lint(&text);
    assert!(!report.fails(FailOn::Error));
    assert!(report.fails(FailOn::Warning));
    assert!(!report.fails(FailOn::Never));
}

#[test]
fn the_folded_spec_errors_still_refuse_at_load_with_their_ids() {
    let text = edit(
        REFERENCE,
        &[(
            "      - port: 9090\n        from: grafana\n",
            "      - port: 9090\n        cidr: 0.0.0.0/0\n",
        )],
    );
    let loaded = crate::spec::parse(Path::new("s.yaml"), &text).unwrap();
    let e = &refuse_at_load(&loaded).unwrap_err().0[0];
    assert_eq!(e.path, "security_groups.prometheus.ingress.0.cidr");
    assert!(e.message.ends_with("[DL020]"), "{e}");
    // Suppressed with a reason, it loads (and is listed as suppressed).
    let text = format!(
        "{text}    - rule: DL020\n      address: security_group.prometheus\n      reason: a test of suppression\n"
    );
    let loaded = crate::spec::parse(Path::new("s.yaml"), &text).unwrap();
    assert!(refuse_at_load(&loaded).is_ok());
}

#[test]
fn unscopable_actions_come_from_the_list() {
    assert!(checks::is_unscopable("ec2:DescribeInstances"));
    assert!(checks::is_unscopable("SSMMESSAGES:OpenDataChannel"));
    assert!(!checks::is_unscopable("logs:GetLogEvents"));
    assert!(!checks::is_unscopable("elasticfilesystem:ClientMount"));
}

#[test]
fn template_lines_skip_the_header_comment() {
    let text = "[#\n  uses scrape_timeout\n#]\nglobal:\n  scrape_timeout: 1s\n";
    assert_eq!(template_line(text, "scrape_timeout"), Some(5));
    assert_eq!(template_line(text, "nothing"), None);
}

#[test]
fn the_readme_rule_table_is_generated_from_the_table() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (_, rest) = readme
        .split_once("<!-- lint-rules:begin -->\n")
        .expect("README has the lint-rules markers");
    let (table, _) = rest.split_once("<!-- lint-rules:end -->").unwrap();
    assert_eq!(
        table,
        output::readme_table(),
        "README's lint rule table differs from the rule table: regenerate it with bash scripts/readme-policies.sh"
    );
}
