#!/usr/bin/env bash
# The test command: formatting, lints, dependencies, the SAM templates, `sam local invoke`, then
# every unit and end-to-end test against a LocalStack (and a local DynamoDB, for idempotency) that
# this script installs, starts on free ports and stops again. It installs what it needs on first use (cargo-deny, cargo-nextest, the SAM
# CLI, LocalStack, podman, AWS's SQS Extended Client for Python) and needs nothing else from the machine than Rust and Python.
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

step() { printf '\n== %s (%d s in)\n' "$*" "$SECONDS"; }

step "format and lints"
cargo fmt --all --check
# examples/orders and the new project's template are not workspace members.
find examples templates -name '*.rs' -print0 | xargs -0 -r rustfmt --edition 2024 --check
# handler/local: the local runner's main, which only the `local` feature builds.
cargo clippy --workspace --all-targets --features handler/local --locked -- -D warnings

step "dependencies (cargo deny: advisories, licenses, bans, sources)"
scripts/deny.sh

step "SAM templates (sam validate --lint, local-runner check)"
for template in template.yaml template-fifo.yaml; do
  scripts/sam.sh validate --lint --template "$template"
  cargo run --quiet --locked -p handler --features local --bin local -- check --template "$template"
done
# AWS's Runtime Interface Emulator ships inside the SAM CLI: the parity tests use it as the oracle.
case "$(uname -m)" in aarch64 | arm64) rie_arch=arm64 ;; *) rie_arch=x86_64 ;; esac
LAMBDA_RIE=$(ls "$PWD"/.venv/sam/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-$rie_arch)
export LAMBDA_RIE

# Whatever this script starts, it stops on exit, by the pid each start recorded.
started=()
stop_started() { for server in "${started[@]}"; do "scripts/$server.sh" stop || true; done; }
trap stop_started EXIT
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

step "sam local invoke on every event of the function (podman, no Docker engine)"
if [ "${SKIP_SAM_LOCAL:-}" = 1 ]; then
  echo "sam-local: skipped because SKIP_SAM_LOCAL=1" >&2
else
  scripts/sam-local.sh
fi

step "tests: unit, fixtures and end-to-end against $LOCALSTACK_ENDPOINT"
# AWS's SQS Extended Client for Python: the large-payload tests send with it. Installed once here,
# before the tests that run it at once.
scripts/extended-client.sh --install >/dev/null
if ! cargo nextest --version >/dev/null 2>&1; then
  # The nextest configuration runs the timing-sensitive tests alone; cargo test cannot.
  echo "installing cargo-nextest (a few minutes, once per machine)" >&2
  cargo install --quiet --locked cargo-nextest
fi
# The end-to-end tests run binaries of other packages too (the test function's e2e-bootstrap), which
# a test build does not make: build every binary first.
cargo build --workspace --exclude bench --bins --locked
# The runner's command as `cargo install` gives it (no handler in it): the plain-function drain
# (tests/tests/any_function.rs) runs this copy. Debug, and sharing the build above.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
CARGO_TARGET_DIR="$target_dir" cargo install --quiet --locked --debug --path local-runner --root "$target_dir/installed"
export LOCAL_RUNNER_BIN="$target_dir/installed/bin/local-runner"
cargo nextest run --workspace --exclude bench --locked --no-fail-fast
# The examples in the crates' docs (nextest runs no doctests).
cargo test --doc -p sqs-batch -p local-runner --features sqs-batch/dynamodb,sqs-batch/s3 --locked

step "the published crates: their docs, their packages, their public API against the last release"
if [ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ]; then
  echo "published crates: skipped because SKIP_FRAMEWORK_ONLY=1 (they never run handler/; scripts/swap-check.sh)" >&2
else
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sqs-batch -p local-runner --features sqs-batch/dynamodb,sqs-batch/s3 --locked
  # Each crate built from exactly what it would publish (local-runner against the sqs-batch package).
  cargo package -p sqs-batch -p local-runner --locked
  scripts/semver.sh
  # A project outside this workspace adds the crates as the README says and builds with them.
  scripts/outside-check.sh
fi
# The framework's `opentelemetry` feature (off in the builds above): its spans, links and
# attributes through an in-memory exporter, and its lints.
if [ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ]; then
  echo "opentelemetry feature: skipped because SKIP_FRAMEWORK_ONLY=1 (sqs-batch alone; scripts/swap-check.sh)" >&2
else
  cargo clippy -p sqs-batch --features opentelemetry --all-targets --locked -- -D warnings
  cargo nextest run -p sqs-batch --features opentelemetry --locked --no-fail-fast
fi

step "the deployed path: sam deploy to LocalStack, the same scenarios deployed and under --lambda"
if [ "${SKIP_DEPLOY:-}" = 1 ] || [ "${SKIP_SAM_LOCAL:-}" = 1 ]; then
  echo "deploy: skipped because SKIP_DEPLOY=1 or SKIP_SAM_LOCAL=1" >&2
else
  scripts/deploy-localstack.sh
fi
step "a new project (sam init --location templates/sqs-function) and its own test command"
if [ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ]; then
  echo "new project: skipped because SKIP_FRAMEWORK_ONLY=1 (it never runs handler/; scripts/swap-check.sh)" >&2
else
  scripts/new-project-check.sh
fi
step "done"
