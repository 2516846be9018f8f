#!/usr/bin/env bash
# The benchmarks, side by side in one run: drain throughput and cost against Python baselines and
# a raw client ceiling, send -> handled latency, the Lambda bootstrap's size, start and memory,
# then the batch core microbenchmarks. Results land in bench/results/.
#
#   bench/run.sh                        # 20,000 messages x 3 rounds (about 20 minutes)
#   bench/run.sh --messages 2000 --rounds 1 --only drain
#   SKIP_CRITERION=1 bench/run.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv/bench
if ! "$venv/bin/python" -c 'import aiobotocore, matplotlib' 2>/dev/null; then
  echo "bench: installing aiobotocore and matplotlib into $venv" >&2
  rm -rf "$venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiobotocore==3.10.0' 'matplotlib==3.11.2'
fi
echo "bench: building release binaries" >&2
cargo build --quiet --release -p local-runner -p handler -p bench --bins

export LOCALSTACK_STATE="$PWD/.localstack/bench" LOCALSTACK_PORT=0
trap 'scripts/localstack.sh stop' EXIT
endpoint=$(scripts/localstack.sh start)
"$venv/bin/python" bench/harness.py --endpoint "$endpoint" --localstack-pid "$(cat "$LOCALSTACK_STATE/pid")" \
  --bin target/release "$@"
scripts/localstack.sh stop
trap - EXIT

if [ -z "${SKIP_CRITERION:-}" ]; then
  cargo bench --quiet -p bench --bench batch_core 2>&1 | tee bench/results/criterion.txt
fi
