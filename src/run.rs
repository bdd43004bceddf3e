//! Runs one command: loads the stack, looks things up, plans, applies; and is the one place
//! that maps outcomes to exit codes (0 success, 1 error or refused plan, 130 interrupted).

use crate::apply::{self, Refs, Reporter, StepResult};
use crate::aws::provider::AwsProvider;
use crate::aws::{ecs, Aws, AwsError};
use crate::cli::{AwsArgs, Cli, Command, StackArgs};
use crate::diff::{self, DiffInput, World};
use crate::model::{Address, Attrs, Kind, Lookups};
use crate::observe;
use crate::output;
use crate::plan::{Change, Plan, Step};
use crate::render::Templates;
use crate::report;
use crate::saved::{self, SavedPlan};
use crate::spec::{self, Built, LoadedStack};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// ECS refuses RegisterTaskDefinition requests over 64 KiB.
pub const TASK_DEFINITION_LIMIT: usize = 65536;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    Spec(spec::SpecErrors),
    Aws(Box<AwsError>),
    /// The plan cannot be applied (ownership conflicts).
    Refused(String),
    /// Some steps failed or never started.
    Incomplete {
        interrupted: bool,
    },
    Other(String),
}

impl From<spec::SpecErrors> for Failure {
    fn from(e: spec::SpecErrors) -> Self {
        Failure::Spec(e)
    }
}
impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure::Aws(Box::new(e))
    }
}

/// The output style of this run, decided once in `main`.
static STYLE: std::sync::OnceLock<output::Style> = std::sync::OnceLock::new();
/// Whether stdout carries the JSON documents of `--format json`, decided once in `main`.
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn json_output() -> bool {
    JSON.get().copied().unwrap_or(false)
}

fn to_json<T: serde::Serialize>(doc: &T) -> String {
    serde_json::to_string_pretty(doc).expect("reports serialize")
}

/// The plan as the command's result: text, or the JSON document.
fn emit_plan(plan: &Plan) {
    if json_output() {
        println!("{}", to_json(&report::plan_report(plan)));
    } else {
        print!("{}", output::plan_text(plan, style()));
    }
}

/// The plan before an apply carries it out: on stdout as text, or on stderr when stdout
/// is reserved for the JSON result.
fn preview_plan(plan: &Plan) {
    if json_output() {
        eprint!("{}", output::plan_text(plan, style()));
    } else {
        print!("{}", output::plan_text(plan, style()));
    }
}

fn style() -> output::Style {
    STYLE.get().copied().unwrap_or_default()
}

/// `-v`: what deploy does (info); `-vv`: every step and the SDK's calls (debug); `-vvv`:
/// everything, the SDK's own tracing included. Logs go to stderr. Secret values are never
/// logged: deploy holds one only between GetRandomPassword and CreateSecret/PutSecretValue,
/// and the SDK redacts sensitive fields and bodies (a test searches -vvv output for one).
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let (own, sdk) = match verbose {
        0 => return,
        1 => (LevelFilter::INFO, LevelFilter::WARN),
        2 => (LevelFilter::DEBUG, LevelFilter::DEBUG),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let filter = Targets::new().with_target("deploy", own).with_default(sdk);
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}

pub fn main(cli: Cli) -> i32 {
    use std::io::IsTerminal;
    init_logging(cli.verbose);
    let no_color = std::env::var("NO_COLOR").ok();
    let _ = JSON.set(cli.format == crate::cli::Format::Json);
    let _ = STYLE.set(output::Style::resolve(
        cli.color,
        std::io::stdout().is_terminal(),
        no_color.as_deref(),
    ));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(f) => {
            match &f {
                Failure::Spec(e) => eprintln!("{e}"),
                Failure::Aws(e) => eprintln!("error: {e}"),
                Failure::Refused(m) | Failure::Other(m) => eprintln!("error: {m}"),
                Failure::Incomplete { .. } => {}
            }
            match f {
                Failure::Incomplete { interrupted: true } => 130,
                _ => 1,
            }
        }
    }
}

/// Runs the command; `Ok` carries the exit code of a success (2: `--detailed-exitcode` with
/// changes).
async fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Validate { stack } => validate(&stack).map(|()| 0),
        Command::Render { stack, aws, out } => render(&stack, &aws, &out).await.map(|()| 0),
        Command::Plan {
            stack,
            aws,
            destroy,
            delete_data,
            out,
            detailed_exitcode,
            targets,
        } => {
            let mut ctx = Context::load(&stack, &aws).await?;
            ctx.delete_data |= delete_data;
            ctx.target(&targets)?;
            let planned = ctx.plan(destroy, &BTreeMap::new()).await?;
            emit_plan(&planned.plan);
            refuse_conflicts(&planned.plan)?;
            if let Some(out) = out {
                save_plan(&ctx, &planned, &out)?;
                eprintln!(
                    "\nSaved the plan to {0}: `deploy show {0}` prints it, `deploy apply {0}` carries it out.",
                    out.display()
                );
            }
            Ok(if detailed_exitcode && planned.plan.has_changes() {
                2
            } else {
                0
            })
        }
        Command::Apply {
            stack,
            aws,
            plan_file: Some(file),
            targets,
            delete_data,
            ..
        } => {
            if stack.file_arg.is_some()
                || aws.region.is_some()
                || !targets.is_empty()
                || delete_data
            {
                return Err(Failure::Other(
                    "a saved plan carries its own stack, region, targets and deletions: -f/--file, --region, --target and --delete-data cannot be combined with a plan file".into(),
                ));
            }
            // A saved plan was reviewed already: it never asks.
            apply_saved(&file, &aws).await.map(|()| 0)
        }
        Command::Apply {
            stack,
            aws,
            auto_approve,
            plan_file: None,
            targets,
            delete_data,
        } => apply_cmd(&stack, &aws, auto_approve, false, delete_data, &targets)
            .await
            .map(|()| 0),
        Command::Destroy {
            stack,
            aws,
            auto_approve,
            delete_data,
        } => apply_cmd(&stack, &aws, auto_approve, true, delete_data, &[])
            .await
            .map(|()| 0),
        Command::Show { plan_file } => {
            let saved = read_plan(&plan_file)?;
            eprintln!(
                "Saved plan {} (deploy {}, stack file {})",
                plan_file.display(),
                saved.tool_version,
                saved.stack_file
            );
            emit_plan(&saved.plan);
            Ok(0)
        }
        Command::Import {
            stack,
            aws,
            address,
            id,
        } => import(&stack, &aws, &address, &id).await.map(|()| 0),
    }
}

fn save_plan(ctx: &Context, planned: &Planned, out: &Path) -> Result<(), Failure> {
    let saved = SavedPlan {
        format_version: saved::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        stack_file: ctx.loaded.file.display().to_string(),
        stack_text: ctx.loaded.text.clone(),
        lookups: ctx.lookups.clone(),
        desired: ctx.built.desired.clone(),
        plan: planned.plan.clone(),
        refs: planned.refs.clone(),
        live: saved::live_fingerprints(&planned.plan, &planned.world),
        owned_elsewhere: saved::owned_elsewhere_ids(&planned.world),
    };
    let text = serde_json::to_string_pretty(&saved).expect("plans serialize");
    std::fs::write(out, text + "\n")
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", out.display())))
}

fn read_plan(file: &Path) -> Result<SavedPlan, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", file.display())))?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        Failure::Other(format!(
            "{} is not a plan saved by deploy: {e}",
            file.display()
        ))
    })?;
    if saved.format_version != saved::FORMAT_VERSION {
        return Err(Failure::Refused(format!(
            "{} has plan format {}, this deploy reads format {}",
            file.display(),
            saved.format_version,
            saved::FORMAT_VERSION
        )));
    }
    saved::check(&saved).map_err(|why| {
        Failure::Other(format!(
            "{} is not a plan saved by this deploy: {why}",
            file.display()
        ))
    })?;
    Ok(saved)
}

/// Applies a saved plan exactly: re-reads what it was made from and refuses, changing
/// nothing, if any of it moved.
async fn apply_saved(file: &Path, aws_args: &AwsArgs) -> Result<(), Failure> {
    let saved = read_plan(file)?;
    let version = env!("CARGO_PKG_VERSION");
    if saved.tool_version != version {
        return Err(Failure::Refused(format!(
            "the plan was made by deploy {}, this is deploy {version}: plan again with this version; nothing was changed",
            saved.tool_version
        )));
    }
    let loaded = spec::parse(Path::new(&saved.stack_file), &saved.stack_text)?;
    let aws = Aws::connect(aws_args.profile.as_deref(), Some(&saved.plan.region)).await?;
    let account = aws.account_id().await?;
    if account != saved.plan.account_id {
        return Err(Failure::Refused(format!(
            "the plan was made for account {}, these credentials are for account {account}; nothing was changed",
            saved.plan.account_id
        )));
    }
    let lookups = observe::lookups(&aws, &loaded.stack).await?;
    let world = observe::observe(&aws, &loaded.stack, &lookups, &saved.desired).await?;
    let why = saved::staleness(&saved, &lookups, &world);
    if !why.is_empty() {
        return Err(Failure::Refused(format!(
            "the plan in {} is stale, nothing was changed; plan again. Since it was made:\n  {}",
            file.display(),
            why.join("\n  ")
        )));
    }
    preview_plan(&saved.plan);
    execute_plan(&saved.plan, &aws, &loaded, saved.refs.clone()).await
}

fn refuse_conflicts(plan: &Plan) -> Result<(), Failure> {
    if plan.conflicts.is_empty() {
        Ok(())
    } else {
        Err(Failure::Refused(format!(
            "{} ownership conflict(s): the stack names resources it does not own (see above); nothing was changed",
            plan.conflicts.len()
        )))
    }
}

fn load_valid(args: &StackArgs) -> Result<LoadedStack, Failure> {
    let loaded = spec::load(&args.file())?;
    loaded.validate()?;
    Ok(loaded)
}

/// The RegisterTaskDefinition request apply would send for each task definition, tags
/// included: (address, family, request body).
fn task_definition_requests(
    loaded: &LoadedStack,
    built: &Built,
    lookups: &Lookups,
) -> Vec<(Address, String, serde_json::Value)> {
    let refs = deterministic_refs(loaded, lookups);
    let ownership = spec::ownership_tags(&loaded.stack);
    built
        .desired
        .iter()
        .filter_map(|d| match resolve_loosely(&d.attrs, &refs) {
            Attrs::TaskDefinition(td) => {
                let body = ecs::register_request_json(&td, &d.create_tags(&ownership));
                Some((d.address.clone(), td.family, body))
            }
            _ => None,
        })
        .collect()
}

/// Sizes of the task definition requests, refusing any over the ECS limit.
fn check_sizes(
    loaded: &LoadedStack,
    built: &Built,
    lookups: &Lookups,
) -> Result<Vec<(String, usize)>, Failure> {
    let mut sizes = Vec::new();
    let mut errors = Vec::new();
    for (address, family, body) in task_definition_requests(loaded, built, lookups) {
        let size = serde_json::to_vec(&body).map(|v| v.len()).unwrap_or(0);
        if size > TASK_DEFINITION_LIMIT {
            errors.push(loaded.error_at(
                &format!("task_definitions.{}", address.name),
                format!("the RegisterTaskDefinition request is {size} bytes, over ECS's limit of {TASK_DEFINITION_LIMIT}"),
            ));
        }
        sizes.push((family, size));
    }
    if errors.is_empty() {
        Ok(sizes)
    } else {
        Err(Failure::Spec(spec::SpecErrors(errors)))
    }
}

/// Ids that follow from names alone (role ARNs, log group names, cluster names), so
/// `validate` and `render` can show the exact requests before anything exists.
fn deterministic_refs(loaded: &LoadedStack, lookups: &Lookups) -> Refs {
    let mut refs = Refs::new();
    let s = &loaded.stack;
    for (k, r) in &s.iam_roles {
        let path = r
            .path
            .clone()
            .unwrap_or_else(|| format!("/deploy/{}/", s.stack));
        refs.insert(
            Address::new(Kind::IamRole, k),
            format!(
                "arn:aws:iam::{}:role{path}{}",
                lookups.account_id,
                spec::role_aws_name(r, &lookups.region)
            ),
        );
    }
    for (k, g) in &s.log_groups {
        refs.insert(Address::new(Kind::LogGroup, k), g.name.clone());
    }
    for (k, c) in &s.clusters {
        refs.insert(Address::new(Kind::EcsCluster, k), c.name.clone());
    }
    refs
}

fn resolve_loosely(attrs: &Attrs, refs: &Refs) -> Attrs {
    let mut out = attrs.clone();
    out.map_references(&|s| {
        s.parse::<Address>()
            .ok()
            .and_then(|a| refs.get(&a).cloned())
    });
    out
}

fn validate(args: &StackArgs) -> Result<(), Failure> {
    let loaded = load_valid(args)?;
    let region = loaded
        .stack
        .region
        .clone()
        .unwrap_or_else(|| "<region>".into());
    let lookups = Lookups::placeholders(&region);
    let built = spec::build_desired(&loaded, &lookups, &Templates::new(&args.templates))?;
    let sizes = check_sizes(&loaded, &built, &lookups)?;
    println!(
        "{}: valid ({} resources; lookups not performed: values shown as <lookup:…>)",
        args.file().display(),
        built.desired.len()
    );
    for (family, size) in sizes {
        println!(
            "  task definition {family}: {size} bytes of {TASK_DEFINITION_LIMIT} allowed ({:.1}%)",
            size as f64 * 100.0 / TASK_DEFINITION_LIMIT as f64
        );
    }
    Ok(())
}

/// Everything a plan is made from.
struct Context {
    loaded: LoadedStack,
    aws: Aws,
    lookups: Lookups,
    built: Built,
    /// With `--target`: the targeted addresses and what they depend on.
    targeted: Option<std::collections::BTreeSet<Address>>,
    /// Deletions may take data-bearing resources (`--delete-data` or `disposable: true`).
    delete_data: bool,
}

struct Planned {
    plan: Plan,
    refs: Refs,
    /// What the plan was made from.
    world: World,
}

impl Context {
    async fn load(stack_args: &StackArgs, aws_args: &AwsArgs) -> Result<Context, Failure> {
        let loaded = load_valid(stack_args)?;
        // Offline checks first: bad input never reaches AWS.
        let offline = Lookups::placeholders(loaded.stack.region.as_deref().unwrap_or("<region>"));
        let templates = Templates::new(&stack_args.templates);
        let offline_built = spec::build_desired(&loaded, &offline, &templates)?;
        check_sizes(&loaded, &offline_built, &offline)?;

        let region = aws_args
            .region
            .clone()
            .or_else(|| loaded.stack.region.clone());
        let aws = Aws::connect(aws_args.profile.as_deref(), region.as_deref()).await?;
        let lookups = observe::lookups(&aws, &loaded.stack).await?;
        tracing::info!(
            account = %lookups.account_id,
            region = %lookups.region,
            vpc = %lookups.vpc_id,
            load_balancer = %lookups.load_balancer.dns_name,
            external_secrets = lookups.secrets.len(),
            "lookups done"
        );
        let built = spec::build_desired(&loaded, &lookups, &templates)?;
        check_sizes(&loaded, &built, &lookups)?;
        let loaded_disposable = loaded.stack.disposable;
        Ok(Context {
            loaded,
            aws,
            lookups,
            built,
            targeted: None,
            delete_data: loaded_disposable,
        })
    }

    /// Narrows the desired state to the targets and what they depend on.
    fn target(&mut self, targets: &[String]) -> Result<(), Failure> {
        if targets.is_empty() {
            return Ok(());
        }
        let addresses = targets
            .iter()
            .map(|t| t.parse::<Address>().map_err(Failure::Other))
            .collect::<Result<Vec<_>, _>>()?;
        let closure =
            crate::plan::target_closure(&self.built.desired, &addresses).map_err(Failure::Other)?;
        self.built.desired.retain(|d| closure.contains(&d.address));
        self.targeted = Some(closure);
        Ok(())
    }

    fn imports(&self) -> Result<BTreeMap<Address, String>, Failure> {
        self.loaded
            .stack
            .imports
            .iter()
            .map(|i| {
                i.address
                    .parse::<Address>()
                    .map(|a| (a, i.id.clone()))
                    .map_err(Failure::Other)
            })
            .collect()
    }

    async fn plan(
        &self,
        destroy: bool,
        extra_imports: &BTreeMap<Address, String>,
    ) -> Result<Planned, Failure> {
        let world = observe::observe(
            &self.aws,
            &self.loaded.stack,
            &self.lookups,
            &self.built.desired,
        )
        .await?;
        tracing::info!(
            found = world.found.values().map(Vec::len).sum::<usize>(),
            owned_elsewhere = world.owned_elsewhere.len(),
            "live state read"
        );
        let mut imports = self.imports()?;
        imports.extend(extra_imports.clone());
        let s = &self.loaded.stack;
        let mut plan = diff::diff(&DiffInput {
            stack: &s.stack,
            environment: &s.environment,
            account_id: &self.lookups.account_id,
            region: &self.lookups.region,
            desired: &self.built.desired,
            world: &world,
            imports: &imports,
            destroy,
            delete_data: self.delete_data,
        });
        if !destroy {
            plan.warnings
                .extend(self.built.scrape_warnings(&self.lookups));
        }
        if let Some(closure) = &self.targeted {
            // Only the targets and their dependencies: nothing else is changed or deleted.
            plan.changes.retain(|c| closure.contains(&c.address));
            plan.conflicts.retain(|c| closure.contains(&c.address));
            plan.steps = crate::plan::order_steps(&plan.changes);
            let names: Vec<String> = closure.iter().map(|a| a.to_string()).collect();
            plan.warnings.push(format!(
                "targeting: only {} were checked; the rest of the stack was not, so this plan may be incomplete",
                names.join(", ")
            ));
        }
        // Ids of what exists and will be kept, for the executor to start from.
        let mut refs = deterministic_refs(&self.loaded, &self.lookups);
        for c in &plan.changes {
            if let Some(o) = &c.observed {
                if c.action != crate::plan::Action::Delete {
                    let id = match &o.attrs {
                        Attrs::LogGroup(a) => a.name.clone(),
                        _ => o.id.clone(),
                    };
                    refs.insert(c.address.clone(), id);
                }
            }
        }
        Ok(Planned { plan, refs, world })
    }
}

async fn render(stack_args: &StackArgs, aws_args: &AwsArgs, out: &Path) -> Result<(), Failure> {
    let ctx = Context::load(stack_args, aws_args).await?;
    let write = |path: &Path, bytes: &[u8]| -> Result<(), Failure> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::Other(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(path, bytes)
            .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))
    };
    let mut written = Vec::new();
    for f in &ctx.built.files {
        let path = out
            .join("files")
            .join(&f.task)
            .join(&f.container)
            .join(f.path.trim_start_matches('/'));
        write(&path, crate::render::shown_content(&f.content).as_bytes())?;
        written.push(path);
    }
    for (_, family, body) in task_definition_requests(&ctx.loaded, &ctx.built, &ctx.lookups) {
        let text = serde_json::to_string_pretty(&body).expect("JSON serializes");
        let path = out.join("task-definitions").join(format!("{family}.json"));
        write(&path, format!("{text}\n").as_bytes())?;
        written.push(path);
    }
    println!(
        "Rendered for account {}, region {} (load balancer {}):",
        ctx.lookups.account_id, ctx.lookups.region, ctx.lookups.load_balancer.dns_name
    );
    for p in written {
        println!("  {}", p.display());
    }
    Ok(())
}

struct StderrReporter;

impl Reporter for StderrReporter {
    fn started(&self, step: &Step, change: &Change) {
        eprintln!("{}: {}…", change.address, verb(step.op, change, false));
    }
    fn finished(&self, step: &Step, change: &Change, result: &StepResult, took: Duration) {
        match result {
            StepResult::Done(id) => eprintln!(
                "{}: {} after {:.1}s{}",
                change.address,
                verb(step.op, change, true),
                took.as_secs_f64(),
                id.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default()
            ),
            StepResult::Failed(m) => eprintln!(
                "{}: FAILED after {:.1}s: {m}",
                change.address,
                took.as_secs_f64()
            ),
        }
    }
}

fn verb(op: crate::plan::StepOp, change: &Change, done: bool) -> &'static str {
    use crate::plan::StepOp::*;
    match (op, change.new_revision, done) {
        (Create, true, false) => "registering a new revision",
        (Create, true, true) => "registered",
        (Create | CreateReplacement, _, false) => "creating",
        (Create | CreateReplacement, _, true) => "created",
        (Update, _, false) => "updating",
        (Update, _, true) => "updated",
        (Delete | DeleteReplaced, _, false) => "deleting",
        (Delete | DeleteReplaced, _, true) => "deleted",
        (AuthorizeDeferred, _, false) => "authorizing its rules to groups created after it",
        (AuthorizeDeferred, _, true) => "authorized its rules to groups created after it",
    }
}

fn confirm(destroy: bool) -> Result<bool, Failure> {
    // The answer may come from a terminal or a pipe; an empty pipe (EOF) is a no.
    let stdin = std::io::stdin();
    eprint!(
        "\nDo you want to {}? Only 'yes' will be accepted: ",
        if destroy {
            "destroy these resources"
        } else {
            "perform these actions"
        }
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Other(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

async fn apply_cmd(
    stack_args: &StackArgs,
    aws_args: &AwsArgs,
    auto_approve: bool,
    destroy: bool,
    delete_data: bool,
    targets: &[String],
) -> Result<(), Failure> {
    let mut ctx = Context::load(stack_args, aws_args).await?;
    ctx.delete_data |= delete_data;
    ctx.target(targets)?;
    let planned = ctx.plan(destroy, &BTreeMap::new()).await?;
    preview_plan(&planned.plan);
    refuse_conflicts(&planned.plan)?;
    if planned.plan.has_changes() && !auto_approve && !confirm(destroy)? {
        return Err(Failure::Other("not confirmed; nothing was changed".into()));
    }
    execute_plan(&planned.plan, &ctx.aws, &ctx.loaded, planned.refs).await
}

/// Carries out a plan with Ctrl-C handling and the final report.
async fn execute_plan(
    plan: &Plan,
    aws: &Aws,
    loaded: &LoadedStack,
    refs: Refs,
) -> Result<(), Failure> {
    if !plan.has_changes() {
        if json_output() {
            let report = apply::Report {
                outcomes: vec![],
                interrupted: false,
            };
            println!("{}", to_json(&report::apply_report(plan, &report)));
        }
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nInterrupt: finishing the changes in flight, starting no new one…");
            flag.store(true, Ordering::SeqCst);
        }
    });
    let provider = AwsProvider {
        aws: aws.clone(),
        stack: loaded.stack.stack.clone(),
        environment: loaded.stack.environment.clone(),
        ownership: spec::ownership_tags(&loaded.stack),
    };
    let report = apply::execute(plan, &provider, &StderrReporter, refs, stop)
        .await
        .map_err(Failure::Other)?;
    eprint!("\n{}", output::report_text(&report));
    if json_output() {
        println!("{}", to_json(&report::apply_report(plan, &report)));
    }
    if report.succeeded() {
        Ok(())
    } else {
        Err(Failure::Incomplete {
            interrupted: report.interrupted,
        })
    }
}

async fn import(
    stack_args: &StackArgs,
    aws_args: &AwsArgs,
    address: &str,
    id: &str,
) -> Result<(), Failure> {
    let addr: Address = address.parse().map_err(Failure::Other)?;
    let ctx = Context::load(stack_args, aws_args).await?;
    if !ctx.built.desired.iter().any(|d| d.address == addr) {
        return Err(Failure::Other(format!(
            "{addr} is not defined in {}: add it to the stack first, then import",
            stack_args.file().display()
        )));
    }
    if ctx
        .loaded
        .stack
        .imports
        .iter()
        .any(|i| i.address == address)
    {
        return Err(Failure::Other(format!(
            "{} already has an import for {addr}",
            stack_args.file().display()
        )));
    }
    let extra: BTreeMap<Address, String> = [(addr.clone(), id.to_string())].into();
    let planned = ctx.plan(false, &extra).await?;
    if let Some(c) = planned
        .plan
        .conflicts
        .iter()
        .find(|c| c.address == addr && c.id == id)
    {
        return Err(Failure::Refused(format!(
            "{}; {} expects {}",
            c.message,
            addr.kind,
            addr.kind.import_id_hint()
        )));
    }
    if let Some(c) = planned.plan.changes.iter().find(|c| c.address == addr) {
        if c.cause != Some(crate::plan::Cause::Import) {
            return Err(Failure::Refused(format!(
                "{addr} is already managed by this stack (or nothing matches {id}); no import is needed"
            )));
        }
    }
    append_import(&stack_args.file(), address, id)?;
    println!(
        "Added to {}: import {addr} = {id}",
        stack_args.file().display()
    );
    print!("{}", output::plan_text(&planned.plan, style()));
    println!(
        "\nRun `deploy apply` to adopt it (the apply adds the ownership tags and converges it)."
    );
    Ok(())
}

/// Adds an `imports` entry to the stack file as text, keeping the user's formatting and
/// comments.
fn append_import(file: &Path, address: &str, id: &str) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", file.display())))?;
    let entry = format!("  - address: {address}\n    id: {}\n", yaml_quote(id));
    let lines: Vec<&str> = text.lines().collect();
    let new_text = match lines.iter().position(|l| l.starts_with("imports:")) {
        None => {
            let sep = if text.ends_with('\n') || text.is_empty() { "" } else { "\n" };
            format!("{text}{sep}\nimports:\n{entry}")
        }
        Some(i) if lines[i].trim_end() == "imports:" => {
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out.insert(i + 1, entry.trim_end().to_string());
            out.join("\n") + "\n"
        }
        Some(i) if lines[i].trim_end() == "imports: []" => {
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[i] = format!("imports:\n{}", entry.trim_end());
            out.join("\n") + "\n"
        }
        Some(_) => {
            return Err(Failure::Other(format!(
                "{} writes `imports:` in a form this command cannot extend; add `- address: {address}` / `id: {id}` to it by hand",
                file.display()
            )))
        }
    };
    // The result must still load, or the file is left as it was.
    spec::parse(file, &new_text)?;
    std::fs::write(file, new_text)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", file.display())))
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
