//! Running the real Lambda binary locally: execution environments (processes of the bootstrap,
//! each with its own Runtime API) behind an emulated SQS event source mapping.
//!
//! [`LambdaExecutor`] is what the consumer runs batches through: `local-runner --lambda`, the
//! tests and any embedding program pass it to the consumer's `run` and get the same semantics.

mod counts;
mod environment;
mod mapping;
mod peer;
mod pool;
mod runtime_api;
mod scaling;
mod spec;

/// The payload type of [`LambdaPool::invoke`].
pub use axum::body::Bytes;
pub use counts::{FunctionCounts, Logged};
pub use environment::InvokeError;
pub use mapping::{DEFAULT_MAX_CONCURRENCY, LambdaExecutor, Mapping};
pub use pool::LambdaPool;
pub use runtime_api::FunctionError;
pub use spec::LambdaSpec;
