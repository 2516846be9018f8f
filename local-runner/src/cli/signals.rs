//! The stop signals, SIGINT (a terminal's Ctrl-C) and SIGTERM, as one stream: the run and the
//! watch both stop on either, and both treat a second one as more urgent than the first.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Each SIGINT or SIGTERM from now on, by the name a person knows it by.
///
/// # Errors
/// The operating system's error when a signal cannot be listened for.
pub(super) fn listen() -> std::io::Result<mpsc::Receiver<&'static str>> {
    let (mut interrupt, mut term) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            };
            if tx.send(name).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
