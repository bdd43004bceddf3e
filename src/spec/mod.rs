//! The stack file: its strict YAML schema, loading with source locations, and the semantic
//! checks `validate` runs before anything talks to AWS.
//!
//! Every error names the file, line, column and field path, so a bad stack is fixed in one
//! look. Nothing in here imports the AWS SDK.

mod build;
mod efs;
pub mod environments;
pub mod history;
mod lb_discovery;
mod locate;
pub mod reload;
mod validate;

pub use build::{
    build_desired, deterministic_ids, ownership_tags, role_aws_name, statement_resource, Built,
    RenderedFile, SECRETS_POLICY,
};
pub use lb_discovery::{
    namespace_name, DiscoveryNamespaceSpec, DiscoveryServiceSpec, HealthCheckTargetSpec,
    ListenerRuleSpec, ServiceLoadBalancerSpec, TargetGroupSpec,
};
pub use locate::Locator;
pub use validate::{literal_secret, literal_secret_message, stack_defines};

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the stack file lives unless `-f` says otherwise.
pub const DEFAULT_STACK_FILE: &str = "stacks/monitoring.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Names the stack in ownership tags and resource names.
    pub stack: String,
    /// Second half of ownership (`production`, `test-alice`…).
    pub environment: String,
    pub region: Option<String>,
    /// Tags put on every taggable resource, besides the ownership tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub lookups: LookupsSpec,
    /// Values for templates, as `[[ vars.NAME ]]`.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub log_groups: BTreeMap<String, LogGroupSpec>,
    /// The bucket containers' `reload` files live in, and the sidecar that fetches them.
    pub config_bucket: Option<ConfigBucketSpec>,
    /// Prometheus's samples also remote-written to a workspace the stack owns ([`history`]).
    pub history: Option<history::HistorySpec>,
    #[serde(default)]
    pub iam_roles: BTreeMap<String, RoleSpec>,
    #[serde(default)]
    pub security_groups: BTreeMap<String, SecurityGroupSpec>,
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSpec>,
    #[serde(default)]
    pub task_definitions: BTreeMap<String, TaskDefinitionSpec>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Secrets Manager secrets whose values deploy generates (admin passwords and the like).
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
    /// A throw-away environment (a test copy): `destroy` and removals also delete what holds
    /// data (generated secrets), as `--delete-data` does.
    #[serde(default)]
    pub disposable: bool,
    /// Destroy of this environment, `--delete-data` and replacements of data-bearing resources are refused.
    #[serde(default)]
    pub protected: bool,
    /// How long after each apply this environment expires (`72h`, `30m`, `7d`); `apply --ttl` overrides it.
    #[serde(default)]
    pub ttl: Option<String>,
    /// Existing resources to adopt (what `deploy import` writes).
    #[serde(default)]
    pub imports: Vec<ImportSpec>,
    /// How many owned revisions of each task definition family apply keeps registered (older
    /// ones are deregistered once the rollouts completed; never one a deployment names or the
    /// rollback target).
    #[serde(default = "five")]
    pub keep_revisions: i64,
    /// ELBv2 target groups (IP targets) that services register their tasks in.
    #[serde(default)]
    pub target_groups: BTreeMap<String, TargetGroupSpec>,
    /// Rules added to the backend ALB's HTTPS listener, forwarding to target groups.
    #[serde(default)]
    pub listener_rules: BTreeMap<String, ListenerRuleSpec>,
    /// Cloud Map private DNS namespaces in the looked-up VPC.
    #[serde(default)]
    pub service_discovery_namespaces: BTreeMap<String, DiscoveryNamespaceSpec>,
    /// Cloud Map services (DNS names) that ECS services register their tasks under.
    #[serde(default)]
    pub service_discovery_services: BTreeMap<String, DiscoveryServiceSpec>,
    /// EFS file systems (persistent storage for Fargate tasks), with mount targets in every
    /// looked-up subnet.
    #[serde(default)]
    pub file_systems: BTreeMap<String, FileSystemSpec>,
    /// EFS access points: a POSIX identity and root directory on a file system.
    #[serde(default)]
    pub access_points: BTreeMap<String, AccessPointSpec>,
    /// Values per environment (`--env`): an environment's name or a pattern with `*` →
    /// what it changes (see [`environments`]).
    #[serde(default)]
    pub environments: BTreeMap<String, environments::EnvironmentSpec>,
    /// `deploy lint` settings: the findings this stack accepts, and why.
    #[serde(default)]
    pub lint: LintSpec,
}

/// The stack's `lint:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintSpec {
    /// Findings accepted: a rule at an address, with the reason (required) and an expiry.
    #[serde(default)]
    pub ignore: Vec<IgnoreSpec>,
}

/// One suppression of `lint.ignore`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreSpec {
    /// A rule id, e.g. `DL002`.
    pub rule: String,
    /// The resource the finding is about (`task_definition.grafana`), or `lint`.
    pub address: String,
    /// Why the finding is accepted (required; `validate` refuses a suppression without one).
    pub reason: Option<String>,
    /// `YYYY-MM-DD`: after this day the suppression hides nothing and is itself a finding.
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSystemSpec {
    /// The `Name` tag; defaults to `STACK-ENVIRONMENT-KEY` (the creation token).
    pub name: Option<String>,
    /// Always true: `validate` refuses `false` (data at rest is always encrypted).
    #[serde(default = "yes")]
    pub encrypted: bool,
    /// `bursting` (default) or `elastic`.
    #[serde(default = "bursting")]
    pub throughput_mode: String,
    /// Move files not read for this long to Infrequent Access, e.g. `AFTER_30_DAYS`.
    pub transition_to_ia: Option<String>,
    /// Keys of security groups of this stack given to every mount target.
    pub mount_target_security_groups: Vec<String>,
}

fn bursting() -> String {
    "bursting".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPointSpec {
    /// Key of a file system of this stack.
    pub file_system: String,
    /// POSIX user and group every client of the access point acts as.
    pub uid: i64,
    pub gid: i64,
    /// The directory clients see as `/`, created on first use.
    pub root_directory: String,
    /// Owner of the root directory when EFS creates it; default the POSIX user.
    pub owner_uid: Option<i64>,
    pub owner_gid: Option<i64>,
    /// Octal mode of the root directory when EFS creates it.
    #[serde(default = "mode_0755")]
    pub permissions: String,
}

fn mode_0755() -> String {
    "0755".into()
}

/// A task volume on EFS (transit encryption and IAM authorization always on).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Key of a file system of this stack.
    pub file_system: String,
    /// Key of an access point of this stack (on that file system).
    pub access_point: Option<String>,
}

/// A task volume mounted into a container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountPointSpec {
    pub volume: String,
    pub path: String,
    #[serde(default)]
    pub read_only: bool,
}

impl Stack {
    /// The Secrets Manager secrets (`secretsmanager`, NAME) and SSM parameters (`ssm`, NAME)
    /// the containers use that are not the stack's own: `plan` checks they exist (metadata
    /// only) and finds their ARNs.
    pub fn external_secrets(&self) -> BTreeSet<(&'static str, String)> {
        self.task_definitions
            .values()
            .flat_map(|td| td.containers.values())
            .flat_map(|c| c.secrets.values())
            .filter_map(|r| match (&r.secret, &r.secrets_manager, &r.ssm) {
                (None, Some(name), _) => Some(("secretsmanager", name.clone())),
                (None, None, Some(name)) => Some(("ssm", name.clone())),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupsSpec {
    pub vpc: TagLookup,
    pub subnets: TagLookup,
    pub load_balancer: NameLookup,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagLookup {
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameLookup {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// The Secrets Manager name, e.g. `monitoring/grafana-admin`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub generate: GenerateSpec,
    /// Bump to have the next apply generate a new value.
    #[serde(default)]
    pub rotation: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    #[serde(default = "thirty_two")]
    pub length: i64,
    /// Letters and digits only (safe in URLs, shells and config files).
    #[serde(default = "yes")]
    pub exclude_punctuation: bool,
    /// What the value is: a password (default), basic-auth credentials or a TLS certificate.
    #[serde(default)]
    pub format: SecretFormatSpec,
    /// `basic_auth`: the user name stored beside the password.
    pub username: Option<String>,
    /// `tls`: the DNS names (or IP addresses) the certificate is for.
    #[serde(default)]
    pub names: Vec<String>,
    /// `tls`: how long the certificate is valid (default 825 days).
    pub validity_days: Option<i64>,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            length: 32,
            exclude_punctuation: true,
            format: SecretFormatSpec::default(),
            username: None,
            names: Vec::new(),
            validity_days: None,
        }
    }
}

/// `secrets.KEY.generate.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretFormatSpec {
    /// The value is a random password (GetRandomPassword).
    #[default]
    Password,
    /// JSON `{"username", "password", "bcrypt"}`.
    BasicAuth,
    /// JSON `{"cert", "key"}`: a self-signed certificate and its private key, PEM.
    Tls,
}

/// Validity of a generated certificate when the stack does not say.
pub const DEFAULT_VALIDITY_DAYS: i64 = 825;

impl GenerateSpec {
    /// The generation this spec asks for (see [`crate::model::Generation`]).
    pub fn generation(&self, rotation: i64) -> crate::model::Generation {
        use crate::model::SecretFormat;
        crate::model::Generation {
            format: match self.format {
                SecretFormatSpec::Password => SecretFormat::Password,
                SecretFormatSpec::BasicAuth => SecretFormat::BasicAuth {
                    username: self.username.clone().unwrap_or_default(),
                },
                SecretFormatSpec::Tls => SecretFormat::Tls {
                    names: self.names.clone(),
                    validity_days: self.validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS),
                },
            },
            length: self.length,
            exclude_punctuation: self.exclude_punctuation,
            rotation,
        }
    }
}

fn thirty_two() -> i64 {
    32
}

/// Where a container secret comes from: exactly one of `secret`, `secrets_manager`, `ssm`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRefSpec {
    /// Key of a secret of this stack (under `secrets:`).
    pub secret: Option<String>,
    /// Name or ARN of an existing Secrets Manager secret.
    pub secrets_manager: Option<String>,
    /// Name or ARN of an existing SSM Parameter Store parameter (SecureString or String).
    pub ssm: Option<String>,
    /// A field of a JSON secret (Secrets Manager only).
    pub json_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: Option<i32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Base name; the region is appended (IAM is global, stacks are regional).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The service principal allowed to assume the role, e.g. `ecs-tasks.amazonaws.com`.
    pub assumed_by: String,
    /// IAM path; defaults to `/deploy/<stack>/`.
    pub path: Option<String>,
    /// Inline policies: name → statements.
    #[serde(default)]
    pub policies: BTreeMap<String, Vec<StatementSpec>>,
    #[serde(default)]
    pub managed_policies: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementSpec {
    #[serde(default = "allow")]
    pub effect: Effect,
    pub actions: Vec<String>,
    /// ARNs, `*`, or addresses of this stack (`log_group.prometheus`), turned into ARNs.
    pub resources: Vec<String>,
}

fn allow() -> Effect {
    Effect::Allow
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub ingress: Vec<RuleSpec>,
    #[serde(default)]
    pub egress: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// `tcp` (default), `udp`, `icmp` or `all`.
    #[serde(default = "tcp")]
    pub protocol: String,
    pub port: Option<i64>,
    /// A port range `FROM-TO` instead of `port`.
    pub ports: Option<String>,
    /// A CIDR block, or `vpc`: the looked-up VPC's primary IPv4 range.
    pub cidr: Option<String>,
    /// Ingress source: a security group of this stack, or `load_balancer`.
    pub from: Option<String>,
    /// Egress destination: a security group of this stack, or `load_balancer`.
    pub to: Option<String>,
    #[serde(default)]
    pub description: String,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    #[serde(default)]
    pub container_insights: bool,
    /// The cluster exists already and is not the stack's: referenced by name, never changed.
    #[serde(default)]
    pub existing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub cpu: i64,
    pub memory: i64,
    pub execution_role: String,
    pub task_role: Option<String>,
    pub ephemeral_storage_gib: Option<i64>,
    /// What a restart of this task loses (shown as a warning on any change that restarts it).
    pub restart_loses: Option<String>,
    #[serde(default = "x86_64")]
    pub cpu_architecture: String,
    pub containers: BTreeMap<String, ContainerSpec>,
    /// Volume name → EFS file system (and access point) behind it.
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeSpec>,
}

fn x86_64() -> String {
    "X86_64".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub image: String,
    #[serde(default = "yes")]
    pub essential: bool,
    pub cpu: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub user: Option<String>,
    /// The image's own program; required with `files` (the delivery script execs it).
    pub entry_point: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Environment variables whose values ECS reads from Secrets Manager or SSM at task start.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRefSpec>,
    #[serde(default)]
    pub ports: Vec<i64>,
    /// Key of a log group of this stack; the container logs there through awslogs.
    pub log_group: Option<String>,
    pub stream_prefix: Option<String>,
    /// Container path → template under `templates/`, rendered and delivered at start.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Container path → a variable of `secrets`: its value is written to that file when the
    /// container starts (for programs that read credentials from files).
    #[serde(default)]
    pub secret_files: BTreeMap<String, String>,
    pub health_check: Option<HealthCheckSpec>,
    /// Task volumes mounted into this container.
    #[serde(default)]
    pub mount_points: Vec<MountPointSpec>,
    /// Mount the root file system read-only (paths the program writes must be volumes).
    #[serde(default)]
    pub readonly_root_filesystem: bool,
    /// Kernel-level settings of the container: only the capabilities dropped.
    #[serde(default)]
    pub linux_parameters: LinuxParametersSpec,
    /// Files under `dir` reach the running container through the config bucket: a change is
    /// a reload, not a new revision and a restart.
    pub reload: Option<ReloadSpec>,
}

/// `linux_parameters` of a container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxParametersSpec {
    #[serde(default)]
    pub capabilities: CapabilitiesSpec,
}

/// `linux_parameters.capabilities`: what the container gives up (`drop: [ALL]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSpec {
    #[serde(default)]
    pub drop: Vec<String>,
}

/// The stack's config bucket and the sidecar each task with `reload` containers runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBucketSpec {
    /// A stock image with `sh`, `curl`, `sha256sum` and the AWS CLI, pinned by tag or digest.
    pub sidecar_image: String,
    /// Seconds between the sidecar's checks of the bucket (one HeadObject each).
    #[serde(default = "thirty")]
    pub poll_seconds: i64,
}

/// Which of a container's files reload, and how its server is told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadSpec {
    /// The directory (a volume shared with the sidecar) whose files come from the bucket; files
    /// under it with a secret in them still travel in the task definition.
    pub dir: String,
    /// `prometheus` or `alertmanager`: reloaded by `POST https://localhost:PORT/-/reload` (the
    /// container's first port) and checked by its `NAME_config_last_reload_successful` metric.
    /// Absent: the server re-reads the files itself (Grafana's dashboard provider).
    pub server: Option<String>,
    /// Basic-auth user of the reload call.
    pub user: Option<String>,
    /// Variable of this container's `secrets` holding the basic-auth password.
    pub password: Option<String>,
    /// Variable of this container's `secrets` holding the CA certificate (PEM) of the server.
    pub ca_cert: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// A shell command (run with CMD-SHELL).
    pub command: String,
    #[serde(default = "thirty")]
    pub interval: i64,
    #[serde(default = "five")]
    pub timeout: i64,
    #[serde(default = "three")]
    pub retries: i64,
    #[serde(default)]
    pub start_period: i64,
}

fn thirty() -> i64 {
    30
}
fn five() -> i64 {
    5
}
fn three() -> i64 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Key of a cluster of this stack.
    pub cluster: String,
    /// Key of a task definition of this stack.
    pub task_definition: String,
    #[serde(default = "one")]
    pub desired_count: i64,
    /// Keys of security groups of this stack.
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default)]
    pub deployment: DeploymentSpec,
    /// Attributes whose live value is left alone (e.g. `desired_count` under autoscaling).
    #[serde(default)]
    pub ignore_changes: Vec<String>,
    /// Target groups of this stack the tasks register in (container and port).
    #[serde(default)]
    pub load_balancers: Vec<ServiceLoadBalancerSpec>,
    /// Seconds failing load balancer health checks are ignored after a task starts.
    pub health_check_grace_period_seconds: Option<i64>,
    /// Keys of `service_discovery_services` the tasks register under.
    #[serde(default)]
    pub service_registries: Vec<String>,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    #[serde(default = "hundred")]
    pub minimum_healthy_percent: i64,
    #[serde(default = "two_hundred")]
    pub maximum_percent: i64,
    /// The deployment circuit breaker's own settings (it is always on, with rollback).
    #[serde(default)]
    pub circuit_breaker: BreakerSpec,
}

impl Default for DeploymentSpec {
    fn default() -> Self {
        DeploymentSpec {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: BreakerSpec::default(),
        }
    }
}

/// When ECS's circuit breaker gives a deployment up, so ECS fails fast even when nobody waits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// How many failed tasks trigger it; ECS's default is BOUNDED_PERCENT 50 (half the
    /// desired count, at least 3, at most 200).
    #[serde(default)]
    pub threshold: Option<ThresholdSpec>,
    /// Whether a task that turns healthy resets the failure count (ECS's default: true).
    #[serde(default = "yes")]
    pub reset_on_healthy_task: bool,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        BreakerSpec {
            threshold: None,
            reset_on_healthy_task: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    /// `COUNT` (value is the number of failed tasks), `BOUNDED_PERCENT` (percent of the
    /// desired count, at least 3 and at most 200) or `UNBOUNDED_PERCENT`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: i64,
}

fn hundred() -> i64 {
    100
}
fn two_hundred() -> i64 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    pub address: String,
    pub id: String,
    /// The environment the import is for; default the stack's own.
    pub environment: Option<String>,
}

/// One problem in the stack file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted field path, e.g. `task_definitions.prometheus.cpu`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            if self.path.is_empty() {
                "(document)"
            } else {
                &self.path
            },
            self.message
        )
    }
}

/// Several located problems, reported together.
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// A parsed stack with what is needed to point at its lines later.
#[derive(Debug, Clone)]
pub struct LoadedStack {
    pub stack: Stack,
    pub file: PathBuf,
    /// The text as read (saved plans embed it).
    pub text: String,
    pub locator: Locator,
}

impl LoadedStack {
    /// An error at `path` (dotted), located in the file.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> SpecError {
        let (line, column) = self.locator.locate(path);
        SpecError {
            file: self.file.clone(),
            line,
            column,
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Runs every semantic check; all problems are returned, not just the first.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errors = validate::check(self);
        // What lint refuses at load (a literal secret, world-open ingress), with its rule id.
        if let Err(SpecErrors(refused)) = crate::lint::refuse_at_load(self) {
            errors.extend(refused);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errors))
        }
    }
}

/// Reads and parses a stack file (strict schema), without semantic checks.
pub fn load(file: &Path) -> Result<LoadedStack, SpecErrors> {
    let bytes = std::fs::read(file).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!("cannot read the stack file: {e}"),
        }])
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        // Where the text stops being UTF-8, as a line and column of the valid part.
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        SpecErrors(vec![SpecError {
            file: file.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: format!(
                "the stack file is not UTF-8 text (byte 0x{:02x})",
                e.as_bytes()[valid.len()]
            ),
        }])
    })?;
    parse(file, &text)
}

/// Parses stack text; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<LoadedStack, SpecErrors> {
    let locator = Locator::new(text).map_err(|e| SpecErrors(vec![saphyr_error(file, &e, "")]))?;
    let mut failed_path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, Stack>(de).map_err(|e| {
            failed_path = e.path().to_string();
            e.into_inner()
        })
    });
    match parsed {
        Ok(stack) => Ok(LoadedStack {
            stack,
            file: file.to_path_buf(),
            text: text.to_string(),
            locator,
        }),
        Err(e) => {
            let found = e
                .location()
                .and_then(|l| scalar_at(text, l.line() as usize, l.column() as usize));
            let path = if failed_path == "." {
                String::new()
            } else {
                failed_path
            };
            let mut err = saphyr_error(file, &e, &path);
            match found {
                Some(found) if may_echo(&path, &found) => {
                    err.message = format!("{} (found `{found}`)", err.message);
                }
                Some(_) => {
                    err.message = format!(
                        "{} (the value is not repeated: it may be a secret; secrets go under \
                         `secrets:` as {{ secrets_manager: NAME }}, {{ ssm: NAME }} or {{ secret: KEY }})",
                        err.message
                    );
                }
                None => {}
            }
            if err.line == 0 {
                let (line, column) = locator.locate(&path);
                err.line = line;
                err.column = column;
            }
            Err(SpecErrors(vec![err]))
        }
    }
}

fn saphyr_error(file: &Path, e: &serde_saphyr::Error, path: &str) -> SpecError {
    let (line, column) = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    // saphyr's Display may append a snippet of the source: keep the first line only.
    let message = e.to_string();
    let message = message
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string();
    SpecError {
        file: file.to_path_buf(),
        line,
        column,
        path: path.to_string(),
        message: strip_location_suffix(&message),
    }
}

/// saphyr puts the location into its messages ("error: line L column C: …" or "… at line L
/// column C"), which our own prefix already says.
fn strip_location_suffix(message: &str) -> String {
    let mut m = message.trim_start_matches("error:").trim();
    if m.starts_with("line ") {
        if let Some(i) = m.find(": ") {
            m = &m[i + 2..];
        }
    }
    // A hint to the parser's caller, not to the person who wrote the file.
    if let Some(i) = m.find(", set DuplicateKeyPolicy") {
        m = &m[..i];
    }
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

/// Whether a misplaced value may be quoted back in an error: not under `secrets`,
/// `environment` or `vars` (where secrets get written by mistake), and not when it looks like
/// a secret wherever it is.
fn may_echo(path: &str, value: &str) -> bool {
    let sensitive_place = path
        .split('.')
        .any(|p| matches!(p, "secrets" | "environment" | "vars"));
    let leaf = path.rsplit('.').next().unwrap_or(path);
    !sensitive_place
        && validate::literal_secret(leaf, value).is_none()
        && validate::literal_secret("VALUE", value).is_none()
}

/// The plain scalar that starts at a 1-based line and column, for "found `x`" in messages.
fn scalar_at(text: &str, line: usize, column: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let rest: String = l.chars().skip(column.checked_sub(1)?).collect();
    let rest = rest.split(" #").next()?.trim();
    let is_scalar = !rest.is_empty() && !rest.starts_with(['[', '{', '-', '|', '>']);
    (is_scalar && !rest.ends_with(':')).then(|| rest.chars().take(60).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = include_str!("../../stacks/monitoring.yaml");

    fn errors(text: &str) -> Vec<SpecError> {
        match parse(Path::new("s.yaml"), text) {
            Err(e) => e.0,
            Ok(loaded) => loaded.validate().err().map(|e| e.0).unwrap_or_default(),
        }
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn the_reference_stack_is_valid() {
        assert_eq!(errors(REFERENCE), vec![]);
    }

    #[test]
    fn unknown_keys_are_located() {
        let text = REFERENCE.replace(
            "    retention_days: 30\n",
            "    retention_days: 30\n    retension: 5\n",
        );
        let e = &errors(&text)[0];
        assert_eq!(e.line, line_of(&text, "retension"));
        assert!(e.path.starts_with("log_groups.prometheus"), "{e}");
        assert!(e.message.contains("retension"), "{e}");
    }

    #[test]
    fn a_duplicated_key_is_located_and_said_in_the_writer_s_terms() {
        // Found by tests/fuzz.rs: the parser's message ended in a hint to its own caller.
        let text = REFERENCE.replace(
            "    retention_days: 30\n",
            "    retention_days: 30\n    retention_days: 30\n",
        );
        let e = &errors(&text)[0];
        assert_eq!(e.message, "duplicate mapping key: retention_days", "{e}");
        assert!(e.line > 0 && e.column > 0, "{e}");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_located() {
        // Found by tests/fuzz.rs: a flipped byte gave an error at line 0.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        let mut bytes = b"stack: monitoring\nenvironment: pr".to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(b"od\n");
        std::fs::write(&file, bytes).unwrap();
        let e = &load(&file).unwrap_err().0[0];
        assert_eq!((e.line, e.column), (2, 16), "{e}");
        assert!(
            e.message.contains("not UTF-8") && e.message.contains("0xff"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_point_at_the_field() {
        let text = REFERENCE.replace("memory: 512", "memory: 4096");
        let e = &errors(&text)[0];
        assert_eq!(e.path, "task_definitions.prometheus.memory");
        assert_eq!(e.line, line_of(&text, "memory: 4096"));
        assert!(e.column > 0);
        assert!(e.to_string().starts_with(&format!("s.yaml:{}:", e.line)));
    }

    #[test]
    fn secret_formats_take_only_their_own_parameters() {
        for (find, replace, path, says) in [
            (
                "{ format: basic_auth, username: grafana }",
                "{ format: basic_auth }",
                "secrets.prometheus_auth.generate.username",
                "needs a username",
            ),
            (
                "{ format: basic_auth, username: grafana }",
                "{ format: basic_auth, username: \"graf:ana\" }",
                "secrets.prometheus_auth.generate.username",
                "no `:`",
            ),
            (
                "{ format: basic_auth, username: grafana }",
                "{ username: grafana }",
                "secrets.prometheus_auth.generate.username",
                "does not apply to format password",
            ),
            (
                "        - localhost\n",
                "        - \"*.monitoring.internal\"\n",
                "secrets.prometheus_tls.generate.names[1]",
                "no wildcard",
            ),
            (
                "      format: tls\n",
                "      format: tls\n      validity_days: 0\n",
                "secrets.prometheus_tls.generate.validity_days",
                "1 to 3650 days",
            ),
            (
                "        - localhost\n",
                &format!("        - {}\n", "a.b".repeat(80)),
                "secrets.prometheus_tls.generate",
                "deploy:generated tag",
            ),
        ] {
            let text = REFERENCE.replacen(find, replace, 1);
            assert_ne!(text, REFERENCE, "{find}");
            let e = &errors(&text)[0];
            assert_eq!(e.path, path, "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn a_literal_secret_is_refused_without_repeating_it() {
        let text = REFERENCE.replacen(
            "        log_group: prometheus\n",
            "        log_group: prometheus\n        environment:\n          ALERT_WEBHOOK: https://hooks.slack.com/services/T1/B2/sekrit-value-42\n",
            1,
        );
        let e = &errors(&text)[0];
        assert_eq!(
            e.path,
            "task_definitions.prometheus.containers.prometheus.environment.ALERT_WEBHOOK"
        );
        assert!(e.message.contains("Secrets Manager"), "{e}");
        assert!(!e.to_string().contains("sekrit-value-42"), "{e}");
    }

    #[test]
    fn a_misplaced_secret_is_not_quoted_back() {
        for (find, replace) in [
            (
                "    cpu: 256",
                "    cpu: https://hooks.slack.com/services/T0/B0/zzSECRETzz",
            ),
            (
                "        secrets:\n",
                "        secrets:\n          SLACK_URL: zzSECRETzz\n",
            ),
        ] {
            let text = REFERENCE.replacen(find, replace, 1);
            let e = &errors(&text)[0];
            assert!(!e.to_string().contains("zzSECRETzz"), "{e}");
            assert!(e.message.contains("not repeated"), "{e}");
        }
        // Harmless values are still quoted, which helps.
        let e = &errors(&REFERENCE.replace("    cpu: 256", "    cpu: lots"))[0];
        assert!(e.message.contains("found `lots`"), "{e}");
    }

    #[test]
    fn world_open_ingress_is_refused() {
        let text = REFERENCE.replace(
            "      - port: 9090\n        from: grafana\n",
            "      - port: 9090\n        cidr: 0.0.0.0/0\n",
        );
        let e = &errors(&text)[0];
        assert_eq!(e.path, "security_groups.prometheus.ingress.0.cidr");
        assert!(e.message.contains("refused"), "{e}");
    }

    #[test]
    fn cidr_vpc_is_the_looked_up_range() {
        let text = REFERENCE.replacen("        to: efs\n", "        cidr: vpc\n", 1);
        assert_ne!(text, REFERENCE);
        let loaded = parse(Path::new("s.yaml"), &text).unwrap();
        let mut lookups = crate::model::Lookups::placeholders("us-west-2");
        lookups.vpc_cidr = "10.20.0.0/16".into();
        let templates = crate::render::Templates::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        );
        let built = build_desired(&loaded, &lookups, &templates).unwrap();
        let grafana = built
            .desired
            .iter()
            .find_map(|d| match &d.attrs {
                crate::model::Attrs::SecurityGroup(a) if a.name == "monitoring-grafana" => {
                    Some(a.clone())
                }
                _ => None,
            })
            .unwrap();
        let nfs = grafana.egress.iter().find(|r| r.from_port == 2049).unwrap();
        assert_eq!(nfs.peer, crate::model::Peer::Cidr("10.20.0.0/16".into()));
        // Anything else that is not a CIDR block is still refused, naming `vpc`.
        let text = REFERENCE.replacen("        to: efs\n", "        cidr: vcp\n", 1);
        let e = &errors(&text)[0];
        assert_eq!(e.path, "security_groups.grafana.egress.2.cidr");
        assert!(e.message.contains("`vpc`"), "{e}");
    }
}
