#!/usr/bin/env bash
# `local-runner --lambda` against what a user would run instead for the same job, on the same
# queue settings, machine and function binary, in one run (bench/harness.py --only alternatives):
# LocalStack's own event source mapping invoking the deployed function in containers, and
# `sam local invoke` running one batch per invocation. scripts/deploy-localstack.sh builds and
# deploys the function (`sam build`, podman, LocalStack with Lambda) and tears it all down after.
#
#   bench/alternatives.sh                          # 3 rounds of 1,000 messages (about 25 minutes with the builds)
#   bench/alternatives.sh --rounds 5 --messages 2000
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DEPLOYED_STACKS:-}" ]; then exec scripts/deploy-localstack.sh bench/alternatives.sh "$@"; fi
python=$(bench/venv.sh)
echo "bench: building the release local-runner" >&2
cargo build --quiet --release --locked -p local-runner --bin local-runner
"$python" bench/harness.py --endpoint "$AWS_ENDPOINT_URL" --bin target/release --only alternatives \
  --deployed-stacks "$DEPLOYED_STACKS" --deployed-image "$DEPLOYED_IMAGE" --messages 1000 --rounds 3 "$@"
