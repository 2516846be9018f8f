//! Which files are sources, and when a change to them is over.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Watch;
use crate::error::RunnerError;

/// A burst of writes (an editor's save, a `git checkout`) is one change: the build starts once
/// the sources have been quiet this long.
const QUIET: Duration = Duration::from_millis(300);

impl Watch {
    /// Watches every folder of the sources but the target folder and hidden ones, each on its
    /// own (a recursive watch would walk the target folder too), and sends the path of each
    /// change to a source file (`is_source`). A folder made later is not watched: restart the
    /// watch after adding one.
    pub(super) fn watch_sources(
        &self,
        changes: mpsc::UnboundedSender<PathBuf>,
    ) -> Result<notify::RecommendedWatcher, RunnerError> {
        let ignored = self.ignored.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
                return;
            }
            for path in event.paths {
                if is_source(&path, &ignored) {
                    let _ = changes.send(path);
                }
            }
        })
        .map_err(|err| RunnerError::Watch {
            what: "cannot watch the sources".into(),
            source: std::io::Error::other(err),
        })?;
        for root in &self.sources {
            for dir in folders(root, &self.ignored) {
                watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|err| RunnerError::Watch {
                    what: format!("cannot watch {}", dir.display()),
                    source: std::io::Error::other(err),
                })?;
            }
        }
        Ok(watcher)
    }
}

/// `root` and the folders under it, but the target folder and hidden ones.
fn folders(root: &Path, ignored: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_str().is_none_or(|n| n.starts_with('.') || n == "target");
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !hidden && !path.starts_with(ignored) {
                stack.push(path);
            }
        }
        found.push(dir);
    }
    found
}

/// A file whose change can change a build: a Rust file or a manifest, not in the target folder,
/// and not an editor's swap or backup file.
fn is_source(path: &Path, ignored: &Path) -> bool {
    if path.starts_with(ignored) {
        return false;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    // Hidden folders are not watched (see `folders`); hidden files are editors' (`.#work.rs`,
    // `.work.rs.swp`), as are backups (`work.rs~`).
    let temporary = name.starts_with('.') || name.ends_with('~');
    !temporary && (name.ends_with(".rs") || name == "Cargo.toml" || name == "Cargo.lock")
}

/// Waits until no change has come for [`QUIET`]; returns the last path changed.
pub(super) async fn settle(mut last: PathBuf, changes: &mut mpsc::UnboundedReceiver<PathBuf>) -> PathBuf {
    while let Ok(Some(path)) = tokio::time::timeout(QUIET, changes.recv()).await {
        last = path;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_rust_files_and_manifests_outside_the_target_and_hidden_folders() {
        let target = Path::new("/w/target");
        assert!(is_source(Path::new("/w/handler/src/work.rs"), target));
        assert!(is_source(Path::new("/w/handler/Cargo.toml"), target));
        assert!(is_source(Path::new("/w/Cargo.lock"), target));
        assert!(!is_source(Path::new("/w/target/debug/build/x/out/gen.rs"), target));
        assert!(!is_source(Path::new("/w/handler/src/.work.rs.swp"), target));
        assert!(!is_source(Path::new("/w/handler/src/work.rs~"), target));
        assert!(!is_source(Path::new("/w/README.md"), target));
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_one_change_named_by_its_last_file() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for name in ["a.rs", "b.rs", "c.rs"] {
            tx.send(PathBuf::from(name)).expect("open");
        }
        let first = rx.recv().await.expect("sent");
        assert_eq!(settle(first, &mut rx).await, PathBuf::from("c.rs"));
        assert!(rx.try_recv().is_err(), "the burst is used up");
    }
}
