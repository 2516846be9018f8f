//! `--watch`: the edit → run loop. This process runs no handler: it runs the same command without
//! `--watch` as a child, watches the workspace's sources, and on a change rebuilds with cargo and
//! swaps the child for one running the new build.
//!
//! Nothing is lost in a swap: the old run is told to stop as SIGTERM tells it (no new receives;
//! started messages finish and are deleted, held ones are released), while the new one starts
//! polling at once. Each message is received by one of them, and one that the old run releases
//! is received again as a new delivery, as it would be after any stop. For the seconds the old
//! run takes to stop, both hold messages: up to twice `--max-in-flight`.
//!
//! What is built is this binary's package and bin, with the features it requires, and the
//! `--lambda` binaries of the workspace beside it, in this binary's profile; `--watch-cargo-args`
//! names other cargo arguments (`--workspace --bins`). A restart happens only when one of the
//! binaries that run was rebuilt.
//!
//! A build that fails leaves the old run going, and the compiler's errors on the terminal. A run
//! that ends by itself ends the watch with its status when it exits 0 (`--exit-when-idle`); when
//! it fails (a handler whose `build()` fails after an edit), the watch waits for the next change.

mod build;
mod sources;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use self::sources::settle;

use crate::error::RunnerError;

/// What the watch builds and runs, found once at start from `cargo metadata`.
#[derive(Debug)]
pub(crate) struct Watch {
    /// The cargo command line (after `cargo`) that rebuilds what runs.
    build: Vec<String>,
    /// The target folder the binaries are in, when it is not the workspace's default.
    target_dir: Option<PathBuf>,
    /// Folders whose files are sources: the workspace members'.
    sources: Vec<PathBuf>,
    /// Folders never watched: the target folder.
    ignored: PathBuf,
    /// The executables whose rebuild means a new run: this one, and the `--lambda` binaries.
    binaries: BTreeSet<PathBuf>,
    /// This executable, by the path it was started from: a rebuild replaces the file, and the
    /// next run starts from the new one (`current_exe` would name the deleted one).
    exe: PathBuf,
    /// This process's own arguments without `--watch` and `--watch-cargo-args`.
    run_args: Vec<OsString>,
}

impl Watch {
    /// Runs the command without `--watch` and swaps it for a new build on each change, until a
    /// run ends by itself with success, or a signal stops the runs; then waits for every run to
    /// exit and returns the last one's status.
    ///
    /// # Errors
    /// [`RunnerError::Watch`] when the sources cannot be watched or a run cannot be started.
    pub(crate) async fn run(self) -> Result<ExitStatus, RunnerError> {
        let mut signals = super::signals::listen()
            .map_err(|source| RunnerError::Watch { what: "cannot listen for signals".into(), source })?;
        let (changes_tx, mut changes) = mpsc::unbounded_channel::<PathBuf>();
        let _watcher = self.watch_sources(changes_tx)?;
        tracing::info!(
            sources = ?self.sources,
            build = %format!("cargo {}", self.build.join(" ")),
            "watching: a change rebuilds and restarts the run"
        );
        // The first run is of the sources as they are now: built first, as after a change.
        let started = Instant::now();
        match self.rebuild().await {
            Ok(_) => tracing::info!(build_ms = elapsed_ms(started), "built"),
            Err(failed) => tracing::warn!(reason = %failed, "the build failed; running the last build"),
        }
        let mut current = Some(self.start()?);
        let mut old_runs: Vec<Child> = Vec::new();
        let mut stopping = false;
        let status = loop {
            let exited = async {
                match current.as_mut() {
                    Some(child) => wait(child).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(_) = signals.recv() => {
                    // Each signal reaches every run as SIGTERM: the first stops a run gracefully,
                    // a second quits it at once, as on a terminal.
                    stopping = true;
                    current.iter_mut().chain(old_runs.iter_mut()).for_each(terminate);
                    if current.is_none() {
                        break None;
                    }
                }
                status = exited => {
                    if stopping || status.success() {
                        break Some(status);
                    }
                    current = None;
                    tracing::warn!(%status, "the run ended; waiting for a change to rebuild and start it again");
                }
                Some(path) = changes.recv(), if !stopping => {
                    let path = settle(path, &mut changes).await;
                    old_runs.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
                    tracing::info!(changed = %path.display(), "rebuilding");
                    let started = Instant::now();
                    let rebuilt = tokio::select! {
                        rebuilt = self.rebuild() => rebuilt,
                        Some(_) = signals.recv() => {
                            // A stop does not wait for a build: cargo is stopped with it.
                            stopping = true;
                            current.iter_mut().chain(old_runs.iter_mut()).for_each(terminate);
                            if current.is_none() {
                                break None;
                            }
                            continue;
                        }
                    };
                    match rebuilt {
                        Ok(false) if current.is_some() => {
                            tracing::info!(build_ms = elapsed_ms(started), "built; the binaries did not change");
                        }
                        Ok(_) => {
                            if let Some(mut old) = current.take() {
                                terminate(&mut old);
                                old_runs.push(old);
                            }
                            current = Some(self.start()?);
                            tracing::info!(build_ms = elapsed_ms(started), "restarted with the new build");
                        }
                        Err(failed) => {
                            tracing::warn!(reason = %failed, "the build failed; the run goes on with the last build");
                        }
                    }
                }
            }
        };
        // Runs still stopping finish their messages before the watch returns.
        for old in &mut old_runs {
            wait(old).await;
        }
        Ok(status.unwrap_or_else(|| std::os::unix::process::ExitStatusExt::from_raw(0)))
    }

    /// Starts the run: this executable with the same arguments, without `--watch`, in its own
    /// process group so that a terminal's Ctrl-C reaches it once, through the watch.
    fn start(&self) -> Result<Child, RunnerError> {
        Command::new(&self.exe)
            .args(&self.run_args)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| RunnerError::Watch { what: "cannot start the run".into(), source })
    }
}

/// SIGTERM to a run: it stops as on a terminal's Ctrl-C.
fn terminate(child: &mut Child) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

async fn wait(child: &mut Child) -> ExitStatus {
    // An error here means the child is already reaped: call it a failure.
    child.wait().await.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(1 << 8))
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
