//! Resource identities and the normalized attribute shapes shared by every pipeline step.
//!
//! Desired resources (built from the stack) and observed resources (read from AWS) use the same
//! attribute types, already normalized, so the diff compares them field by field. References to
//! other resources of the stack are held as addresses (`security_group.prometheus`); references
//! to things outside the stack are held as raw AWS ids. Nothing here knows about the AWS SDK.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

pub mod kinds;
mod lb_discovery;
mod secret_generation;
mod shape;
pub use lb_discovery::{
    DiscoveryNamespaceAttrs, DiscoveryServiceAttrs, ListenerRuleAttrs, RuleConditions,
    ServiceLoadBalancer, TargetGroupAttrs, TargetHealthCheck,
};
pub use secret_generation::{
    tag_safe, Generation, SecretFormat, MAX_GENERATION_LEN, PASSWORD_LENGTHS, VALIDITY_DAYS,
};

/// Tag naming the stack that owns a resource.
pub const TAG_STACK: &str = "deploy:stack";
/// Tag naming the environment that owns a resource.
pub const TAG_ENV: &str = "deploy:environment";
/// Tag saying whether the environment was disposable when the resource was created or last
/// tagged (`true`/`false`): a destroy without the stack file deletes a data-bearing resource
/// only when it says `true` (or the environment's record does).
pub const TAG_DISPOSABLE: &str = "deploy:disposable";
/// Tag holding the hash of the attributes last applied (drift is told apart with it).
pub const TAG_APPLIED: &str = "deploy:applied";
/// Tag holding the resource's address in its stack (finds renamed or replaced resources).
pub const TAG_ADDRESS: &str = "deploy:address";

/// Tag on a task definition revision: when a rollout of it completed (RFC 3339), written by
/// `apply` and `rollback` once they saw it complete; `rollback` returns to such revisions.
pub const TAG_ROLLOUT_COMPLETED: &str = "deploy:rollout-completed";
/// On a task definition revision: the config bucket's manifest version its tasks ran when
/// deploy last saw them (what `deploy rollback` restores with that revision).
pub const TAG_CONFIG_MANIFEST: &str = "deploy:config-manifest";
/// Tag on a service `rollback` moved off the stack's revision: `from REVISION at TIME`, so the
/// next plan can warn that it re-deploys the newer revision.
pub const TAG_ROLLED_BACK: &str = "deploy:rolled-back";

/// True for tag keys this tool manages itself (never part of the user's `tags`).
pub fn is_managed_tag(key: &str) -> bool {
    key.starts_with("deploy:")
}

/// The user's tags among all of a resource's tags (managed `deploy:` tags left out).
pub fn user_tags(all: &Tags) -> Tags {
    all.iter()
        .filter(|(k, _)| !is_managed_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LogGroup,
    IamRole,
    SecurityGroup,
    EcsCluster,
    TaskDefinition,
    EcsService,
    Secret,
    TargetGroup,
    ListenerRule,
    ServiceDiscoveryNamespace,
    ServiceDiscoveryService,
    EfsFileSystem,
    EfsMountTargets,
    EfsAccessPoint,
    S3Bucket,
    AmpWorkspace,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Secret,
        Kind::LogGroup,
        Kind::IamRole,
        Kind::SecurityGroup,
        Kind::EcsCluster,
        Kind::TaskDefinition,
        Kind::EcsService,
        Kind::TargetGroup,
        Kind::ListenerRule,
        Kind::ServiceDiscoveryNamespace,
        Kind::ServiceDiscoveryService,
        Kind::EfsFileSystem,
        Kind::EfsMountTargets,
        Kind::EfsAccessPoint,
        Kind::S3Bucket,
        Kind::AmpWorkspace,
    ];

    /// The address prefix (`log_group`), from the kind's descriptor ([`kinds::KINDS`]).
    pub fn as_str(self) -> &'static str {
        self.info().prefix
    }

    /// Kinds whose deletion loses data no apply can bring back (a generated secret's value,
    /// the files on an EFS file system): `destroy` and removal from the stack keep them unless
    /// the operator asks for data to go.
    pub fn holds_data(self) -> bool {
        self.info().data.is_some()
    }

    /// Attributes whose values are shown as `(sensitive)` in every output; a change to them is
    /// still shown as a change.
    pub fn sensitive_attrs(self) -> &'static [&'static str] {
        self.info().sensitive
    }

    /// What an import ID names for this kind (shown in `import` errors and the README).
    pub fn import_id_hint(self) -> &'static str {
        self.info().import.hint
    }

    /// The names of the kind's normalized attributes (the keys of [`Attrs::to_map`] when every
    /// optional field is present), read from the attribute struct's own serde shape.
    pub fn attribute_names(self) -> &'static [&'static str] {
        match self {
            Kind::LogGroup => shape::fields_of::<LogGroupAttrs>(),
            Kind::IamRole => shape::fields_of::<IamRoleAttrs>(),
            Kind::SecurityGroup => shape::fields_of::<SecurityGroupAttrs>(),
            Kind::EcsCluster => shape::fields_of::<EcsClusterAttrs>(),
            Kind::TaskDefinition => shape::fields_of::<TaskDefinitionAttrs>(),
            Kind::EcsService => shape::fields_of::<EcsServiceAttrs>(),
            Kind::Secret => shape::fields_of::<SecretAttrs>(),
            Kind::TargetGroup => shape::fields_of::<TargetGroupAttrs>(),
            Kind::ListenerRule => shape::fields_of::<ListenerRuleAttrs>(),
            Kind::ServiceDiscoveryNamespace => shape::fields_of::<DiscoveryNamespaceAttrs>(),
            Kind::ServiceDiscoveryService => shape::fields_of::<DiscoveryServiceAttrs>(),
            Kind::EfsFileSystem => shape::fields_of::<EfsFileSystemAttrs>(),
            Kind::EfsMountTargets => shape::fields_of::<EfsMountTargetsAttrs>(),
            Kind::EfsAccessPoint => shape::fields_of::<EfsAccessPointAttrs>(),
            Kind::S3Bucket => shape::fields_of::<S3BucketAttrs>(),
            Kind::AmpWorkspace => shape::fields_of::<AmpWorkspaceAttrs>(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown resource kind `{s}` (known: {})", known.join(", "))
            })
    }
}

/// The stable name of a resource in plans, errors and `import`: `kind.name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Address {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s
            .split_once('.')
            .ok_or_else(|| format!("`{s}` is not an address of the form kind.name"))?;
        if name.is_empty() {
            return Err(format!("`{s}` has an empty name"));
        }
        Ok(Address::new(kind.parse()?, name))
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Address {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

pub type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGroupAttrs {
    pub name: String,
    pub retention_days: Option<i32>,
    pub tags: Tags,
}

/// The stack's config bucket: the rendered files that reach running tasks without a restart
/// (fetched by each task's config sidecar, see `render::reload`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3BucketAttrs {
    pub name: String,
    /// Object versioning on (each apply's file set stays readable for rollbacks).
    pub versioning: bool,
    /// Default encryption (`AES256`: SSE-S3).
    pub encryption: Option<String>,
    /// All four settings of S3's public access block on.
    pub public_access_blocked: bool,
    /// Canonical JSON (see [`canonical_policy`]).
    pub policy: Value,
    pub tags: Tags,
    /// The files the tasks' sidecars load: `FAMILY/CONTAINER/PATH` → content (never secrets:
    /// a file with a secret in it travels in the task definition).
    pub files: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamRoleAttrs {
    pub name: String,
    pub path: String,
    pub description: String,
    /// Canonical JSON (see [`canonical_policy`]).
    pub assume_role_policy: Value,
    /// Inline policy name → canonical policy document.
    pub inline_policies: BTreeMap<String, Value>,
    pub managed_policy_arns: BTreeSet<String>,
    pub tags: Tags,
}

/// Where a security group rule points: a CIDR block or another group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(String),
    /// An address of this stack (`security_group.grafana`) or a raw group id (`sg-…`).
    Group(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Cidr(c) => f.write_str(c),
            Peer::Group(g) => f.write_str(g),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Peer,
    pub description: String,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = if self.protocol == "-1" {
            "all".to_string()
        } else if self.from_port == self.to_port {
            format!("{}/{}", self.protocol, self.from_port)
        } else {
            format!("{}/{}-{}", self.protocol, self.from_port, self.to_port)
        };
        write!(f, "{ports} {}", self.peer)?;
        if !self.description.is_empty() {
            write!(f, " ({})", self.description)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupAttrs {
    /// The group name AWS knows (a replacement gets a suffix; see the EC2 adapter).
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: BTreeSet<Rule>,
    pub egress: BTreeSet<Rule>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsClusterAttrs {
    pub name: String,
    /// `enabled` or `disabled`.
    pub container_insights: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: i32,
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval: i32,
    pub timeout: i32,
    pub retries: i32,
    pub start_period: i32,
}

/// A container secret's source, as a task definition's `secrets[].valueFrom` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// A secret of this stack (`secret.grafana_admin`), or the ARN of a Secrets Manager secret
    /// or an SSM parameter.
    pub from: String,
    /// A key of a JSON secret (Secrets Manager only): the variable gets that field.
    pub json_key: Option<String>,
}

impl SecretRef {
    /// The `valueFrom` ECS takes: the ARN, plus `:KEY::` for a JSON key.
    pub fn value_from(&self, arn: &str) -> String {
        match &self.json_key {
            Some(k) => format!("{arn}:{k}::"),
            None => arn.to_string(),
        }
    }

    /// The inverse of [`SecretRef::value_from`] for what DescribeTaskDefinition returns. A
    /// Secrets Manager ARN has 7 colon-separated parts; more carry the JSON key (and version
    /// stage and id, which this tool never sets).
    pub fn parse_value_from(value_from: &str) -> SecretRef {
        let parts: Vec<&str> = value_from.split(':').collect();
        if value_from.starts_with("arn:")
            && parts.get(2) == Some(&"secretsmanager")
            && parts.len() > 7
        {
            let key = parts[7];
            SecretRef {
                from: parts[..7].join(":"),
                json_key: (!key.is_empty()).then(|| key.to_string()),
            }
        } else {
            SecretRef {
                from: value_from.to_string(),
                json_key: None,
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub cpu: i32,
    pub memory_reservation: Option<i32>,
    pub user: Option<String>,
    pub entry_point: Vec<String>,
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Environment variable → where ECS reads its value at task start (never the value).
    /// Left out when empty, so task definitions without secrets hash as they always did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretRef>,
    pub port_mappings: Vec<PortMapping>,
    pub log: Option<LogConfig>,
    pub health_check: Option<HealthCheck>,
    /// Volumes of the task mounted into this container. Left out when empty, so task
    /// definitions without volumes hash as they always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    /// The root file system is mounted read-only (writable paths are volumes). Left out when
    /// false, so task definitions without it hash as they always did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readonly_root_filesystem: bool,
    /// Linux capabilities dropped (`linuxParameters.capabilities.drop`, e.g. `ALL`). Left out
    /// when empty, like `mount_points`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities_drop: Vec<String>,
    /// Containers of the task this one starts after: name → condition (`START`, `COMPLETE`,
    /// `SUCCESS`, `HEALTHY`). Left out when empty (unchanged hashes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, String>,
}

/// A task volume mounted into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// Name of a volume of the task definition.
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

/// A task volume on EFS, always with transit encryption and IAM authorization (the task role
/// must be allowed `elasticfilesystem:ClientMount`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EfsVolume {
    /// Address of a file system of this stack, or its id.
    pub file_system: String,
    /// Address of an access point of this stack, or its id.
    pub access_point: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinitionAttrs {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub network_mode: String,
    pub requires_compatibilities: BTreeSet<String>,
    /// Address of the execution role in this stack, or a role ARN.
    pub execution_role: Option<String>,
    /// Address of the task role in this stack, or a role ARN.
    pub task_role: Option<String>,
    pub ephemeral_storage_gib: Option<i32>,
    pub cpu_architecture: String,
    pub containers: Vec<Container>,
    pub tags: Tags,
    /// Volume name → the EFS file system behind it. Left out when empty (unchanged hashes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, EfsVolume>,
    /// Names of task-scoped volumes (Fargate bind mounts without a host path): storage the
    /// task's containers share, gone with the task. Left out when empty (unchanged hashes).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub shared_volumes: BTreeSet<String>,
}

impl TaskDefinitionAttrs {
    /// The identity of a revision's content (tags aside): equal content, equal hash. A
    /// service's `task_definition` attribute holds `ADDRESS@HASH`, so "which revision runs"
    /// diffs by content, not by revision number.
    pub fn content_hash(&self) -> String {
        let mut content = self.clone();
        content.tags.clear();
        short_hash(&content)
    }
}

/// A Secrets Manager secret whose value the tool generates (the one time it handles a value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretAttrs {
    pub name: String,
    pub description: String,
    /// Not the value: how the current value was generated ([`SecretAttrs::generation`]), so a
    /// change of length or rotation shows, as `(sensitive)`, as a change of the value.
    pub value: String,
    pub tags: Tags,
}

impl SecretAttrs {
    /// What [`SecretAttrs::value`] holds for a generated value; also the value of the
    /// [`TAG_GENERATED`] tag (characters every tagging API accepts).
    pub fn generation(length: i64, exclude_punctuation: bool, rotation: i64) -> String {
        Generation {
            format: SecretFormat::Password,
            length,
            exclude_punctuation,
            rotation,
        }
        .encode()
    }

    /// Parses [`SecretAttrs::generation`]: (length, exclude_punctuation).
    pub fn generation_params(value: &str) -> Option<(i64, bool)> {
        Generation::parse(value).map(|g| (g.length, g.exclude_punctuation))
    }

    /// The rotation counter of a [`SecretAttrs::generation`] string.
    pub fn generation_rotation(value: &str) -> Option<i64> {
        Generation::parse(value).map(|g| g.rotation)
    }
}

/// What an observed secret's `value` holds when its value was not generated by deploy
/// (adopted with `import`): kept as it is, never overwritten unless the rotation is bumped.
pub const VALUE_SET_OUTSIDE: &str = "set outside deploy";

/// Tag recording how deploy generated a secret's current value (see
/// [`SecretAttrs::generation`]).
pub const TAG_GENERATED: &str = "deploy:generated";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsServiceAttrs {
    pub name: String,
    /// Address of the cluster in this stack, or an existing cluster's name.
    pub cluster: String,
    /// `task_definition.KEY@CONTENT_HASH` of the revision it runs (see
    /// [`TaskDefinitionAttrs::content_hash`]); observed raw, it is the revision ARN.
    pub task_definition: String,
    pub desired_count: i32,
    pub launch_type: String,
    pub platform_version: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub assign_public_ip: bool,
    pub circuit_breaker: bool,
    pub circuit_breaker_rollback: bool,
    /// The circuit breaker's failure threshold as `TYPE VALUE` (`COUNT 3`); left out at
    /// ECS's default, [`DEFAULT_BREAKER_THRESHOLD`].
    #[serde(
        default = "default_breaker_threshold",
        skip_serializing_if = "is_default_breaker_threshold"
    )]
    pub breaker_threshold: String,
    /// Whether a task that turns healthy resets the breaker's failure count (ECS's default).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub breaker_reset_on_healthy_task: bool,
    pub minimum_healthy_percent: i32,
    pub maximum_percent: i32,
    pub enable_execute_command: bool,
    pub propagate_tags: String,
    pub tags: Tags,
    /// Target groups the tasks register in. Left out when empty (as are the two below), so
    /// services without them hash as they always did.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub load_balancers: BTreeSet<ServiceLoadBalancer>,
    /// Seconds ECS ignores failing load balancer health checks after a task starts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub health_check_grace_period_seconds: i32,
    /// Cloud Map services the tasks register in: addresses of this stack or registry ARNs.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub service_registries: BTreeSet<String>,
}

/// ECS's circuit breaker threshold when none is set: half the desired count, at least 3 and
/// at most 200 failed tasks.
pub const DEFAULT_BREAKER_THRESHOLD: &str = "BOUNDED_PERCENT 50";

fn default_breaker_threshold() -> String {
    DEFAULT_BREAKER_THRESHOLD.to_string()
}

fn is_default_breaker_threshold(t: &String) -> bool {
    t == DEFAULT_BREAKER_THRESHOLD
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// An EFS file system (Grafana's database and plugins). Always encrypted at rest; found by its
/// creation token, which also makes a retried CreateFileSystem idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EfsFileSystemAttrs {
    /// `STACK-ENVIRONMENT-KEY`: the identity (CreateFileSystem's idempotency token).
    pub creation_token: String,
    /// The `Name` tag (shown in the console).
    pub name: String,
    pub encrypted: bool,
    /// `generalPurpose` (fixed: it cannot change after creation).
    pub performance_mode: String,
    /// `bursting` or `elastic`.
    pub throughput_mode: String,
    /// Move files not read for this long to Infrequent Access: `AFTER_30_DAYS` and the like.
    pub transition_to_ia: Option<String>,
    pub tags: Tags,
}

/// The mount targets of one file system: one in each of `subnets`, every one with the same
/// security groups. Mount targets carry no tags of their own: they are owned through their
/// file system (see the EFS adapter).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EfsMountTargetsAttrs {
    /// Address of the file system in this stack, or its id.
    pub file_system: String,
    pub subnets: BTreeSet<String>,
    /// Addresses of security groups of this stack, or group ids.
    pub security_groups: BTreeSet<String>,
}

/// An EFS access point: a POSIX identity and a root directory every client of it gets.
/// Immutable in AWS: any change but tags replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EfsAccessPointAttrs {
    /// The `Name` tag: `STACK-ENVIRONMENT-KEY`, the identity.
    pub name: String,
    /// Address of the file system in this stack, or its id.
    pub file_system: String,
    pub uid: i64,
    pub gid: i64,
    pub root_directory: String,
    /// Owner and mode EFS gives the root directory when it creates it.
    pub owner_uid: i64,
    pub owner_gid: i64,
    /// Octal, e.g. `0750`.
    pub permissions: String,
    pub tags: Tags,
}

/// An Amazon Managed Service for Prometheus workspace: where Prometheus remote-writes the
/// history that outlives its task (the stack's `history:` section, `spec::history`). Its id
/// (`ws-…`) is AWS's pick, so it is found by its `Name` tag, like an access point; the alias
/// is only a label and may change in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmpWorkspaceAttrs {
    /// The `Name` tag: `STACK-ENVIRONMENT-KEY`, the identity.
    pub name: String,
    /// The alias AWS shows (UpdateWorkspaceAlias changes it in place).
    pub alias: String,
    pub tags: Tags,
}

/// No tags: what [`Attrs::tags`] answers for kinds that cannot carry any.
static NO_TAGS: Tags = Tags::new();

/// The attributes of one resource, by kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "attributes", rename_all = "snake_case")]
pub enum Attrs {
    LogGroup(LogGroupAttrs),
    IamRole(IamRoleAttrs),
    SecurityGroup(SecurityGroupAttrs),
    EcsCluster(EcsClusterAttrs),
    TaskDefinition(TaskDefinitionAttrs),
    EcsService(EcsServiceAttrs),
    Secret(SecretAttrs),
    TargetGroup(TargetGroupAttrs),
    ListenerRule(ListenerRuleAttrs),
    ServiceDiscoveryNamespace(DiscoveryNamespaceAttrs),
    ServiceDiscoveryService(DiscoveryServiceAttrs),
    EfsFileSystem(EfsFileSystemAttrs),
    EfsMountTargets(EfsMountTargetsAttrs),
    EfsAccessPoint(EfsAccessPointAttrs),
    S3Bucket(S3BucketAttrs),
    AmpWorkspace(AmpWorkspaceAttrs),
}

impl Attrs {
    pub fn kind(&self) -> Kind {
        match self {
            Attrs::LogGroup(_) => Kind::LogGroup,
            Attrs::IamRole(_) => Kind::IamRole,
            Attrs::SecurityGroup(_) => Kind::SecurityGroup,
            Attrs::EcsCluster(_) => Kind::EcsCluster,
            Attrs::TaskDefinition(_) => Kind::TaskDefinition,
            Attrs::EcsService(_) => Kind::EcsService,
            Attrs::Secret(_) => Kind::Secret,
            Attrs::TargetGroup(_) => Kind::TargetGroup,
            Attrs::ListenerRule(_) => Kind::ListenerRule,
            Attrs::ServiceDiscoveryNamespace(_) => Kind::ServiceDiscoveryNamespace,
            Attrs::ServiceDiscoveryService(_) => Kind::ServiceDiscoveryService,
            Attrs::EfsFileSystem(_) => Kind::EfsFileSystem,
            Attrs::EfsMountTargets(_) => Kind::EfsMountTargets,
            Attrs::EfsAccessPoint(_) => Kind::EfsAccessPoint,
            Attrs::S3Bucket(_) => Kind::S3Bucket,
            Attrs::AmpWorkspace(_) => Kind::AmpWorkspace,
        }
    }

    /// The attributes as a JSON object, one key per attribute (what the diff walks).
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        let value = match self {
            Attrs::LogGroup(a) => serde_json::to_value(a),
            Attrs::IamRole(a) => serde_json::to_value(a),
            Attrs::SecurityGroup(a) => serde_json::to_value(a),
            Attrs::EcsCluster(a) => serde_json::to_value(a),
            Attrs::TaskDefinition(a) => serde_json::to_value(a),
            Attrs::EcsService(a) => serde_json::to_value(a),
            Attrs::Secret(a) => serde_json::to_value(a),
            Attrs::TargetGroup(a) => serde_json::to_value(a),
            Attrs::ListenerRule(a) => serde_json::to_value(a),
            Attrs::ServiceDiscoveryNamespace(a) => serde_json::to_value(a),
            Attrs::ServiceDiscoveryService(a) => serde_json::to_value(a),
            Attrs::EfsFileSystem(a) => serde_json::to_value(a),
            Attrs::EfsMountTargets(a) => serde_json::to_value(a),
            Attrs::EfsAccessPoint(a) => serde_json::to_value(a),
            Attrs::S3Bucket(a) => serde_json::to_value(a),
            Attrs::AmpWorkspace(a) => serde_json::to_value(a),
        }
        .expect("attributes serialize to JSON");
        match value {
            Value::Object(map) => map,
            _ => unreachable!("attribute structs serialize to objects"),
        }
    }

    /// [`Attrs::to_map`] as every output shows it: sensitive attributes replaced by
    /// [`SENSITIVE`].
    pub fn shown_map(&self) -> serde_json::Map<String, Value> {
        let kind = self.kind();
        self.to_map()
            .into_iter()
            .map(|(k, v)| {
                let v = shown_value(kind, &k, v);
                (k, v)
            })
            .collect()
    }

    /// The user tags of the resource (ownership tags excluded).
    pub fn tags(&self) -> &Tags {
        match self {
            Attrs::LogGroup(a) => &a.tags,
            Attrs::IamRole(a) => &a.tags,
            Attrs::SecurityGroup(a) => &a.tags,
            Attrs::EcsCluster(a) => &a.tags,
            Attrs::TaskDefinition(a) => &a.tags,
            Attrs::EcsService(a) => &a.tags,
            Attrs::Secret(a) => &a.tags,
            Attrs::TargetGroup(a) => &a.tags,
            Attrs::ListenerRule(a) => &a.tags,
            Attrs::ServiceDiscoveryNamespace(a) => &a.tags,
            Attrs::ServiceDiscoveryService(a) => &a.tags,
            Attrs::EfsFileSystem(a) => &a.tags,
            Attrs::EfsMountTargets(_) => &NO_TAGS,
            Attrs::EfsAccessPoint(a) => &a.tags,
            Attrs::S3Bucket(a) => &a.tags,
            Attrs::AmpWorkspace(a) => &a.tags,
        }
    }

    /// The hash recorded in [`TAG_APPLIED`] after an apply, computed over the attributes
    /// minus those the stack ignores.
    pub fn applied_hash(&self, ignore: &BTreeSet<String>) -> String {
        let mut map = self.to_map();
        for key in ignore {
            map.remove(key);
        }
        short_hash(&map)
    }

    /// Addresses of this stack that these attributes refer to.
    pub fn references(&self) -> BTreeSet<Address> {
        let mut refs = BTreeSet::new();
        let mut add = |s: &str| {
            if let Ok(a) = s.parse::<Address>() {
                refs.insert(a);
            }
        };
        match self {
            Attrs::SecurityGroup(a) => {
                for r in a.ingress.iter().chain(a.egress.iter()) {
                    if let Peer::Group(g) = &r.peer {
                        add(g);
                    }
                }
            }
            Attrs::TaskDefinition(a) => {
                for r in a.execution_role.iter().chain(a.task_role.iter()) {
                    add(r);
                }
                for c in &a.containers {
                    if let Some(log) = &c.log {
                        if let Some(g) = log.options.get("awslogs-group") {
                            add(g);
                        }
                    }
                    for s in c.secrets.values() {
                        add(&s.from);
                    }
                    for v in c.environment.values() {
                        for_each_endpoint_reference(v, |r| add(r));
                    }
                }
                for v in a.volumes.values() {
                    add(&v.file_system);
                    if let Some(ap) = &v.access_point {
                        add(ap);
                    }
                }
            }
            Attrs::EcsService(a) => {
                add(&a.cluster);
                for g in &a.security_groups {
                    add(g);
                }
                if let Some((td, _)) = a.task_definition.split_once('@') {
                    add(td);
                }
                for lb in &a.load_balancers {
                    add(&lb.target_group);
                }
                for r in &a.service_registries {
                    add(r);
                }
            }
            Attrs::ListenerRule(a) => add(&a.target_group),
            Attrs::ServiceDiscoveryService(a) => add(&a.namespace),
            Attrs::EfsMountTargets(a) => {
                add(&a.file_system);
                for g in &a.security_groups {
                    add(g);
                }
            }
            Attrs::EfsAccessPoint(a) => add(&a.file_system),
            Attrs::IamRole(a) => {
                for doc in a.inline_policies.values() {
                    for_each_policy_resource(doc, |r| {
                        if let Some((_, tail)) = arn_reference(r) {
                            add(tail);
                        }
                    });
                }
            }
            Attrs::LogGroup(_)
            | Attrs::EcsCluster(_)
            | Attrs::Secret(_)
            | Attrs::TargetGroup(_)
            | Attrs::ServiceDiscoveryNamespace(_) => {}
            Attrs::S3Bucket(a) => {
                for content in a.files.values() {
                    for_each_endpoint_reference(content, |r| add(r));
                }
            }
            Attrs::EfsFileSystem(_) | Attrs::AmpWorkspace(_) => {}
        }
        refs
    }

    /// Rewrites every reference field with `f` (ids → addresses when observing, addresses →
    /// ids when applying). `f` returns `None` to keep a value as it is.
    pub fn map_references(&mut self, f: &dyn Fn(&str) -> Option<String>) {
        let map = |s: &mut String| {
            if let Some(n) = f(s) {
                *s = n;
            }
        };
        match self {
            Attrs::SecurityGroup(a) => {
                for set in [&mut a.ingress, &mut a.egress] {
                    *set = std::mem::take(set)
                        .into_iter()
                        .map(|mut r| {
                            if let Peer::Group(g) = &mut r.peer {
                                map(g);
                            }
                            r
                        })
                        .collect();
                }
            }
            Attrs::TaskDefinition(a) => {
                if let Some(r) = a.execution_role.as_mut() {
                    map(r);
                }
                if let Some(r) = a.task_role.as_mut() {
                    map(r);
                }
                for c in &mut a.containers {
                    if let Some(log) = c.log.as_mut() {
                        if let Some(g) = log.options.get_mut("awslogs-group") {
                            map(g);
                        }
                    }
                    for s in c.secrets.values_mut() {
                        map(&mut s.from);
                    }
                    for v in c.environment.values_mut() {
                        map_endpoint_references(v, f);
                    }
                }
                for v in a.volumes.values_mut() {
                    map(&mut v.file_system);
                    if let Some(ap) = v.access_point.as_mut() {
                        map(ap);
                    }
                }
            }
            Attrs::EcsService(a) => {
                map(&mut a.cluster);
                a.security_groups = std::mem::take(&mut a.security_groups)
                    .into_iter()
                    .map(|mut g| {
                        map(&mut g);
                        g
                    })
                    .collect();
                a.load_balancers = std::mem::take(&mut a.load_balancers)
                    .into_iter()
                    .map(|mut lb| {
                        map(&mut lb.target_group);
                        lb
                    })
                    .collect();
                a.service_registries = std::mem::take(&mut a.service_registries)
                    .into_iter()
                    .map(|mut r| {
                        map(&mut r);
                        r
                    })
                    .collect();
            }
            Attrs::ListenerRule(a) => map(&mut a.target_group),
            Attrs::ServiceDiscoveryService(a) => map(&mut a.namespace),
            Attrs::EfsMountTargets(a) => {
                map(&mut a.file_system);
                a.security_groups = std::mem::take(&mut a.security_groups)
                    .into_iter()
                    .map(|mut g| {
                        map(&mut g);
                        g
                    })
                    .collect();
            }
            Attrs::EfsAccessPoint(a) => map(&mut a.file_system),
            Attrs::IamRole(a) => {
                for doc in a.inline_policies.values_mut() {
                    let mut changed = false;
                    let mut mapped = doc.clone();
                    map_policy_resources(&mut mapped, &mut |r: &mut String| {
                        if let Some((head, tail)) = arn_reference(r) {
                            if let Some(n) = f(tail) {
                                *r = format!("{head}{n}");
                                changed = true;
                            }
                        }
                    });
                    if changed {
                        // Ids and addresses sort differently: keep the document canonical.
                        *doc = canonical_policy(&mapped);
                    }
                }
            }
            Attrs::LogGroup(_)
            | Attrs::EcsCluster(_)
            | Attrs::Secret(_)
            | Attrs::TargetGroup(_)
            | Attrs::ServiceDiscoveryNamespace(_) => {}
            Attrs::S3Bucket(a) => {
                for content in a.files.values_mut() {
                    map_endpoint_references(content, f);
                }
            }
            Attrs::EfsFileSystem(_) | Attrs::AmpWorkspace(_) => {}
        }
    }

    /// A copy with every reference whose id is known replaced by it; the others stay
    /// addresses (what `validate` and `render` show before anything exists).
    pub fn with_known_ids(&self, ids: &BTreeMap<Address, String>) -> Attrs {
        let mut out = self.clone();
        out.map_references(&|s| s.parse::<Address>().ok().and_then(|a| ids.get(&a).cloned()));
        out
    }

    /// The AWS name this resource is found by (log group name, role name, group name, …).
    pub fn aws_name(&self) -> &str {
        match self {
            Attrs::LogGroup(a) => &a.name,
            Attrs::IamRole(a) => &a.name,
            Attrs::SecurityGroup(a) => &a.name,
            Attrs::EcsCluster(a) => &a.name,
            Attrs::TaskDefinition(a) => &a.family,
            Attrs::EcsService(a) => &a.name,
            Attrs::Secret(a) => &a.name,
            Attrs::TargetGroup(a) => &a.name,
            // Rules have no names: the priority is what a rule is known by on its listener.
            Attrs::ListenerRule(a) => &a.name,
            Attrs::ServiceDiscoveryNamespace(a) => &a.name,
            Attrs::ServiceDiscoveryService(a) => &a.name,
            Attrs::EfsFileSystem(a) => &a.creation_token,
            Attrs::EfsMountTargets(a) => &a.file_system,
            Attrs::EfsAccessPoint(a) => &a.name,
            Attrs::S3Bucket(a) => &a.name,
            Attrs::AmpWorkspace(a) => &a.name,
        }
    }
}

/// The AWS name a reference names: the name of the stack's resource when `reference` is one
/// of `desired`'s addresses (`ecs_cluster.monitoring` → `monitoring`), else the reference as
/// written (an existing resource's name or id).
pub fn aws_name_of(desired: &[Desired], reference: &str) -> String {
    desired
        .iter()
        .find(|d| d.address.to_string() == reference)
        .map(|d| d.attrs.aws_name().to_string())
        .unwrap_or_else(|| reference.to_string())
}

/// What the value of a sensitive attribute is replaced with, everywhere it is shown.
pub const SENSITIVE: &str = "(sensitive)";

/// `v` as outputs show attribute `name` of `kind`: [`SENSITIVE`] for a sensitive one.
pub fn shown_value(kind: Kind, name: &str, v: Value) -> Value {
    if kind.sensitive_attrs().contains(&name) {
        Value::String(SENSITIVE.into())
    } else {
        v
    }
}

/// One resource the stack wants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    pub address: Address,
    pub attrs: Attrs,
    /// Attribute names whose live value is left alone (e.g. `desired_count` under autoscaling).
    pub ignore: BTreeSet<String>,
    /// Set when a change that restarts this resource's tasks loses data (Prometheus's TSDB).
    pub restart_loses: Option<String>,
}

impl Desired {
    /// The tags deploy manages on this resource: ownership, its address and the hash of the
    /// attributes being applied.
    pub fn managed_tags(&self, ownership: &Tags) -> Tags {
        let mut tags = ownership.clone();
        // Only what holds data needs to say whether the environment was disposable.
        if self.address.kind.info().data.is_none() {
            tags.remove(TAG_DISPOSABLE);
        }
        tags.insert(TAG_ADDRESS.into(), self.address.to_string());
        tags.insert(TAG_APPLIED.into(), self.attrs.applied_hash(&self.ignore));
        tags
    }

    /// Every tag a create call sends: the user's tags and the managed ones.
    pub fn create_tags(&self, ownership: &Tags) -> Tags {
        let mut tags = self.attrs.tags().clone();
        tags.extend(self.managed_tags(ownership));
        tags
    }
}

/// Who owns a live resource, judged from its tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum Ownership {
    /// Carries this stack's and environment's tags.
    Owned,
    /// Carries no ownership tag: made by hand or by another tool.
    Unowned,
    /// Owned by another stack or environment.
    Foreign { stack: String, environment: String },
}

impl Ownership {
    pub fn judge(tags: &Tags, stack: &str, environment: &str) -> Ownership {
        match (tags.get(TAG_STACK), tags.get(TAG_ENV)) {
            (None, _) => Ownership::Unowned,
            (Some(s), e) if s == stack && e.map(String::as_str).unwrap_or("") == environment => {
                Ownership::Owned
            }
            (Some(s), e) => Ownership::Foreign {
                stack: s.clone(),
                environment: e.cloned().unwrap_or_default(),
            },
        }
    }
}

/// One live resource as read from AWS, already normalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub address: Address,
    /// The id AWS knows it by (ARN, group id, log group name).
    pub id: String,
    pub attrs: Attrs,
    /// All tags, ownership tags included.
    pub all_tags: Tags,
    /// Ids the adapter needs later (security group rule ids by rule, revision ARNs…).
    pub handles: BTreeMap<String, String>,
}

impl Observed {
    pub fn ownership(&self, stack: &str, environment: &str) -> Ownership {
        Ownership::judge(&self.all_tags, stack, environment)
    }

    pub fn applied_hash(&self) -> Option<&str> {
        self.all_tags.get(TAG_APPLIED).map(String::as_str)
    }
}

/// The existing infrastructure the stack finds by lookup (never by hard-coded id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookups {
    pub account_id: String,
    pub region: String,
    pub vpc_id: String,
    /// The VPC's primary IPv4 range: what a rule's `cidr: vpc` stands for.
    #[serde(default)]
    pub vpc_cidr: String,
    pub subnet_ids: Vec<String>,
    pub load_balancer: LoadBalancer,
    /// Secrets the containers refer to that live outside the stack: the reference as the
    /// stack writes it ([`external_secret_key`]) → the ARN found (metadata only, never the
    /// value).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The type of each SSM parameter among them (name as written → `String`, `StringList`,
    /// `SecureString`), read by the same lookup: what lint's DL018 judges.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameter_types: BTreeMap<String, String>,
    /// Cloud Map namespaces the stack uses without owning them (`existing`): name → id.
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
}

/// The key of an external secret reference in [`Lookups::secrets`]: `secretsmanager:NAME` or
/// `ssm:NAME` (NAME as written: a name or an ARN).
pub fn external_secret_key(store: &str, name: &str) -> String {
    format!("{store}:{name}")
}

/// The backend's Application Load Balancer, as looked up through ELBv2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub name: String,
    pub arn: String,
    pub dns_name: String,
    pub vpc_id: String,
    pub security_groups: Vec<String>,
    /// Its listener on port 443, looked up only when the stack has listener rules (they are
    /// added to it; the listener itself is never changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_listener_arn: Option<String>,
    /// Listener port → how many targets it forwards to. Only for the plan's warning about
    /// scraping several tasks through one address; not part of what a saved plan is checked
    /// against (the backend scaling would make every saved plan stale).
    #[serde(skip)]
    pub targets_by_port: BTreeMap<i32, usize>,
}

/// Equal when they are the same load balancer as the stack sees it: `targets_by_port` is left
/// out (a saved plan does not carry it, and the backend scaling changes nothing deploy does).
impl PartialEq for LoadBalancer {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            &self.arn,
            &self.dns_name,
            &self.vpc_id,
            &self.security_groups,
            &self.https_listener_arn,
        ) == (
            &other.name,
            &other.arn,
            &other.dns_name,
            &other.vpc_id,
            &other.security_groups,
            &other.https_listener_arn,
        )
    }
}

impl Eq for LoadBalancer {}

/// The stand-in for the account id in names built before the lookups are made (see
/// [`Lookups::placeholders`]); [`with_account`] puts the account in.
pub const ACCOUNT_ID_PLACEHOLDER: &str = "<lookup:account_id>";

/// `name` (built from placeholder lookups) with the real account id in it: the config
/// bucket's name holds the account, and the live state is read before the lookups end.
pub fn with_account(name: &str, account_id: &str) -> String {
    name.replace(ACCOUNT_ID_PLACEHOLDER, account_id)
}

impl Lookups {
    /// Clearly marked stand-ins used by `validate`, which makes no AWS call.
    pub fn placeholders(region: &str) -> Lookups {
        let p = |what: &str| format!("<lookup:{what}>");
        Lookups {
            account_id: ACCOUNT_ID_PLACEHOLDER.to_string(),
            region: region.to_string(),
            vpc_id: p("vpc_id"),
            vpc_cidr: p("vpc_cidr"),
            subnet_ids: vec![p("subnet_ids")],
            load_balancer: LoadBalancer {
                name: p("load_balancer.name"),
                arn: p("load_balancer.arn"),
                dns_name: p("load_balancer.dns_name"),
                vpc_id: p("vpc_id"),
                security_groups: vec![p("load_balancer.security_groups")],
                https_listener_arn: Some(p("load_balancer.https_listener_arn")),
                targets_by_port: BTreeMap::new(),
            },
            secrets: BTreeMap::new(),
            parameter_types: BTreeMap::new(),
            namespaces: BTreeMap::new(),
        }
    }
}

/// Hex SHA-256 (first 16 bytes) of a value's canonical JSON. Object keys are sorted because
/// serde_json maps here preserve insertion order only for display; hashing goes through
/// [`canonical_json`].
pub fn short_hash<T: Serialize>(value: &T) -> String {
    let v = serde_json::to_value(value).expect("hashable value serializes");
    let text = canonical_json(&v);
    let digest = Sha256::digest(text.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON text with object keys sorted at every level: equal data, equal bytes.
pub fn canonical_json(v: &Value) -> String {
    serde_json::to_string(&sort_keys(v)).expect("JSON value serializes")
}

fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, sort_keys(v))).collect();
            let mut out = serde_json::Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// Normalizes an IAM policy document so that equal policies compare equal: keys sorted,
/// single strings and one-element lists made the same (lists of actions, resources and
/// principals become sorted, de-duplicated lists), `Version` defaulted, `Sid`-less statements
/// sorted by content.
/// The ARN types of this stack's resources whose ids AWS picks at creation, which an IAM
/// statement can therefore name only once they exist: `(service, resource type + '/')`.
/// The desired state writes such an ARN with the resource's address in place of its id
/// (`arn:aws:elasticfilesystem:REGION:ACCOUNT:file-system/efs_file_system.grafana`): a
/// reference like any other, so the role waits for the file system and gets its ARN.
pub const ARN_REFERENCES: &[(&str, &str)] = &[
    ("elasticfilesystem", "file-system/"),
    ("elasticfilesystem", "access-point/"),
    ("aps", "workspace/"),
];

/// Endpoints of this stack's resources whose ids AWS picks at creation, as rendered config
/// files and environment values name them: `(host start, path before the id)`. A rendered
/// file writes such a URL with the resource's address in place of its id
/// (`https://aps-workspaces.REGION.amazonaws.com/workspaces/amp_workspace.history/api/v1/…`):
/// a reference like an ARN's, so the file waits for the workspace, reaches AWS with its id
/// (the executor's `resolve`) and is read back with the address (the diff's id map), and a
/// plan after an apply shows no change.
pub const ENDPOINT_REFERENCES: &[(&str, &str)] = &[("://aps-workspaces.", "/workspaces/")];

/// The byte ranges of the ids (or addresses) in the [`ENDPOINT_REFERENCES`] URLs of `text`.
fn endpoint_reference_spans(text: &str) -> Vec<(usize, usize)> {
    let id_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut spans = Vec::new();
    for (host, path) in ENDPOINT_REFERENCES {
        let mut from = 0;
        while let Some(h) = text[from..].find(host).map(|i| from + i) {
            let after_host = h + host.len();
            // The path must follow within the same URL (no blank or quote in between).
            let url_end = text[after_host..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
                .map_or(text.len(), |i| after_host + i);
            from = url_end.max(after_host);
            let Some(p) = text[after_host..url_end].find(path) else {
                continue;
            };
            let start = after_host + p + path.len();
            let end = text[start..url_end]
                .find(|c: char| !id_char(c))
                .map_or(url_end, |i| start + i);
            if end > start {
                spans.push((start, end));
            }
        }
    }
    spans.sort();
    spans
}

fn for_each_endpoint_reference(text: &str, mut f: impl FnMut(&str)) {
    for (start, end) in endpoint_reference_spans(text) {
        f(&text[start..end]);
    }
}

/// Rewrites the id (or address) of every [`ENDPOINT_REFERENCES`] URL in `text` with `f`.
fn map_endpoint_references(text: &mut String, f: &dyn Fn(&str) -> Option<String>) {
    let spans = endpoint_reference_spans(text);
    if spans.is_empty() {
        return;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        match f(&text[start..end]) {
            Some(n) => out.push_str(&n),
            None => out.push_str(&text[start..end]),
        }
        at = end;
    }
    out.push_str(&text[at..]);
    *text = out;
}

/// An ARN of an [`ARN_REFERENCES`] type split into everything up to the id, and the id (or
/// the address standing for it).
pub fn arn_reference(arn: &str) -> Option<(&str, &str)> {
    let service = arn.strip_prefix("arn:")?.split(':').nth(1)?;
    ARN_REFERENCES.iter().find_map(|(s, kind)| {
        if *s != service {
            return None;
        }
        let at = arn.rfind(':')? + 1;
        let tail = arn[at..].strip_prefix(kind)?;
        (!tail.is_empty() && tail != "*").then(|| arn.split_at(at + kind.len()))
    })
}

fn for_each_policy_resource(doc: &Value, mut f: impl FnMut(&str)) {
    let mut doc = doc.clone();
    map_policy_resources(&mut doc, &mut |r: &mut String| f(r));
}

/// Calls `f` on every string of every statement's `Resource` (a string or a list).
fn map_policy_resources(doc: &mut Value, f: &mut dyn FnMut(&mut String)) {
    let statements = match doc.get_mut("Statement") {
        Some(Value::Array(list)) => list.iter_mut().collect::<Vec<_>>(),
        Some(single) => vec![single],
        None => vec![],
    };
    for st in statements {
        match st.get_mut("Resource") {
            Some(Value::String(r)) => f(r),
            Some(Value::Array(list)) => {
                for v in list {
                    if let Value::String(r) = v {
                        f(r);
                    }
                }
            }
            _ => {}
        }
    }
}

pub fn canonical_policy(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Value::Object(m) = &mut doc {
        m.entry("Version")
            .or_insert_with(|| Value::String("2012-10-17".into()));
        if let Some(stmts) = m.get_mut("Statement") {
            let list = match stmts.take() {
                Value::Array(a) => a,
                single => vec![single],
            };
            let mut list: Vec<Value> = list.iter().map(canonical_statement).collect();
            list.sort_by_key(canonical_json);
            *stmts = Value::Array(list);
        }
    }
    sort_keys(&doc)
}

fn canonical_statement(stmt: &Value) -> Value {
    let Value::Object(m) = stmt else {
        return stmt.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        let v = match k.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => string_set(v),
            "Principal" | "NotPrincipal" => match v {
                Value::Object(p) => Value::Object(
                    p.iter()
                        .map(|(pk, pv)| (pk.clone(), string_set(pv)))
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    sort_keys(&Value::Object(out))
}

fn string_set(v: &Value) -> Value {
    let items: BTreeSet<String> = match v {
        Value::String(s) => [s.clone()].into(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        other => return other.clone(),
    };
    if items.len() == 1 {
        Value::String(items.into_iter().next().unwrap())
    } else {
        Value::Array(items.into_iter().map(Value::String).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_names_a_workspace_by_reference_until_its_id_is_known() {
        let url = |ws: &str| {
            format!("  - url: https://aps-workspaces.us-west-2.amazonaws.com/workspaces/{ws}/api/v1/remote_write\n")
        };
        let bucket = |ws: &str| {
            Attrs::S3Bucket(S3BucketAttrs {
                name: "b".into(),
                versioning: true,
                encryption: None,
                public_access_blocked: true,
                policy: Value::Null,
                tags: Tags::new(),
                files: [
                    ("prom-task/prometheus/prometheus.yml".to_string(), url(ws)),
                    // Not an AMP URL: never a reference.
                    (
                        "prom-task/prometheus/other.yml".to_string(),
                        "https://example.com/workspaces/amp_workspace.x/".to_string(),
                    ),
                ]
                .into(),
            })
        };
        let ws = Address::new(Kind::AmpWorkspace, "history");
        let desired = bucket("amp_workspace.history");
        assert_eq!(desired.references(), [ws.clone()].into());
        // Applied: the id replaces the address; read back: the address replaces the id.
        let ids = BTreeMap::from([(ws.clone(), "ws-0abc-1".to_string())]);
        let applied = desired.with_known_ids(&ids);
        assert_eq!(applied, bucket("ws-0abc-1"));
        assert!(applied.references().is_empty());
        let mut read_back = applied.clone();
        read_back.map_references(&|raw| (raw == "ws-0abc-1").then(|| ws.to_string()));
        assert_eq!(read_back, desired);
    }

    #[test]
    fn endpoint_references_end_where_the_url_or_the_id_ends() {
        let text = "url: \"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1\"\n\
                    q: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/amp_workspace.h\n\
                    not: https://aps-workspaces.eu-west-1.amazonaws.com/ other/workspaces/x";
        let mut seen = Vec::new();
        for_each_endpoint_reference(text, |r| seen.push(r.to_string()));
        assert_eq!(seen, ["ws-1", "amp_workspace.h"]);
    }

    #[test]
    fn a_role_names_a_file_system_by_reference_until_its_id_is_known() {
        let arn = |tail: &str| {
            format!("arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/{tail}")
        };
        let doc = |resources: Vec<String>| {
            canonical_policy(&serde_json::json!({"Statement": [{
                "Effect": "Allow", "Action": ["elasticfilesystem:ClientMount"], "Resource": resources,
            }]}))
        };
        let role = |resources| {
            Attrs::IamRole(IamRoleAttrs {
                name: "r".into(),
                path: "/".into(),
                description: String::new(),
                assume_role_policy: serde_json::json!({}),
                inline_policies: [("efs".to_string(), doc(resources))].into(),
                managed_policy_arns: BTreeSet::new(),
                tags: Tags::new(),
            })
        };
        assert_eq!(
            arn_reference(&arn("efs_file_system.grafana")).map(|(_, t)| t),
            Some("efs_file_system.grafana")
        );
        assert_eq!(arn_reference(&arn("*")), None);
        assert_eq!(arn_reference("arn:aws:iam::123456789012:role/x"), None);
        // Desired: the address is a reference, so the role waits for the file system.
        let desired = role(vec![
            arn("efs_file_system.grafana"),
            arn("efs_file_system.b"),
        ]);
        let fs = |n: &str| Address::new(Kind::EfsFileSystem, n);
        assert_eq!(desired.references(), [fs("grafana"), fs("b")].into());
        // Applying: ids replace the addresses.
        let ids: BTreeMap<Address, String> = [
            (fs("grafana"), "fs-9".to_string()),
            (fs("b"), "fs-1".to_string()),
        ]
        .into();
        let applied = desired.with_known_ids(&ids);
        assert_eq!(applied, role(vec![arn("fs-9"), arn("fs-1")]));
        assert!(applied.references().is_empty());
        // Observing: the ids read back as the addresses, equal to the desired state.
        let mut observed = applied;
        observed.map_references(&|id| {
            ids.iter()
                .find(|(_, v)| *v == id)
                .map(|(a, _)| a.to_string())
        });
        assert_eq!(observed, desired);
    }
    use serde_json::json;

    #[test]
    fn address_round_trips() {
        let a: Address = "ecs_service.prometheus".parse().unwrap();
        assert_eq!(a.kind, Kind::EcsService);
        assert_eq!(a.to_string(), "ecs_service.prometheus");
        assert!("nope.x".parse::<Address>().is_err());
        assert!("ecs_service".parse::<Address>().is_err());
    }

    #[test]
    fn secret_references_round_trip_through_value_from() {
        let sm = "arn:aws:secretsmanager:us-west-2:123456789012:secret:monitoring/admin-AbCdEf";
        let keyed = SecretRef {
            from: sm.into(),
            json_key: Some("password".into()),
        };
        assert_eq!(keyed.value_from(sm), format!("{sm}:password::"));
        assert_eq!(SecretRef::parse_value_from(&keyed.value_from(sm)), keyed);
        let plain = SecretRef {
            from: sm.into(),
            json_key: None,
        };
        assert_eq!(SecretRef::parse_value_from(sm), plain);
        let ssm = "arn:aws:ssm:us-west-2:123456789012:parameter/monitoring/pd-key";
        assert_eq!(SecretRef::parse_value_from(ssm).from, ssm);
        assert_eq!(
            SecretAttrs::generation_params(&SecretAttrs::generation(40, false, 3)),
            Some((40, false))
        );
        assert_eq!(
            SecretAttrs::generation_rotation(&SecretAttrs::generation(40, false, 3)),
            Some(3)
        );
    }

    #[test]
    fn policies_equal_regardless_of_form() {
        let a = json!({"Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": ["b", "a"]}]});
        let b = json!({"Version": "2012-10-17", "Statement": {"Resource": ["a", "b"], "Action": ["logs:PutLogEvents"], "Effect": "Allow"}});
        assert_eq!(canonical_policy(&a), canonical_policy(&b));
        let c = json!({"Statement": [{"Effect": "Allow", "Action": "logs:CreateLogStream", "Resource": ["a", "b"]}]});
        assert_ne!(canonical_policy(&a), canonical_policy(&c));
    }

    #[test]
    fn ownership_is_judged_by_stack_and_environment() {
        let mut tags = Tags::new();
        assert_eq!(Ownership::judge(&tags, "s", "e"), Ownership::Unowned);
        tags.insert(TAG_STACK.into(), "s".into());
        tags.insert(TAG_ENV.into(), "e".into());
        assert_eq!(Ownership::judge(&tags, "s", "e"), Ownership::Owned);
        assert!(matches!(
            Ownership::judge(&tags, "s", "other"),
            Ownership::Foreign { .. }
        ));
    }

    #[test]
    fn hash_ignores_key_order_and_ignored_attributes() {
        let a = Attrs::LogGroup(LogGroupAttrs {
            name: "/x".into(),
            retention_days: Some(7),
            tags: Tags::new(),
        });
        let mut b = a.clone();
        if let Attrs::LogGroup(l) = &mut b {
            l.retention_days = Some(14);
        }
        assert_ne!(
            a.applied_hash(&BTreeSet::new()),
            b.applied_hash(&BTreeSet::new())
        );
        let ignore: BTreeSet<String> = ["retention_days".to_string()].into();
        assert_eq!(a.applied_hash(&ignore), b.applied_hash(&ignore));

        // The same trust policy with its keys written in another order (serde_json keeps
        // insertion order here, so the two serialize differently): the same hash.
        let role = |policy: &str| {
            Attrs::IamRole(IamRoleAttrs {
                name: "r".into(),
                path: "/".into(),
                description: String::new(),
                assume_role_policy: serde_json::from_str(policy).unwrap(),
                inline_policies: BTreeMap::new(),
                managed_policy_arns: BTreeSet::new(),
                tags: Tags::new(),
            })
        };
        let one = role(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
        );
        let other = role(
            r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow"}],"Version":"2012-10-17"}"#,
        );
        assert_ne!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&other).unwrap(),
            "the two must differ in key order for this test to mean anything"
        );
        assert_eq!(
            one.applied_hash(&BTreeSet::new()),
            other.applied_hash(&BTreeSet::new())
        );
        let denied = role(
            r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Deny"}],"Version":"2012-10-17"}"#,
        );
        assert_ne!(
            one.applied_hash(&BTreeSet::new()),
            denied.applied_hash(&BTreeSet::new())
        );
    }
}
