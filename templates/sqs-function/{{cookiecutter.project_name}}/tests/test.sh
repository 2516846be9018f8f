#!/usr/bin/env bash
# The test command: the handler's tests (the kit, no queue), the template (sam validate --lint,
# local-runner check), and one drain on LocalStack (tests/demo.sh, checked). A few minutes once
# built; LocalStack and the SAM CLI are installed into .venv/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*" >&2; }

step "unit tests"
cargo test --quiet
step "the template: sam validate --lint, local-runner check"
tests/sam.sh validate --lint --template template.yaml
cargo local-runner check --template template.yaml
step "one drain on LocalStack, in process and through the bootstrap"
CHECK=1 tests/demo.sh
CHECK=1 tests/demo.sh --lambda
