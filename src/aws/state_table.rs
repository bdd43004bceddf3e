//! The DynamoDB table that holds every stack environment's lock and record (one table per
//! account and region, made by deploy itself on first use: on-demand, tagged, nothing to
//! bootstrap). DynamoDB because its conditional writes make each write to the lock a true
//! compare-and-swap; SSM PutParameter has none for updates.
//!
//! Items are keyed by `id`: `lock/STACK/ENV` for a lock, `env/STACK/ENV` for a record.

use super::{err, Aws, AwsError};
use crate::lock::{Holder, Record};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, Tag,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The table's name (one per account and region, shared by every stack).
pub const TABLE: &str = crate::lock::STATE_TABLE;
/// The tag that marks the table as deploy's own.
pub const TABLE_TAG: (&str, &str) = ("deploy:table", "locks-and-environment-records");
/// How long a new table may take to become ACTIVE (seconds on AWS).
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

type Item = HashMap<String, AttributeValue>;

pub fn lock_key(stack: &str, environment: &str) -> String {
    format!("lock/{stack}/{environment}")
}

pub fn record_key(stack: &str, environment: &str) -> String {
    format!("env/{stack}/{environment}")
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
}

fn flag(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

/// A conditional write that lost: someone else wrote first.
fn lost_race(e: &AwsError) -> bool {
    e.code_is("ConditionalCheckFailedException")
}

/// Makes the table when it is not there yet and waits until it is ACTIVE. Two callers
/// making it at once is fine: the loser's `ResourceInUseException` means it exists.
pub async fn ensure(aws: &Aws) -> Result<(), AwsError> {
    let started = Instant::now();
    loop {
        let described = aws.dynamodb.describe_table().table_name(TABLE).send().await;
        let status = match described {
            Ok(out) => out.table.and_then(|t| t.table_status),
            Err(e) => {
                let e = AwsError::from_sdk("dynamodb", "DescribeTable", e);
                if !e.is_not_found() {
                    return Err(e);
                }
                create(aws).await?;
                continue;
            }
        };
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > ACTIVE_TIMEOUT {
            return Err(AwsError::other(
                "dynamodb",
                "DescribeTable",
                format!(
                    "the table {TABLE} is not ACTIVE after {} s (status {status:?})",
                    ACTIVE_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn create(aws: &Aws) -> Result<(), AwsError> {
    let building = |m: aws_sdk_dynamodb::error::BuildError| {
        AwsError::other("dynamodb", "CreateTable", m.to_string())
    };
    let answer = aws
        .dynamodb
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(building)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .map_err(building)?,
        )
        .tags(
            Tag::builder()
                .key(TABLE_TAG.0)
                .value(TABLE_TAG.1)
                .build()
                .map_err(building)?,
        )
        .send()
        .await
        .map_err(err("dynamodb", "CreateTable"));
    match answer {
        Ok(_) => {
            tracing::info!(table = TABLE, "created the lock and record table");
            Ok(())
        }
        Err(e) if e.code_is("ResourceInUseException") => Ok(()),
        Err(e) => Err(e),
    }
}

async fn get(aws: &Aws, id: &str) -> Result<Option<Item>, AwsError> {
    let answer = aws
        .dynamodb
        .get_item()
        .table_name(TABLE)
        .key("id", s(id))
        .consistent_read(true)
        .send()
        .await
        .map_err(err("dynamodb", "GetItem"));
    // No table yet: nothing was ever locked or recorded.
    Ok(super::found(answer)?.and_then(|out| out.item))
}

fn holder_item(h: &Holder) -> Item {
    let mut item: Item = [
        ("id", s(&lock_key(&h.stack, &h.environment))),
        ("kind", s("lock")),
        ("stack", s(&h.stack)),
        ("environment", s(&h.environment)),
        ("lock_id", s(&h.lock_id)),
        ("version", s(&h.version)),
        ("who", s(&h.who)),
        ("host", s(&h.host)),
        ("pid", n(h.pid.into())),
        ("operation", s(&h.operation)),
        ("started", n(h.started)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(url) = &h.ci_url {
        item.insert("ci_url".into(), s(url));
    }
    item
}

fn holder_of(item: &Item) -> Option<Holder> {
    Some(Holder {
        stack: text(item, "stack")?,
        environment: text(item, "environment")?,
        lock_id: text(item, "lock_id")?,
        version: text(item, "version")?,
        who: text(item, "who").unwrap_or_default(),
        host: text(item, "host").unwrap_or_default(),
        pid: number(item, "pid").unwrap_or(0) as u32,
        operation: text(item, "operation").unwrap_or_default(),
        started: number(item, "started").unwrap_or(0),
        ci_url: text(item, "ci_url"),
    })
}

/// The lock of one environment, read consistently; `None` when free.
pub async fn read_lock(
    aws: &Aws,
    stack: &str,
    environment: &str,
) -> Result<Option<Holder>, AwsError> {
    Ok(get(aws, &lock_key(stack, environment))
        .await?
        .as_ref()
        .and_then(holder_of))
}

/// What a write of the lock expects to find.
#[derive(Clone, Copy, Debug)]
pub enum Expect<'a> {
    /// No lock.
    Free,
    /// The lock at this version (a takeover, a heartbeat, a release).
    Version(&'a str),
    /// The hold with this lock id, at any version (`force-unlock`).
    LockId(&'a str),
}

impl Expect<'_> {
    fn condition(&self) -> (&'static str, Option<(&'static str, String)>) {
        match self {
            Expect::Free => ("attribute_not_exists(id)", None),
            Expect::Version(v) => ("#version = :expected", Some(("#version", v.to_string()))),
            Expect::LockId(l) => ("#lock_id = :expected", Some(("#lock_id", l.to_string()))),
        }
    }
}

/// Writes the whole lock (a take or a takeover) if it is what `expect` says. `Ok(false)`:
/// someone else wrote first.
pub async fn put_lock(aws: &Aws, holder: &Holder, expect: Expect<'_>) -> Result<bool, AwsError> {
    let (condition, value) = expect.condition();
    let mut req = aws
        .dynamodb
        .put_item()
        .table_name(TABLE)
        .set_item(Some(holder_item(holder)))
        .condition_expression(condition);
    if let Some((name, v)) = value {
        req = req
            .expression_attribute_names(name, &name[1..])
            .expression_attribute_values(":expected", s(&v));
    }
    match req.send().await.map_err(err("dynamodb", "PutItem")) {
        Ok(_) => Ok(true),
        Err(e) if lost_race(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A heartbeat: moves the lock from version `seen` to `next`. `Ok(false)`: it is no longer
/// at `seen` (taken over or force-unlocked).
pub async fn renew(
    aws: &Aws,
    stack: &str,
    environment: &str,
    seen: &str,
    next: &str,
) -> Result<bool, AwsError> {
    let answer = aws
        .dynamodb
        .update_item()
        .table_name(TABLE)
        .key("id", s(&lock_key(stack, environment)))
        .update_expression("SET #version = :next")
        .condition_expression("#version = :expected")
        .expression_attribute_names("#version", "version")
        .expression_attribute_values(":next", s(next))
        .expression_attribute_values(":expected", s(seen))
        .send()
        .await
        .map_err(err("dynamodb", "UpdateItem"));
    match answer {
        Ok(_) => Ok(true),
        Err(e) if lost_race(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the lock if it is what `expect` says. `Ok(false)`: it was not.
pub async fn delete_lock(
    aws: &Aws,
    stack: &str,
    environment: &str,
    expect: Expect<'_>,
) -> Result<bool, AwsError> {
    let (condition, value) = expect.condition();
    let mut req = aws
        .dynamodb
        .delete_item()
        .table_name(TABLE)
        .key("id", s(&lock_key(stack, environment)))
        .condition_expression(condition);
    if let Some((name, v)) = value {
        req = req
            .expression_attribute_names(name, &name[1..])
            .expression_attribute_values(":expected", s(&v));
    }
    match req.send().await.map_err(err("dynamodb", "DeleteItem")) {
        Ok(_) => Ok(true),
        Err(e) if lost_race(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every lock and record in the table (one Scan, paged).
pub async fn scan(aws: &Aws) -> Result<(Vec<Holder>, Vec<Record>), AwsError> {
    let (mut locks, mut records) = (Vec::new(), Vec::new());
    let mut start: Option<Item> = None;
    loop {
        let answer = aws
            .dynamodb
            .scan()
            .table_name(TABLE)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(err("dynamodb", "Scan"));
        let Some(out) = super::found(answer)? else {
            break;
        };
        for item in out.items.unwrap_or_default() {
            match text(&item, "kind").as_deref() {
                Some("lock") => locks.extend(holder_of(&item)),
                Some("record") => records.extend(record_of(&item)),
                _ => {}
            }
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok((locks, records))
}

fn record_of(item: &Item) -> Option<Record> {
    Some(Record {
        stack: text(item, "stack")?,
        environment: text(item, "environment")?,
        created_at: number(item, "created_at").unwrap_or(0),
        created_by: text(item, "created_by").unwrap_or_default(),
        last_applied_at: number(item, "last_applied_at").unwrap_or(0),
        last_applied_by: text(item, "last_applied_by").unwrap_or_default(),
        expires_at: number(item, "expires_at"),
        protected: flag(item, "protected"),
        disposable: flag(item, "disposable"),
        stack_hash: text(item, "stack_hash").unwrap_or_default(),
    })
}

/// One environment's record; `None` when it was never applied (or was destroyed).
pub async fn read_record(
    aws: &Aws,
    stack: &str,
    environment: &str,
) -> Result<Option<Record>, AwsError> {
    Ok(get(aws, &record_key(stack, environment))
        .await?
        .as_ref()
        .and_then(record_of))
}

/// Writes an apply into the record: creation time and author stay as first written, the
/// rest is replaced (no expiry removes an old one).
pub async fn write_record(aws: &Aws, r: &Record) -> Result<(), AwsError> {
    let mut set = vec![
        "#kind = :kind",
        "#stack = :stack",
        "#environment = :environment",
        "created_at = if_not_exists(created_at, :created_at)",
        "created_by = if_not_exists(created_by, :created_by)",
        "last_applied_at = :last_applied_at",
        "last_applied_by = :last_applied_by",
        "#protected = :protected",
        "disposable = :disposable",
        "stack_hash = :stack_hash",
    ];
    let mut req = aws
        .dynamodb
        .update_item()
        .table_name(TABLE)
        .key("id", s(&record_key(&r.stack, &r.environment)))
        .expression_attribute_names("#kind", "kind")
        .expression_attribute_names("#stack", "stack")
        .expression_attribute_names("#environment", "environment")
        .expression_attribute_names("#protected", "protected")
        .expression_attribute_values(":kind", s("record"))
        .expression_attribute_values(":stack", s(&r.stack))
        .expression_attribute_values(":environment", s(&r.environment))
        .expression_attribute_values(":created_at", n(r.created_at))
        .expression_attribute_values(":created_by", s(&r.created_by))
        .expression_attribute_values(":last_applied_at", n(r.last_applied_at))
        .expression_attribute_values(":last_applied_by", s(&r.last_applied_by))
        .expression_attribute_values(":protected", AttributeValue::Bool(r.protected))
        .expression_attribute_values(":disposable", AttributeValue::Bool(r.disposable))
        .expression_attribute_values(":stack_hash", s(&r.stack_hash));
    let mut expression = String::new();
    if let Some(t) = r.expires_at {
        set.push("expires_at = :expires_at");
        req = req.expression_attribute_values(":expires_at", n(t));
    }
    expression.push_str("SET ");
    expression.push_str(&set.join(", "));
    if r.expires_at.is_none() {
        expression.push_str(" REMOVE expires_at");
    }
    req.update_expression(expression)
        .send()
        .await
        .map_err(err("dynamodb", "UpdateItem"))?;
    Ok(())
}

/// Removes an environment's record (after a destroy removed everything it owned).
pub async fn delete_record(aws: &Aws, stack: &str, environment: &str) -> Result<(), AwsError> {
    let answer = aws
        .dynamodb
        .delete_item()
        .table_name(TABLE)
        .key("id", s(&record_key(stack, environment)))
        .send()
        .await
        .map_err(err("dynamodb", "DeleteItem"));
    super::gone_is_ok(answer)
}
