//! The stack's `history:` section: Prometheus's samples also go to an Amazon Managed Service
//! for Prometheus workspace the stack owns (`amp_workspace.history`), so a restarted or
//! replaced Prometheus task loses nothing and a team that outgrows one task keeps its
//! long-term data in a managed store. Kept in one place: the workspace resource, what the
//! templates see (`history.remote_write_url`, `history.query_url`), the task roles' access to
//! the workspace, and Grafana's switch for SigV4 data sources.
//!
//! The workspace id is AWS's pick. The rendered files name the workspace's URLs with its
//! address in place of the id (`model::ENDPOINT_REFERENCES`), and the task roles name its
//! ARN the same way (`model::ARN_REFERENCES`): references like any other, filled in by the
//! executor once the workspace exists and mapped back by the diff, so the first plan shows the
//! address and the plan after an apply is empty.

use super::{LoadedStack, SpecError, Stack};
use crate::model::{Address, AmpWorkspaceAttrs, Attrs, Desired, Kind, Lookups, Tags};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The workspace's key: the stack has one history workspace, `amp_workspace.history`.
pub const KEY: &str = "history";
/// The inline policy deploy writes on the task roles that write to or read the workspace.
pub const POLICY: &str = "deploy-history";
/// The template whose containers remote-write (their task role gets `aps:RemoteWrite`).
pub const WRITER_TEMPLATE: &str = "prometheus.yml";
/// The template whose containers query the workspace (their task role gets the query actions,
/// their environment Grafana's SigV4 switch).
pub const READER_TEMPLATE: &str = "grafana/datasources.yml";
/// What Prometheus's remote write needs on the workspace.
pub const WRITE_ACTIONS: [&str; 1] = ["aps:RemoteWrite"];
/// What Grafana's Prometheus data source calls on the workspace (AWS's managed policy
/// AmazonPrometheusQueryAccess, on this workspace only).
pub const QUERY_ACTIONS: [&str; 4] = [
    "aps:GetLabels",
    "aps:GetMetricMetadata",
    "aps:GetSeries",
    "aps:QueryMetrics",
];
/// Grafana signs data source requests with SigV4 only with this set.
pub const GRAFANA_SIGV4_ENV: (&str, &str) = ("GF_AUTH_SIGV4_AUTH_ENABLED", "true");
/// AMP's limit on aliases.
const MAX_ALIAS: usize = 100;

/// The stack's `history:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySpec {
    /// The workspace's alias in the console; `STACK-ENVIRONMENT-history` when left out.
    pub alias: Option<String>,
}

/// What the templates see as `history` when the section is on (else `history` is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryScope {
    /// Prometheus's `remote_write` URL (the workspace's address in place of its id).
    pub remote_write_url: String,
    /// The Prometheus-compatible query URL Grafana's data source uses.
    pub query_url: String,
    /// The region SigV4 signs for.
    pub region: String,
}

/// The workspace's address.
pub fn address() -> Address {
    Address::new(Kind::AmpWorkspace, KEY)
}

/// `STACK-ENVIRONMENT-history`: the workspace's `Name` tag (its identity) and default alias.
pub fn workspace_name(stack: &Stack) -> String {
    super::environments::fit(
        &format!("{}-{}-{KEY}", stack.stack, stack.environment),
        MAX_ALIAS,
    )
}

/// The template scope, `None` without a `history:` section.
pub fn scope(stack: &Stack, region: &str) -> Option<HistoryScope> {
    stack.history.as_ref()?;
    let ws = address().to_string();
    Some(HistoryScope {
        remote_write_url: format!("{}/api/v1/remote_write", query_url(region, &ws)),
        query_url: query_url(region, &ws),
        region: region.to_string(),
    })
}

fn query_url(region: &str, workspace: &str) -> String {
    format!("https://aps-workspaces.{region}.amazonaws.com/workspaces/{workspace}")
}

/// The workspace's ARN with its address in place of the id (a reference the executor fills).
pub fn resource_arn(stack: &Stack, lookups: &Lookups, a: &Address) -> Option<String> {
    (stack.history.is_some() && a.kind == Kind::AmpWorkspace && a.name == KEY).then(|| {
        format!(
            "arn:aws:aps:{}:{}:workspace/{a}",
            lookups.region, lookups.account_id
        )
    })
}

/// True when the stack declares this workspace address.
pub fn defines(stack: &Stack, a: &Address) -> bool {
    stack.history.is_some() && a.kind == Kind::AmpWorkspace && a.name == KEY
}

/// The workspace as the stack wants it, `None` without a `history:` section.
pub fn desired(stack: &Stack, tags: &Tags) -> Option<Desired> {
    let h = stack.history.as_ref()?;
    let name = workspace_name(stack);
    Some(Desired {
        address: address(),
        attrs: Attrs::AmpWorkspace(AmpWorkspaceAttrs {
            alias: h.alias.clone().unwrap_or_else(|| name.clone()),
            name,
            tags: tags.clone(),
        }),
        ignore: Default::default(),
        restart_loses: None,
    })
}

/// Whether a container renders `template` into one of its files.
fn renders(c: &super::ContainerSpec, template: &str) -> bool {
    c.files.values().any(|t| t == template)
}

/// The [`POLICY`] document of task role `role_key`: remote write for the roles of tasks that
/// run Prometheus (render [`WRITER_TEMPLATE`]), the query actions for those of tasks that
/// run Grafana (render [`READER_TEMPLATE`]), on the workspace only. `None` when the section
/// is off or the role's tasks do neither.
pub fn task_role_policy(stack: &Stack, lookups: &Lookups, role_key: &str) -> Option<Value> {
    let arn = resource_arn(stack, lookups, &address())?;
    let containers = || {
        stack
            .task_definitions
            .values()
            .filter(|td| td.task_role.as_deref() == Some(role_key))
            .flat_map(|td| td.containers.values())
    };
    let mut actions: Vec<&str> = Vec::new();
    if containers().any(|c| renders(c, WRITER_TEMPLATE)) {
        actions.extend(WRITE_ACTIONS);
    }
    if containers().any(|c| renders(c, READER_TEMPLATE)) {
        actions.extend(QUERY_ACTIONS);
    }
    if actions.is_empty() {
        return None;
    }
    Some(crate::model::canonical_policy(&json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": arn}],
    })))
}

/// Environment a container gets from the section: Grafana's SigV4 switch for the containers
/// that render [`READER_TEMPLATE`] (a data source change is a new revision and a restart:
/// Grafana reads its data sources only at start).
pub fn container_environment(stack: &Stack, c: &super::ContainerSpec) -> Vec<(String, String)> {
    if stack.history.is_some() && renders(c, READER_TEMPLATE) {
        vec![(GRAFANA_SIGV4_ENV.0.into(), GRAFANA_SIGV4_ENV.1.into())]
    } else {
        vec![]
    }
}

/// Checks of the `history:` section, located.
pub fn check(loaded: &LoadedStack, errs: &mut Vec<SpecError>) {
    let s = &loaded.stack;
    let Some(h) = &s.history else {
        return;
    };
    if let Some(alias) = &h.alias {
        if alias.trim().is_empty() || alias.len() > MAX_ALIAS {
            errs.push(loaded.error_at(
                "history.alias",
                format!("1 to {MAX_ALIAS} characters (AMP's limit on workspace aliases)"),
            ));
        }
    }
    let writers = s
        .task_definitions
        .values()
        .flat_map(|td| td.containers.values())
        .any(|c| renders(c, WRITER_TEMPLATE));
    if !writers {
        errs.push(loaded.error_at(
            "history",
            format!("no container renders {WRITER_TEMPLATE}: nothing would write to the workspace"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_urls_name_the_workspace_by_its_address() {
        let url = query_url("us-west-2", &address().to_string());
        assert_eq!(
            url,
            "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/amp_workspace.history"
        );
    }
}
