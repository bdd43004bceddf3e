//! How many requests deploy keeps in flight to each AWS service at once. Reads are started as
//! soon as what they need is known, without a global cap; this budget, one semaphore per
//! service in front of the HTTP connection, is what keeps a large stack from bursting past a
//! service's request rate. Throttling that happens anyway is retried by the SDK's adaptive
//! mode (see [`super::retry_config`]).
//!
//! Defaults follow the request rates AWS documents (cited per service below; where AWS
//! documents none, the figure is a guess and says so). `DEPLOY_AWS_CONCURRENCY` overrides
//! them, e.g. `DEPLOY_AWS_CONCURRENCY=ec2=10,iam=2` (names are SigV4 signing names; `*`
//! sets every service not named).

use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The environment variable that overrides [`DEFAULT_CONCURRENCY`].
pub const CONCURRENCY_ENV: &str = "DEPLOY_AWS_CONCURRENCY";

/// Requests in flight per service (by signing name), and the request rate each keeps under.
/// AWS throttles with a token bucket per account and region: a burst may spend the bucket,
/// then calls get the refill rate. A plan is one burst (the reference stack makes at most 14
/// calls to any one service), so each budget is a fraction of the documented bucket, which
/// also leaves room for other clients of the account. Where AWS documents no figure the
/// budget is a guess, and says so. Sources: the services' "request throttling" and quota
/// pages (EC2 devguide ec2-api-throttling, ECS request-throttling, ELB elb-api-throttling,
/// Secrets Manager reference_limits, CloudWatch Logs API reference).
pub const DEFAULT_CONCURRENCY: [(&str, usize); 13] = [
    // Documented: non-mutating (Describe*) actions, bucket 100, refill 20 a second.
    ("ec2", 20),
    // Documented: cluster read actions (DescribeClusters), bucket 50.
    ("ecs", 10),
    // Documented: ELBv2 non-mutating (Describe*) actions, bucket 40, refill 10 a second.
    ("elasticloadbalancing", 10),
    // Documented: DescribeSecret 40,000 a second (since 2025; 10,000 before).
    ("secretsmanager", 20),
    // Guess: the Logs quotas page was not found; DescribeLogStreams is documented at 5 a
    // second and the other Describe* calls are taken to be as low.
    ("logs", 5),
    // Guess: IAM documents no request rate for its read actions.
    ("iam", 8),
    // Guess: Cloud Map documents a bucket only for DiscoverInstances (2,000).
    ("servicediscovery", 8),
    // Guess: EFS documents no request rate for Describe* actions.
    ("elasticfilesystem", 8),
    // Guess: DescribeParameters (only used for external secrets) has no documented rate.
    ("ssm", 5),
    // Guess: GetResources has no documented rate; it pages, one call at a time anyway.
    ("tagging", 2),
    // One GetCallerIdentity a run.
    ("sts", 2),
    // Guess: DescribeCertificate's documented rate is 10 a second; a plan makes a few.
    ("acm", 4),
    // Any other service (a guess).
    ("*", 8),
];

/// In-flight budgets by signing name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    by_service: BTreeMap<String, usize>,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            by_service: DEFAULT_CONCURRENCY
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
        }
    }
}

impl Concurrency {
    /// The defaults with `spec` (`service=N,…`, as in [`CONCURRENCY_ENV`]) applied; `Err`
    /// names the part that is not `name=N` with N ≥ 1.
    pub fn parse(spec: &str) -> Result<Concurrency, String> {
        let mut c = Concurrency::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = part
                .split_once('=')
                .and_then(|(s, n)| Some((s.trim(), n.trim().parse::<usize>().ok()?)))
                .filter(|(s, n)| !s.is_empty() && *n >= 1);
            let Some((service, n)) = parsed else {
                return Err(format!(
                    "{CONCURRENCY_ENV}: `{part}` is not SERVICE=N with N at least 1 \
                     (e.g. {CONCURRENCY_ENV}=ec2=10,iam=2)"
                ));
            };
            if service == "*" {
                for v in c.by_service.values_mut() {
                    *v = n;
                }
            } else {
                c.by_service.insert(service.to_string(), n);
            }
        }
        Ok(c)
    }

    /// From [`CONCURRENCY_ENV`], else the defaults.
    pub fn from_env() -> Result<Concurrency, String> {
        match std::env::var(CONCURRENCY_ENV) {
            Ok(spec) => Concurrency::parse(&spec),
            Err(_) => Ok(Concurrency::default()),
        }
    }

    /// The budget of `service` (its signing name).
    pub fn of(&self, service: &str) -> usize {
        self.by_service
            .get(service)
            .or_else(|| self.by_service.get("*"))
            .copied()
            .unwrap_or(1)
    }
}

/// The SDK's default HTTPS client (hyper 1 with rustls and aws-lc, proxies from the
/// environment), built here so that each service's client can wrap it in its budget.
pub fn default_https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// `inner` with at most `permits` requests in flight, fewer while the service throttles (see
/// [`Budget`]). Retries queue like first attempts.
pub fn limited(inner: SharedHttpClient, permits: usize) -> SharedHttpClient {
    SharedHttpClient::new(Limited {
        inner,
        budget: Arc::new(Budget::new(permits)),
    })
}

/// One service's in-flight budget, adaptive: a throttled answer halves it (down to one call at
/// a time), and every `current` answers in a row without throttling give one permit back, up
/// to the configured `max` (additive increase, multiplicative decrease, as TCP does). With the
/// SDK's backoff on each throttled call this makes a burst that meets throttling slow down for
/// the whole service rather than retry into the same wall. (The SDK's own adaptive retry mode
/// was measured: its client-side rate limiter falls to half a request a second after the first
/// throttled answer of a burst, so a throttled plan took 33 s instead of under one.)
#[derive(Debug)]
struct Budget {
    permits: Semaphore,
    max: usize,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    /// The budget now (permits in circulation once `debt` is paid).
    current: usize,
    /// Permits to take out of circulation as calls finish (a cut larger than what was free).
    debt: usize,
    /// Answers without throttling since the last change.
    calm: usize,
}

impl Budget {
    fn new(max: usize) -> Budget {
        let max = max.max(1);
        Budget {
            permits: Semaphore::new(max),
            max,
            state: Mutex::new(BudgetState {
                current: max,
                ..BudgetState::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an answer and gives the caller's permit back (or retires it).
    fn release(&self, permit: tokio::sync::SemaphorePermit<'_>, throttled: bool) {
        let mut s = self.state();
        if throttled {
            let target = (s.current / 2).max(1);
            let cut = s.current - target;
            s.current = target;
            s.calm = 0;
            let freed = self.permits.forget_permits(cut);
            s.debt += cut - freed;
        } else {
            s.calm += 1;
            if s.calm >= s.current && s.current < self.max {
                s.calm = 0;
                s.current += 1;
                if s.debt > 0 {
                    s.debt -= 1;
                } else {
                    self.permits.add_permits(1);
                }
            }
        }
        if s.debt > 0 {
            s.debt -= 1;
            permit.forget();
        }
    }

    /// The budget now (for tests).
    #[cfg(test)]
    fn current(&self) -> usize {
        self.state().current
    }
}

/// Error codes services answer throttling with.
const THROTTLING_CODES: [&str; 6] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
];

/// Whether an answer says the service is throttling: HTTP 429, or a throttling code in the
/// JSON protocols' `x-amzn-ErrorType` header or in the XML protocols' error body.
fn is_throttling(status: u16, error_type: Option<&str>, body: &[u8]) -> bool {
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    let code_in = |text: &str| {
        THROTTLING_CODES.iter().any(|c| {
            text.split(|ch: char| !ch.is_ascii_alphanumeric())
                .any(|word| word == *c)
        })
    };
    error_type.is_some_and(code_in)
        || std::str::from_utf8(body).is_ok_and(|b| {
            THROTTLING_CODES
                .iter()
                .any(|c| b.contains(&format!("<Code>{c}</Code>")))
        })
}

#[derive(Debug, Clone)]
struct Limited {
    inner: SharedHttpClient,
    budget: Arc<Budget>,
}

impl HttpClient for Limited {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector {
            inner: self.inner.http_connector(settings, components),
            budget: self.budget.clone(),
        })
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
    budget: Arc<Budget>,
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let budget = self.budget.clone();
        HttpConnectorFuture::new(async move {
            // Held until the answer's head (and an error's body) has arrived; the semaphore is
            // never closed.
            let permit = budget
                .permits
                .acquire()
                .await
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let mut response = match inner.call(request).await {
                Ok(r) => r,
                Err(e) => {
                    budget.release(permit, false);
                    return Err(e);
                }
            };
            let status = response.status().as_u16();
            let mut body = Vec::new();
            if status >= 400 {
                // Error answers are small: read here so an XML one can be classified, and
                // handed on whole.
                let collected = http_body_util::BodyExt::collect(response.take_body())
                    .await
                    .map_err(ConnectorError::io)?;
                body = collected.to_bytes().to_vec();
                *response.body_mut() = SdkBody::from(body.clone());
            }
            let throttled =
                is_throttling(status, response.headers().get("x-amzn-ErrorType"), &body);
            budget.release(permit, throttled);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_a_budget_and_calm_answers_give_it_back() {
        let b = Budget::new(8);
        let held: Vec<_> = futures::future::join_all((0..3).map(|_| b.permits.acquire())).await;
        let mut held: Vec<_> = held.into_iter().map(Result::unwrap).collect();
        b.release(held.pop().unwrap(), true);
        assert_eq!(b.current(), 4);
        // Two calls still in flight: at most two more may start until they finish.
        assert_eq!(b.permits.available_permits(), 2);
        b.release(held.pop().unwrap(), true);
        b.release(held.pop().unwrap(), true);
        assert_eq!(b.current(), 1);
        assert_eq!(b.permits.available_permits(), 1);
        for _ in 0..30 {
            let p = b.permits.acquire().await.unwrap();
            b.release(p, false);
        }
        assert_eq!(b.current(), 8);
        assert_eq!(b.permits.available_permits(), 8);
    }

    #[test]
    fn throttling_is_told_by_status_header_or_xml_code() {
        assert!(is_throttling(429, None, b""));
        assert!(is_throttling(
            400,
            Some("ThrottlingException:http://x"),
            b""
        ));
        assert!(is_throttling(
            503,
            None,
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        ));
        assert!(is_throttling(
            400,
            None,
            b"<Error><Code>Throttling</Code></Error>"
        ));
        assert!(!is_throttling(400, Some("AccessDeniedException"), b""));
        assert!(!is_throttling(503, None, b"<Code>Unavailable</Code>"));
        assert!(!is_throttling(200, Some("ThrottlingException"), b""));
    }

    #[test]
    fn budgets_are_the_defaults_with_the_overrides_applied() {
        let c = Concurrency::parse("ec2=3, iam=1").unwrap();
        assert_eq!(c.of("ec2"), 3);
        assert_eq!(c.of("iam"), 1);
        assert_eq!(c.of("ecs"), Concurrency::default().of("ecs"));
        assert_eq!(c.of("unheard-of"), Concurrency::default().of("*"));
        let all = Concurrency::parse("*=2").unwrap();
        assert!(DEFAULT_CONCURRENCY.iter().all(|(s, _)| all.of(s) == 2));
        for bad in ["ec2", "ec2=0", "=3", "ec2=x"] {
            let e = Concurrency::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains(CONCURRENCY_ENV), "{e}");
        }
    }
}
