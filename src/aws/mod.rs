//! The only place that talks to AWS: one adapter per service, each converting SDK types to the
//! project's normalized model types and SDK errors to [`AwsError`].
//!
//! Adapters take and return raw AWS ids (group ids, ARNs, names). Turning ids into stack
//! addresses and back is the planner's and the executor's business, not theirs.

pub mod amp;
pub mod budget;
pub mod certificates;
pub mod cloudmap;
pub mod ec2;
pub mod ecs;
pub mod ecs_rollouts;
pub mod efs;
pub mod elbv2;
pub mod elbv2_targets;
pub mod iam;
pub mod logs;
pub mod network_audit;
pub mod provider;
pub mod s3;
pub mod secrets;
pub mod setup;
pub mod state_table;
pub mod tagging;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use std::fmt;
use std::time::Duration;

/// SDK clients for every service the stack touches, built from one configuration.
#[derive(Clone)]
pub struct Aws {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub efs: aws_sdk_efs::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub servicediscovery: aws_sdk_servicediscovery::Client,
    pub acm: aws_sdk_acm::Client,
    /// The table of locks and environment records ([`state_table`]).
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub amp: aws_sdk_amp::Client,
}

/// How many attempts a throttled or 5xx call gets (exponential backoff with jitter; access
/// denied and other client errors are not retried).
pub const MAX_ATTEMPTS: u32 = 6;

/// The SDK's standard retry mode: exponential backoff with jitter, and a retry quota per
/// service. What adapts to throttling is the per-service in-flight budget
/// ([`budget::limited`]), which halves on a throttled answer.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Builds one service's client from the shared configuration, sending through `http`.
macro_rules! client {
    ($krate:ident, $config:expr, $http:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($config)
                .http_client($http)
                .build(),
        )
    };
}

impl Aws {
    /// Loads the standard credential chain (environment, profiles, SSO…); `AWS_ENDPOINT_URL`
    /// is honoured by the SDK itself. Region: the one given, else the chain's. A missing region
    /// or credentials that cannot be loaded are reported here, before any request, with what
    /// to do about them ([`setup`]). Requests in flight per service:
    /// [`budget::Concurrency::from_env`].
    pub async fn connect(profile: Option<&str>, region: Option<&str>) -> Result<Aws, AwsError> {
        let concurrency = budget::Concurrency::from_env().map_err(|m| AwsError {
            service: "config",
            operation: "LoadConcurrency",
            address: None,
            code: Some("BadConcurrency".into()),
            message: m,
            request_id: None,
        })?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(retry_config());
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        let config = loader.load().await;
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| setup::no_region(profile))?;
        // Resolved once here so a missing or expired credential is told before the first call
        // (the clients resolve them again through their shared cache: from the environment
        // or a profile file that costs nothing; from SSO or instance metadata, one request).
        use aws_sdk_sts::config::ProvideCredentials;
        let provider = config
            .credentials_provider()
            .expect("aws-config's default chain always sets a credentials provider");
        provider
            .provide_credentials()
            .await
            .map_err(|e| setup::credentials_problem(&e, profile))?;
        Ok(Aws::with_concurrency(&config, region, &concurrency))
    }

    /// Clients with the default per-service budgets.
    pub fn from_config(config: &aws_config::SdkConfig, region: String) -> Aws {
        Aws::with_concurrency(config, region, &budget::Concurrency::default())
    }

    /// Clients that keep at most `concurrency.of(service)` requests in flight per service.
    pub fn with_concurrency(
        config: &aws_config::SdkConfig,
        region: String,
        concurrency: &budget::Concurrency,
    ) -> Aws {
        let base = budget::default_https_client();
        let http = |service: &str| budget::limited(base.clone(), concurrency.of(service));
        Aws {
            region,
            ec2: client!(aws_sdk_ec2, config, http("ec2")),
            ecs: client!(aws_sdk_ecs, config, http("ecs")),
            efs: client!(aws_sdk_efs, config, http("elasticfilesystem")),
            elbv2: client!(
                aws_sdk_elasticloadbalancingv2,
                config,
                http("elasticloadbalancing")
            ),
            iam: client!(aws_sdk_iam, config, http("iam")),
            logs: client!(aws_sdk_cloudwatchlogs, config, http("logs")),
            secretsmanager: client!(aws_sdk_secretsmanager, config, http("secretsmanager")),
            ssm: client!(aws_sdk_ssm, config, http("ssm")),
            sts: client!(aws_sdk_sts, config, http("sts")),
            tagging: client!(aws_sdk_resourcegroupstagging, config, http("tagging")),
            servicediscovery: client!(aws_sdk_servicediscovery, config, http("servicediscovery")),
            acm: client!(aws_sdk_acm, config, http("acm")),
            dynamodb: client!(aws_sdk_dynamodb, config, http("dynamodb")),
            amp: client!(aws_sdk_amp, config, http("aps")),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .http_client(http("s3"))
                    // A local endpoint (moto) has no per-bucket host names.
                    .force_path_style(config.endpoint_url().is_some() || custom_s3_endpoint())
                    .build(),
            ),
        }
    }

    /// The account the credentials belong to (shown in the plan header, used in ARNs).
    pub async fn account_id(&self) -> Result<String, AwsError> {
        self.caller_identity()
            .await?
            .account
            .ok_or_else(|| AwsError::other("sts", "GetCallerIdentity", "no account in answer"))
    }

    /// Who the credentials are (the lock and the environment records name it).
    pub async fn caller_arn(&self) -> Result<String, AwsError> {
        self.caller_identity()
            .await?
            .arn
            .ok_or_else(|| AwsError::other("sts", "GetCallerIdentity", "no ARN in answer"))
    }

    async fn caller_identity(
        &self,
    ) -> Result<aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput, AwsError>
    {
        self.sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sts", "GetCallerIdentity", e))
    }
}

/// True when S3 is pointed at an endpoint of the operator's choosing by `AWS_ENDPOINT_URL` or
/// `AWS_ENDPOINT_URL_S3` (or the configuration's endpoint), where bucket names are not host
/// names.
fn custom_s3_endpoint() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// An AWS call that failed, with everything an operator needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// The stack address the call was for, when there is one.
    pub address: Option<String>,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
}

impl AwsError {
    /// Converts any SDK error, keeping service, operation, code, message and request id.
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        let (code, message, request_id) = match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                (
                    e.code().map(str::to_string),
                    e.message()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.to_string()),
                    e.meta().extra("aws_request_id").map(str::to_string),
                )
            }
            other => {
                // Credentials that could not be loaded (or ran out mid-run): nothing was sent.
                if let Some(c) =
                    std::error::Error::source(other).and_then(setup::credentials_error_in)
                {
                    tracing::debug!(service, operation, "AWS call not sent: no credentials");
                    return setup::credentials_problem(c, None);
                }
                (None, display_chain(other), None)
            }
        };
        tracing::debug!(service, operation, ?code, ?request_id, "AWS call failed");
        AwsError {
            service,
            operation,
            address: None,
            code,
            message,
            request_id,
        }
    }

    /// Something the stack looks up (or refers to) does not exist: code `LookupFailed`, which
    /// callers tell apart from a failed call.
    pub fn lookup_failed(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            code: Some("LookupFailed".into()),
            ..AwsError::other(service, operation, message)
        }
    }

    pub fn other(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            service,
            operation,
            address: None,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    /// Attaches the stack address the call was made for.
    pub fn at(mut self, address: impl ToString) -> Self {
        self.address = Some(address.to_string());
        self
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// Not-found answers of every service deploy calls, which observation turns into "absent"
    /// and a delete into "already gone" (each service has its own codes; none of them means
    /// anything else in another service).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                // IAM; Logs and Secrets Manager; EC2; ECS
                "NoSuchEntity"
                    | "ResourceNotFoundException"
                    | "InvalidGroup.NotFound"
                    | "ClusterNotFoundException"
                    | "ServiceNotFoundException"
                    // ELBv2
                    | "LoadBalancerNotFound"
                    | "TargetGroupNotFound"
                    | "ListenerNotFound"
                    | "RuleNotFound"
                    // Cloud Map
                    | "NamespaceNotFound"
                    | "ServiceNotFound"
                    // EFS
                    | "FileSystemNotFound"
                    | "MountTargetNotFound"
                    | "AccessPointNotFound"
            )
        )
    }
}

/// A read's answer with "not found" turned into `None`. (The error passes through as the SDK
/// call's answer already holds it, like every adapter function's: no boxing here.)
#[allow(clippy::result_large_err)]
pub fn found<T>(answer: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match answer {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete's answer with "already gone" turned into success.
#[allow(clippy::result_large_err)]
pub fn gone_is_ok<T>(answer: Result<T, AwsError>) -> Result<(), AwsError> {
    found(answer).map(|_| ())
}

fn display_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.service == setup::LOCAL {
            // No AWS service was asked: the message says what to fix here.
            return f.write_str(&self.message);
        }
        write!(f, "{} {}", self.service, self.operation)?;
        if let Some(a) = &self.address {
            write!(f, " for {a}")?;
        }
        write!(f, " failed")?;
        if let Some(c) = &self.code {
            write!(f, " ({c})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(r) = &self.request_id {
            write!(f, " [request id {r}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// Shorthand used by every adapter: `.map_err(err("ec2", "CreateSecurityGroup"))`.
pub fn err<E, R>(
    service: &'static str,
    operation: &'static str,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    move |e| AwsError::from_sdk(service, operation, e)
}

/// Turns a tag map into the pairs each service wants, through a constructor closure.
pub fn tag_list<T>(tags: &crate::model::Tags, make: impl Fn(&str, &str) -> T) -> Vec<T> {
    tags.iter().map(|(k, v)| make(k, v)).collect()
}

/// User tags to set and user tag keys to remove to go from `before` to `after`. Managed
/// (`deploy:`) tags are never touched here: the provider sets those itself.
pub(crate) fn user_tag_changes(
    before: &crate::model::Tags,
    after: &crate::model::Tags,
) -> (crate::model::Tags, Vec<String>) {
    use crate::model::is_managed_tag;
    let set = after
        .iter()
        .filter(|(k, v)| !is_managed_tag(k) && before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = before
        .keys()
        .filter(|k| !is_managed_tag(k) && !after.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tags;

    #[test]
    fn tag_changes_leave_managed_tags_alone() {
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let before = tags(&[("a", "1"), ("b", "1"), ("deploy:stack", "s")]);
        let after = tags(&[("a", "2"), ("c", "3")]);
        let (set, remove) = user_tag_changes(&before, &after);
        assert_eq!(set.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(remove, ["b"]);
    }

    #[test]
    fn each_services_not_found_reads_as_absent_and_nothing_else_does() {
        let error = |code: &str| {
            let mut e = AwsError::other("svc", "Op", "m");
            e.code = Some(code.into());
            e
        };
        for code in [
            "TargetGroupNotFound",
            "RuleNotFound",
            "ListenerNotFound",
            "NamespaceNotFound",
            "ServiceNotFound",
            "FileSystemNotFound",
            "MountTargetNotFound",
            "AccessPointNotFound",
            "ResourceNotFoundException",
        ] {
            assert_eq!(found::<()>(Err(error(code))).unwrap(), None, "{code}");
            assert!(gone_is_ok::<()>(Err(error(code))).is_ok(), "{code}");
        }
        for code in ["ResourceInUse", "AccessDenied", "DependencyViolation"] {
            assert!(found::<()>(Err(error(code))).is_err(), "{code}");
            assert!(gone_is_ok::<()>(Err(error(code))).is_err(), "{code}");
        }
        assert_eq!(found(Ok::<_, AwsError>(7)).unwrap(), Some(7));
    }
}
