//! What a run tells the outside: counters and the summary (`Stats`, [`Summary`]), a stats line
//! and progress while it runs, and Prometheus metrics.

mod failures;
pub(crate) mod metrics;
mod printable;
mod report;
mod stats;
pub mod terminal;
pub(crate) mod user_metrics;

pub use printable::printable;
pub(crate) use report::report;
pub(crate) use stats::Stats;
/// The target of the `summary` event: a terminal shows a summary for people in its place.
pub const SUMMARY_TARGET: &str = "local_runner::summary";

pub use failures::{FailureGroup, OTHER_REASONS};
pub use stats::Summary;
