// Taking, holding and giving back the lock of one stack environment: the wait (with stale
// takeover), the heartbeat task, the check before each write, the release when the guard goes,
// and `force-unlock`. Every write is conditional on what this caller last saw.

use super::{
    ci_url, heartbeat_every, now_epoch, poll_every, Holder, Operation, Record, StaleWatch,
};
use crate::aws::state_table::{self, Expect};
use crate::aws::{Aws, AwsError};
use crate::run::Failure;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a command waits for the lock.
#[derive(Clone, Copy, Debug)]
pub struct LockOptions {
    /// How long to wait for a held lock (zero: fail at once).
    pub timeout: Duration,
    /// How long a waiter must see a lock unchanged before it takes it over.
    pub stale_after: Duration,
}

impl From<&crate::cli::LockArgs> for LockOptions {
    fn from(a: &crate::cli::LockArgs) -> Self {
        LockOptions {
            timeout: a.lock_timeout,
            stale_after: a.lock_stale_after,
        }
    }
}

struct HeldState {
    /// The version this holder last wrote.
    version: String,
    /// Why the lock is no longer ours, once known.
    lost: Option<String>,
    /// Released (or being released): no heartbeat writes any more.
    done: bool,
}

/// A lock this process holds: what the apply engine checks before each write.
pub struct Held {
    aws: Aws,
    pub stack: String,
    pub environment: String,
    pub lock_id: String,
    /// The holder's ARN (also the author the environment record names).
    pub who: String,
    state: tokio::sync::Mutex<HeldState>,
}

/// The lock, held until this is dropped (or [`Guard::release`]d); renewed meanwhile.
pub struct Guard {
    held: Arc<Held>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

fn lock_lost(message: String) -> AwsError {
    let mut e = AwsError::other("deploy", "CheckLock", message);
    e.code = Some("LockLost".into());
    e
}

impl Held {
    /// Before each write: is the lock still this hold's? A hold taken over or force-unlocked
    /// answers an error naming what happened; the write is not made.
    pub async fn check(&self) -> Result<(), AwsError> {
        let mut st = self.state.lock().await;
        if let Some(why) = &st.lost {
            return Err(lock_lost(why.clone()));
        }
        let now = state_table::read_lock(&self.aws, &self.stack, &self.environment).await?;
        let why = match now {
            Some(h) if h.lock_id == self.lock_id => return Ok(()),
            Some(h) => format!(
                "the lock of {}/{} was taken over ({}); stopped before the next write",
                self.stack,
                self.environment,
                h.describe()
            ),
            None => format!(
                "the lock of {}/{} was removed (force-unlock); stopped before the next write",
                self.stack, self.environment
            ),
        };
        st.lost = Some(why.clone());
        Err(lock_lost(why))
    }

    /// Before writing the record: a holder that lost the lock leaves it to the new holder.
    async fn still_held(&self) -> bool {
        match self.check().await {
            Ok(()) => true,
            Err(e) => {
                eprintln!("warning: the environment's record was not updated: {e}");
                false
            }
        }
    }

    /// One heartbeat; false once the lock is released or lost (the task stops).
    async fn beat(&self) -> bool {
        let mut st = self.state.lock().await;
        if st.done || st.lost.is_some() {
            return false;
        }
        let next = nonce();
        match state_table::renew(
            &self.aws,
            &self.stack,
            &self.environment,
            &st.version,
            &next,
        )
        .await
        {
            Ok(true) => {
                st.version = next;
                true
            }
            Ok(false) => {
                let why = format!(
                    "the lock of {}/{} changed hands while held (a waiter judged it stale, or force-unlock)",
                    self.stack, self.environment
                );
                eprintln!("warning: {why}; no further change will be made");
                st.lost = Some(why);
                false
            }
            Err(e) => {
                // A failed renewal is tried again at the next beat; waiters judge staleness
                // over several beats.
                tracing::warn!(error = %e, "lock heartbeat failed");
                true
            }
        }
    }

    async fn release(&self) -> Result<(), AwsError> {
        let mut st = self.state.lock().await;
        if st.done {
            return Ok(());
        }
        st.done = true;
        if st.lost.is_some() {
            return Ok(());
        }
        let released = state_table::delete_lock(
            &self.aws,
            &self.stack,
            &self.environment,
            Expect::Version(&st.version),
        )
        .await?;
        if !released {
            eprintln!(
                "warning: the lock of {}/{} was no longer this process's when released",
                self.stack, self.environment
            );
        }
        Ok(())
    }

    /// Writes this apply into the environment's record (created at/by stay as first written).
    pub async fn record_apply(
        &self,
        stack: &crate::spec::Stack,
        stack_text: &str,
        ttl: Option<Duration>,
    ) -> Result<(), Failure> {
        if !self.still_held().await {
            return Ok(());
        }
        let ttl = match ttl {
            Some(t) => Some(t),
            None => match &stack.ttl {
                Some(text) => Some(
                    crate::cli::parse_duration(text)
                        .map_err(|m| Failure::Other(format!("the stack's `ttl`: {m}")))?,
                ),
                None => None,
            },
        };
        let now = now_epoch();
        let record = Record {
            stack: self.stack.clone(),
            environment: self.environment.clone(),
            created_at: now,
            created_by: self.who.clone(),
            last_applied_at: now,
            last_applied_by: self.who.clone(),
            expires_at: ttl.map(|t| now + t.as_secs() as i64),
            protected: stack.protected,
            disposable: stack.disposable,
            stack_hash: {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(stack_text.as_bytes());
                digest.iter().map(|b| format!("{b:02x}")).collect()
            },
        };
        state_table::write_record(&self.aws, &record).await?;
        Ok(())
    }

    /// After a destroy removed everything: the environment has no record any more.
    pub async fn forget_environment(&self) -> Result<(), Failure> {
        if !self.still_held().await {
            return Ok(());
        }
        state_table::delete_record(&self.aws, &self.stack, &self.environment).await?;
        Ok(())
    }
}

impl Guard {
    /// The hold, for the apply engine's check before each write.
    pub fn held(&self) -> Arc<Held> {
        self.held.clone()
    }

    /// Gives the lock back now (dropping the guard does the same).
    pub async fn release(mut self) -> Result<(), AwsError> {
        let r = self.held.release().await;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        r
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(heartbeat) = self.heartbeat.take() else {
            return;
        };
        let held = self.held.clone();
        let release = async move {
            // Waits for a heartbeat in flight, so the release expects the version it wrote.
            if let Err(e) = held.release().await {
                eprintln!("warning: could not release the lock: {e}");
            }
            heartbeat.abort();
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                tokio::task::block_in_place(|| handle.block_on(release));
            } else {
                handle.spawn(release);
            }
        }
    }
}

/// A fresh random token (lock ids and versions): the process's randomly keyed hasher over
/// the time, the pid and a counter.
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn held_error(h: &Holder, opts: &LockOptions) -> Failure {
    let waited = if opts.timeout.is_zero() {
        "wait for it with --lock-timeout DURATION".to_string()
    } else {
        format!("waited {} s", opts.timeout.as_secs())
    };
    Failure::Other(format!(
        "the lock of stack {} environment {} is held: {}. Nothing was changed; {waited}, or if its \
         holder is gone for good: deploy force-unlock {}",
        h.stack,
        h.environment,
        h.describe(),
        h.lock_id
    ))
}

/// Takes the lock of the context's stack environment for `op` (for commands that load a
/// [`crate::commands::Context`] first, e.g. rollback).
pub async fn take(
    ctx: &crate::commands::Context,
    op: Operation,
    opts: &LockOptions,
) -> Result<Guard, Failure> {
    let s = &ctx.loaded.stack;
    take_for(&ctx.aws, &s.stack, &s.environment, op, opts).await
}

/// Takes the lock of `stack`/`environment` for `op`: at once when free; when held, fails at
/// once (no `--lock-timeout`) naming the holder, or waits, taking it over once the waiter
/// has seen it unchanged for the stale age.
pub async fn take_for(
    aws: &Aws,
    stack: &str,
    environment: &str,
    op: Operation,
    opts: &LockOptions,
) -> Result<Guard, Failure> {
    state_table::ensure(aws).await?;
    let who = aws.caller_arn().await?;
    let me = Holder {
        stack: stack.to_string(),
        environment: environment.to_string(),
        lock_id: format!("{}{}", nonce(), nonce()),
        version: nonce(),
        who,
        host: host_name(),
        pid: std::process::id(),
        operation: op.as_str().to_string(),
        started: now_epoch(),
        ci_url: ci_url(|k| std::env::var(k).ok()),
    };
    let deadline = Instant::now() + opts.timeout;
    let mut watch = StaleWatch::new(opts.stale_after);
    let mut told = false;
    loop {
        let current = state_table::read_lock(aws, stack, environment).await?;
        let Some(h) = current else {
            if state_table::put_lock(aws, &me, Expect::Free).await? {
                break;
            }
            continue;
        };
        if watch.is_stale(&h.version, Instant::now()) {
            if state_table::put_lock(aws, &me, Expect::Version(&h.version)).await? {
                eprintln!(
                    "warning: took over the stale lock of {stack}/{environment}: unchanged for {} s, held by {}",
                    opts.stale_after.as_secs(),
                    h.describe()
                );
                break;
            }
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(held_error(&h, opts));
        }
        if !told {
            eprintln!(
                "Waiting up to {} s for the lock of {stack}/{environment}, held by {}",
                opts.timeout.as_secs(),
                h.describe()
            );
            told = true;
        }
        tokio::time::sleep(poll_every(opts.stale_after).min(deadline - now)).await;
    }
    tracing::info!(stack, environment, lock_id = %me.lock_id, "lock taken");
    let held = Arc::new(Held {
        aws: aws.clone(),
        stack: stack.to_string(),
        environment: environment.to_string(),
        lock_id: me.lock_id.clone(),
        who: me.who.clone(),
        state: tokio::sync::Mutex::new(HeldState {
            version: me.version.clone(),
            lost: None,
            done: false,
        }),
    });
    let beating = held.clone();
    let every = heartbeat_every(opts.stale_after);
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if !beating.beat().await {
                break;
            }
        }
    });
    Ok(Guard {
        held,
        heartbeat: Some(heartbeat),
    })
}

/// `deploy force-unlock LOCK_ID`: removes that hold now, wherever it is in the account and
/// region (conditional on the id: a newer hold is left alone).
pub async fn force_unlock(aws: &Aws, lock_id: &str) -> Result<Holder, Failure> {
    let (locks, _) = state_table::scan(aws).await?;
    let Some(h) = locks.into_iter().find(|h| h.lock_id == lock_id) else {
        return Err(Failure::Other(format!(
            "no lock with id {lock_id} in {} (region {}): it was released or taken over already",
            state_table::TABLE,
            aws.region
        )));
    };
    if !state_table::delete_lock(aws, &h.stack, &h.environment, Expect::LockId(lock_id)).await? {
        return Err(Failure::Other(format!(
            "the lock {lock_id} changed hands while being removed; nothing was removed"
        )));
    }
    Ok(h)
}
