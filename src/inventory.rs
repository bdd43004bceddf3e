//! What `deploy ls` tells about every stack environment in an account and region, made from
//! plain values (resources found by their ownership tags, the Fargate tasks they run, the
//! environment records and locks): one line per environment, and the rough monthly cost of
//! its running tasks from a per-region price table.

use crate::lock::{Holder, Record};
use crate::model::Kind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A resource found by its ownership tags.
#[derive(Clone, Debug)]
pub struct Found {
    pub stack: String,
    pub environment: String,
    pub kind: Kind,
}

/// An ECS service's tasks: size of one task and how many are wanted.
#[derive(Clone, Debug)]
pub struct Running {
    pub stack: String,
    pub environment: String,
    /// Task CPU units (1024 = 1 vCPU) and memory in MiB, as the task definition says.
    pub cpu_units: f64,
    pub memory_mib: f64,
    pub desired: i32,
}

/// Fargate on-demand prices, Linux/x86, USD per hour: (region, per vCPU, per GB of memory).
/// Source: the AWS Fargate pricing page (aws.amazon.com/fargate/pricing), as of 2025-06; not
/// re-checked since. Regions not listed get no estimate. A rough figure: no Savings Plans,
/// Spot, ephemeral storage beyond 20 GB, data transfer or load balancer hours.
pub const FARGATE_PRICES: &[(&str, f64, f64)] = &[
    ("us-east-1", 0.04048, 0.004445),
    ("us-east-2", 0.04048, 0.004445),
    ("us-west-2", 0.04048, 0.004445),
];

/// Hours in a month, as AWS's price calculator counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The monthly cost of `tasks` in `region`, or `None` where the table has no price.
pub fn fargate_monthly_usd(region: &str, tasks: &[Running]) -> Option<f64> {
    let (_, vcpu, gb) = FARGATE_PRICES.iter().find(|(r, _, _)| *r == region)?;
    Some(
        tasks
            .iter()
            .map(|t| {
                let count = f64::from(t.desired.max(0));
                (t.cpu_units / 1024.0 * vcpu + t.memory_mib / 1024.0 * gb) * count
            })
            .sum::<f64>()
            * HOURS_PER_MONTH,
    )
}

/// One environment in the listing.
#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub stack: String,
    pub environment: String,
    /// Resources by kind (the address prefix: `log_group`, `ecs_service`, …).
    pub resources: BTreeMap<String, usize>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub last_applied_at: Option<String>,
    pub last_applied_by: Option<String>,
    pub expires_at: Option<String>,
    pub expired: bool,
    pub protected: bool,
    pub disposable: bool,
    /// Who holds its lock, when someone does.
    pub locked_by: Option<String>,
    pub tasks: i32,
    /// Rough monthly cost of its running Fargate tasks (USD); `None`: no price for the region.
    pub monthly_usd: Option<f64>,
}

/// Every environment that has a resource, a record or a lock, sorted by stack and name.
pub fn inventory(
    region: &str,
    now: i64,
    found: &[Found],
    running: &[Running],
    records: &[Record],
    locks: &[Holder],
) -> Vec<Environment> {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    keys.extend(
        found
            .iter()
            .map(|f| (f.stack.clone(), f.environment.clone())),
    );
    keys.extend(
        records
            .iter()
            .map(|r| (r.stack.clone(), r.environment.clone())),
    );
    keys.extend(
        locks
            .iter()
            .map(|h| (h.stack.clone(), h.environment.clone())),
    );
    keys.into_iter()
        .map(|(stack, environment)| {
            let mine = |s: &str, e: &str| s == stack && e == environment;
            let mut resources = BTreeMap::new();
            for f in found.iter().filter(|f| mine(&f.stack, &f.environment)) {
                *resources
                    .entry(f.kind.info().prefix.to_string())
                    .or_insert(0) += 1;
            }
            let tasks: Vec<Running> = running
                .iter()
                .filter(|t| mine(&t.stack, &t.environment))
                .cloned()
                .collect();
            let record = records.iter().find(|r| mine(&r.stack, &r.environment));
            let lock = locks.iter().find(|h| mine(&h.stack, &h.environment));
            let time = |t: i64| crate::lock::utc_text(t);
            Environment {
                resources,
                created_at: record.map(|r| time(r.created_at)),
                created_by: record.map(|r| r.created_by.clone()),
                last_applied_at: record.map(|r| time(r.last_applied_at)),
                last_applied_by: record.map(|r| r.last_applied_by.clone()),
                expires_at: record.and_then(|r| r.expires_at).map(time),
                expired: record.and_then(|r| r.expires_at).is_some_and(|t| t <= now),
                protected: record.is_some_and(|r| r.protected),
                disposable: record.is_some_and(|r| r.disposable),
                locked_by: lock.map(Holder::describe),
                tasks: tasks.iter().map(|t| t.desired.max(0)).sum(),
                monthly_usd: fargate_monthly_usd(region, &tasks),
                stack,
                environment,
            }
        })
        .collect()
}

/// The listing as text.
pub fn text(envs: &[Environment], region: &str) -> String {
    if envs.is_empty() {
        return format!("No stack environment in region {region}.\n");
    }
    let mut out = String::new();
    for e in envs {
        let total: usize = e.resources.values().sum();
        let kinds: Vec<String> = e
            .resources
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "{}/{}: {total} resources ({})\n",
            e.stack,
            e.environment,
            kinds.join(", ")
        ));
        match (&e.created_at, &e.last_applied_at) {
            (Some(c), Some(l)) => out.push_str(&format!(
                "  created {c} by {}; last applied {l} by {}\n",
                e.created_by.as_deref().unwrap_or("?"),
                e.last_applied_by.as_deref().unwrap_or("?")
            )),
            _ => out.push_str("  no record (applied before records were kept, or a leftover)\n"),
        }
        let expiry = match &e.expires_at {
            Some(t) if e.expired => format!("expired {t}"),
            Some(t) => format!("expires {t}"),
            None => "no expiry".into(),
        };
        let marks: Vec<&str> = [(e.protected, "protected"), (e.disposable, "disposable")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, m)| *m)
            .collect();
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!("; {}", marks.join(", "))
        };
        out.push_str(&format!("  {expiry}{marks}\n"));
        out.push_str(&match &e.locked_by {
            Some(h) => format!("  locked: {h}\n"),
            None => "  not locked\n".into(),
        });
        out.push_str(&match e.monthly_usd {
            Some(usd) => format!("  Fargate: {} task(s), about ${usd:.2} a month\n", e.tasks),
            None => format!("  Fargate: {} task(s), no price for {region}\n", e.tasks),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(env: &str, expires_at: Option<i64>, protected: bool) -> Record {
        Record {
            stack: "s".into(),
            environment: env.into(),
            created_at: 0,
            created_by: "arn:c".into(),
            last_applied_at: 60,
            last_applied_by: "arn:l".into(),
            expires_at,
            protected,
            disposable: false,
            stack_hash: "h".into(),
        }
    }

    #[test]
    fn fargate_cost_is_vcpu_and_memory_times_count_times_hours() {
        let t = Running {
            stack: "s".into(),
            environment: "e".into(),
            cpu_units: 512.0,
            memory_mib: 1024.0,
            desired: 2,
        };
        let usd = fargate_monthly_usd("us-west-2", std::slice::from_ref(&t)).unwrap();
        let expected = (0.5 * 0.04048 + 1.0 * 0.004445) * 2.0 * 730.0;
        assert!((usd - expected).abs() < 1e-9, "{usd}");
        assert_eq!(fargate_monthly_usd("xx-nowhere-1", &[t]), None);
    }

    #[test]
    fn every_environment_with_a_resource_a_record_or_a_lock_is_listed_with_its_counts() {
        let found = |env: &str, kind: Kind| Found {
            stack: "s".into(),
            environment: env.into(),
            kind,
        };
        let envs = inventory(
            "us-west-2",
            100,
            &[
                found("a", Kind::LogGroup),
                found("a", Kind::LogGroup),
                found("a", Kind::Secret),
                found("orphan", Kind::IamRole),
            ],
            &[],
            &[record("a", Some(100), false), record("b", Some(50), true)],
            &[],
        );
        let names: Vec<&str> = envs.iter().map(|e| e.environment.as_str()).collect();
        assert_eq!(names, ["a", "b", "orphan"]);
        assert_eq!(envs[0].resources["log_group"], 2);
        assert_eq!(envs[0].resources["secret"], 1);
        assert!(envs[0].expired && !envs[0].protected);
        assert!(envs[1].expired && envs[1].protected);
        assert!(envs[1].resources.is_empty());
        assert_eq!(envs[2].created_at, None);
        assert_eq!(envs[2].monthly_usd, Some(0.0));
        let text = text(&envs, "us-west-2");
        assert!(
            text.contains("s/a: 3 resources (log_group 2, secret 1)"),
            "{text}"
        );
        assert!(
            text.contains("s/orphan: 1 resources (iam_role 1)\n  no record"),
            "{text}"
        );
    }
}
