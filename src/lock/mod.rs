//! Why two deploys never change one stack environment at once, and what deploy remembers about
//! each environment: the pure parts of the lock (what it holds, when a waiter may take it over,
//! how its holder is told) and of the environment record. Both live in one DynamoDB table
//! (src/aws/state_table.rs); taking, renewing and releasing the lock is [`guard`].

pub mod guard;

pub use guard::{force_unlock, take, take_for, Guard, Held, LockOptions};

use std::time::{Duration, Instant};

/// The DynamoDB table of locks and environment records (one per account and region).
pub const STATE_TABLE: &str = "deploy-state";

/// What holds the lock: the operation that took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Destroy,
    Import,
    Rollback,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "apply",
            Operation::Destroy => "destroy",
            Operation::Import => "import",
            Operation::Rollback => "rollback",
        }
    }
}

/// The lock of one stack environment as stored: who holds it and since when. `version`
/// changes on every write (take, heartbeat, takeover); every write is conditional on the
/// version its writer last saw. `lock_id` names one hold, from take to release: what
/// `force-unlock` takes and what the holder checks before each write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub stack: String,
    pub environment: String,
    pub lock_id: String,
    pub version: String,
    /// The caller's ARN (STS GetCallerIdentity).
    pub who: String,
    pub host: String,
    pub pid: u32,
    pub operation: String,
    /// When the hold started, seconds since the epoch on the holder's clock (shown, never
    /// compared with another machine's clock).
    pub started: i64,
    /// The CI run that holds it, when the holder ran in CI.
    pub ci_url: Option<String>,
}

impl Holder {
    /// One line naming the holder, for errors and warnings.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} by {} on host {} (pid {}) since {}",
            self.operation,
            self.who,
            self.host,
            self.pid,
            utc_text(self.started)
        );
        if let Some(url) = &self.ci_url {
            text.push_str(&format!(", CI run {url}"));
        }
        text.push_str(&format!("; lock id {}", self.lock_id));
        text
    }
}

/// The CI run's URL when the environment names one: GitHub Actions
/// (`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`) or GitLab CI
/// (`$CI_JOB_URL`).
pub fn ci_url(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        set("GITHUB_SERVER_URL"),
        set("GITHUB_REPOSITORY"),
        set("GITHUB_RUN_ID"),
    ) {
        return Some(format!(
            "{}/{repo}/actions/runs/{run}",
            server.trim_end_matches('/')
        ));
    }
    set("CI_JOB_URL")
}

/// A waiter's view of a held lock, on the waiter's own clock: since when it has seen the
/// same version. A lock whose version has not changed for `stale_after` is stale: its holder
/// stopped renewing it (renewals come every [`heartbeat_every`] of that).
#[derive(Debug)]
pub struct StaleWatch {
    stale_after: Duration,
    seen: Option<(String, Instant)>,
}

impl StaleWatch {
    pub fn new(stale_after: Duration) -> StaleWatch {
        StaleWatch {
            stale_after,
            seen: None,
        }
    }

    /// Notes the version seen at `now`; true when that same version has been seen for the
    /// stale age.
    pub fn is_stale(&mut self, version: &str, now: Instant) -> bool {
        match &self.seen {
            Some((v, since)) if v == version => now.duration_since(*since) >= self.stale_after,
            _ => {
                self.seen = Some((version.to_string(), now));
                false
            }
        }
    }
}

/// How often a holder renews its lock: every 30 s, or more often when the stale age is
/// short (a quarter of it), so a live holder is never judged stale.
pub fn heartbeat_every(stale_after: Duration) -> Duration {
    (stale_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// How often a waiter reads the lock again.
pub fn poll_every(stale_after: Duration) -> Duration {
    (stale_after / 8).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// One environment's record: what deploy knows about it without reading its resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub stack: String,
    pub environment: String,
    /// Seconds since the epoch.
    pub created_at: i64,
    pub created_by: String,
    pub last_applied_at: i64,
    pub last_applied_by: String,
    /// When it expires (`apply --ttl` or the stack's `ttl`, from the last apply); none: never.
    pub expires_at: Option<i64>,
    pub protected: bool,
    pub disposable: bool,
    /// sha256 of the stack file the last apply read.
    pub stack_hash: String,
}

impl Record {
    /// Expired at `now` (seconds since the epoch), and not protected: what `destroy
    /// --expired` removes.
    pub fn reapable(&self, now: i64) -> bool {
        !self.protected && self.expires_at.is_some_and(|t| t <= now)
    }
}

/// `2026-12-01 16:56:26 UTC` from seconds since the epoch.
pub fn utc_text(epoch: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(epoch) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{epoch} (seconds since the epoch)"),
    }
}

/// Now, in seconds since the epoch, on this machine's clock.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder {
            stack: "monitoring".into(),
            environment: "staging".into(),
            lock_id: "l-1".into(),
            version: "v-1".into(),
            who: "arn:aws:iam::123456789012:user/ci".into(),
            host: "runner-7".into(),
            pid: 4242,
            operation: "apply".into(),
            started: 1_764_608_186,
            ci_url: None,
        }
    }

    #[test]
    fn the_holder_is_told_with_who_where_what_and_since_when() {
        let mut h = holder();
        assert_eq!(
            h.describe(),
            "apply by arn:aws:iam::123456789012:user/ci on host runner-7 (pid 4242) since \
             2025-12-01 16:56:26 UTC; lock id l-1"
        );
        h.ci_url = Some("https://ci.example/run/9".into());
        assert!(h.describe().contains(
            "since 2025-12-01 16:56:26 UTC, CI run https://ci.example/run/9; lock id l-1"
        ));
    }

    #[test]
    fn the_ci_run_comes_from_github_actions_or_gitlab() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            ci_url(env(&[
                ("GITHUB_SERVER_URL", "https://github.example/"),
                ("GITHUB_REPOSITORY", "org/repo"),
                ("GITHUB_RUN_ID", "77"),
            ])),
            Some("https://github.example/org/repo/actions/runs/77".into())
        );
        assert_eq!(
            ci_url(env(&[(
                "CI_JOB_URL",
                "https://gitlab.example/g/p/-/jobs/5"
            )])),
            Some("https://gitlab.example/g/p/-/jobs/5".into())
        );
        // A partial GitHub environment names no run.
        assert_eq!(ci_url(env(&[("GITHUB_RUN_ID", "77")])), None);
        assert_eq!(ci_url(env(&[("CI_JOB_URL", "")])), None);
    }

    #[test]
    fn a_lock_is_stale_only_when_one_version_was_seen_for_the_stale_age() {
        let t0 = Instant::now();
        let s = Duration::from_secs(120);
        let mut watch = StaleWatch::new(s);
        assert!(!watch.is_stale("v1", t0));
        assert!(!watch.is_stale("v1", t0 + Duration::from_secs(119)));
        // A heartbeat: the clock starts again from when the new version was first seen.
        assert!(!watch.is_stale("v2", t0 + Duration::from_secs(119)));
        assert!(!watch.is_stale("v2", t0 + Duration::from_secs(200)));
        assert!(watch.is_stale("v2", t0 + Duration::from_secs(239)));
    }

    #[test]
    fn a_holder_renews_well_within_the_stale_age() {
        assert_eq!(
            heartbeat_every(Duration::from_secs(120)),
            Duration::from_secs(30)
        );
        assert_eq!(
            heartbeat_every(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert!(poll_every(Duration::from_secs(120)) <= Duration::from_secs(5));
    }

    #[test]
    fn only_expired_unprotected_environments_are_reapable() {
        let mut r = Record {
            stack: "s".into(),
            environment: "e".into(),
            created_at: 0,
            created_by: "a".into(),
            last_applied_at: 0,
            last_applied_by: "a".into(),
            expires_at: Some(100),
            protected: false,
            disposable: true,
            stack_hash: "h".into(),
        };
        assert!(!r.reapable(99));
        assert!(r.reapable(100));
        r.protected = true;
        assert!(!r.reapable(1000));
        r.protected = false;
        r.expires_at = None;
        assert!(!r.reapable(i64::MAX));
    }
}
