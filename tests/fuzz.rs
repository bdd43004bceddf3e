//! Property-based fuzzing of the two readers of user files (proptest): mutated stack files
//! (byte flips, truncation, deleted and duplicated keys, wrong types) go to `validate`, and
//! mutated saved plans go to `show` and `apply` against moto. Nothing may panic; a refused
//! stack names file, line and column; a refused plan is an `error:` naming the file; and no
//! mutated plan makes a single AWS write.
//!
//! The suite runs a short seeded run. `scripts/fuzz.sh` runs a long one: it sets
//! DEPLOY_FUZZ_SECONDS (each test then runs rounds of fresh seeds until that much time has
//! passed) and prints the counts these tests report.
//!   DEPLOY_FUZZ_SEED          the first round's seed (default 15)
//!   DEPLOY_FUZZ_STACK_CASES   cases per round of the stack fuzz (default 1000)
//!   DEPLOY_FUZZ_PLAN_CASES    cases per round of the plan fuzz (default 120)

mod common;

use common::{assert_success, stderr, stdout, TestEnv};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const STACK: &str = "stacks/monitoring.yaml";

fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rounds of `cases` each, seeded from DEPLOY_FUZZ_SEED upwards: one round, or as many as
/// fit in DEPLOY_FUZZ_SECONDS. Panics with the failing input (after shrinking) on a failure.
fn run_rounds<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64
where
    S::Value: std::fmt::Debug,
{
    let first_seed = env_number("DEPLOY_FUZZ_SEED", 15);
    let budget = std::env::var("DEPLOY_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs);
    let started = Instant::now();
    let mut rounds = 0;
    loop {
        let seed = first_seed + rounds;
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 64,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        match runner.run(&strategy, &test) {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                panic!("{name}, seed {seed}: {why}\nminimal failing input: {input:#?}")
            }
            Err(TestError::Abort(why)) => panic!("{name}, seed {seed}: aborted: {why}"),
        }
        rounds += 1;
        match budget {
            Some(b) if started.elapsed() < b => continue,
            _ => return rounds,
        }
    }
}

// --- stack files -----------------------------------------------------------------------------

/// One edit of a stack file's bytes.
#[derive(Clone, Debug)]
enum StackEdit {
    /// XOR one byte with a non-zero mask (may leave the file not UTF-8).
    FlipByte(Index, u8),
    /// Cut the file at a byte.
    Truncate(Index),
    /// Drop a line: a deleted key (its children are orphaned).
    DeleteLine(Index),
    /// Repeat a line: a duplicated key.
    DuplicateLine(Index),
    /// Replace the value of a `key: value` line with a value of another type.
    WrongType(Index, Index),
}

/// Values of every YAML type, and a few a parser must survive.
const WRONG_VALUES: &[&str] = &[
    "[1, 2]",
    "{a: 1}",
    "\"text\"",
    "-5",
    "0",
    "true",
    "~",
    "99999999999999999999999",
    "1.5e300",
    "''",
    "[]",
    "{}",
    "\"{{ x }}\"",
    "&anchor 3",
    "*missing",
    "!!binary aGk=",
    "|\n  a block",
    "- item",
    "\"\\u0000\"",
];

fn stack_edit() -> impl Strategy<Value = StackEdit> {
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(i, m)| StackEdit::FlipByte(i, m)),
        any::<Index>().prop_map(StackEdit::Truncate),
        any::<Index>().prop_map(StackEdit::DeleteLine),
        any::<Index>().prop_map(StackEdit::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(l, v)| StackEdit::WrongType(l, v)),
    ]
}

fn edit_stack(mut bytes: Vec<u8>, edits: &[StackEdit]) -> Vec<u8> {
    let lines_of = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split_inclusive(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        match edit {
            StackEdit::FlipByte(i, mask) => {
                let at = i.index(bytes.len());
                bytes[at] ^= mask;
            }
            StackEdit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            StackEdit::DeleteLine(i) => {
                let mut lines = lines_of(&bytes);
                lines.remove(i.index(lines.len()));
                bytes = lines.concat();
            }
            StackEdit::DuplicateLine(i) => {
                let mut lines = lines_of(&bytes);
                let at = i.index(lines.len());
                let line = lines[at].clone();
                lines.insert(at, line);
                bytes = lines.concat();
            }
            StackEdit::WrongType(line, value) => {
                let mut lines = lines_of(&bytes);
                let start = line.index(lines.len());
                // The first `key: value` line from there on (wrapping around).
                let found = (0..lines.len())
                    .map(|k| (start + k) % lines.len())
                    .find(|&k| {
                        let l = String::from_utf8_lossy(&lines[k]);
                        l.split_once(": ").is_some_and(|(key, v)| {
                            !key.trim().starts_with('#') && !v.trim().is_empty()
                        })
                    });
                if let Some(k) = found {
                    let l = String::from_utf8_lossy(&lines[k]).into_owned();
                    let (key, _) = l.split_once(": ").unwrap();
                    let new = WRONG_VALUES[value.index(WRONG_VALUES.len())];
                    lines[k] = format!("{key}: {new}\n").into_bytes();
                    bytes = lines.concat();
                }
            }
        }
    }
    bytes
}

/// Whether an error's place is one a user can go to: a line and column of the stack file, or
/// a line of a template the stack renders (the error's path then names the stack's field).
fn located(file: &Path, err_file: &Path, line: usize, column: usize, path: &str) -> bool {
    // The binary names templates as given (`--templates`, default `templates`, relative to
    // where it runs); the library as the Templates dir was made (absolute here).
    let template = err_file.starts_with(common::repo_root().join("templates"))
        || err_file.starts_with("templates");
    line > 0 && ((err_file == file && column > 0) || (template && !path.is_empty()))
}

/// What `validate` does with a stack file, in process: load, validate, build with the
/// offline lookups. `Ok(false)` when refused (every error checked to carry a location).
fn validate_in_process(file: &Path, templates: &deploy::render::Templates) -> Result<bool, String> {
    let refused = |e: deploy::spec::SpecErrors| -> Result<bool, String> {
        if e.0.is_empty() {
            return Err("refused with no error".into());
        }
        for err in &e.0 {
            if !located(file, &err.file, err.line, err.column, &err.path)
                || err.message.trim().is_empty()
                || err.message.contains("Options")
            {
                return Err(format!("an error without a location: {err:?}"));
            }
        }
        Ok(false)
    };
    let loaded = match deploy::spec::load(file) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    if let Err(e) = loaded.validate() {
        return refused(e);
    }
    let region = loaded
        .stack
        .region
        .clone()
        .unwrap_or_else(|| "<region>".into());
    let lookups = deploy::model::Lookups::placeholders(&region);
    match deploy::spec::build_desired(&loaded, &lookups, templates) {
        Ok(_) => Ok(true),
        Err(e) => refused(e),
    }
}

/// `deploy validate -f FILE` as a user runs it: exit 0, or exit 1 with every error line
/// naming FILE:LINE:COLUMN; never a panic.
fn validate_binary(file: &Path) -> Result<bool, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args(["validate", "-f"])
        .arg(file)
        .current_dir(common::repo_root())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .map_err(|e| e.to_string())?;
    let err = stderr(&out);
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => {
            // error: FILE:LINE:COLUMN: PATH: MESSAGE
            let located = err.lines().filter(|l| !l.trim().is_empty()).all(|l| {
                let l = l.strip_prefix("error: ").unwrap_or(l);
                let mut parts = l.splitn(5, ':');
                let (f, line, column, path) =
                    (parts.next(), parts.next(), parts.next(), parts.next());
                let number = |p: Option<&str>| p.and_then(|n| n.parse::<usize>().ok());
                match (f, number(line), number(column), path) {
                    (Some(f), Some(line), Some(column), Some(path)) => {
                        located(file, Path::new(f), line, column, path.trim())
                    }
                    _ => false,
                }
            });
            if located && !err.trim().is_empty() {
                Ok(false)
            } else {
                Err(format!(
                    "refused without FILE:LINE:COLUMN on every line:\n{err}"
                ))
            }
        }
        other => Err(format!("exit {other:?} (a panic is 101):\n{err}")),
    }
}

#[test]
fn mutated_stack_files_are_validated_or_refused_with_a_location() {
    let original = std::fs::read(common::repo_root().join(STACK)).unwrap();
    let templates = deploy::render::Templates::new(common::repo_root().join("templates"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mutated.yaml");
    let (accepted, refused, through_binary) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let bump = |c: &Cell<u64>| c.set(c.get() + 1);
    let started = Instant::now();
    let rounds = run_rounds(
        "stack fuzz",
        env_number("DEPLOY_FUZZ_STACK_CASES", 1000) as u32,
        prop::collection::vec(stack_edit(), 1..4),
        |edits| {
            let bytes = edit_stack(original.clone(), &edits);
            std::fs::write(&file, &bytes).unwrap();
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                validate_in_process(&file, &templates)
            }))
            .map_err(|p| {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                TestCaseError::fail(format!("validate panicked: {why}"))
            })?
            .map_err(TestCaseError::fail)?;
            // Every 25th case also through the binary: same verdict, located on stderr (this
            // covers the size check too, which runs only in the command).
            if (accepted.get() + refused.get()) % 25 == 24 {
                bump(&through_binary);
                let binary = validate_binary(&file).map_err(TestCaseError::fail)?;
                if binary && !verdict {
                    return Err(TestCaseError::fail(
                        "the binary accepted what validation refused",
                    ));
                }
            }
            bump(if verdict { &accepted } else { &refused });
            Ok(())
        },
    );
    let (accepted, refused, through_binary) = (accepted.get(), refused.get(), through_binary.get());
    println!(
        "FUZZ stack files: {} cases in {rounds} round(s) and {:.1?}: {accepted} valid, {refused} \
         refused with a location, {through_binary} also through `deploy validate`; 0 panics",
        accepted + refused,
        started.elapsed()
    );
    assert!(refused > accepted, "the mutations barely broke anything");
}

// --- saved plans -----------------------------------------------------------------------------

/// One edit of a saved plan: structural ones on its JSON, and raw ones on its bytes.
#[derive(Clone, Debug)]
enum PlanEdit {
    /// Remove an object member (a field the reader needs, or an optional one).
    DeleteKey(Index),
    /// Repeat an array element (a step, a change, a rule…).
    DuplicateElement(Index),
    /// Remove an array element.
    DeleteElement(Index),
    /// Replace any value with one of another type.
    WrongType(Index, Index),
    /// Replace a number with an extreme or out-of-range one (indices, ports, counts).
    ExtremeNumber(Index, Index),
    /// Copy one string over another (an action name, an address, an id, a generation line).
    CopyString(Index, Index),
    /// XOR a byte of the file.
    FlipByte(Index, u8),
    /// Cut the file.
    Truncate(Index),
}

fn plan_edit() -> impl Strategy<Value = PlanEdit> {
    prop_oneof![
        any::<Index>().prop_map(PlanEdit::DeleteKey),
        any::<Index>().prop_map(PlanEdit::DuplicateElement),
        any::<Index>().prop_map(PlanEdit::DeleteElement),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| PlanEdit::WrongType(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| PlanEdit::ExtremeNumber(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| PlanEdit::CopyString(a, b)),
        (any::<Index>(), 1..=255u8).prop_map(|(i, m)| PlanEdit::FlipByte(i, m)),
        any::<Index>().prop_map(PlanEdit::Truncate),
    ]
}

/// JSON pointers of every node of `v` that `want` accepts (the root excluded).
fn pointers(v: &Value, want: &dyn Fn(&Value) -> bool) -> Vec<String> {
    fn walk(v: &Value, at: String, want: &dyn Fn(&Value) -> bool, out: &mut Vec<String>) {
        if !at.is_empty() && want(v) {
            out.push(at.clone());
        }
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{key}"), want, out);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), want, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), want, &mut out);
    out
}

/// The parent's pointer and the last token of `pointer`.
fn split_pointer(pointer: &str) -> (&str, String) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    (parent, last.replace("~1", "/").replace("~0", "~"))
}

fn edit_plan(text: &str, edits: &[PlanEdit]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_str(text).unwrap();
    let mut raw: Option<Vec<u8>> = None;
    for edit in edits {
        if let Some(bytes) = &mut raw {
            // Once the bytes are edited, the rest of the edits are on bytes too.
            match edit {
                PlanEdit::Truncate(i) if !bytes.is_empty() => bytes.truncate(i.index(bytes.len())),
                PlanEdit::FlipByte(i, m) if !bytes.is_empty() => {
                    let at = i.index(bytes.len());
                    bytes[at] ^= m;
                }
                _ => {}
            }
            continue;
        }
        let pick = |want: &dyn Fn(&Value) -> bool, i: &Index, doc: &Value| {
            let all = pointers(doc, want);
            (!all.is_empty()).then(|| all[i.index(all.len())].clone())
        };
        match edit {
            PlanEdit::DeleteKey(i) => {
                let members: Vec<String> = pointers(&doc, &|_| true)
                    .into_iter()
                    .filter(|p| {
                        doc.pointer(split_pointer(p).0)
                            .is_some_and(Value::is_object)
                            || split_pointer(p).0.is_empty()
                    })
                    .collect();
                if !members.is_empty() {
                    let p = &members[i.index(members.len())];
                    let (parent, key) = split_pointer(p);
                    let parent = if parent.is_empty() {
                        Some(&mut doc)
                    } else {
                        doc.pointer_mut(parent)
                    };
                    if let Some(Value::Object(m)) = parent {
                        m.shift_remove(&key);
                    }
                }
            }
            PlanEdit::DuplicateElement(i) | PlanEdit::DeleteElement(i) => {
                if let Some(p) = pick(&|v| v.as_array().is_some_and(|a| !a.is_empty()), i, &doc) {
                    if let Some(Value::Array(a)) = doc.pointer_mut(&p) {
                        let at = i.index(a.len());
                        if matches!(edit, PlanEdit::DuplicateElement(_)) {
                            let element = a[at].clone();
                            a.insert(at, element);
                        } else {
                            a.remove(at);
                        }
                    }
                }
            }
            PlanEdit::WrongType(i, v) => {
                let values = [
                    Value::Null,
                    Value::Bool(true),
                    serde_json::json!(-1),
                    serde_json::json!(0),
                    serde_json::json!(1e300),
                    serde_json::json!("x"),
                    serde_json::json!([]),
                    serde_json::json!({}),
                    serde_json::json!(u64::MAX),
                ];
                if let Some(p) = pick(&|_| true, i, &doc) {
                    *doc.pointer_mut(&p).unwrap() = values[v.index(values.len())].clone();
                }
            }
            PlanEdit::ExtremeNumber(i, v) => {
                if let Some(p) = pick(&Value::is_number, i, &doc) {
                    let n = doc.pointer(&p).unwrap().as_i64().unwrap_or(0);
                    let values = [
                        serde_json::json!(n + 1),
                        serde_json::json!(n - 1),
                        serde_json::json!(n.saturating_mul(1000)),
                        serde_json::json!(-1),
                        serde_json::json!(u32::MAX as u64 + 1),
                        serde_json::json!(u64::MAX),
                        serde_json::json!(i64::MIN),
                    ];
                    *doc.pointer_mut(&p).unwrap() = values[v.index(values.len())].clone();
                }
            }
            PlanEdit::CopyString(i, j) => {
                let strings = pointers(&doc, &Value::is_string);
                if !strings.is_empty() {
                    let from = doc
                        .pointer(&strings[j.index(strings.len())])
                        .unwrap()
                        .clone();
                    *doc.pointer_mut(&strings[i.index(strings.len())]).unwrap() = from;
                }
            }
            PlanEdit::FlipByte(..) | PlanEdit::Truncate(_) => {
                let mut bytes = serde_json::to_vec_pretty(&doc).unwrap();
                match edit {
                    PlanEdit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
                    PlanEdit::FlipByte(i, m) => {
                        let at = i.index(bytes.len());
                        bytes[at] ^= m;
                    }
                    _ => unreachable!(),
                }
                raw = Some(bytes);
            }
        }
    }
    raw.unwrap_or_else(|| serde_json::to_vec_pretty(&doc).unwrap())
}

/// A moto with the reference stack applied and two saved plans: `noop` (made after the
/// apply: nothing to do) and `stale` (made before it: creates everything, refused as stale).
struct PlanWorld {
    env: TestEnv,
    plans: Vec<(&'static str, String)>,
}

impl PlanWorld {
    fn new() -> PlanWorld {
        let env = TestEnv::new();
        env.seed(false);
        let save = |name: &str| -> String {
            let path = env.path().join(name);
            assert_success(&env.deploy(&["plan", "-f", STACK, "--out", path.to_str().unwrap()]));
            std::fs::read_to_string(&path).unwrap()
        };
        let stale = save("stale.plan");
        assert_success(&env.deploy(&["apply", "-f", STACK, "--auto-approve"]));
        let noop = save("noop.plan");
        PlanWorld {
            env,
            plans: vec![("noop", noop), ("stale", stale)],
        }
    }

    /// `deploy show FILE` and `deploy apply FILE`: (show's exit code, apply's exit code,
    /// AWS calls apply made), after checking neither panicked, every refusal is an `error:`
    /// and apply wrote nothing.
    fn show_and_apply(&self, file: &Path) -> Result<(i32, i32, usize, String), String> {
        let f = file.to_str().unwrap();
        let show = self.env.deploy(&["show", f]);
        let show_code = exit_code("show", &show)?;
        self.env.proxy.clear();
        let apply = self.env.deploy(&["apply", f]);
        let apply_code = exit_code("apply", &apply)?;
        let calls = self.env.proxy.calls();
        let writes: Vec<String> = calls
            .iter()
            .filter(|c| c.is_mutating())
            .map(|c| c.to_string())
            .collect();
        if !writes.is_empty() {
            return Err(format!(
                "apply of a mutated plan wrote: {writes:?}\n{}",
                stderr(&apply)
            ));
        }
        if show_code == 1 {
            // Refused on reading: apply refuses it the same way, before any AWS call.
            let why = stderr(&show);
            if !why.contains(f) {
                return Err(format!("show refused without naming the file:\n{why}"));
            }
            if apply_code != 1 || !calls.is_empty() {
                return Err(format!(
                    "show refused the file, apply exited {apply_code} after {} AWS calls",
                    calls.len()
                ));
            }
        }
        let reason = if show_code == 1 {
            stderr(&show)
        } else {
            stderr(&apply)
        };
        Ok((show_code, apply_code, calls.len(), refusal_kind(&reason, f)))
    }
}

/// A refusal's reason with the file and numbers taken out, for counting refusals by kind.
fn refusal_kind(stderr: &str, file: &str) -> String {
    let Some(line) = stderr.lines().find(|l| l.starts_with("error: ")) else {
        return String::new();
    };
    let line = line.replace(file, "FILE");
    let reason = match line.split_once("is not a plan saved by this deploy: ") {
        Some((_, why)) => format!("check: {why}"),
        None => match line.split_once("is not a plan saved by deploy: ") {
            Some(_) => "not JSON of a plan".to_string(),
            None => line.trim_start_matches("error: ").to_string(),
        },
    };
    let mut kind: String = reason
        .chars()
        .map(|c| if c.is_ascii_digit() { 'N' } else { c })
        .collect();
    // Addresses vary; the reason's shape is what is counted.
    if kind.starts_with("check: change") || kind.starts_with("check: step") {
        if let (Some(open), Some(close)) = (kind.find(" ("), kind.find(") ")) {
            if open < close {
                kind.replace_range(open + 2..close, "…");
            }
        }
    }
    kind.chars().take(100).collect()
}

/// 0 or 1, with an `error:` line on 1; anything else (a panic is 101) is a failure.
fn exit_code(what: &str, out: &std::process::Output) -> Result<i32, String> {
    let err = stderr(out);
    match out.status.code() {
        Some(0) if !err.contains("panicked") => Ok(0),
        Some(1) if err.contains("error: ") && !err.contains("panicked") => Ok(1),
        other => Err(format!(
            "{what} exited {other:?} (a panic is 101)\n--- stdout ---\n{}\n--- stderr ---\n{err}",
            stdout(out)
        )),
    }
}

#[test]
fn mutated_saved_plans_never_panic_show_or_apply_and_never_write() {
    let world = PlanWorld::new();
    // The unmutated plans first: the no-op one applies (doing nothing), the stale one is
    // refused; neither writes.
    let file = world.env.path().join("mutated.plan");
    for (name, text) in &world.plans {
        std::fs::write(&file, text).unwrap();
        let (show, apply, calls, _) = world.show_and_apply(&file).unwrap();
        assert_eq!(
            (show, apply),
            (0, if *name == "noop" { 0 } else { 1 }),
            "{name}"
        );
        assert!(calls > 0, "{name}: apply read nothing");
    }
    let counts: RefCell<BTreeMap<String, u64>> = RefCell::new(BTreeMap::new());
    let reasons: RefCell<BTreeMap<String, u64>> = RefCell::new(BTreeMap::new());
    let started = Instant::now();
    let rounds = run_rounds(
        "plan fuzz",
        env_number("DEPLOY_FUZZ_PLAN_CASES", 120) as u32,
        (any::<bool>(), prop::collection::vec(plan_edit(), 1..3)),
        |(stale, edits)| {
            let (name, text) = &world.plans[usize::from(stale)];
            let bytes = edit_plan(text, &edits);
            std::fs::write(&file, &bytes).unwrap();
            let (show, apply, calls, reason) =
                world.show_and_apply(&file).map_err(TestCaseError::fail)?;
            if show == 1 || apply == 1 {
                *reasons.borrow_mut().entry(reason).or_default() += 1;
            }
            let verdict = match (show, apply, calls) {
                (1, _, _) => "refused on reading",
                (0, 0, _) => "applied (nothing to do)",
                (0, 1, 0) => "refused before AWS",
                (0, 1, _) => "refused after reading AWS",
                _ => "other",
            };
            *counts
                .borrow_mut()
                .entry(format!("{name}: {verdict}"))
                .or_default() += 1;
            Ok(())
        },
    );
    let counts = counts.into_inner();
    let total: u64 = counts.values().sum();
    println!(
        "FUZZ saved plans: {total} cases in {rounds} round(s) and {:.1?}, 0 panics, 0 AWS writes:",
        started.elapsed()
    );
    for (what, n) in &counts {
        println!("  {what}: {n}");
    }
    let mut reasons: Vec<(u64, String)> = reasons
        .into_inner()
        .into_iter()
        .map(|(r, n)| (n, r))
        .collect();
    reasons.sort_by(|a, b| b.cmp(a));
    println!(
        "FUZZ refusals by reason ({} kinds), most frequent first:",
        reasons.len()
    );
    for (n, reason) in reasons.iter().take(25) {
        println!("  {n:>5}  {reason}");
    }
    let refused: u64 = counts
        .iter()
        .filter(|(k, _)| k.contains("refused on reading"))
        .map(|(_, n)| n)
        .sum();
    assert!(refused > 0, "{counts:?}");
}

// --- the checks one by one --------------------------------------------------------------------

/// Each part of the saved-plan check, by a targeted edit of a real plan: refused on reading
/// as "not a plan saved by this deploy" (exit 1) with its reason, and not one AWS call.
#[test]
fn a_saved_plan_that_is_not_one_deploy_wrote_is_refused_without_calling_aws() {
    let env = TestEnv::new();
    env.seed(false);
    let path = env.path().join("create.plan");
    assert_success(&env.deploy(&["plan", "-f", STACK, "--out", path.to_str().unwrap()]));
    let text = std::fs::read_to_string(&path).unwrap();
    let plan: Value = serde_json::from_str(&text).unwrap();
    let steps = plan["plan"]["steps"].as_array().unwrap().len();
    let changes = plan["plan"]["changes"].as_array().unwrap().len();
    // A change whose step is a create (it needs its desired state).
    let created = plan["plan"]["steps"][0]["change"].as_u64().unwrap() as usize;
    let secret_line = plan["desired"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| {
            d["attrs"]["attributes"]["value"]
                .as_str()
                .filter(|v| v.contains("days="))
        })
        .expect("a TLS secret's generation line")
        .to_string();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, String)> = vec![
        (
            "step out of range",
            Box::new(move |p| p["plan"]["steps"][0]["change"] = changes.into()),
            format!("step 0 names change {changes}, the plan has {changes}"),
        ),
        (
            "wait out of range",
            Box::new(move |p| p["plan"]["steps"][1]["after"] = serde_json::json!([steps + 5])),
            format!("step 1 waits for step {}", steps + 5),
        ),
        (
            "missing desired side",
            Box::new(move |p| p["plan"]["changes"][created]["desired"] = Value::Null),
            "has no desired state for its action".into(),
        ),
        (
            "steps not the changes' order",
            Box::new(|p| {
                let s = p["plan"]["steps"].as_array_mut().unwrap();
                s.swap(0, 1);
            }),
            "its steps are not the ones its changes order into".into(),
        ),
        (
            "fewer fingerprints",
            Box::new(|p| {
                p["live"].as_array_mut().unwrap().pop();
            }),
            format!("live fingerprints for {changes} changes"),
        ),
        (
            "invalid stack text",
            Box::new(|p| {
                let t = p["stack_text"]
                    .as_str()
                    .unwrap()
                    .replace("cpu: 256", "cpu: 300");
                p["stack_text"] = t.into();
            }),
            "its stack text is not valid".into(),
        ),
        (
            "out-of-range certificate validity (desired and change alike)",
            Box::new(move |p| {
                let line = secret_line.clone();
                let far = line
                    .split(' ')
                    .map(|w| {
                        if w.starts_with("days=") {
                            "days=5000000"
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let t = serde_json::to_string(p).unwrap().replace(&line, &far);
                *p = serde_json::from_str(&t).unwrap();
            }),
            "validity of 5000000 days".into(),
        ),
    ];
    for (what, edit, reason) in cases {
        let mut edited = plan.clone();
        edit(&mut edited);
        let file = env.path().join("edited.plan");
        std::fs::write(&file, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        for command in ["show", "apply"] {
            env.proxy.clear();
            let out = env.deploy(&[command, file.to_str().unwrap()]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what}: {command}\n{err}");
            assert!(
                err.contains("is not a plan saved by this deploy") && err.contains(&reason),
                "{what}: {command} should say {reason:?}:\n{err}"
            );
            let calls = env.proxy.calls();
            assert!(calls.is_empty(), "{what}: {command} called AWS: {calls:?}");
        }
    }
    // The plan itself still applies.
    assert_success(&env.deploy(&["apply", path.to_str().unwrap()]));
}
