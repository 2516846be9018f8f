//! What the watch builds: found once from `cargo metadata`, run with `cargo build
//! --message-format json` to tell whether a binary that runs was rebuilt.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::Watch;
use crate::error::RunnerError;

/// `cargo metadata --no-deps`, the parts the watch reads.
#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
    #[serde(default, rename = "required-features")]
    required_features: Vec<String>,
}

/// Why a rebuild did not give new binaries; the run goes on with the last build.
#[derive(Debug, thiserror::Error)]
pub(super) enum BuildFailed {
    /// Cargo could not be run or waited for.
    #[error("cannot run cargo: {0}")]
    Cargo(#[source] std::io::Error),
    /// The build failed: the compiler's errors are on stderr.
    #[error("cargo build {0} (errors above)")]
    Status(ExitStatus),
}

/// One line of `cargo build --message-format json`, the parts the watch reads.
#[derive(Debug, Deserialize)]
struct BuildMessage {
    reason: String,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    fresh: bool,
    #[serde(default)]
    success: bool,
}

impl Watch {
    /// Finds what to build: the package of each of `binaries` (this executable first) among the
    /// workspace's members, with the features each needs, in the profile this executable was
    /// built with. `cargo_args` replaces the package and bin selection (e.g. `--workspace --bins`).
    ///
    /// # Errors
    /// [`RunnerError::Watch`] when cargo cannot be run; [`RunnerError::Usage`] when this
    /// executable is not a binary of the workspace in the current folder.
    pub(crate) async fn find(
        lambda_binaries: Vec<PathBuf>,
        cargo_args: Option<&str>,
    ) -> Result<Self, RunnerError> {
        let exe = std::env::current_exe()
            .and_then(std::fs::canonicalize)
            .map_err(|source| RunnerError::Watch { what: "cannot find this executable".into(), source })?;
        let output = Command::new(cargo())
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|source| RunnerError::Watch { what: "cannot run `cargo metadata`".into(), source })?;
        if !output.status.success() {
            return Err(RunnerError::Usage(
                "--watch: `cargo metadata` failed (above): run the watch from your crate's workspace".into(),
            ));
        }
        let metadata: Metadata = serde_json::from_slice(&output.stdout)
            .map_err(|err| RunnerError::invalid("--watch: what `cargo metadata` printed", err))?;
        let profile_dir = exe.parent().unwrap_or(Path::new("/"));
        let mut binaries: BTreeSet<PathBuf> = BTreeSet::from([exe.clone()]);
        let mut selection = Vec::new();
        let mut features = BTreeSet::new();
        let lambda_binaries = lambda_binaries.into_iter().map(|b| std::fs::canonicalize(&b).unwrap_or(b));
        for (index, binary) in std::iter::once(exe.clone()).chain(lambda_binaries).enumerate() {
            let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let found = metadata.packages.iter().find_map(|package| {
                let target =
                    package.targets.iter().find(|t| t.name == name && t.kind.iter().any(|k| k == "bin"))?;
                Some((package, target))
            });
            match found {
                // A --lambda binary of the same build (beside this one) is rebuilt with it.
                Some((package, target)) if index == 0 || binary.parent() == Some(profile_dir) => {
                    selection.extend([
                        "-p".to_owned(),
                        package.name.clone(),
                        "--bin".to_owned(),
                        target.name.clone(),
                    ]);
                    features.extend(target.required_features.iter().map(|f| format!("{}/{f}", package.name)));
                    binaries.insert(binary);
                }
                Some(_) => {}
                None if index == 0 => {
                    return Err(RunnerError::Usage(format!(
                        "--watch: {name} is not a binary of the workspace in this folder; run the watch from your crate's workspace (cargo local-runner --watch)"
                    )));
                }
                // Not built by this workspace (a script, another build): run as it is.
                None => {}
            }
        }
        let mut build =
            vec!["build".to_owned(), "--message-format".to_owned(), "json-render-diagnostics".to_owned()];
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => build.push("--release".to_owned()),
            Some(profile) => build.extend(["--profile".to_owned(), profile.to_owned()]),
        }
        match cargo_args {
            Some(args) => build.extend(args.split_whitespace().map(str::to_owned)),
            None => {
                build.extend(selection);
                if !features.is_empty() {
                    build.extend([
                        "--features".to_owned(),
                        features.into_iter().collect::<Vec<_>>().join(","),
                    ]);
                }
            }
        }
        // `exe` is canonical, so its folders are: the workspace's target folder is made so once.
        let workspace_target = canonical(&metadata.target_directory);
        let target_dir = profile_dir.parent().filter(|dir| *dir != workspace_target).map(Path::to_path_buf);
        let mut sources: Vec<PathBuf> = metadata
            .packages
            .iter()
            .filter_map(|p| p.manifest_path.parent().map(Path::to_path_buf))
            .collect();
        sources.sort();
        // A member inside another member's folder is watched with it.
        sources.dedup_by(|inner, outer| inner.starts_with(outer));
        Ok(Self {
            build,
            target_dir,
            sources,
            ignored: workspace_target,
            binaries,
            exe,
            run_args: run_args(std::env::args_os().skip(1)),
        })
    }

    /// Runs the build; `Ok(true)` when one of the binaries that run was rebuilt.
    pub(super) async fn rebuild(&self) -> Result<bool, BuildFailed> {
        let mut command = Command::new(cargo());
        command.args(&self.build).stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
        if let Some(dir) = &self.target_dir {
            command.env("CARGO_TARGET_DIR", dir);
        }
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_a_run) {
                command.env_remove(&name);
            }
        }
        let mut child = command.kill_on_drop(true).spawn().map_err(BuildFailed::Cargo)?;
        let Some(stdout) = child.stdout.take() else {
            return Err(BuildFailed::Cargo(std::io::ErrorKind::BrokenPipe.into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let (mut rebuilt, mut success) = (false, false);
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(message) = serde_json::from_str::<BuildMessage>(&line) else { continue };
            match message.reason.as_str() {
                "compiler-artifact" if !message.fresh => {
                    let executable = message.executable.and_then(|e| std::fs::canonicalize(e).ok());
                    rebuilt |= executable.is_some_and(|e| self.binaries.contains(&e));
                }
                "build-finished" => success = message.success,
                _ => {}
            }
        }
        let status = child.wait().await.map_err(BuildFailed::Cargo)?;
        if success && status.success() { Ok(rebuilt) } else { Err(BuildFailed::Status(status)) }
    }
}

/// Whether `name` is one of the variables cargo sets for a program it runs (`cargo run`, which
/// `cargo local-runner` is, or a test), rather than a setting of the user's (`CARGO_TARGET_DIR`,
/// `CARGO_PROFILE_*`, `CARGO_HOME`). The rebuild leaves these out: a build script may declare them
/// with `rerun-if-env-changed` (ring's does, for `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`), and
/// cargo compares them with its own environment, so a build that saw them would compile that crate
/// and every crate above it again, and so would the user's next build from a plain shell.
fn set_by_cargo_for_a_run(name: &str) -> bool {
    ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_EXE_"].iter().any(|prefix| name.starts_with(prefix))
        || matches!(
            name,
            "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// The command line of the run: this one without `--watch` and `--watch-cargo-args [=]ARGS`.
fn run_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.to_str() {
            Some("--watch") => {}
            Some("--watch-cargo-args") => skip_value = true,
            Some(flag) if flag.starts_with("--watch-cargo-args=") => {}
            _ => kept.push(arg),
        }
    }
    kept
}

/// The cargo that built this (`CARGO`, as cargo sets it for `cargo run`), else the one on PATH.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `dir` without symbolic links, or as it is when it does not exist yet.
fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_cargo_sets_for_a_run_are_left_out_of_the_rebuild_and_the_users_settings_kept() {
        for set_by_cargo in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_BIN_EXE_local",
            "CARGO_CRATE_NAME",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ] {
            assert!(set_by_cargo_for_a_run(set_by_cargo), "{set_by_cargo}");
        }
        for setting in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_BUILD_JOBS",
            "PATH",
        ] {
            assert!(!set_by_cargo_for_a_run(setting), "{setting}");
        }
    }

    #[test]
    fn the_run_gets_every_argument_but_the_watchs_own() {
        let args = ["--queue", "q", "--watch", "--watch-cargo-args", "--workspace --bins", "--lambda"];
        let kept = run_args(args.iter().map(OsString::from));
        assert_eq!(kept, ["--queue", "q", "--lambda"].map(OsString::from));
        let kept = run_args(["--watch-cargo-args=--workspace", "--queue=q"].iter().map(OsString::from));
        assert_eq!(kept, ["--queue=q"].map(OsString::from));
    }
}
