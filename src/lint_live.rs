//! The `--live` security rules (DL070–DL075): what the account around the stack must hold for
//! the stack's own promises to mean anything — the backend ALB's TLS and header handling, the
//! tasks' subnets kept off the internet, and a way for the tasks to start. Pure: the facts are
//! read by `crate::aws::network_audit` into [`NetworkFacts`], the stack's side comes in as
//! [`LiveInputs`], and [`check`] turns both into findings the lint engine places and grades.

use crate::model::{Attrs, Desired};
use std::collections::{BTreeMap, BTreeSet};

/// One failed live check, about one AWS resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveFinding {
    /// `DL070`…`DL075`.
    pub rule: &'static str,
    /// The ARN or id of the AWS resource the finding is about.
    pub subject: String,
    pub message: String,
}

/// The ALB's HTTPS listener uses a policy that offers only TLS 1.2 or newer.
pub const TLS_POLICY: &str = "DL070";
/// Port 80, if open, redirects to HTTPS.
pub const HTTP_REDIRECT: &str = "DL071";
/// The ALB drops invalid header fields.
pub const DROP_INVALID_HEADERS: &str = "DL072";
/// The tasks' subnets have no route to an internet gateway.
pub const NO_INTERNET_ROUTE: &str = "DL073";
/// The HTTPS listener's certificate covers Grafana's host.
pub const CERTIFICATE_COVERS_HOST: &str = "DL074";
/// The tasks can reach what they need at start.
pub const START_REACHABILITY: &str = "DL075";

/// Every live rule: (id, what it checks).
pub const RULES: &[(&str, &str)] = &[
    (
        TLS_POLICY,
        "the ALB's HTTPS listeners use a security policy offering TLS 1.2 or newer only",
    ),
    (HTTP_REDIRECT, "the ALB's port 80, if open, redirects to HTTPS"),
    (
        DROP_INVALID_HEADERS,
        "the ALB drops HTTP header fields with invalid names",
    ),
    (
        NO_INTERNET_ROUTE,
        "the tasks' subnets have no route to an internet gateway",
    ),
    (
        CERTIFICATE_COVERS_HOST,
        "a certificate of the HTTPS listener covers Grafana's host",
    ),
    (
        START_REACHABILITY,
        "the tasks reach what they need at start: a NAT gateway, or VPC endpoints for every AWS service they call",
    ),
];

/// The load balancer attribute DL072 reads.
pub const DROP_INVALID_HEADERS_ATTRIBUTE: &str = "routing.http.drop_invalid_header_fields.enabled";

/// What AWS holds around the stack, as the live rules need it (read by
/// `crate::aws::network_audit::gather`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkFacts {
    pub region: String,
    pub vpc_id: String,
    pub load_balancer_arn: String,
    pub listeners: Vec<ListenerFacts>,
    /// The load balancer's attributes (DescribeLoadBalancerAttributes), key → value.
    pub load_balancer_attributes: BTreeMap<String, String>,
    /// The route table in force for each of the tasks' subnets.
    pub subnets: Vec<SubnetRoutes>,
    /// The VPC endpoints of the VPC that are usable (state `available`).
    pub vpc_endpoints: Vec<VpcEndpointFacts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerFacts {
    pub arn: String,
    /// `HTTP`, `HTTPS`, …
    pub protocol: String,
    pub port: i32,
    pub ssl_policy: Option<String>,
    /// The protocols the SSL policy offers (`TLSv1.2`, `TLSv1.3`…), as DescribeSSLPolicies
    /// answers; `None` when the policy was not in its answer.
    pub ssl_protocols: Option<Vec<String>>,
    /// Every DNS name the listener's certificates cover (lower case).
    pub certificate_names: BTreeSet<String>,
    pub default_actions: Vec<ListenerAction>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerAction {
    /// A redirect, with the protocol it redirects to (`HTTPS`, or `#{protocol}`: the same).
    Redirect {
        protocol: String,
    },
    Forward,
    FixedResponse,
    /// Any other action type (authenticate-oidc, authenticate-cognito…).
    Other(String),
}

/// The route table a subnet uses: its own (an explicit association), else the VPC's main one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubnetRoutes {
    pub subnet_id: String,
    /// `None` when the VPC has no route table for it at all.
    pub route_table_id: Option<String>,
    /// The table is the VPC's main one (the subnet has no table of its own).
    pub via_main: bool,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The destination CIDR (v4 or v6) or prefix list id.
    pub destination: String,
    pub target: RouteTarget,
    /// `false` for a blackhole route (its target is gone).
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    InternetGateway(String),
    NatGateway(String),
    Local,
    /// Anything else (peering, transit gateway, interface, egress-only gateway…), by id.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcEndpointFacts {
    pub id: String,
    /// `com.amazonaws.REGION.SERVICE`.
    pub service_name: String,
    /// `Interface` or `Gateway`.
    pub endpoint_type: String,
    /// Interface endpoints answer at the service's usual name only with private DNS on.
    pub private_dns_enabled: bool,
}

/// An AWS service a task calls while it starts, before its containers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StartService {
    /// Secrets injected from Secrets Manager.
    SecretsManager,
    /// Secrets injected from SSM Parameter Store.
    Ssm,
    /// The awslogs log driver.
    Logs,
    /// An image on a private ECR registry (the API, the registry, and S3 for its layers).
    Ecr,
    /// An EFS volume: mounted through the file system's mount targets inside the VPC.
    Efs,
}

impl StartService {
    /// The VPC endpoint services a task in a subnet without a NAT gateway needs for this
    /// (`com.amazonaws.REGION.` + each). EFS needs none: its mount targets are in the VPC.
    pub fn endpoints(self) -> &'static [&'static str] {
        match self {
            StartService::SecretsManager => &["secretsmanager"],
            StartService::Ssm => &["ssm"],
            StartService::Logs => &["logs"],
            // ECR's documented set for Fargate: the API, the Docker registry, and S3 (a
            // gateway endpoint) where the layers are.
            StartService::Ecr => &["ecr.api", "ecr.dkr", "s3"],
            StartService::Efs => &[],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StartService::SecretsManager => "Secrets Manager (injected secrets)",
            StartService::Ssm => "SSM Parameter Store (injected parameters)",
            StartService::Logs => "CloudWatch Logs (awslogs driver)",
            StartService::Ecr => "ECR (images)",
            StartService::Efs => "EFS (volumes)",
        }
    }
}

/// The stack's side of the live rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveInputs {
    /// The hosts Grafana is served at (the host headers of the stack's listener rules).
    pub grafana_hosts: Vec<String>,
    /// The images of the containers, as written.
    pub images: Vec<String>,
    /// What the tasks call at start.
    pub start_services: BTreeSet<StartService>,
}

impl LiveInputs {
    /// What the desired task definitions and listener rules need: their images, the services
    /// their secrets, log drivers, images and volumes call at start, and the rules' hosts.
    pub fn from_desired(desired: &[Desired]) -> LiveInputs {
        let mut inputs = LiveInputs::default();
        for d in desired {
            match &d.attrs {
                Attrs::TaskDefinition(td) => {
                    if !td.volumes.is_empty() {
                        inputs.start_services.insert(StartService::Efs);
                    }
                    for c in &td.containers {
                        inputs.images.push(c.image.clone());
                        if Image::parse(&c.image).registry_kind() == RegistryKind::PrivateEcr {
                            inputs.start_services.insert(StartService::Ecr);
                        }
                        if c.log.as_ref().is_some_and(|l| l.driver == "awslogs") {
                            inputs.start_services.insert(StartService::Logs);
                        }
                        for s in c.secrets.values() {
                            // An SSM parameter's ARN; a Secrets Manager secret is this stack's
                            // (an address) or its ARN.
                            let service = if s.from.starts_with("arn:") && s.from.contains(":ssm:")
                            {
                                StartService::Ssm
                            } else {
                                StartService::SecretsManager
                            };
                            inputs.start_services.insert(service);
                        }
                    }
                }
                Attrs::ListenerRule(rule) => {
                    inputs
                        .grafana_hosts
                        .extend(rule.conditions.host_headers.iter().cloned());
                }
                _ => {}
            }
        }
        inputs.images.sort();
        inputs.images.dedup();
        inputs.grafana_hosts.sort();
        inputs.grafana_hosts.dedup();
        inputs
    }
}

/// Every live rule over `facts` and `inputs`, in rule order.
pub fn check(facts: &NetworkFacts, inputs: &LiveInputs) -> Vec<LiveFinding> {
    let mut out = Vec::new();
    out.extend(tls_policy(facts));
    out.extend(http_redirect(facts));
    out.extend(drop_invalid_headers(facts));
    out.extend(no_internet_route(facts));
    out.extend(certificate_covers_host(facts, inputs));
    out.extend(start_reachability(facts, inputs));
    out
}

/// The protocols a security policy may offer and still pass DL070.
const MODERN_TLS: &[&str] = &["TLSv1.2", "TLSv1.3"];

/// The ELB security policies that offer TLS 1.2 or newer only, for when DescribeSSLPolicies
/// does not list the listener's policy. Source: the Elastic Load Balancing documentation,
/// "Security policies for your Application Load Balancer" (the TLS 1.3 and TLS 1.2 policy
/// tables; FIPS and PQ variants follow the same naming: `…-1-2-…` and `…-1-3-…` offer 1.2+).
/// botocore ships no such list: DescribeSSLPolicies is the API's only source.
pub const TLS12_POLICIES_DOCUMENTED: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
];

/// Whether a listener's policy offers only TLS 1.2+: by the protocols AWS reported for it,
/// else by the documented table.
fn offers_only_modern_tls(l: &ListenerFacts) -> bool {
    match (&l.ssl_protocols, &l.ssl_policy) {
        (Some(protocols), _) => {
            !protocols.is_empty() && protocols.iter().all(|p| MODERN_TLS.contains(&p.as_str()))
        }
        (None, Some(policy)) => TLS12_POLICIES_DOCUMENTED.contains(&policy.as_str()),
        (None, None) => false,
    }
}

fn tls_policy(facts: &NetworkFacts) -> Vec<LiveFinding> {
    facts
        .listeners
        .iter()
        .filter(|l| l.protocol == "HTTPS" && !offers_only_modern_tls(l))
        .map(|l| {
            let policy = l.ssl_policy.as_deref().unwrap_or("(none)");
            let offers = match &l.ssl_protocols {
                Some(p) => format!("offers {}", p.join(", ")),
                None => "is not one AWS lists as TLS 1.2+".to_string(),
            };
            LiveFinding {
                rule: TLS_POLICY,
                subject: l.arn.clone(),
                message: format!(
                    "the HTTPS listener on port {} uses the security policy {policy}, which {offers}; use a policy offering TLS 1.2 or newer only, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06",
                    l.port
                ),
            }
        })
        .collect()
}

fn http_redirect(facts: &NetworkFacts) -> Vec<LiveFinding> {
    facts
        .listeners
        .iter()
        .filter(|l| l.port == 80 && l.protocol == "HTTP")
        .filter(|l| {
            !l.default_actions
                .iter()
                .any(|a| matches!(a, ListenerAction::Redirect { protocol } if protocol == "HTTPS"))
        })
        .map(|l| LiveFinding {
            rule: HTTP_REDIRECT,
            subject: l.arn.clone(),
            message: "port 80 is open and does not redirect to HTTPS, so requests (and Grafana's cookies) can travel in the clear; make its default action a redirect to HTTPS on 443 (status HTTP_301), or close it".into(),
        })
        .collect()
}

fn drop_invalid_headers(facts: &NetworkFacts) -> Vec<LiveFinding> {
    let value = facts
        .load_balancer_attributes
        .get(DROP_INVALID_HEADERS_ATTRIBUTE)
        .map(String::as_str);
    if value == Some("true") {
        return vec![];
    }
    vec![LiveFinding {
        rule: DROP_INVALID_HEADERS,
        subject: facts.load_balancer_arn.clone(),
        message: format!(
            "the load balancer passes HTTP headers with invalid names on to its targets ({DROP_INVALID_HEADERS_ATTRIBUTE} is {}), which opens the way to request smuggling; set it to true",
            value.unwrap_or("unset")
        ),
    }]
}

fn table_of(s: &SubnetRoutes) -> String {
    match (&s.route_table_id, s.via_main) {
        (Some(t), true) => {
            format!("the VPC's main route table {t} (the subnet has none of its own)")
        }
        (Some(t), false) => format!("its route table {t}"),
        (None, _) => "no route table".into(),
    }
}

fn no_internet_route(facts: &NetworkFacts) -> Vec<LiveFinding> {
    let mut out = Vec::new();
    for s in &facts.subnets {
        for r in s.routes.iter().filter(|r| r.active) {
            if let RouteTarget::InternetGateway(igw) = &r.target {
                out.push(LiveFinding {
                    rule: NO_INTERNET_ROUTE,
                    subject: s.subnet_id.clone(),
                    message: format!(
                        "the tasks' subnet {} routes {} to the internet gateway {igw} through {}: it is a public subnet, so a task given a public IP is reachable from the internet; run the tasks in private subnets (egress through a NAT gateway or VPC endpoints)",
                        s.subnet_id, r.destination, table_of(s)
                    ),
                });
            }
        }
    }
    out
}

fn certificate_covers_host(facts: &NetworkFacts, inputs: &LiveInputs) -> Vec<LiveFinding> {
    let mut out = Vec::new();
    for l in facts
        .listeners
        .iter()
        .filter(|l| l.protocol == "HTTPS" && l.port == 443)
    {
        let shown: Vec<&str> = l.certificate_names.iter().map(String::as_str).collect();
        for host in crate::aws::certificates::uncovered(&inputs.grafana_hosts, &l.certificate_names)
        {
            out.push(LiveFinding {
                rule: CERTIFICATE_COVERS_HOST,
                subject: l.arn.clone(),
                message: format!(
                    "no certificate of the HTTPS listener covers Grafana's host {host} (they cover: {}), so browsers refuse https://{host}/; add a certificate for it, or a wildcard for its parent domain (a wildcard covers one label only)",
                    if shown.is_empty() { "nothing".to_string() } else { shown.join(", ") }
                ),
            });
        }
    }
    out
}

/// Where an image comes from, as far as reaching it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    DockerHub,
    /// A private ECR registry (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`): VPC endpoints reach it.
    PrivateEcr,
    /// Any other registry on the internet (quay.io, ghcr.io, public.ecr.aws…).
    Internet,
}

/// An image reference split as Docker does: registry host (when the first part has a `.` or
/// `:`, or is `localhost`), repository, and the tag or digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    pub registry: Option<&'a str>,
    pub repository: &'a str,
    /// `:TAG` or `@DIGEST`, as written (empty when neither).
    pub reference: &'a str,
}

impl<'a> Image<'a> {
    pub fn parse(image: &'a str) -> Image<'a> {
        let (registry, rest) = match image.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first), rest)
            }
            _ => (None, image),
        };
        let at = rest.find('@').or_else(|| {
            // A tag's colon comes after the last slash.
            let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
            rest[after_slash..].find(':').map(|i| i + after_slash)
        });
        let (repository, reference) = match at {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        Image {
            registry,
            repository,
            reference,
        }
    }

    pub fn registry_kind(&self) -> RegistryKind {
        match self.registry {
            None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => {
                RegistryKind::DockerHub
            }
            Some(host) if host.contains(".dkr.ecr.") && host.ends_with(".amazonaws.com") => {
                RegistryKind::PrivateEcr
            }
            Some(_) => RegistryKind::Internet,
        }
    }

    /// The same image on a registry without Docker Hub's anonymous pull limit, where one is
    /// known: the Prometheus project publishes every image of `prom/` to
    /// `quay.io/prometheus/` under the same tags.
    pub fn unlimited_mirror(&self) -> Option<String> {
        if self.registry_kind() != RegistryKind::DockerHub {
            return None;
        }
        let repository = self
            .repository
            .strip_prefix("library/")
            .unwrap_or(self.repository);
        repository
            .strip_prefix("prom/")
            .map(|name| format!("quay.io/prometheus/{name}{}", self.reference))
    }
}

/// Whether the subnet's table sends the internet's default route to a NAT gateway.
fn nat_of(s: &SubnetRoutes) -> Option<&str> {
    s.routes.iter().find_map(|r| match &r.target {
        RouteTarget::NatGateway(id) if r.active && r.destination == "0.0.0.0/0" => {
            Some(id.as_str())
        }
        _ => None,
    })
}

pub fn start_reachability(facts: &NetworkFacts, inputs: &LiveInputs) -> Vec<LiveFinding> {
    let usable: BTreeSet<&str> = facts
        .vpc_endpoints
        .iter()
        .filter(|e| e.endpoint_type != "Interface" || e.private_dns_enabled)
        .map(|e| e.service_name.as_str())
        .collect();
    let prefix = format!("com.amazonaws.{}.", facts.region);
    let mut missing: Vec<String> = Vec::new();
    for service in &inputs.start_services {
        let lacking: Vec<String> = service
            .endpoints()
            .iter()
            .map(|e| format!("{prefix}{e}"))
            .filter(|name| !usable.contains(name.as_str()))
            .collect();
        if !lacking.is_empty() {
            missing.push(format!(
                "{} needs {}",
                service.label(),
                lacking.join(" and ")
            ));
        }
    }
    let mut internet_images: Vec<String> = Vec::new();
    for image in &inputs.images {
        let parsed = Image::parse(image);
        match parsed.registry_kind() {
            RegistryKind::PrivateEcr => {}
            RegistryKind::Internet => internet_images.push(format!(
                "{image} is pulled from {} on the internet",
                parsed.registry.unwrap_or_default()
            )),
            RegistryKind::DockerHub => {
                let mut text = format!(
                    "{image} is pulled from Docker Hub, which rate-limits anonymous pulls per address (every task behind one NAT gateway shares its address)"
                );
                if let Some(mirror) = parsed.unlimited_mirror() {
                    text.push_str(&format!(
                        "; {mirror} serves the same image without that limit"
                    ));
                }
                internet_images.push(text);
            }
        }
    }
    if missing.is_empty() && internet_images.is_empty() {
        return vec![];
    }
    let mut out = Vec::new();
    for s in facts.subnets.iter().filter(|s| nat_of(s).is_none()) {
        let mut needs = missing.clone();
        needs.extend(internet_images.iter().cloned());
        out.push(LiveFinding {
            rule: START_REACHABILITY,
            subject: s.subnet_id.clone(),
            message: format!(
                "a task in subnet {} cannot start: {} has no default route to a NAT gateway, and without one {}; without these the secrets, logs or image pulls fail and the rollout never starts. Route 0.0.0.0/0 to a NAT gateway, or add the VPC endpoints (and pull the images through ECR)",
                s.subnet_id,
                table_of(s),
                needs.join("; ")
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(protocol: &str, port: i32) -> ListenerFacts {
        ListenerFacts {
            arn: format!("arn:listener/{port}"),
            protocol: protocol.into(),
            port,
            ..Default::default()
        }
    }

    fn private_subnet(id: &str, routes: Vec<Route>) -> SubnetRoutes {
        SubnetRoutes {
            subnet_id: id.into(),
            route_table_id: Some(format!("rtb-{id}")),
            via_main: false,
            routes,
        }
    }

    fn route(destination: &str, target: RouteTarget) -> Route {
        Route {
            destination: destination.into(),
            target,
            active: true,
        }
    }

    fn rules(findings: &[LiveFinding]) -> Vec<(&'static str, &str)> {
        findings
            .iter()
            .map(|f| (f.rule, f.subject.as_str()))
            .collect()
    }

    #[test]
    fn tls_policy_goes_by_the_reported_protocols_then_the_documented_table() {
        let mut old = listener("HTTPS", 443);
        old.ssl_policy = Some("ELBSecurityPolicy-TLS-1-1-2017-01".into());
        old.ssl_protocols = Some(vec!["TLSv1.2".into(), "TLSv1.1".into()]);
        let mut modern = listener("HTTPS", 8443);
        modern.ssl_policy = Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into());
        modern.ssl_protocols = Some(vec!["TLSv1.3".into(), "TLSv1.2".into()]);
        let mut unlisted_modern = listener("HTTPS", 9443);
        unlisted_modern.ssl_policy = Some("ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04".into());
        let mut unlisted_unknown = listener("HTTPS", 10443);
        unlisted_unknown.ssl_policy = Some("MyOwnPolicy".into());
        let facts = NetworkFacts {
            listeners: vec![
                old,
                modern,
                unlisted_modern,
                unlisted_unknown,
                listener("HTTP", 3000),
            ],
            ..Default::default()
        };
        let found = tls_policy(&facts);
        assert_eq!(
            rules(&found),
            [
                (TLS_POLICY, "arn:listener/443"),
                (TLS_POLICY, "arn:listener/10443")
            ]
        );
        assert!(
            found[0].message.contains("offers TLSv1.2, TLSv1.1"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn port_80_must_redirect_to_https() {
        let mut forward = listener("HTTP", 80);
        forward.default_actions = vec![ListenerAction::Forward];
        let mut redirect = forward.clone();
        redirect.default_actions = vec![ListenerAction::Redirect {
            protocol: "HTTPS".into(),
        }];
        let mut same_protocol = forward.clone();
        same_protocol.default_actions = vec![ListenerAction::Redirect {
            protocol: "#{protocol}".into(),
        }];
        let facts = |l: ListenerFacts| NetworkFacts {
            listeners: vec![l],
            ..Default::default()
        };
        assert_eq!(
            rules(&http_redirect(&facts(forward))),
            [(HTTP_REDIRECT, "arn:listener/80")]
        );
        assert!(http_redirect(&facts(redirect)).is_empty());
        assert_eq!(http_redirect(&facts(same_protocol)).len(), 1);
        // No port 80 at all: nothing to redirect.
        assert!(http_redirect(&facts(listener("HTTP", 3000))).is_empty());
    }

    #[test]
    fn invalid_headers_must_be_dropped() {
        let mut facts = NetworkFacts {
            load_balancer_arn: "arn:lb".into(),
            ..Default::default()
        };
        assert_eq!(
            rules(&drop_invalid_headers(&facts)),
            [(DROP_INVALID_HEADERS, "arn:lb")]
        );
        facts
            .load_balancer_attributes
            .insert(DROP_INVALID_HEADERS_ATTRIBUTE.into(), "false".into());
        assert!(drop_invalid_headers(&facts)[0].message.contains("is false"));
        facts
            .load_balancer_attributes
            .insert(DROP_INVALID_HEADERS_ATTRIBUTE.into(), "true".into());
        assert!(drop_invalid_headers(&facts).is_empty());
    }

    #[test]
    fn a_route_to_an_internet_gateway_is_found_in_the_subnets_own_or_the_main_table() {
        let igw = || route("0.0.0.0/0", RouteTarget::InternetGateway("igw-1".into()));
        let own = private_subnet(
            "subnet-a",
            vec![route("10.0.0.0/16", RouteTarget::Local), igw()],
        );
        let mut via_main = private_subnet("subnet-b", vec![igw()]);
        via_main.via_main = true;
        let mut blackhole = private_subnet("subnet-c", vec![igw()]);
        blackhole.routes[0].active = false;
        let nat = private_subnet(
            "subnet-d",
            vec![route("0.0.0.0/0", RouteTarget::NatGateway("nat-1".into()))],
        );
        let facts = NetworkFacts {
            subnets: vec![own, via_main, blackhole, nat],
            ..Default::default()
        };
        let found = no_internet_route(&facts);
        assert_eq!(
            rules(&found),
            [
                (NO_INTERNET_ROUTE, "subnet-a"),
                (NO_INTERNET_ROUTE, "subnet-b")
            ]
        );
        assert!(
            found[1].message.contains("main route table"),
            "{}",
            found[1].message
        );
    }

    #[test]
    fn the_certificate_must_cover_grafanas_host_with_one_label_wildcards() {
        let mut https = listener("HTTPS", 443);
        https.certificate_names = ["*.example.com".to_string()].into();
        let facts = NetworkFacts {
            listeners: vec![https],
            ..Default::default()
        };
        let inputs = |host: &str| LiveInputs {
            grafana_hosts: vec![host.into()],
            ..Default::default()
        };
        assert!(certificate_covers_host(&facts, &inputs("grafana.example.com")).is_empty());
        let deeper = certificate_covers_host(&facts, &inputs("grafana.ops.example.com"));
        assert_eq!(
            rules(&deeper),
            [(CERTIFICATE_COVERS_HOST, "arn:listener/443")]
        );
        assert!(deeper[0].message.contains("*.example.com"));
        assert_eq!(
            certificate_covers_host(&facts, &inputs("example.com")).len(),
            1
        );
    }

    #[test]
    fn images_are_split_as_docker_does() {
        let i = Image::parse("prom/prometheus:v2.53.4");
        assert_eq!(
            (i.registry, i.repository, i.reference),
            (None, "prom/prometheus", ":v2.53.4")
        );
        assert_eq!(i.registry_kind(), RegistryKind::DockerHub);
        assert_eq!(
            i.unlimited_mirror().as_deref(),
            Some("quay.io/prometheus/prometheus:v2.53.4")
        );
        let ecr = Image::parse("123456789012.dkr.ecr.us-west-2.amazonaws.com/app@sha256:ab");
        assert_eq!(ecr.registry_kind(), RegistryKind::PrivateEcr);
        assert_eq!(ecr.reference, "@sha256:ab");
        let port = Image::parse("localhost:5000/team/app");
        assert_eq!(
            (port.registry, port.repository, port.reference),
            (Some("localhost:5000"), "team/app", "")
        );
        assert_eq!(
            Image::parse("docker.io/grafana/grafana:12.2.0").unlimited_mirror(),
            None
        );
        assert_eq!(
            Image::parse("quay.io/prometheus/prometheus").registry_kind(),
            RegistryKind::Internet
        );
    }

    fn reachability_facts(routes: Vec<Route>, endpoints: &[&str]) -> NetworkFacts {
        NetworkFacts {
            region: "us-west-2".into(),
            subnets: vec![private_subnet("subnet-a", routes)],
            vpc_endpoints: endpoints
                .iter()
                .map(|s| VpcEndpointFacts {
                    id: format!("vpce-{s}"),
                    service_name: format!("com.amazonaws.us-west-2.{s}"),
                    endpoint_type: if *s == "s3" { "Gateway" } else { "Interface" }.into(),
                    private_dns_enabled: *s != "s3",
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tasks_reach_their_start_services_through_nat_or_endpoints() {
        let ecr_only = LiveInputs {
            images: vec!["123456789012.dkr.ecr.us-west-2.amazonaws.com/app:1".into()],
            start_services: [
                StartService::Ecr,
                StartService::Logs,
                StartService::SecretsManager,
                StartService::Efs,
            ]
            .into(),
            ..Default::default()
        };
        let local = || route("10.0.0.0/16", RouteTarget::Local);
        // Neither NAT nor endpoints: every service is named.
        let none = start_reachability(&reachability_facts(vec![local()], &[]), &ecr_only);
        assert_eq!(rules(&none), [(START_REACHABILITY, "subnet-a")]);
        for needed in ["secretsmanager", "logs", "ecr.api", "ecr.dkr", "s3"] {
            assert!(
                none[0]
                    .message
                    .contains(&format!("com.amazonaws.us-west-2.{needed}")),
                "{needed}: {}",
                none[0].message
            );
        }
        // Every endpoint: nothing to say.
        let all = ["secretsmanager", "logs", "ecr.api", "ecr.dkr", "s3"];
        assert!(start_reachability(&reachability_facts(vec![local()], &all), &ecr_only).is_empty());
        // One missing.
        let some = start_reachability(&reachability_facts(vec![local()], &all[1..]), &ecr_only);
        assert!(some[0].message.contains("secretsmanager") && !some[0].message.contains(".logs"));
        // An interface endpoint without private DNS does not answer at the service's name.
        let mut no_dns = reachability_facts(vec![local()], &all);
        no_dns.vpc_endpoints[1].private_dns_enabled = false;
        assert_eq!(start_reachability(&no_dns, &ecr_only).len(), 1);
        // A NAT gateway: reachable.
        let nat = vec![
            local(),
            route("0.0.0.0/0", RouteTarget::NatGateway("nat-1".into())),
        ];
        assert!(start_reachability(&reachability_facts(nat.clone(), &[]), &ecr_only).is_empty());
        // A blackholed NAT route does not count.
        let mut dead = nat;
        dead[1].active = false;
        assert_eq!(
            start_reachability(&reachability_facts(dead, &[]), &ecr_only).len(),
            1
        );
    }

    #[test]
    fn docker_hub_images_need_nat_even_with_every_endpoint() {
        let inputs = LiveInputs {
            images: vec![
                "prom/prometheus:v2.53.4".into(),
                "grafana/grafana:12.2.0".into(),
            ],
            start_services: [StartService::Logs].into(),
            ..Default::default()
        };
        let found = start_reachability(&reachability_facts(vec![], &["logs"]), &inputs);
        assert_eq!(rules(&found), [(START_REACHABILITY, "subnet-a")]);
        let m = &found[0].message;
        assert!(m.contains("rate-limits anonymous pulls"), "{m}");
        assert!(
            m.contains("quay.io/prometheus/prometheus:v2.53.4 serves the same image"),
            "{m}"
        );
        assert!(!m.contains("quay.io/grafana"), "{m}");
        let nat = vec![route("0.0.0.0/0", RouteTarget::NatGateway("nat-1".into()))];
        assert!(start_reachability(&reachability_facts(nat, &[]), &inputs).is_empty());
    }

    #[test]
    fn check_runs_every_rule_in_order() {
        let mut http = listener("HTTP", 80);
        http.default_actions = vec![ListenerAction::Forward];
        let facts = NetworkFacts {
            region: "us-west-2".into(),
            load_balancer_arn: "arn:lb".into(),
            listeners: vec![listener("HTTPS", 443), http],
            subnets: vec![private_subnet(
                "subnet-a",
                vec![route(
                    "0.0.0.0/0",
                    RouteTarget::InternetGateway("igw-1".into()),
                )],
            )],
            ..Default::default()
        };
        let inputs = LiveInputs {
            grafana_hosts: vec!["grafana.example.com".into()],
            images: vec!["grafana/grafana:12.2.0".into()],
            ..Default::default()
        };
        let ids: Vec<&str> = check(&facts, &inputs).iter().map(|f| f.rule).collect();
        assert_eq!(ids, ["DL070", "DL071", "DL072", "DL073", "DL074", "DL075"]);
        assert_eq!(RULES.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    }
}
