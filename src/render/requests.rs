//! The RegisterTaskDefinition requests apply will send, built before anything exists (ids that
//! follow from names filled in), so `validate` can measure them against ECS's size limit and
//! `render` can write them out exactly.

use crate::aws::ecs;
use crate::model::{Address, Attrs, Lookups};
use crate::spec::{self, Built, LoadedStack, SpecErrors};

/// ECS refuses RegisterTaskDefinition requests over 64 KiB.
pub const TASK_DEFINITION_LIMIT: usize = 65536;

/// The RegisterTaskDefinition request apply would send for each task definition, tags
/// included: (address, family, request body).
pub fn task_definition_requests(
    loaded: &LoadedStack,
    built: &Built,
    lookups: &Lookups,
) -> Vec<(Address, String, serde_json::Value)> {
    let refs = spec::deterministic_ids(&loaded.stack, lookups);
    let ownership = spec::ownership_tags(&loaded.stack);
    built
        .desired
        .iter()
        .filter_map(|d| match d.attrs.with_known_ids(&refs) {
            Attrs::TaskDefinition(td) => {
                let body = ecs::register_request_json(&td, &d.create_tags(&ownership));
                Some((d.address.clone(), td.family, body))
            }
            _ => None,
        })
        .collect()
}

/// Sizes of the task definition requests, refusing any over the ECS limit.
pub fn check_sizes(
    loaded: &LoadedStack,
    built: &Built,
    lookups: &Lookups,
) -> Result<Vec<(String, usize)>, SpecErrors> {
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
        Err(SpecErrors(errors))
    }
}
