//! The least-privilege IAM policies a stack needs, made from the kinds' descriptors: which
//! actions each operation takes, what they are granted on (the stack's ARNs, or the resource
//! type narrowed by the stack's ownership tags), and what AWS checks beside the called action.
//! Pure: the stack's desired state and a few names in, policy documents out; no AWS call.

use crate::model::kinds::{self, IamScope, KindInfo, On, Operation, ScopeBy};
use crate::model::{aws_name_of, Attrs, Desired, Kind, TAG_ENV, TAG_STACK};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Who the policy is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// What `plan`, `render` and `show` read (a CI job that plans every pull request).
    Ci,
    /// Everything `apply`, `destroy` and `import` do, on top of what CI reads.
    Operator,
    /// What `destroy` needs to remove any stack's resources in the account and region (by
    /// their ownership tags, across stacks): reads and deletes.
    Reaper,
}

/// The ACM read of the certificates on the HTTPS listener.
pub const LISTENER_CERTIFICATE_NAMES: &str = "acm:DescribeCertificate";

/// What the generator is given.
pub struct Input<'a> {
    pub stack: &'a str,
    pub environment: &'a str,
    /// `*` when unknown (the policy then holds for any account).
    pub account: &'a str,
    pub region: &'a str,
    /// The looked-up load balancer's name (listener rules live on its listeners).
    pub load_balancer: &'a str,
    /// The stack's resources, as `build_desired` made them.
    pub desired: &'a [Desired],
    /// Names (or ARNs) of the Secrets Manager secrets the containers reference from outside
    /// the stack, and whether any SSM parameter is referenced.
    pub external_secrets: &'a [String],
    pub external_parameters: bool,
}

/// A generated policy and why each `*` is there.
#[derive(Debug, Serialize)]
pub struct Generated {
    pub role: Role,
    pub document: Value,
    /// Actions granted on `*`, with the reason.
    pub unscoped: Vec<Unscoped>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unscoped {
    pub action: String,
    pub why: String,
}

const NO_RESOURCE: &str =
    "IAM defines no resource type this request names for the action, so it takes only \"*\"";
const NO_RESOURCE_TAGGED: &str = "IAM defines no resource type for the action (the resource has no ARN before it exists); narrowed by the ownership tags the request sends";

/// What apply, destroy, import and force-unlock do to deploy's own table of locks and
/// environment records (src/aws/state_table.rs), one per account and region: make it on
/// first use (tagged in the same call), read and conditionally write its items, scan it for
/// a lock id. `sts:GetCallerIdentity`, which names a lock's holder, needs no permission.
pub const STATE_TABLE_ACTIONS: &[&str] = &[
    "dynamodb:CreateTable",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "dynamodb:TagResource",
    "dynamodb:UpdateItem",
];

/// One statement before grouping: (resources, condition) → actions.
type Grants = BTreeMap<(Vec<String>, String), BTreeSet<String>>;

/// The policy for `role`.
pub fn generate(role: Role, input: &Input) -> Generated {
    let mut grants: Grants = BTreeMap::new();
    let mut unscoped = BTreeSet::new();
    let mut add = |actions: &[&str], resources: Vec<String>, condition: Value| {
        let key = (resources, serde_json::to_string(&condition).expect("json"));
        grants
            .entry(key)
            .or_default()
            .extend(actions.iter().map(|a| a.to_string()));
    };
    let any = || vec!["*".to_string()];

    // Every plan's own reads: lookups and the searches for what carries the stack's tags.
    add(kinds::STACK_READS, any(), Value::Null);
    for a in kinds::STACK_READS {
        unscoped.insert(Unscoped {
            action: a.to_string(),
            why: NO_RESOURCE.into(),
        });
    }
    // The live security checks' reads of the network (plans run the reachability one).
    if role != Role::Reaper {
        add(kinds::NETWORK_AUDIT_READS, any(), Value::Null);
        for a in kinds::NETWORK_AUDIT_READS {
            unscoped.insert(Unscoped {
                action: a.to_string(),
                why: NO_RESOURCE.into(),
            });
        }
    }
    if !input.external_secrets.is_empty() {
        let arns = input
            .external_secrets
            .iter()
            .map(|n| secret_arn(input, n))
            .collect();
        add(&["secretsmanager:DescribeSecret"], arns, Value::Null);
    }
    if input.external_parameters {
        add(&["ssm:DescribeParameters"], any(), Value::Null);
        unscoped.insert(Unscoped {
            action: "ssm:DescribeParameters".into(),
            why: NO_RESOURCE.into(),
        });
    }

    if role != Role::Ci {
        // The lock and the records: every apply, destroy and reap takes and writes them.
        let table = format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            input.region,
            input.account,
            crate::lock::STATE_TABLE
        );
        add(STATE_TABLE_ACTIONS, vec![table], Value::Null);
    }

    let used: BTreeSet<Kind> = input.desired.iter().map(|d| d.address.kind).collect();
    // The names on the HTTPS listener's certificates, which another environment's hosts are
    // checked against (src/aws/certificates.rs): ACM, not a kind of the stack.
    if used.contains(&Kind::ListenerRule) && role != Role::Reaper {
        let arn = format!(
            "arn:aws:acm:{}:{}:certificate/*",
            input.region, input.account
        );
        add(&[LISTENER_CERTIFICATE_NAMES], vec![arn], Value::Null);
    }
    let ops: &[Operation] = match role {
        Role::Ci => &[Operation::Read],
        Role::Operator => &Operation::ALL,
        Role::Reaper => &[Operation::Read, Operation::Delete],
    };
    let kinds_in_scope: Vec<Kind> = match role {
        Role::Reaper => Kind::ALL.to_vec(),
        _ => Kind::ALL.into_iter().filter(|k| used.contains(k)).collect(),
    };
    // Kinds the reads of used kinds find ids through, where the stack owns none (an
    // environment that registers in another's Cloud Map namespace): their reads only.
    let read_through: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| !kinds_in_scope.contains(k))
        .filter(|k| {
            used.iter()
                .any(|u| u.info().reads_need.contains(&kinds::ReadNeed::Resource(*k)))
        })
        .collect();
    let scoped = kinds_in_scope.into_iter().map(|k| (k, ops)).chain(
        read_through
            .into_iter()
            .map(|k| (k, &[Operation::Read][..])),
    );
    for (kind, ops) in scoped {
        let info = kind.info();
        for &op in ops {
            let mut actions: Vec<&str> = info.iam.called(op).to_vec();
            if role == Role::Operator {
                actions.extend(
                    info.iam
                        .implied
                        .iter()
                        .filter(|i| i.op == op)
                        .map(|i| i.action),
                );
            }
            for action in actions {
                for on in targets(&info.iam_scope, action) {
                    for (resources, condition) in grant(role, input, info, op, on, action) {
                        if resources == any() {
                            unscoped.insert(Unscoped {
                                action: action.to_string(),
                                why: match on {
                                    On::AnyTaggedByRequest => NO_RESOURCE_TAGGED,
                                    _ => NO_RESOURCE,
                                }
                                .into(),
                            });
                        }
                        if !resources.is_empty() {
                            add(&[action], resources, condition);
                        }
                    }
                }
            }
        }
    }
    Generated {
        role,
        document: document(grants),
        unscoped: unscoped.into_iter().collect(),
    }
}

/// What `action` of a kind is granted on: its `on` entries, else the kind's own resources.
fn targets(scope: &IamScope, action: &str) -> Vec<On> {
    let listed: Vec<On> = scope
        .on
        .iter()
        .filter(|(a, _)| *a == action)
        .map(|(_, on)| *on)
        .collect();
    if listed.is_empty() {
        vec![On::Own]
    } else {
        listed
    }
}

/// The resources and condition of one (action, target).
fn grant(
    role: Role,
    input: &Input,
    info: &KindInfo,
    op: Operation,
    on: On,
    action: &str,
) -> Vec<(Vec<String>, Value)> {
    // A call that creates the resource with its tags is narrowed by the request's tags.
    let creating = op == Operation::Create && info.iam_scope.creates.contains(&action);
    let type_arn = |t: &str| fill(t, input, "*", "*", "*");
    let tagged = |by_request: bool| tag_condition(role, input, by_request);
    match on {
        On::Own => own(role, input, info, op, creating),
        On::Any => vec![(vec!["*".into()], Value::Null)],
        On::AnyTaggedByRequest => vec![(vec!["*".into()], tagged(true))],
        On::Vpc => vec![(
            vec![type_arn("arn:aws:ec2:{region}:{account}:vpc/*")],
            Value::Null,
        )],
        On::Listener => vec![(
            vec![type_arn(
                "arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{alb}/*/*",
            )],
            if role == Role::Reaper {
                Value::Null
            } else {
                tagged(true)
            },
        )],
        On::Kind(other) => {
            let condition = if creating { tagged(true) } else { Value::Null };
            own(role, input, other.info(), Operation::Read, false)
                .into_iter()
                .map(|(resources, _)| (resources, condition.clone()))
                .take(1)
                .collect()
        }
        On::Arns(arns) => vec![(arns.iter().map(|a| type_arn(a)).collect(), Value::Null)],
        On::Within(templates) => {
            let arns: BTreeSet<String> = if role == Role::Reaper {
                templates.iter().map(|t| type_arn(t)).collect()
            } else {
                input
                    .desired
                    .iter()
                    .filter(|d| d.address.kind == info.kind)
                    .flat_map(|d| {
                        templates
                            .iter()
                            .map(|t| fill(t, input, d.attrs.aws_name(), "*", "*"))
                    })
                    .collect()
            };
            vec![(arns.into_iter().collect(), Value::Null)]
        }
        On::PassRoleToEcsTasks => own(role, input, Kind::IamRole.info(), Operation::Read, false)
            .into_iter()
            .take(1)
            .map(|(roles, _)| {
                (
                    roles,
                    json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
                )
            })
            .collect(),
        On::ServiceLinkedRole(service) => vec![(
            vec![format!(
                "arn:aws:iam::{}:role/aws-service-role/{service}/*",
                input.account
            )],
            json!({"StringEquals": {"iam:AWSServiceName": service}}),
        )],
    }
}

/// A kind's own resources. Names known: their ARNs (creates and reads of what does not exist
/// yet need them), and for every other operation also the type's ARNs narrowed by the stack's
/// tags, so a resource removed from the stack file can still be read and deleted. Ids
/// generated: the type's ARNs narrowed by the tags (the request's for the creating call).
fn own(
    role: Role,
    input: &Input,
    info: &KindInfo,
    op: Operation,
    creating: bool,
) -> Vec<(Vec<String>, Value)> {
    let scope = &info.iam_scope;
    let any_of_type: Vec<String> = scope
        .arns
        .iter()
        .map(|t| fill(t, input, "*", "/", "*"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if role == Role::Reaper {
        // Any stack's resources: the type's ARNs, and the ownership tag must be there.
        return vec![(any_of_type, tag_condition(role, input, false))];
    }
    match scope.by {
        ScopeBy::Tag => vec![(any_of_type, tag_condition(role, input, creating))],
        ScopeBy::Name => {
            let mut arns = BTreeSet::new();
            for d in input.desired.iter().filter(|d| d.address.kind == info.kind) {
                let (path, cluster) = match &d.attrs {
                    Attrs::IamRole(r) => (r.path.clone(), "*".to_string()),
                    Attrs::EcsService(s) => {
                        ("*".to_string(), aws_name_of(input.desired, &s.cluster))
                    }
                    _ => ("*".to_string(), "*".to_string()),
                };
                for t in scope.arns {
                    arns.insert(fill(t, input, d.attrs.aws_name(), &path, &cluster));
                }
            }
            let mut grants = vec![(arns.into_iter().collect(), Value::Null)];
            if op != Operation::Create {
                grants.push((any_of_type, tag_condition(role, input, false)));
            }
            grants
        }
    }
}

fn fill(template: &str, input: &Input, name: &str, path: &str, cluster: &str) -> String {
    // A name that carries the account (the config bucket's) gets the policy's account: the
    // offline build names it with the lookup's placeholder.
    let name = crate::model::with_account(name, input.account);
    template
        .replace("{region}", input.region)
        .replace("{account}", input.account)
        .replace("{alb}", input.load_balancer)
        .replace("{path}", path)
        .replace("{cluster}", cluster)
        .replace("{name}", &name)
}

fn secret_arn(input: &Input, name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_string()
    } else {
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-??????",
            input.region, input.account
        )
    }
}

/// The ownership tags as a condition: on the resource (`aws:ResourceTag`), or on the create
/// request (`aws:RequestTag`). The reaper's: the resource carries a stack tag at all.
fn tag_condition(role: Role, input: &Input, by_request: bool) -> Value {
    if role == Role::Reaper {
        return json!({"Null": {format!("aws:ResourceTag/{TAG_STACK}"): "false"}});
    }
    let key = if by_request {
        "aws:RequestTag"
    } else {
        "aws:ResourceTag"
    };
    json!({"StringEquals": {
        format!("{key}/{TAG_STACK}"): input.stack,
        format!("{key}/{TAG_ENV}"): input.environment,
    }})
}

/// The statements, actions grouped by what they are granted on, in a stable order.
fn document(grants: Grants) -> Value {
    // Merge statements with the same actions on different resources under one condition.
    let mut by_actions: BTreeMap<(Vec<String>, String), BTreeSet<String>> = BTreeMap::new();
    for ((resources, condition), actions) in grants {
        by_actions
            .entry((actions.into_iter().collect(), condition))
            .or_default()
            .extend(resources);
    }
    let mut statements: Vec<Value> = by_actions
        .into_iter()
        .map(|((actions, condition), resources)| {
            let mut s = Map::new();
            s.insert("Effect".into(), json!("Allow"));
            s.insert("Action".into(), json!(actions));
            let resources: Vec<String> = resources.into_iter().collect();
            s.insert(
                "Resource".into(),
                if resources == ["*"] {
                    json!("*")
                } else {
                    json!(resources)
                },
            );
            let condition: Value = serde_json::from_str(&condition).expect("json");
            if !condition.is_null() {
                s.insert("Condition".into(), condition);
            }
            Value::Object(s)
        })
        .collect();
    statements.sort_by_key(|s| {
        (
            s["Resource"] != json!("*"),
            s["Action"][0].as_str().unwrap_or_default().to_string(),
        )
    });
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Every action of a policy document (for checks against what was called).
pub fn actions(document: &Value) -> BTreeSet<String> {
    document["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(list) => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, LogGroupAttrs, Tags};

    fn log_group(name: &str) -> Desired {
        Desired {
            address: Address::new(Kind::LogGroup, name),
            attrs: Attrs::LogGroup(LogGroupAttrs {
                name: format!("/ecs/{name}"),
                retention_days: Some(7),
                tags: Tags::new(),
            }),
            ignore: Default::default(),
            restart_loses: None,
        }
    }

    fn input(desired: &[Desired]) -> Input<'_> {
        Input {
            stack: "s",
            environment: "e",
            account: "123456789012",
            region: "us-west-2",
            load_balancer: "alb",
            desired,
            external_secrets: &[],
            external_parameters: false,
        }
    }

    #[test]
    fn ci_reads_only_and_names_the_stacks_log_groups() {
        let desired = [log_group("a"), log_group("b")];
        let ci = generate(Role::Ci, &input(&desired));
        let acts = actions(&ci.document);
        assert!(acts.contains("logs:ListTagsForResource"));
        assert!(!acts
            .iter()
            .any(|a| a.contains("Create") || a.contains("Delete")));
        let text = ci.document.to_string();
        assert!(text.contains("arn:aws:logs:us-west-2:123456789012:log-group:/ecs/a:*"));
        assert!(text.contains("arn:aws:logs:us-west-2:123456789012:log-group:/ecs/b"));
        // Kinds the stack does not use are not in it.
        assert!(!acts.iter().any(|a| a.starts_with("ecs:")));
    }

    #[test]
    fn operator_adds_writes_and_tags_at_create() {
        let desired = [log_group("a")];
        let op = generate(Role::Operator, &input(&desired));
        let acts = actions(&op.document);
        for a in [
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:TagResource",
        ] {
            assert!(acts.contains(a), "{a}");
        }
        assert!(op
            .unscoped
            .iter()
            .any(|u| u.action == "logs:DescribeLogGroups"));
    }

    #[test]
    fn reaper_deletes_any_stacks_tagged_resources() {
        let reaper = generate(Role::Reaper, &input(&[]));
        let acts = actions(&reaper.document);
        assert!(acts.contains("ec2:DeleteSecurityGroup"));
        assert!(!acts.contains("ec2:CreateSecurityGroup"));
        assert!(reaper.document.to_string().contains("\"Null\""));
    }

    #[test]
    fn every_scope_entry_names_an_action_of_its_kind() {
        for info in &kinds::KINDS {
            for (action, _) in info.iam_scope.on {
                let known = Operation::ALL
                    .iter()
                    .any(|op| info.iam.called(*op).contains(action))
                    || info.iam.implied.iter().any(|i| i.action == *action);
                assert!(
                    known,
                    "{}: scope names {action}, which it never calls",
                    info.prefix
                );
            }
        }
    }
}
