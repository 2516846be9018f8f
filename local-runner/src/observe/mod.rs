//! What a run tells the outside: counters and the summary ([`Stats`], [`Summary`]), a stats line
//! and progress while it runs, and Prometheus metrics.

pub(crate) mod metrics;
mod report;
mod stats;

pub(crate) use report::report;
pub(crate) use stats::Stats;
pub use stats::Summary;
