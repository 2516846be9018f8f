#!/usr/bin/env bash
# The edit → run loop of `local-runner --watch` (README): the time from saving
# handler/src/work.rs to the new build polling the queue, in the debug profile that
# `cargo local-runner` uses, in process and with --lambda (the bootstrap rebuilt too). Each edit
# appends a comment line, so cargo recompiles the handler and relinks both binaries. Prints each
# edit, then min/median/max; work.rs is put back at the end.
#
#   bench/watch-loop.sh            # 3 edits per mode (ROUNDS=5 for more)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
cargo build --quiet --locked -p handler --features local --bins
export LOCALSTACK_STATE="$PWD/.localstack/bench" LOCALSTACK_PORT=0
cp handler/src/work.rs "${TMPDIR:-/tmp}/work.rs.watch-loop"
restore() {
  cp "${TMPDIR:-/tmp}/work.rs.watch-loop" handler/src/work.rs
  scripts/localstack.sh stop
}
trap restore EXIT
endpoint=$(scripts/localstack.sh start)
target/debug/local up --queue watch-loop --endpoint-url "$endpoint" >/dev/null
python3 - "$endpoint" "$rounds" <<'PY'
import json, os, signal, statistics, subprocess, sys, threading, time

endpoint, rounds = sys.argv[1], int(sys.argv[2])
results = {}
for mode, extra in [("in process", ["--no-template"]), ("--lambda", ["--lambda", "target/debug/bootstrap"])]:
    process = subprocess.Popen(
        ["target/debug/local", "--queue", "watch-loop", "--endpoint-url", endpoint, "--watch",
         "--log-format", "json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = []  # (time, message)
    def read():
        for line in process.stdout:
            try:
                seen.append((time.monotonic(), json.loads(line).get("message", "")))
            except ValueError:
                pass
    threading.Thread(target=read, daemon=True).start()

    def wait_for(message, after, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, text in list(seen):
                if at >= after and text == message:
                    return at
            time.sleep(0.05)
        raise SystemExit(f"watch-loop: no {message!r} within {timeout} s")

    wait_for("polling", 0)
    times = []
    for n in range(rounds):
        time.sleep(2)
        edited = time.monotonic()
        with open("handler/src/work.rs", "a") as work:
            work.write(f"// watch-loop edit {n}\n")
        restarted = wait_for("restarted with the new build", edited)
        polling = wait_for("polling", restarted)
        times.append(polling - edited)
        print(f"{mode:>10}  edit {n + 1}: new build polling after {polling - edited:5.1f} s "
              f"(restarted after {restarted - edited:.1f} s)", flush=True)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    results[mode] = times

print("\n| mode | edits | edit → new build polling, min / median / max |\n|---|---|---|")
for mode, times in results.items():
    print(f"| {mode} | {len(times)} | {min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f} s |")
PY
