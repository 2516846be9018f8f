#!/usr/bin/env bash
# Runs the function locally against LocalStack (installed into .venv/ on first use, no Docker):
# creates the queue and its dead-letter queue from template.yaml, sends tests/orders.jsonl (two
# orders of nothing among them), drains the queue through the handler until it is idle, and shows
# what reached the dead-letter queue. LocalStack stops at the end; KEEP_LOCALSTACK=1 keeps it.
#   tests/demo.sh            # the handler in process
#   tests/demo.sh --lambda   # the built bootstrap behind the emulated event source mapping
# With CHECK=1 (the test command) it fails unless 8 orders were deleted and 2 dead-lettered.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOCALSTACK_STATE="${LOCALSTACK_STATE:-$PWD/.localstack/demo}" LOCALSTACK_PORT="${LOCALSTACK_PORT:-0}"
endpoint=$(tests/localstack.sh start)
if [ -z "${KEEP_LOCALSTACK:-}" ]; then trap 'tests/localstack.sh stop' EXIT; fi
export AWS_ENDPOINT_URL="$endpoint"
cargo build --quiet --features handler/local --bins
target="${CARGO_TARGET_DIR:-target}/debug"
runner="$target/local"
mode=()
if [ "${1:-}" = --lambda ]; then mode=(--lambda "$target/bootstrap"); fi
queue=orders-$(date +%s)

$runner up --queue "$queue"
$runner send --queue "$queue" --file tests/orders.jsonl
if [ -z "${CHECK:-}" ]; then
  $runner --queue "$queue" "${mode[@]}" --exit-when-idle 3
  $runner dlq --queue "$queue"
  exit 0
fi

# The check: the run's summary line (JSON) and the dead-letter queue.
mkdir -p .localstack
$runner --queue "$queue" "${mode[@]}" --exit-when-idle 3 --log-format json >.localstack/demo-run.jsonl
dlq=$($runner dlq --queue "$queue")
echo "$dlq"
python3 - .localstack/demo-run.jsonl "$dlq" <<'PY'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
summary = next(line for line in lines if line.get("message") == "summary")
dead = sys.argv[2].splitlines()[0]
if summary.get("deleted") != 8 or ": 2 messages" not in dead:
    sys.exit(f"demo: expected 8 orders deleted and 2 in the dead-letter queue; got {summary} and {dead!r}")
print("demo: 8 orders deleted, 2 in the dead-letter queue", file=sys.stderr)
PY
