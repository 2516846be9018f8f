//! Execution environments: processes of the bootstrap, each with its own Runtime API, started
//! on first use and reused, at most the function's concurrency at once.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use tokio_util::sync::CancellationToken;

use super::LambdaSpec;
use super::counts::Logged;
use super::environment::{Environment, InvokeError};
use super::runtime_api::{FunctionError, Reply};
use super::scaling::Scaling;

/// Execution environments, started on first use and reused: five at first, up to
/// `max_concurrency` as the event source mapping scales (`scaling`).
pub struct LambdaPool {
    spec: Arc<LambdaSpec>,
    slots: Scaling,
    idle: Mutex<Vec<Environment>>,
    started: Mutex<usize>,
    shutdown: CancellationToken,
}

impl LambdaPool {
    /// A pool of at most `max_concurrency` environments for `spec`; their servers stop when
    /// `shutdown` is cancelled.
    #[must_use]
    pub fn new(spec: LambdaSpec, max_concurrency: NonZeroUsize, shutdown: CancellationToken) -> Self {
        let slots = Scaling::new(max_concurrency.get());
        Self { spec: Arc::new(spec), slots, idle: Mutex::default(), started: Mutex::new(0), shutdown }
    }

    /// Starts one environment and waits for its process to finish its init (ask for an
    /// invocation), then keeps it for the first invocation: a function that cannot start is
    /// known before a single message is received for it.
    ///
    /// # Errors
    /// [`InvokeError`] for which [`InvokeError::is_start_failure`] holds.
    pub async fn warm_up(&self) -> Result<(), InvokeError> {
        let mut environment = self.new_environment().await?;
        environment.warm_up().await?;
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(environment);
        Ok(())
    }

    async fn new_environment(&self) -> Result<Environment, InvokeError> {
        let index = {
            let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
            *started += 1;
            *started
        };
        Environment::start(index, Arc::clone(&self.spec), self.shutdown.clone()).await
    }

    /// Invokes the function once with `event`, in an idle environment or a new one.
    ///
    /// # Errors
    /// [`InvokeError`] when the function timed out, crashed, or could not start. A function that
    /// ran and posted an error is `Ok(Err(FunctionError))`.
    pub async fn invoke(&self, event: Bytes) -> Result<Result<Bytes, FunctionError>, InvokeError> {
        self.invoke_counted(event).await.map(|(reply, _)| reply)
    }

    /// [`LambdaPool::invoke`], with the counts the function logged for the invocation (its
    /// `batch done` line), when it logged them.
    ///
    /// # Errors
    /// As [`LambdaPool::invoke`].
    pub async fn invoke_counted(
        &self,
        event: Bytes,
    ) -> Result<(Result<Bytes, FunctionError>, Logged), InvokeError> {
        let _slot = self.slots.acquire().await.map_err(|_| InvokeError::PoolClosed)?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut environment = match idle {
            Some(environment) => environment,
            None => self.new_environment().await?,
        };
        let result = environment.invoke(event).await;
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(environment);
        result.map(|(reply, counts)| {
            let reply = match reply {
                Reply::Response(body) => Ok(body),
                Reply::Error(error) => Err(error),
            };
            (reply, counts)
        })
    }
}
