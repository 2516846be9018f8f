//! One execution environment: a bootstrap process, its own Runtime API server, reused between
//! invocations, killed and started again after a timeout or a crash, as Lambda does.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::LambdaSpec;
use super::counts::{Logged, LoggedCounts, batch_done};
use super::peer::{OwnProcessOnly, Owner};
use super::runtime_api::{ApiState, Invocation, Reply, router};

/// Why an invocation produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function ran past its timeout; the process was killed.
    #[error("timed out after {0:?}; the process was killed and will be started again")]
    Timeout(Duration),
    /// The process exited while an invocation was running (or before it took one).
    #[error("the process exited ({status}){init}")]
    Crashed {
        /// How it exited.
        status: String,
        /// What it posted to `init/error`, if anything.
        init: String,
    },
    /// The process exited (or posted `init/error`) before it took its invocation: the function
    /// cannot start, and every invocation would end the same way.
    #[error("the process exited before taking an invocation ({status}){init}")]
    Init {
        /// How it exited.
        status: String,
        /// What it posted to `init/error`, if anything.
        init: String,
    },
    /// The process did not ask for an invocation within Lambda's init limit.
    #[error("it did not ask for an invocation within {0:?} of starting (Lambda's init limit)")]
    InitTimeout(Duration),
    /// The process could not be started.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The bootstrap path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pool's slots are closed: its environments are shut down, and none starts again.
    #[error("the function's execution environments are shut down")]
    PoolClosed,
    /// The environment's Runtime API cannot listen on 127.0.0.1.
    #[error("cannot listen for the function's Runtime API on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
}

impl InvokeError {
    /// Whether the function cannot start at all (not a failure of one invocation): a run then
    /// stops rather than send message after message to a function that never runs them.
    #[must_use]
    pub fn is_start_failure(&self) -> bool {
        matches!(
            self,
            Self::Init { .. }
                | Self::InitTimeout(_)
                | Self::Spawn { .. }
                | Self::Listen(_)
                | Self::PoolClosed
        )
    }
}

/// How long a new process may take to ask for its first invocation: Lambda's limit on the init
/// phase of an on-demand function.
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Environment {
    index: usize,
    address: SocketAddr,
    state: Arc<ApiState>,
    invocations: mpsc::Sender<Invocation>,
    child: Option<Child>,
    /// The process the Runtime API answers (and the processes it starts).
    owner: Arc<Owner>,
    spec: Arc<LambdaSpec>,
    /// The counts its `batch done` lines gave, by request id.
    logged: Arc<LoggedCounts>,
}

impl Environment {
    /// Binds this environment's Runtime API on 127.0.0.1 and serves it until `shutdown`.
    pub(crate) async fn start(
        index: usize,
        spec: Arc<LambdaSpec>,
        shutdown: CancellationToken,
    ) -> Result<Self, InvokeError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(InvokeError::Listen)?;
        let address = listener.local_addr().map_err(InvokeError::Listen)?;
        let owner = Arc::new(Owner::default());
        let listener = OwnProcessOnly { inner: listener, owner: Arc::clone(&owner) };
        let (invocations, next) = mpsc::channel(1);
        let state = Arc::new(ApiState {
            function_arn: spec.function_arn(),
            next: tokio::sync::Mutex::new(next),
            pending: Mutex::default(),
            init_error: Mutex::default(),
            asked: tokio::sync::Notify::new(),
        });
        let app = router(Arc::clone(&state));
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
            if let Err(err) = served {
                tracing::error!(error = %err, "the Runtime API server stopped");
            }
        });
        Ok(Self { index, address, state, invocations, child: None, owner, spec, logged: Arc::default() })
    }

    /// Starts the process and waits until it asks for its first invocation: its init is done.
    ///
    /// # Errors
    /// [`InvokeError::Spawn`], [`InvokeError::Init`] (it exited first) or
    /// [`InvokeError::InitTimeout`].
    pub(crate) async fn warm_up(&mut self) -> Result<(), InvokeError> {
        self.ensure_running()?;
        let child = self.child.as_mut().expect("ensure_running started the process");
        let ended = tokio::select! {
            () = self.state.asked.notified() => return Ok(()),
            () = tokio::time::sleep(INIT_TIMEOUT) => None,
            status = child.wait() => Some(status.map_or_else(|e| e.to_string(), |s| s.to_string())),
        };
        self.reset(None).await;
        Err(match ended {
            None => InvokeError::InitTimeout(INIT_TIMEOUT),
            Some(status) => InvokeError::Init { status, init: self.init_error() },
        })
    }

    /// Sends one event to the function and waits for its answer, at most the function timeout;
    /// with the answer, the counts the function logged for it ([`super::counts`]).
    pub(crate) async fn invoke(&mut self, event: Bytes) -> Result<(Reply, Logged), InvokeError> {
        self.ensure_running()?;
        let request_id = request_id();
        let deadline_ms = SystemTime::now()
            .checked_add(self.spec.timeout)
            .and_then(|deadline| deadline.duration_since(UNIX_EPOCH).ok())
            .map_or(u64::MAX, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (reply_tx, reply_rx) = oneshot::channel();
        self.state
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id.clone(), reply_tx);
        let invocation = Invocation { request_id: request_id.clone(), event, deadline_ms };
        // Capacity 1 and one invocation at a time: this never waits. The receiver lives in this
        // environment's state, so the send fails only if that state is gone.
        if self.invocations.send(invocation).await.is_err() {
            self.state.take_pending(&request_id);
            return Err(InvokeError::Crashed {
                status: "its invocation queue is closed".into(),
                init: String::new(),
            });
        }

        let child = self.child.as_mut().expect("ensure_running started the process");
        let timeout = self.spec.timeout;
        enum Ended {
            Replied(Reply),
            TimedOut,
            Exited(String),
        }
        // Biased: a function that posts its answer and then exits has answered. Both branches are
        // ready by the time the exit is seen (the reply is sent before curl gets its 202), and an
        // unbiased select would call it a crash half the time.
        let ended = tokio::select! {
            biased;
            reply = reply_rx => match reply {
                Ok(reply) => Ended::Replied(reply),
                Err(_) => Ended::Exited("the invocation was dropped".into()),
            },
            () = tokio::time::sleep(timeout) => Ended::TimedOut,
            status = child.wait() => Ended::Exited(status.map_or_else(|e| e.to_string(), |s| s.to_string())),
        };
        match ended {
            Ended::Replied(reply) => Ok((reply, self.logged.take_logged(&request_id).await)),
            Ended::TimedOut => {
                self.reset(Some(&request_id)).await;
                Err(InvokeError::Timeout(timeout))
            }
            Ended::Exited(status) => {
                let never_taken = self.reset(Some(&request_id)).await;
                let init = self.init_error();
                Err(if never_taken {
                    InvokeError::Init { status, init }
                } else {
                    InvokeError::Crashed { status, init }
                })
            }
        }
    }

    /// What the process posted to `init/error`, as the tail of an error's text.
    fn init_error(&self) -> String {
        let init = self.state.init_error.lock().unwrap_or_else(PoisonError::into_inner).take();
        init.map(|e| format!("; init error: {}", crate::observe::printable(&e, 300))).unwrap_or_default()
    }

    /// Starts the bootstrap unless it is running.
    fn ensure_running(&mut self) -> Result<(), InvokeError> {
        if let Some(child) = &mut self.child {
            match child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => {
                    tracing::warn!(environment = self.index, %status, "the function process had exited; starting it again")
                }
                Err(err) => {
                    tracing::warn!(environment = self.index, error = %err, "cannot tell whether the function process runs; starting it again")
                }
            }
        }
        let spec = &self.spec;
        let mut command = Command::new(&spec.bootstrap);
        command
            .env_clear()
            .envs(spec.process_environment(self.index, self.address))
            .current_dir(spec.bootstrap.parent().unwrap_or(std::path::Path::new(".")))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // For people, the function's lines are shown as this process shows its own, and never
        // across the status line; for tools they pass through as they are. Its stdout is read
        // either way, for the counts its `batch done` lines give.
        let shown = crate::observe::terminal::installed();
        command.stdout(Stdio::piped());
        if shown {
            command.stderr(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .map_err(|source| InvokeError::Spawn { path: spec.bootstrap.display().to_string(), source })?;
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(pass_lines(stdout, shown, Some(Arc::clone(&self.logged))));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(pass_lines(stderr, shown, None));
        }
        tracing::info!(environment = self.index, pid = child.id(), "function process started (cold start)");
        self.owner.set(child.id());
        self.child = Some(child);
        Ok(())
    }

    /// After a timeout or crash: kill the process, forget the invocation, empty the queue.
    /// Whether an invocation was still waiting there: the process never took it.
    async fn reset(&mut self, request_id: Option<&str>) -> bool {
        if let Some(mut child) = self.child.take() {
            self.owner.set(None);
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if let Some(request_id) = request_id {
            self.state.take_pending(request_id);
        }
        // An invocation the process never took would be handed to the next process: drop it.
        let mut never_taken = false;
        while self.state.next.lock().await.try_recv().is_ok() {
            never_taken = true;
        }
        never_taken
    }
}

/// A request id unique within this run, shaped like Lambda's UUIDs.
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    // splitmix64 over the time and a counter: unique, and spread over all 128 bits.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    #[allow(clippy::cast_possible_truncation)] // only the low bits of the time are wanted
    let (high, low) = (mix(nanos as u64), mix(n ^ (nanos as u64).rotate_left(32)));
    let hex = format!("{high:016x}{low:016x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Passes on each line the function writes, until it closes the pipe (it exited or was killed):
/// shown as this process shows its own (`shown`), or written to stdout as it is, whole lines at
/// a time; `batch done` lines are counted into `logged`, and the metrics of Embedded Metric Format
/// lines added to it.
async fn pass_lines(
    output: impl tokio::io::AsyncRead + Unpin,
    shown: bool,
    logged: Option<Arc<LoggedCounts>>,
) {
    use std::io::Write as _;
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(logged) = &logged
            && let Some((request_id, counts)) = batch_done(&line)
        {
            logged.record(request_id, counts);
        } else if let Some(logged) = &logged
            && let Some(metrics) = crate::observe::user_metrics::from_emf(&line)
        {
            logged.record_metrics(&metrics);
        }
        if shown {
            crate::observe::terminal::function_line(&line);
        } else {
            // One write of the whole line: the runner's own lines, written whole too, never cut
            // into it. A closed stdout leaves nothing to do.
            let mut whole = line.into_bytes();
            whole.push(b'\n');
            let _ = std::io::stdout().write_all(&whole);
        }
    }
}
