//! The one table of `deploy lint` rules: id, severity, what and why, the fix, and the ids of
//! the same check in peer tools. Everything that names a rule (the checks, suppressions, the
//! outputs, the README table) reads it from here.
//!
//! Peer ids were taken from the packages' shipped metadata, not from memory: checkov 3.3.30
//! (`checkov/terraform/checks/**`: `id = "CKV_AWS_…"`), prowler 5.46.0 (check directories and
//! their `*.metadata.json`), and AWS Security Hub control ids from prowler's
//! `compliance/aws/aws_foundational_security_best_practices_aws.json` or the Security Hub
//! links in the check's metadata. An empty list: the peer has no such check.

/// How bad a finding is: an error stops `apply` (and fails `lint` by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Where and when a rule is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Over the stack file and the rendered files, with no AWS call.
    Offline,
    /// Only with `lint --live` (read-only calls against the account).
    Live,
    /// Needs live state the plan does not read yet: said as not checked, with why.
    NotChecked(&'static str),
    /// The stack cannot express the bad case: deploy always sets it (or validate refuses it).
    Enforced(&'static str),
    /// What cannot happen on Fargate: never a finding.
    NotOnFargate(&'static str),
}

/// One rule of the table.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// What holds when the rule passes.
    pub title: &'static str,
    /// Why it matters, in one line.
    pub why: &'static str,
    pub fix: &'static str,
    pub checkov: &'static [&'static str],
    pub prowler: &'static [&'static str],
    pub security_hub: &'static [&'static str],
    pub scope: Scope,
}

/// The rule with this id (ids are stable; unknown ids are a spec error in suppressions).
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Shorthand for the table below.
const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;
const NONE: &[&str] = &[];

pub static RULES: &[Rule] = &[
    // Task definitions.
    Rule {
        id: "DL001",
        severity: E,
        title: "No secret in a container's environment",
        why: "environment values are in the task definition, readable by anyone who can describe it",
        fix: "move the value to Secrets Manager or SSM and name it under the container's `secrets:`",
        checkov: NONE,
        prowler: &["ecs_task_definitions_no_environment_secrets"],
        security_hub: &["ECS.8"],
        scope: Scope::Offline,
    },
    Rule {
        id: "DL002",
        severity: W,
        title: "Containers run with a read-only root file system",
        why: "a writable root lets an intruder change the program and its configuration in place",
        fix: "`readonly_root_filesystem: true`, and mount the paths the program writes as volumes",
        checkov: &["CKV_AWS_336"],
        prowler: &["ecs_task_definitions_containers_readonly_access"],
        security_hub: &["ECS.5"],
        scope: Scope::Offline,
    },
    Rule {
        id: "DL003",
        severity: W,
        title: "Containers run as a named non-root user",
        why: "an image's default user can change with a new tag; root in the container widens any escape",
        fix: "set `user:` to the image's own unprivileged user (e.g. \"65534\" for prom/*, \"472\" for grafana)",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL004",
        severity: W,
        title: "Containers drop all Linux capabilities",
        why: "none of the stack's programs needs a capability; each one kept is attack surface",
        fix: "`linux_parameters: { capabilities: { drop: [ALL] } }`",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL005",
        severity: W,
        title: "Containers send their logs to CloudWatch Logs",
        why: "without a log configuration a failing task leaves nothing to read",
        fix: "`log_group:` naming a log group of the stack",
        checkov: NONE,
        prowler: &["ecs_task_definitions_logging_enabled"],
        security_hub: &["ECS.9"],
        scope: Scope::Offline,
    },
    Rule {
        id: "DL006",
        severity: W,
        title: "Images are pinned to a version tag or digest",
        why: "`latest` or no tag runs whatever was pushed last, untested, at the next task start",
        fix: "name the image with a version tag (prom/prometheus:v2.53.4) or a digest (@sha256:…)",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL007",
        severity: W,
        title: "A task's execution role is not its task role",
        why: "the execution role can read every secret of the task; the program should not hold it",
        fix: "give `task_role` its own role with only what the program calls",
        checkov: &["CKV_AWS_249"],
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL008",
        severity: E,
        title: "EFS volumes use transit encryption and IAM authorization",
        why: "NFS in clear text and mounts without IAM let anyone on the network read the data",
        fix: "nothing to do: deploy always sets both on every EFS volume",
        checkov: &["CKV_AWS_97"],
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Enforced("deploy always sets transitEncryption ENABLED and IAM ENABLED on EFS volumes"),
    },
    Rule {
        id: "DL009",
        severity: E,
        title: "No privileged container",
        why: "a privileged container owns its host",
        fix: "nothing to do on Fargate",
        checkov: &["CKV_AWS_334"],
        prowler: &["ecs_task_definitions_no_privileged_containers"],
        security_hub: &["ECS.4"],
        scope: Scope::NotOnFargate("Fargate refuses `privileged`; the stack has no such field"),
    },
    Rule {
        id: "DL010",
        severity: E,
        title: "No host network mode",
        why: "host networking bypasses the task's security groups",
        fix: "nothing to do on Fargate",
        checkov: NONE,
        prowler: &["ecs_task_definitions_host_networking_mode_users"],
        security_hub: &["ECS.1"],
        scope: Scope::NotOnFargate("Fargate tasks always use awsvpc networking (deploy writes it)"),
    },
    Rule {
        id: "DL011",
        severity: E,
        title: "No shared host process namespace",
        why: "sharing the host's PIDs lets a container see and signal the host's processes",
        fix: "nothing to do on Fargate",
        checkov: &["CKV_AWS_335"],
        prowler: &["ecs_task_definitions_host_namespace_not_shared"],
        security_hub: &["ECS.3"],
        scope: Scope::NotOnFargate("Fargate supports only the `task` PID mode, never `host`"),
    },
    // Services.
    Rule {
        id: "DL012",
        severity: E,
        title: "Services get no public IP",
        why: "a public IP puts Prometheus and Grafana on the internet, past the load balancer",
        fix: "remove `assign_public_ip: true`; reach the internet through a NAT gateway",
        checkov: &["CKV_AWS_333"],
        prowler: &["ecs_service_no_assign_public_ip"],
        security_hub: &["ECS.2"],
        scope: Scope::Offline,
    },
    Rule {
        id: "DL013",
        severity: W,
        title: "Services run on the latest Fargate platform version",
        why: "an old platform version misses security fixes",
        fix: "nothing to do: deploy always asks for LATEST",
        checkov: &["CKV_AWS_332"],
        prowler: &["ecs_service_fargate_latest_platform_version"],
        security_hub: &["ECS.10"],
        scope: Scope::Enforced("the stack has no platform_version field: deploy always runs LATEST"),
    },
    // Cluster and logs.
    Rule {
        id: "DL014",
        severity: W,
        title: "Clusters have Container Insights on",
        why: "without it a task's CPU and memory are not recorded, and the infrastructure dashboard is empty",
        fix: "`container_insights: true` on the cluster",
        checkov: &["CKV_AWS_65"],
        prowler: &["ecs_cluster_container_insights_enabled"],
        security_hub: &["ECS.12"],
        scope: Scope::Offline,
    },
    Rule {
        id: "DL015",
        severity: E,
        title: "Log groups have a retention",
        why: "the seed promises retention: without it logs (and what leaked into them) are kept forever",
        fix: "`retention_days:` on the log group",
        checkov: &["CKV_AWS_66"],
        prowler: &["cloudwatch_log_group_retention_policy_specific_days_enabled"],
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL016",
        severity: W,
        title: "Log groups use a KMS key when the stack asks for one",
        why: "a customer key lets the account revoke access to the logs",
        fix: "not expressible yet: log groups have no kms_key field",
        checkov: &["CKV_AWS_158"],
        prowler: &["cloudwatch_log_group_kms_encryption_enabled"],
        security_hub: NONE,
        scope: Scope::NotChecked("log groups have no kms_key field, so the stack cannot ask for one"),
    },
    // Secrets.
    Rule {
        id: "DL017",
        severity: W,
        title: "A generated secret is younger than its max_age_days",
        why: "a credential that never changes stays useful to whoever copied it",
        fix: "bump the secret's `rotation:` and apply",
        checkov: &["CKV_AWS_304"],
        prowler: &["secretsmanager_secret_rotated_periodically"],
        security_hub: NONE,
        scope: Scope::NotChecked("needs the secret's last change date, which the plan does not read yet"),
    },
    Rule {
        id: "DL018",
        severity: W,
        title: "External SSM parameters are SecureString",
        why: "a String parameter is stored and shown in clear text",
        fix: "re-create the parameter as SecureString",
        checkov: &["CKV2_AWS_34"],
        prowler: NONE,
        security_hub: NONE,
        // Read live (DescribeParameters, metadata only): by `lint --live` and by every plan.
        scope: Scope::Live,
    },
    Rule {
        id: "DL019",
        severity: W,
        title: "Secrets use a customer key where the stack asks for one",
        why: "a customer key lets the account revoke access to the secret",
        fix: "not expressible yet: secrets have no kms_key field",
        checkov: &["CKV_AWS_149"],
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::NotChecked("secrets have no kms_key field, so the stack cannot ask for one"),
    },
    // Security groups.
    Rule {
        id: "DL020",
        severity: E,
        title: "No ingress from the whole internet",
        why: "the seed promises Prometheus reachable only inside; monitoring endpoints stay private",
        fix: "name the security group that needs access (`from:`) instead of 0.0.0.0/0",
        checkov: &["CKV_AWS_277"],
        prowler: &["ec2_securitygroup_allow_ingress_from_internet_to_any_port"],
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL021",
        severity: W,
        title: "Egress to the internet only on 443, with the reason in its description",
        why: "open egress on other ports is how data leaves; 443 is what image pulls and AWS APIs need",
        fix: "limit the rule to port 443 and say in `description` what it reaches",
        checkov: &["CKV_AWS_382"],
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL022",
        severity: W,
        title: "Every security group rule is described",
        why: "an undescribed rule cannot be reviewed or removed with confidence",
        fix: "`description:` on the rule",
        checkov: &["CKV_AWS_23"],
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL023",
        severity: W,
        title: "Every security group is used by the stack",
        why: "an unused group is either dead weight or a rule someone will attach by mistake",
        fix: "name it in a service, a file system's mount targets or another group's rule, or remove it",
        checkov: &["CKV2_AWS_5"],
        prowler: &["ec2_securitygroup_not_used"],
        security_hub: &["EC2.22"],
        scope: Scope::Offline,
    },
    // IAM.
    Rule {
        id: "DL024",
        severity: E,
        title: "No `*` action in a role's policy",
        why: "a task with every action can undo each promise of the stack (open groups, read secrets)",
        fix: "list the actions the program calls",
        checkov: &["CKV_AWS_63", "CKV_AWS_62"],
        prowler: &["iam_inline_policy_no_administrative_privileges"],
        security_hub: &["IAM.1"],
        scope: Scope::Offline,
    },
    Rule {
        id: "DL025",
        severity: W,
        title: "`*` resource only on actions that cannot be scoped",
        why: "an action that takes a resource ARN granted on `*` reaches every such resource in the account",
        fix: "name the resources by ARN (or by address of the stack); keep `*` only for the unscopable actions",
        checkov: &["CKV_AWS_355"],
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL026",
        severity: W,
        title: "A resource the stack creates is named by its own ARN, not a wildcard",
        why: "a wildcard over the stack's own kind reaches the other environments' resources too",
        fix: "name the resource so its ARN is used once it exists",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL027",
        severity: W,
        title: "iam:PassRole only on the stack's roles, only to ecs-tasks.amazonaws.com",
        why: "PassRole on other roles lets a task hand itself more privileges",
        fix: "name the stack's roles as resources; the stack cannot add the iam:PassedToService condition, so avoid PassRole in task roles",
        checkov: &["CKV_AWS_286"],
        prowler: &["iam_inline_policy_allows_privilege_escalation"],
        security_hub: NONE,
        scope: Scope::Offline,
    },
    // EFS.
    Rule {
        id: "DL028",
        severity: E,
        title: "File systems are encrypted at rest",
        why: "Grafana's database holds users and sessions",
        fix: "nothing to do: validate refuses `encrypted: false`",
        checkov: &["CKV_AWS_42"],
        prowler: &["efs_encryption_at_rest_enabled"],
        security_hub: &["EFS.1"],
        scope: Scope::Enforced("validate refuses `encrypted: false`"),
    },
    Rule {
        id: "DL029",
        severity: W,
        title: "EFS volumes go through an access point with a root directory and POSIX user",
        why: "without one a task sees the whole file system as whatever user it claims",
        fix: "`access_point:` on the volume, with `root_directory` other than `/`",
        checkov: &["CKV_AWS_329", "CKV_AWS_330"],
        prowler: &["efs_access_point_enforce_root_directory", "efs_access_point_enforce_user_identity"],
        security_hub: &["EFS.3", "EFS.4"],
        scope: Scope::Offline,
    },
    // Rendered Prometheus.
    Rule {
        id: "DL030",
        severity: E,
        title: "Prometheus serves HTTPS with basic auth (--web.config.file)",
        why: "the seed promises authentication and TLS everywhere",
        fix: "`--web.config.file=` naming a delivered web.yml with tls_server_config and basic_auth_users",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL031",
        severity: W,
        title: "Prometheus's admin API and lifecycle endpoints are off",
        why: "they delete series and shut Prometheus down for anyone who can log in",
        fix: "remove --web.enable-admin-api and --web.enable-lifecycle",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL032",
        severity: W,
        title: "Every scrape sets sample_limit and label_limit",
        why: "a target that explodes its series fills the TSDB and the task's memory",
        fix: "`sample_limit:` and `label_limit:` on the scrape config",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL033",
        severity: W,
        title: "scrape_timeout is at most scrape_interval",
        why: "Prometheus refuses such a configuration at start",
        fix: "lower scrape_timeout or raise scrape_interval",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL034",
        severity: E,
        title: "Prometheus reads every credential from a file (*_file)",
        why: "a credential written into the configuration travels in the task definition",
        fix: "use password_file, credentials_file, client_secret_file, key_file with a `secret_files:` entry",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL035",
        severity: E,
        title: "Every scrape uses HTTPS",
        why: "the seed promises TLS everywhere: metrics in clear text can be read and forged on the way",
        fix: "`scheme: https` with a tls_config the target's certificate passes",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    // Rendered Alertmanager.
    Rule {
        id: "DL040",
        severity: E,
        title: "Alertmanager serves HTTPS with basic auth (--web.config.file)",
        why: "the seed promises authentication and TLS everywhere; Alertmanager's API silences alerts",
        fix: "`--web.config.file=` naming a delivered web.yml with tls_server_config and basic_auth_users",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL041",
        severity: W,
        title: "A single Alertmanager runs no gossip cluster",
        why: "the cluster port (9094) listens unauthenticated for peers that do not exist",
        fix: "`--cluster.listen-address=` (empty) in its args",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL042",
        severity: E,
        title: "Alertmanager reads receiver credentials from files",
        why: "a webhook URL, routing key or SMTP password in the configuration travels in the task definition",
        fix: "api_url_file, routing_key_file, auth_password_file with a `secret_files:` entry",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    // Grafana.
    Rule {
        id: "DL050",
        severity: E,
        title: "Grafana has anonymous access off",
        why: "the seed promises authentication",
        fix: "GF_AUTH_ANONYMOUS_ENABLED: \"false\" (or leave it unset)",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL051",
        severity: E,
        title: "Grafana has sign-up off",
        why: "the seed promises RBAC: users are added by an admin, not by themselves",
        fix: "GF_USERS_ALLOW_SIGN_UP: \"false\" (or leave it unset)",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL052",
        severity: E,
        title: "Grafana's admin password comes only from `secrets`",
        why: "without it Grafana starts with admin/admin",
        fix: "GF_SECURITY_ADMIN_PASSWORD under the container's `secrets:` (a generated secret)",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL053",
        severity: E,
        title: "Grafana's cookies are secure",
        why: "the seed promises TLS everywhere: a session cookie sent over HTTP can be stolen",
        fix: "GF_SECURITY_COOKIE_SECURE: \"true\"",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL054",
        severity: E,
        title: "Grafana's root_url is HTTPS on the listener rule's host",
        why: "links, redirects and cookies follow root_url: HTTP or another host breaks login or leaks it",
        fix: "GF_SERVER_ROOT_URL: https://HOST/ with HOST one of the listener rule's host_headers",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL055",
        severity: E,
        title: "Grafana's data sources use HTTPS, verify TLS and authenticate",
        why: "the seed promises TLS everywhere and authentication between the parts",
        fix: "https:// URLs, no tlsSkipVerify, basicAuth (or another auth) on every HTTP data source",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    // Monitoring hygiene.
    Rule {
        id: "DL060",
        severity: E,
        title: "Every backend scrape limits label value length",
        why: "the seed promises no secrets in metrics: long label values are where tokens and payloads end up",
        fix: "`label_value_length_limit:` on the scrape config",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL061",
        severity: E,
        title: "Every backend scrape drops the sensitive labels",
        why: "the seed promises no secrets in metrics: labels named email, user_id or token carry personal or secret data",
        fix: "list them in `vars.sensitive_labels` and drop them with a `labeldrop` metric_relabel_config",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL062",
        severity: E,
        title: "Prometheus has a retention time and size",
        why: "the seed promises retention: without both the TSDB fills the task's storage",
        fix: "--storage.tsdb.retention.time and --storage.tsdb.retention.size in its args",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    Rule {
        id: "DL069",
        severity: W,
        title: "No expired suppression",
        why: "a suppression past its date no longer hides its finding: review it",
        fix: "fix the finding and remove the suppression, or set a new `expires` with the reason",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Offline,
    },
    // --live (checked by the network audit).
    Rule {
        id: "DL070",
        severity: E,
        title: "The ALB's HTTPS listener uses a TLS 1.2+ policy",
        why: "the seed promises TLS everywhere: TLS 1.0/1.1 are broken",
        fix: "set the listener's SslPolicy to ELBSecurityPolicy-TLS13-1-2-2021-06 (or newer)",
        checkov: &["CKV_AWS_103"],
        prowler: &["elbv2_insecure_ssl_ciphers"],
        security_hub: NONE,
        scope: Scope::Live,
    },
    Rule {
        id: "DL071",
        severity: E,
        title: "Port 80, if open, redirects to HTTPS",
        why: "the seed promises TLS everywhere",
        fix: "make the port 80 listener's default action a redirect to HTTPS",
        checkov: &["CKV2_AWS_20"],
        prowler: &["elbv2_ssl_listeners"],
        security_hub: &["ELB.1"],
        scope: Scope::Live,
    },
    Rule {
        id: "DL072",
        severity: W,
        title: "The ALB drops invalid header fields",
        why: "malformed headers are how request smuggling starts",
        fix: "routing.http.drop_invalid_header_fields.enabled = true on the ALB",
        checkov: &["CKV_AWS_131"],
        prowler: &["elbv2_alb_drop_invalid_header_fields_enabled"],
        security_hub: &["ELB.4"],
        scope: Scope::Live,
    },
    Rule {
        id: "DL073",
        severity: E,
        title: "The tasks' subnets have no route to an internet gateway",
        why: "the seed promises private subnets",
        fix: "look up subnets whose route table sends 0.0.0.0/0 to a NAT gateway",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Live,
    },
    Rule {
        id: "DL074",
        severity: E,
        title: "The listener's certificate covers Grafana's host",
        why: "the seed promises TLS everywhere: a name mismatch trains users to click through warnings",
        fix: "add a certificate for the host to the HTTPS listener",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Live,
    },
    Rule {
        id: "DL075",
        severity: W,
        title: "The tasks can reach what they need at start (NAT or VPC endpoints; Docker Hub needs NAT)",
        why: "without a path to Secrets Manager, CloudWatch Logs and the registry the rollout never starts",
        fix: "a NAT gateway route, or VPC endpoints for each service (images from a registry reachable through one)",
        checkov: NONE,
        prowler: NONE,
        security_hub: NONE,
        scope: Scope::Live,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
        // Offline rules own DL001-DL069; DL070-DL079 are the --live network rules; DL018
        // (an SSM parameter's type) is read live too, by `lint --live` and every plan.
        for r in RULES {
            let n: u32 = r.id[2..].parse().unwrap();
            assert_eq!(
                r.scope == Scope::Live,
                (70..80).contains(&n) || r.id == "DL018",
                "{}",
                r.id
            );
        }
    }
}
