#!/usr/bin/env bash
# The local stack end to end, with the project's own commands: LocalStack on 127.0.0.1:4566,
# `local-runner up` (the queue and dead-letter queue of template.yaml), `local-runner send --file`
# (200 orders from scripts/demo-orders.jsonl, 10 of them bad), the run until the queue is idle,
# and `local-runner dlq` (what reached the dead-letter queue, and why).
#
#   scripts/demo.sh                    # then LocalStack is stopped again
#   KEEP_LOCALSTACK=1 scripts/demo.sh  # leave it running to keep playing
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

queue=demo-orders
if endpoint=$(scripts/localstack.sh endpoint 2>/dev/null); then
  # A LocalStack left running may hold an earlier demo's queues: start on new ones.
  queue=demo-orders-$(date +%H%M%S)
else
  endpoint=$(scripts/localstack.sh start)
  if [ -z "${KEEP_LOCALSTACK:-}" ]; then trap 'scripts/localstack.sh stop' EXIT; fi
fi

echo "demo: building local-runner" >&2
cargo build --quiet --locked -p handler --features local --bin local
export AWS_ENDPOINT_URL="$endpoint"
local_runner=target/debug/local

say "local-runner up --queue $queue"
$local_runner up --queue "$queue"

say "local-runner send --queue $queue --file scripts/demo-orders.jsonl"
$local_runner send --queue "$queue" --file scripts/demo-orders.jsonl

say "local-runner --queue $queue --exit-when-idle 3"
$local_runner --queue "$queue" --exit-when-idle 3

say "local-runner dlq --queue $queue"
$local_runner dlq --queue "$queue"
