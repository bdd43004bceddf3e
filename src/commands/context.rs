//! What every command that talks to AWS starts from: the validated stack, the connection, the
//! lookups and the desired state ([`Context::load`]), and the plan made from them against live
//! AWS ([`Context::plan`]).

use crate::apply::Refs;
use crate::aws::Aws;
use crate::cli::{AwsArgs, StackArgs};
use crate::diff::{self, DiffInput, World};
use crate::model::{Address, Attrs, Lookups};
use crate::observe;
use crate::plan::Plan;
use crate::render::{requests, Templates};
use crate::run::Failure;
use crate::spec::{self, Built, LoadedStack};
use std::collections::BTreeMap;

pub fn load_valid(args: &StackArgs) -> Result<LoadedStack, Failure> {
    let file = args.file();
    if !file.exists() {
        return Err(Failure::Other(missing_stack_file(args)));
    }
    let mut loaded = spec::load(&file)?;
    spec::environments::select(&mut loaded, args.env.as_deref())?;
    loaded.validate()?;
    Ok(loaded)
}

/// The stack's desired state before any lookup (what `validate`, `policy` and `status` work
/// from, and what a plan checks offline first): lookups are marked placeholders in `region`,
/// else the stack's region; every name follows from the stack alone.
pub fn build_offline(
    loaded: &LoadedStack,
    region: Option<&str>,
    templates: &Templates,
) -> Result<(Lookups, Built), Failure> {
    let region = region
        .or(loaded.stack.region.as_deref())
        .unwrap_or("<region>");
    let lookups = Lookups::placeholders(region);
    let built = spec::build_desired(loaded, &lookups, templates)?;
    Ok((lookups, built))
}

/// A stack file that is not there: which one was looked for, where the default is, and `-f`.
fn missing_stack_file(args: &StackArgs) -> String {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the current directory".into());
    let default = spec::DEFAULT_STACK_FILE;
    match &args.file_arg {
        Some(file) => format!(
            "the stack file {} does not exist{}. Check the path given with -f/--file; without \
             -f, deploy reads {default} in the current directory.",
            file.display(),
            if file.is_relative() {
                format!(" (relative to {cwd})")
            } else {
                String::new()
            }
        ),
        None => format!(
            "no stack file: without -f, deploy reads {default}, and {cwd} has none. Run deploy \
             from the directory that holds {default}, or name the stack file with -f FILE."
        ),
    }
}

pub fn refuse_conflicts(plan: &Plan) -> Result<(), Failure> {
    if plan.conflicts.is_empty() {
        Ok(())
    } else {
        Err(Failure::Refused(format!(
            "{} ownership conflict(s): the stack names resources it does not own (see above); nothing was changed",
            plan.conflicts.len()
        )))
    }
}

/// Everything a plan is made from.
pub struct Context {
    pub loaded: LoadedStack,
    pub aws: Aws,
    pub lookups: Lookups,
    pub built: Built,
    /// With `--target`: the targeted addresses and what they depend on.
    pub targeted: Option<std::collections::BTreeSet<Address>>,
    /// Deletions may take data-bearing resources (`--delete-data` or `disposable: true`).
    pub delete_data: bool,
    /// The live state, read with the lookups (for commands that plan).
    pub prefetched: Option<observe::Prefetched>,
    /// Hosts of this environment no certificate of the HTTPS listener covers.
    pub host_warnings: Vec<String>,
    /// The environment's lock, for commands that change it ([`Context::load_locked`]):
    /// held until the context is dropped.
    pub lock: Option<crate::lock::Guard>,
}

pub struct Planned {
    pub plan: Plan,
    pub refs: Refs,
    /// What the plan was made from.
    pub world: World,
}

impl Context {
    /// `will_plan`: the command plans, so the live state is read together with the lookups
    /// (each read starts as soon as what it needs is known).
    pub async fn load(
        stack_args: &StackArgs,
        aws_args: &AwsArgs,
        will_plan: bool,
        targets: &[String],
    ) -> Result<Context, Failure> {
        Self::load_from(
            load_valid(stack_args)?,
            stack_args,
            aws_args,
            will_plan,
            targets,
            None,
        )
        .await
    }

    /// Like `load` for a command that plans and changes the environment: takes its lock
    /// (for `operation`) before the live state is read, so what it plans from cannot move
    /// under it.
    pub async fn load_locked(
        stack_args: &StackArgs,
        aws_args: &AwsArgs,
        targets: &[String],
        lock: (crate::lock::Operation, &crate::lock::LockOptions),
    ) -> Result<Context, Failure> {
        Self::load_from(
            load_valid(stack_args)?,
            stack_args,
            aws_args,
            true,
            targets,
            Some(lock),
        )
        .await
    }

    /// [`Context::load`] of a stack already loaded (and checked) by [`load_valid`], taking
    /// the environment's lock first when `lock` says for what.
    pub async fn load_from(
        mut loaded: LoadedStack,
        stack_args: &StackArgs,
        aws_args: &AwsArgs,
        will_plan: bool,
        targets: &[String],
        lock: Option<(crate::lock::Operation, &crate::lock::LockOptions)>,
    ) -> Result<Context, Failure> {
        // Offline checks first: bad input never reaches AWS.
        let templates = Templates::new(&stack_args.templates);
        let (offline, mut offline_built) = build_offline(&loaded, None, &templates)?;
        requests::check_sizes(&loaded, &offline_built, &offline)?;
        // With --target, only the targets and what they depend on are read ahead.
        if let Some(closure) = target_closure(&offline_built.desired, targets)? {
            offline_built
                .desired
                .retain(|d| closure.contains(&d.address));
        }

        let region = aws_args
            .region
            .clone()
            .or_else(|| loaded.stack.region.clone());
        let aws = Aws::connect(aws_args.profile.as_deref(), region.as_deref()).await?;
        let guard = match lock {
            Some((op, opts)) => {
                let s = &loaded.stack;
                Some(crate::lock::take_for(&aws, &s.stack, &s.environment, op, opts).await?)
            }
            None => None,
        };
        let (lookups, prefetched) = if will_plan {
            let names = observe::names(&loaded, &offline, offline_built, &aws.region, &templates)?;
            let (l, p) = observe::Prefetched::read(&aws, &loaded, &templates, names).await?;
            (l, Some(p))
        } else {
            (observe::lookups(&aws, &loaded.stack).await?, None)
        };
        let mut host_warnings = Vec::new();
        if let Some(p) = &prefetched {
            let listener = lookups.load_balancer.https_listener_arn.as_deref();
            crate::priorities::allocate(&aws, &mut loaded.stack, listener, p).await?;
            // Another environment's hosts are derived: is each on a certificate of the listener?
            let hosts: Vec<String> = (loaded.stack.listener_rules.values())
                .filter(|r| r.movable)
                .flat_map(|r| r.host_headers.iter().cloned())
                .collect();
            if let Some(listener) = listener {
                host_warnings =
                    crate::aws::certificates::host_warnings(&aws, listener, &hosts).await?;
            }
        }
        tracing::info!(
            account = %lookups.account_id,
            region = %lookups.region,
            vpc = %lookups.vpc_id,
            load_balancer = %lookups.load_balancer.dns_name,
            external_secrets = lookups.secrets.len(),
            "lookups done"
        );
        let built = spec::build_desired(&loaded, &lookups, &templates)?;
        requests::check_sizes(&loaded, &built, &lookups)?;
        let loaded_disposable = loaded.stack.disposable;
        let mut ctx = Context {
            loaded,
            aws,
            lookups,
            built,
            targeted: None,
            delete_data: loaded_disposable,
            prefetched,
            host_warnings,
            lock: guard,
        };
        ctx.target(targets)?;
        Ok(ctx)
    }

    /// Narrows the desired state to the targets and what they depend on.
    fn target(&mut self, targets: &[String]) -> Result<(), Failure> {
        if let Some(closure) = target_closure(&self.built.desired, targets)? {
            self.built.desired.retain(|d| closure.contains(&d.address));
            self.targeted = Some(closure);
        }
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

    pub async fn plan(
        &self,
        destroy: bool,
        extra_imports: &BTreeMap<Address, String>,
    ) -> Result<Planned, Failure> {
        let (aws, stack, desired) = (&self.aws, &self.loaded.stack, &self.built.desired);
        let world = async {
            Ok::<_, Failure>(match &self.prefetched {
                Some(p) => p.world_for(aws, stack, &self.lookups, desired).await?,
                None => observe::observe(aws, stack, &self.lookups, desired).await?,
            })
        };
        // Read while the live state is: it waits for nothing the plan reads.
        let reachability = async {
            match destroy {
                true => Ok(vec![]),
                false => self.start_reachability_warnings().await,
            }
        };
        let (world, reachability) = tokio::try_join!(world, reachability)?;
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
            plan.warnings.extend(self.host_warnings.iter().cloned());
            plan.warnings.extend(reachability);
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
        if !destroy && self.targeted.is_none() && plan.has_changes() {
            plan.deregister_revisions = self.revisions_to_deregister(&plan).await?;
        }
        if !destroy {
            plan.reload_services = crate::reloads::services_of_families(&self.built.desired);
        }
        // Ids of what exists and will be kept, for the executor to start from.
        let mut refs = spec::deterministic_ids(&self.loaded.stack, &self.lookups);
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

impl Context {
    /// The live reachability rule (DL075, src/lint_live.rs) as plan warnings: can the tasks
    /// in the looked-up subnets reach what they call at start?
    async fn start_reachability_warnings(&self) -> Result<Vec<String>, Failure> {
        let inputs = crate::lint_live::LiveInputs::from_desired(&self.built.desired);
        let found =
            crate::aws::network_audit::start_reachability(&self.aws, &self.lookups, &inputs)
                .await?;
        Ok(found
            .into_iter()
            .map(|f| format!("{} {}: {}", f.rule, f.subject, f.message))
            .collect())
    }

    /// Revision hygiene: the owned revisions of each family beyond `keep_revisions` that the
    /// apply of `plan` deregisters once its rollouts completed.
    async fn revisions_to_deregister(
        &self,
        plan: &crate::plan::Plan,
    ) -> Result<Vec<String>, Failure> {
        let keep = self.loaded.stack.keep_revisions.max(1) as usize;
        let mut in_use = std::collections::BTreeSet::new();
        for c in &plan.changes {
            if let Some(o) = c
                .observed
                .as_ref()
                .filter(|_| c.address.kind == crate::model::Kind::EcsService)
            {
                for key in ["deployment_revisions", "task_definition_arn"] {
                    if let Some(list) = o.handles.get(key) {
                        in_use.extend(
                            list.split(',')
                                .filter(|a| !a.is_empty())
                                .map(str::to_string),
                        );
                    }
                }
            }
        }
        let mut out = Vec::new();
        for d in &self.built.desired {
            let Attrs::TaskDefinition(td) = &d.attrs else {
                continue;
            };
            let registers_new = plan.changes.iter().any(|c| {
                c.address == d.address
                    && (c.new_revision || c.action == crate::plan::Action::Create)
            });
            let kept = crate::rollout::revisions_kept(keep, registers_new);
            let facts = crate::aws::ecs_rollouts::revision_facts(
                &self.aws,
                &td.family,
                kept,
                &self.loaded.stack.stack,
                &self.loaded.stack.environment,
            )
            .await
            .map_err(|e| e.at(&d.address))?;
            out.extend(crate::rollout::revisions_to_deregister(
                &facts,
                keep,
                registers_new,
                &in_use,
            ));
        }
        Ok(out)
    }
}

/// The targets and what they depend on; `None` without targets.
fn target_closure(
    desired: &[crate::model::Desired],
    targets: &[String],
) -> Result<Option<std::collections::BTreeSet<Address>>, Failure> {
    if targets.is_empty() {
        return Ok(None);
    }
    let addresses = targets
        .iter()
        .map(|t| t.parse::<Address>().map_err(Failure::Other))
        .collect::<Result<Vec<_>, _>>()?;
    crate::plan::target_closure(desired, &addresses)
        .map(Some)
        .map_err(Failure::Other)
}
