//! For runtimes, not handlers: what [`crate::lambda::run`] and `local-runner` are built from, for
//! whoever writes a runtime of their own (another local runner, a test harness, a custom `main`).
//! A handler author needs nothing here.
//!
//! - [`process_batch`] runs a batch through a handler, as [`Run`] says (deadline, reserve,
//!   concurrency, stop signals), and answers a [`BatchReport`]; it takes the [`Records`] with
//!   their bodies apart, each body handed to the handler's `parse` by value;
//! - [`retry`] plans each failed message's next visibility (the back-off);
//! - [`telemetry`] sets up the log lines both runtimes write, and [`emf`] the Lambda metrics;
//! - the `*_VAR` constants name the variables [`crate::options::Options`] reads.

pub mod emf;
pub mod retry;
pub mod telemetry;

pub use crate::batch::{BatchReport, Records, Run, TimedOut, is_fifo, panic_text, process_batch};
pub use crate::options::{
    CONCURRENCY_VAR, DEADLINE_RESERVE_VAR, FAIL_ON_FULL_BATCH_FAILURE_VAR, FIFO_ON_FAILURE_VAR,
    MAX_CONCURRENCY, MAX_DEADLINE_RESERVE_MS,
};

use crate::context::Context;

/// Reports the message of `context` as a duplicate of one already handled: a layer that answers
/// `Ok` without running the handler (idempotency) says so here, and the message's outcome is
/// `duplicate` rather than `ok` (its log line, the batch's counts, the metrics). The message is
/// still a success: it is deleted, and it does not stop its FIFO group. Only an `Ok` answer is
/// affected: a failure is a failure whatever was marked.
pub fn mark_duplicate(context: &Context) {
    context.mark_duplicate();
}
