#!/usr/bin/env bash
# The checks of what ships, which scripts/test.sh runs beside its tests at the lowest CPU priority,
# so that they take the CPU the end-to-end tests leave idle while those wait on timers and on
# LocalStack: the dependencies (cargo deny), the SAM templates, the release builds under
# `sam local invoke`, the published crates, the deployed path and a new project. None of them uses
# the tests' LocalStack: each starts what it needs on ports of its own.
#
# Three chains side by side: the containers (the release builds, then `sam local invoke`), the
# deployed path (which starts once those builds are made, and reuses them) and the rest (cargo
# deny, the templates, the published crates, a new project). The debug builds of the rest go to a
# target directory of their own (under target/ship), so they never hold the tests' build directory
# while a test rebuilds there (`--watch`); the deployed path runs the tests' own debug build,
# unchanged.
#
# Run by scripts/test.sh, which passes TEST_LOGS: this lane waits there for `installed`
# (scripts/install.sh has finished) and for `built` (the workspace's debug build, whose `local`
# binary checks the templates, and whose test binaries the deployed path runs). Honours
# SKIP_ADVISORIES, SKIP_SAM_LOCAL, SKIP_DEPLOY and SKIP_FRAMEWORK_ONLY as scripts/test.sh
# documents them.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=${TEST_LOGS:?run by scripts/test.sh, which sets TEST_LOGS}
STEPS_LANE="ship checks"
# shellcheck source=scripts/steps.sh
. scripts/steps.sh

# await MARKER WHAT [PID]: another lane's signal, with a deadline; given the PID of the chain that
# makes it, for as long as that chain runs instead (a release build may take longer than any
# deadline, and a chain that ended without it never makes it).
await() {
  local deadline=$((SECONDS + 1800))
  until [ -e "$logs/$1" ]; do
    if [ -n "${3:-}" ]; then
      # Looked at again once the chain is gone: it may have made the marker just before it ended.
      kill -0 "$3" 2>/dev/null || [ -e "$logs/$1" ] ||
        { echo "ship checks: $2 did not happen: that chain ended first (its output is above)" >&2; exit 1; }
    else
      [ "$SECONDS" -lt "$deadline" ] || { echo "ship checks: $2 did not happen within 30 min" >&2; exit 1; }
    fi
    sleep 1
  done
}

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

containers() {
  STEPS_LANE="ship checks (containers)"
  await installed "the installs"
  step "sam local invoke on every event of the function (release builds; podman, no Docker engine)"
  if [ "${SKIP_SAM_LOCAL:-}" = 1 ]; then
    echo "sam-local: skipped because SKIP_SAM_LOCAL=1" >&2
  else
    SAM_LOCAL_BUILT="$logs/sam-built" scripts/sam-local.sh
  fi
  step
}
# The deployed path starts once sam-local.sh has made the release builds, beside its invocations:
# it reuses those builds (cargo's cache) and the tests' debug build, and starts a LocalStack and a
# podman of its own, so the two share only the CPU, and most of the deployed path waits on
# CloudFormation and on LocalStack's mapping.
deployed() {
  STEPS_LANE="ship checks (deployed)"
  if [ "${SKIP_DEPLOY:-}" = 1 ] || [ "${SKIP_SAM_LOCAL:-}" = 1 ]; then
    step "the deployed path"
    echo "deploy: skipped because SKIP_DEPLOY=1 or SKIP_SAM_LOCAL=1" >&2
    step
    return
  fi
  await sam-built "the release builds of scripts/sam-local.sh" "$containers_pid"
  step "the deployed path: sam deploy to LocalStack, the same scenarios deployed and under --lambda"
  await built "the workspace's debug build"
  scripts/deploy-localstack.sh
  step
}
containers >"$logs/containers.log" 2>&1 &
containers_pid=$!
deployed >"$logs/deployed.log" 2>&1 &
deployed_pid=$!
# A failure of these chains stops the others with everything they started (sam-local's and the
# deploy's own exit traps stop their servers): scripts/test.sh starts this lane as a process group.
# The lane ignores the TERM it sends its own group, so that it exits with the failed step's status.
stop_chains() {
  local status=$?
  trap '' TERM
  kill -TERM -- "-$$" 2>/dev/null || kill "$containers_pid" "$deployed_pid" 2>/dev/null || true
  exit "$status"
}
trap stop_chains EXIT

step "dependencies (cargo deny: advisories, licenses, bans, sources)"
scripts/deny.sh

# The debug builds of this chain (the crates' docs and packages, the project outside, the new
# project) share one directory, for the dependencies they have in common, named by the contents of
# the two packages. Cargo unpacks the sqs-batch package that local-runner is verified against into
# CARGO_HOME/registry/src, under a name made from that directory's path, and reuses an earlier
# unpacking of the same name and version without reading it again: a checkout at the same path,
# packaged before from other sources, would verify local-runner against that old sqs-batch. New
# contents make a new directory, so a fresh unpacking; only the newest directory is kept.
ship_root="$target_dir/ship"
ship_dir="$ship_root"
if [ "${SKIP_FRAMEWORK_ONLY:-}" != 1 ]; then
  step "the packages' contents (cargo package --no-verify)"
  rm -rf "$ship_root/packed/package"
  CARGO_TARGET_DIR="$ship_root/packed" cargo package -p sqs-batch -p local-runner --locked --allow-dirty --no-verify
  # Without .cargo_vcs_info.json, which names the commit, nor Cargo.lock, which holds the
  # checksum of the sqs-batch package (and so the commit too): a commit that leaves both crates as
  # they were keeps their builds. The lock file of a package that is built as a dependency is
  # never read, and local-runner's package is unpacked afresh at every verification.
  contents=$(for crate in "$ship_root"/packed/package/*.crate; do
    tar -xzOf "$crate" --exclude='*/.cargo_vcs_info.json' --exclude='*/Cargo.lock'
  done | sha256sum)
  ship_dir="$ship_root/${contents:0:16}"
  find "$ship_root" -mindepth 1 -maxdepth 1 ! -name packed ! -path "$ship_dir" -exec rm -rf {} +
  echo "ship checks: the crates' builds go to $ship_dir" >&2
fi

step "the published crates: their docs, their packages, their public API against the last release"
if [ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ]; then
  echo "published crates: skipped because SKIP_FRAMEWORK_ONLY=1 (they never run handler/; scripts/swap-check.sh)" >&2
else
  (
    export CARGO_TARGET_DIR="$ship_dir"
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sqs-batch -p local-runner --features sqs-batch/dynamodb,sqs-batch/s3 --locked
    # Each crate built from exactly what it would publish (local-runner against the sqs-batch
    # package), as `cargo install` builds it. --allow-dirty: the test command runs on a working
    # tree too; a release packages a clean one.
    cargo package -p sqs-batch -p local-runner --locked --allow-dirty
    scripts/semver.sh
    # A project outside this workspace adds the crates as the README says and builds with them.
    scripts/outside-check.sh
  )
fi

# After the published crates, which need nothing of the other lane: by then the tests' debug build
# (its `local` binary checks the templates) is long made.
step "SAM templates (sam validate --lint, local-runner check)"
await installed "the installs"
await built "the workspace's debug build"
for template in template.yaml template-fifo.yaml; do
  scripts/sam.sh validate --lint --template "$template"
  "$target_dir/debug/local" check --template "$template"
done

step "a new project (sam init --location templates/sqs-function) and its own test command"
if [ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ]; then
  echo "new project: skipped because SKIP_FRAMEWORK_ONLY=1 (it never runs handler/; scripts/swap-check.sh)" >&2
else
  CARGO_TARGET_DIR="$ship_dir" scripts/new-project-check.sh
fi

step "waiting for the containers' chains"
status=0
wait "$containers_pid" || status=$?
wait "$deployed_pid" || status=$?
trap - EXIT
cat "$logs/containers.log" "$logs/deployed.log"
step
exit "$status"
