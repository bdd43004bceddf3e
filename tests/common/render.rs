// Rendering the reference stack's templates with plain looked-up values, for the tests that
// check rendered monitoring configs with the real tools (promtool, amtool, Prometheus,
// Alertmanager). One place, so every such test renders exactly what `deploy render` would.

use deploy::model::{LoadBalancer, Lookups};
use deploy::render::{RenderContext, Templates};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ALB DNS name the rendered configs see.
pub const DNS_NAME: &str = "application-load-balancer-1.us-west-2.elb.amazonaws.com";

/// stacks/monitoring.yaml as a plain JSON value.
pub fn reference_stack() -> Value {
    let path = super::repo_root().join("stacks/monitoring.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Plain lookups (no AWS): what the observe step would find in the seeded account.
pub fn lookups() -> Lookups {
    Lookups {
        account_id: "123456789012".into(),
        region: "us-west-2".into(),
        vpc_id: "vpc-0123456789abcdef0".into(),
        vpc_cidr: "10.0.0.0/16".into(),
        subnet_ids: vec!["subnet-0aaa".into(), "subnet-0bbb".into()],
        load_balancer: LoadBalancer {
            name: "application-load-balancer".into(),
            arn: "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/application-load-balancer/50dc6c495c0c9188".into(),
            dns_name: DNS_NAME.into(),
            vpc_id: "vpc-0123456789abcdef0".into(),
            security_groups: vec!["sg-0123456789abcdef0".into()],
            https_listener_arn: None,
            targets_by_port: Default::default(),
        },
        secrets: Default::default(),
        parameter_types: Default::default(),
        namespaces: Default::default(),
    }
}

/// The reference stack's vars with [`lookups`].
pub fn context() -> RenderContext {
    context_for(&reference_stack())
}

/// A stack's (as JSON) vars with [`lookups`]: tests that change vars pass their own copy.
/// With a `history:` section, the templates see its workspace URLs as `deploy` renders them
/// (the workspace's address in place of its id).
pub fn context_for(stack: &Value) -> RenderContext {
    let vars: BTreeMap<String, Value> = serde_json::from_value(stack["vars"].clone()).unwrap();
    let parsed: deploy::spec::Stack = serde_json::from_value(stack.clone()).unwrap();
    let history = deploy::spec::history::scope(&parsed, "us-west-2");
    RenderContext {
        stack: stack["stack"].as_str().unwrap().into(),
        environment: stack["environment"].as_str().unwrap().into(),
        region: "us-west-2".into(),
        vars,
        lookups: lookups(),
        history,
    }
}

/// Renders templates/`name` with `ctx`; a render error fails the test with its message.
pub fn render_with(name: &str, ctx: &RenderContext) -> String {
    Templates::new(Path::new(&super::repo_root()).join("templates"))
        .render(name, ctx)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Renders templates/`name` for the reference stack.
pub fn render(name: &str) -> String {
    render_with(name, &context())
}

/// Runs `promtool ARGS FILES…`; a missing promtool fails the test with how to install it.
/// Returns (success, stdout + stderr).
pub fn promtool(args: &[&str], files: &[PathBuf]) -> (bool, String) {
    let out = match Command::new("promtool").args(args).args(files).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed, so rendered configs and rules cannot be checked: \
             apt-get install prometheus (Debian/Ubuntu) or put promtool on PATH"
        ),
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every file under `dir` (what `deploy render` wrote, or a container wrote), by path
/// relative to it.
pub fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
