//! Listener rule priorities of environments other than the stack's own. Each such rule starts
//! at a priority derived from the environment's name (`spec::environments::rule_priority`);
//! when a rule that is not this environment's holds it, the plan moves along the
//! environment's sequence to the first priority free or already this rule's, so two
//! environments (or a rule added by hand) never take each other's priority. Only that case
//! costs calls (DescribeRules, DescribeTags): the read ahead already saw who holds the derived
//! priority.

use crate::aws::{elbv2_targets, Aws, AwsError};
use crate::model::{Address, Kind, Ownership, TAG_ADDRESS};
use crate::observe::Prefetched;
use crate::spec::environments::allocate_priority;
use crate::spec::Stack;
use std::collections::BTreeMap;

/// Moves each movable rule of `stack` whose priority a rule not its own holds on `listener`.
pub async fn allocate(
    aws: &Aws,
    stack: &mut Stack,
    listener: Option<&str>,
    prefetched: &Prefetched,
) -> Result<(), AwsError> {
    let Some(listener) = listener else {
        return Ok(());
    };
    let (name, env) = (stack.stack.clone(), stack.environment.clone());
    let mut listed: Option<Vec<(i64, crate::model::Tags)>> = None;
    for (key, rule) in stack.listener_rules.iter_mut().filter(|(_, r)| r.movable) {
        let address = Address::new(Kind::ListenerRule, key);
        let wanted = rule.priority.to_string();
        let held_by_other = prefetched
            .found(&address)
            .iter()
            .any(|o| o.attrs.aws_name() == wanted && o.ownership(&name, &env) != Ownership::Owned);
        if !held_by_other {
            continue;
        }
        if listed.is_none() {
            listed = Some(elbv2_targets::rule_priorities(aws, listener).await?);
        }
        let me = address.to_string();
        let held: BTreeMap<i64, bool> = listed
            .iter()
            .flatten()
            .map(|(p, tags)| {
                let ours = Ownership::judge(tags, &name, &env) == Ownership::Owned
                    && tags.get(TAG_ADDRESS) == Some(&me);
                (*p, ours)
            })
            .collect();
        match allocate_priority(rule.priority, &held) {
            Some(p) => {
                tracing::info!(
                    rule = %address,
                    from = rule.priority,
                    to = p,
                    "listener rule priority held by another rule: moved"
                );
                rule.priority = p;
            }
            None => {
                return Err(AwsError::other(
                    "elasticloadbalancing",
                    "DescribeRules",
                    format!("{address}: every priority of this environment's sequence is held on the listener"),
                ))
            }
        }
    }
    Ok(())
}
