#!/usr/bin/env bash
# The test command: formatting, lints, dependencies, the SAM templates, `sam local invoke`, then
# every unit and end-to-end test against a LocalStack (and a local DynamoDB, for idempotency) that
# this script installs, starts on free ports and stops again. It installs what it needs on first
# use (cargo-deny, cargo-nextest, the SAM CLI, LocalStack, podman, AWS's SQS Extended Client for
# Python) and needs nothing else from the machine than Rust and Python.
#
# It runs in two lanes. This one: lints, the debug build, the tests, the `opentelemetry` feature.
# Beside it, at the lowest CPU priority, scripts/ship-checks.sh: cargo deny, the SAM templates,
# `sam local invoke` on release builds, the published crates, the deployed path and a new
# project. The end-to-end tests spend most of their time waiting (on timers, on LocalStack), and
# the other lane takes that idle CPU; the tests keep the CPU whenever they want it. The other
# lane's output is printed when it ends, and a table of every step's time closes the run.
#
# With LOCALSTACK_ENDPOINT (DYNAMODB_ENDPOINT) already set, that LocalStack (DynamoDB) is used
# instead and left running.
# Opt-outs, each named in CONTRIBUTING.md: SKIP_SAM_LOCAL=1 (no container engine here),
# SKIP_ADVISORIES=1 (no advisory database snapshot and no network), SKIP_DEPLOY=1 (no deployed
# path: sam deploy to a LocalStack that runs the function in containers),
# SKIP_FRAMEWORK_ONLY=1 (none of the steps that never run handler/: the `opentelemetry` feature
# step, the published crates, the new project, and the framework's test function under
# `sam local invoke`; swap-check sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_LOGS="$PWD/.test-logs"
rm -rf "$TEST_LOGS" && mkdir -p "$TEST_LOGS"
STEPS_FILE="$TEST_LOGS/steps.tsv" STEPS_STARTED=$(date +%s)
export TEST_LOGS STEPS_FILE STEPS_STARTED
# The machine's busy CPU time over the whole run (every process, servers and containers included),
# in clock ticks: the first line of /proc/stat, less idle and iowait.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
busy_started=$(busy_ticks)
# shellcheck source=scripts/steps.sh
. scripts/steps.sh

# Whatever this script starts, it stops on exit: the servers by the pid each start recorded, the
# other lane by its process group.
started=()
ship_checks=
stop_started() {
  local status=$?
  if [ -n "$ship_checks" ] && kill -0 "$ship_checks" 2>/dev/null; then
    kill -TERM -- "-$ship_checks" 2>/dev/null || true
    wait "$ship_checks" 2>/dev/null || true
    echo "ship checks: stopped, because the tests failed; their output so far:" >&2
    cat "$TEST_LOGS/ship-checks.log" >&2 || true
  fi
  for server in "${started[@]}"; do "scripts/$server.sh" stop || true; done
  exit "$status"
}
trap stop_started EXIT

step "installs (beside the lints), the ship checks' lane started"
{ scripts/install.sh >"$TEST_LOGS/install.log" 2>&1 && touch "$TEST_LOGS/installed"; } &
installs=$!
# setsid: the lane is a process group of its own, stopped as one. A new session is also a new
# scheduling group where the kernel groups sessions (autogroup), and between groups a process's
# nice value counts for nothing: the group's own nice is set too, or the lane would take half the
# CPU from the tests' builds.
setsid nice -n 19 bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null || true; exec scripts/ship-checks.sh' \
  >"$TEST_LOGS/ship-checks.log" 2>&1 &
ship_checks=$!

step "format and lints"
cargo fmt --all --check
# examples/orders and the new project's template are not workspace members.
find examples templates -name '*.rs' -print0 | xargs -0 -r rustfmt --edition 2024 --check
# handler/local: the local runner's main, which only the `local` feature builds.
cargo clippy --workspace --all-targets --features handler/local --locked -- -D warnings

step "installs"
wait "$installs" || { cat "$TEST_LOGS/install.log" >&2; exit 1; }
cat "$TEST_LOGS/install.log"
# AWS's Runtime Interface Emulator ships inside the SAM CLI: the parity tests use it as the oracle.
case "$(uname -m)" in aarch64 | arm64) rie_arch=arm64 ;; *) rie_arch=x86_64 ;; esac
LAMBDA_RIE=$(ls "$PWD"/.venv/sam/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-$rie_arch)
export LAMBDA_RIE

if [ -z "${LOCALSTACK_ENDPOINT:-}" ]; then
  step "LocalStack"
  export LOCALSTACK_STATE="$PWD/.localstack/test" LOCALSTACK_PORT=0
  started+=(localstack)
  LOCALSTACK_ENDPOINT=$(scripts/localstack.sh start)
  export LOCALSTACK_ENDPOINT
fi
if [ -z "${DYNAMODB_ENDPOINT:-}" ]; then
  step "a local DynamoDB (moto) for the idempotency tests"
  export DYNAMODB_STATE="$PWD/.localstack/test-dynamodb" DYNAMODB_PORT=0
  started+=(dynamodb)
  DYNAMODB_ENDPOINT=$(scripts/dynamodb.sh start)
  export DYNAMODB_ENDPOINT
fi

step "the debug build"
if ! cargo nextest --version >/dev/null 2>&1; then
  # The nextest configuration runs the timing-sensitive tests alone; cargo test cannot.
  echo "installing cargo-nextest (a few minutes, once per machine)" >&2
  cargo install --quiet --locked cargo-nextest
fi
# Every binary and every test target, in one build. The end-to-end tests run binaries of other
# packages too (the test function's e2e-bootstrap), which a test build does not make, and the
# other lane checks the templates with the handler's `local` binary. `--tests` too: the test
# targets' dev-dependencies turn on features of shared crates (tokio's test-util, the SDK's default
# HTTPS client); built without them, every crate above those would be compiled a second time by
# nextest, the doctests, the deployed path and `--watch` (tests/tests/watch.rs). The handler-less `local-runner` the plain-function drain runs (tests/tests/any_function.rs)
# is this build's; the published crates' step builds it from its package as `cargo install` does.
cargo build --workspace --exclude bench --bins --tests --features handler/local --locked
touch "$TEST_LOGS/built"

step "tests: unit, fixtures and end-to-end against $LOCALSTACK_ENDPOINT"
# The same packages and features as the build above, so nothing is built twice.
cargo nextest run --workspace --exclude bench --features handler/local --locked --no-fail-fast
# The examples in the crates' docs (nextest runs no doctests), with the same packages and features
# again: `-p sqs-batch -p local-runner` alone would resolve other features and rebuild.
cargo test --doc --workspace --exclude bench --features handler/local --locked

# The framework's `opentelemetry` feature (off in the builds above): its spans, links and
# attributes through an in-memory exporter, and its lints.
step "the opentelemetry feature"
if [ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ]; then
  echo "opentelemetry feature: skipped because SKIP_FRAMEWORK_ONLY=1 (sqs-batch alone; scripts/swap-check.sh)" >&2
else
  cargo clippy -p sqs-batch --features opentelemetry --all-targets --locked -- -D warnings
  cargo nextest run -p sqs-batch --features opentelemetry --locked --no-fail-fast
fi

step "waiting for the ship checks"
ship_status=0
wait "$ship_checks" || ship_status=$?
ship_checks=
cat "$TEST_LOGS/ship-checks.log"
step
echo
echo "| lane | step | started (s) | took (s) | CPU (s) |"
echo "|---|---|---:|---:|---:|"
sort -t$'\t' -k3,3n "$STEPS_FILE" | awk -F'\t' '{printf "| %s | %s | %d | %d | %d |\n", $1, $2, $3, $4, $5}'
took=$(($(date +%s) - STEPS_STARTED))
busy=$((($(busy_ticks) - busy_started) / $(getconf CLK_TCK)))
echo "| | the test command | | $took | $busy (the machine's, of $((took * $(nproc))) on $(nproc) cores) |"
echo "CPU (s): each step's commands, and any background job (the installs, a lane) that ended during it; servers and containers count only in the machine's total." >&2
if [ "$ship_status" != 0 ]; then
  echo "ship checks: failed (exit $ship_status); their output is above" >&2
  exit "$ship_status"
fi
