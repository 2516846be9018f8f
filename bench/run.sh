#!/usr/bin/env bash
# The benchmarks, side by side in one run (bench/harness.py says what each section measures):
# drain on LocalStack (its default keep-alive gateway, as users run it), capacity per core on a
# stub SQS endpoint, scaling by pollers and processes, memory at scale, the Lambda bootstrap,
# latency, a CPU profile, then the batch core's criterion benches. Results: bench/results/.
#
#   bench/run.sh                                   # everything (about 40 minutes)
#   bench/run.sh --only stub --rounds 3            # one section; see bench/harness.py --help
#   SKIP_CRITERION=1 bench/run.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bench/venv.sh)
if [ ! -d bench/baselines/node/node_modules ]; then
  echo "bench: installing Node's sqs-consumer into bench/baselines/node (npm ci)" >&2
  (cd bench/baselines/node && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "bench: building release binaries" >&2
cargo build --quiet --release --locked -p handler -p bench --features handler/local --bins
if command -v perf >/dev/null; then
  # The profile section runs the same code with symbols.
  cargo build --quiet --profile profiling --locked -p handler --features local --bin local --bin bootstrap
fi

export LOCALSTACK_STATE="$PWD/.localstack/bench" LOCALSTACK_PORT=0
trap 'scripts/localstack.sh stop' EXIT
endpoint=$(scripts/localstack.sh start)
"$python" bench/harness.py --endpoint "$endpoint" --bin target/release "$@"
scripts/localstack.sh stop
trap - EXIT

if [ -z "${SKIP_CRITERION:-}" ]; then
  cargo bench --quiet --locked -p bench --bench batch_core 2>&1 | tee bench/results/criterion.txt
  # The guard: the batch core's own cost per message (a handler that does nothing, batches of 10
  # and 100 on one thread) stays at or under 2 µs.
  "$python" - bench/results/criterion.txt <<'PY'
import re, sys
scale = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}
rows = re.findall(r"^(batch_core_noop/(\S+)/(\S+)/(\d+))\s*\n\s*time:\s*\[\S+ \S+ ([\d.]+) (\S+)", open(sys.argv[1]).read(), re.M)
print("\n## The batch core per message (criterion medians)\n\n| runtime | queue | batch | per message |\n|---|---|---:|---:|")
guarded = []
for _, flavour, queue, n, value, unit in rows:
    per = float(value) * scale.get(unit, float("nan")) / int(n)
    print(f"| {flavour} | {queue} | {n} | {per:.2f} µs |")
    if flavour == "current_thread" and int(n) >= 10:
        guarded.append(per)
if guarded:
    worst = max(guarded)
    print(f"\nbatch core, one thread, batches of 10 and 100: at most {worst:.2f} µs per message "
          f"(target <= 2: {'met' if worst <= 2 else 'MISSED'})")
PY
fi
