//! One module per command, each a small function from parsed arguments to an outcome; what
//! several commands share (the planning context) lives in [`context`]. Exit codes are decided
//! in `run`, never here.

pub mod apply;
pub mod completions;
mod context;
pub mod destroy;
pub mod force_unlock;
pub mod import;
pub mod ls;
pub mod man;
pub mod plan;
pub mod policy;
pub mod reap;
pub mod render;
pub mod rollback;
pub mod show;
pub mod status;
pub mod validate;

pub use context::{build_offline, load_valid, refuse_conflicts, Context, Planned};
