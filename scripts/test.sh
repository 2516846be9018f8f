#!/usr/bin/env bash
# The test command: formatting, lints, the SAM template, then every unit and end-to-end test
# against a LocalStack that this script installs, starts on a free port and stops again.
# With LOCALSTACK_ENDPOINT already set, that LocalStack is used instead and left running.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "dependencies (cargo deny: licenses, bans, sources)"
# The advisory database is fetched from the network at check time; see deny.toml.
if [[ "$(cargo deny --version 2>/dev/null)" != *0.20.2* ]]; then
  echo "installing cargo-deny 0.20.2 (a few minutes, once per machine)" >&2
  cargo install --quiet --locked cargo-deny --version 0.20.2
fi
cargo deny --offline check licenses bans sources

step "SAM templates (sam validate --lint)"
for template in template.yaml template-fifo.yaml; do
  scripts/sam.sh validate --lint --template "$template"
done
# AWS's Runtime Interface Emulator ships inside the SAM CLI: the parity tests use it as the oracle.
case "$(uname -m)" in aarch64 | arm64) rie_arch=arm64 ;; *) rie_arch=x86_64 ;; esac
LAMBDA_RIE=$(ls "$PWD"/.venv/sam/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-$rie_arch)
export LAMBDA_RIE

if [ -z "${LOCALSTACK_ENDPOINT:-}" ]; then
  step "LocalStack"
  export LOCALSTACK_STATE="$PWD/.localstack/test" LOCALSTACK_PORT=0
  trap 'scripts/localstack.sh stop' EXIT
  LOCALSTACK_ENDPOINT=$(scripts/localstack.sh start)
  export LOCALSTACK_ENDPOINT
fi

step "sam local invoke on every fixture (podman, no Docker engine)"
scripts/sam-local.sh

step "tests: unit, fixtures and end-to-end against $LOCALSTACK_ENDPOINT"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude bench --locked --no-fail-fast
else
  cargo test --workspace --exclude bench --locked --no-fail-fast
fi
