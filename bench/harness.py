"""Side-by-side benchmarks for the SQS handler: drain throughput and cost, latency, and the Lambda
bootstrap's figures. Run it through bench/run.sh, which builds the release binaries and starts
LocalStack.

Every contender drains the same number of messages from a fresh queue on the same LocalStack;
the order rotates every round and the medians are reported, because these machines are shared
and noisy: compare ratios within one run, not times across runs.
"""
import argparse
import asyncio
import csv
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from datetime import datetime
from pathlib import Path

import botocore.session
from aiobotocore.session import get_session

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TICKS = os.sysconf("SC_CLK_TCK")


def client(endpoint):
    return botocore.session.get_session().create_client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def body(i):
    """An example message of about 120 bytes."""
    return json.dumps({"id": f"msg-{i:06d}", "kind": "bench", "payload": {"n": i, "note": "x" * 44}})


async def fill(endpoint, url, n, tasks=8):
    """SendMessageBatch from several tasks until n messages are queued."""
    session = get_session()
    async with session.create_client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                                     aws_access_key_id="test", aws_secret_access_key="test") as sqs:
        starts = list(range(0, n, 10))

        async def worker(k):
            for start in starts[k::tasks]:
                entries = [{"Id": str(i - start), "MessageBody": body(i)} for i in range(start, min(start + 10, n))]
                answer = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
                if answer.get("Failed"):
                    raise RuntimeError(f"send failed: {answer['Failed']}")

        await asyncio.gather(*(worker(k) for k in range(tasks)))


def depth(sqs, url):
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def cpu_seconds(pid):
    """utime + stime of a process so far (for the emulator)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss(pid):
    """VmHWM of a live process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def contenders(bin_dir, python, endpoint):
    runner = [str(bin_dir / "local-runner"), "--endpoint-url", endpoint, "--log-format", "json"]
    return {
        "local-runner": lambda url: (runner + ["--queue", url], {}),
        "local-runner tuned": lambda url: (runner + ["--queue", url, "--pollers", "8", "--max-in-flight", "200"],
                                           {"RUST_LOG": "warn"}),
        "python original design": lambda url: ([python, str(ROOT / "bench/baselines/original_design.py"), endpoint, url], {}),
        "python tuned": lambda url: ([python, str(ROOT / "bench/baselines/tuned.py"), endpoint, url], {}),
        "raw rust client": lambda url: ([str(bin_dir / "raw-drain"), endpoint, url, "16"], {}),
        "raw rust client, all attributes": lambda url: ([str(bin_dir / "raw-drain"), endpoint, url, "16", "all-attributes"], {}),
    }


def drain_once(name, command, sqs, endpoint, n, localstack_pid, run_id, timeout):
    url = sqs.create_queue(QueueName=f"bench-{run_id}")["QueueUrl"]
    asyncio.run(fill(endpoint, url, n))
    argv, extra_env = command(url)
    emulator_before = cpu_seconds(localstack_pid)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, **extra_env})
    try:
        while depth(sqs, url) > 0:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} before the queue was empty")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{name} did not drain {n} messages within {timeout} s")
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        emulator = cpu_seconds(localstack_pid) - emulator_before
        # Peak RSS since exec. (ru_maxrss would also count the time the child was still a fork
        # of this Python process.)
        peak_rss_kb = peak_rss(process.pid)
    finally:
        # Measuring is done; a graceful stop would only wait out a long poll.
        process.send_signal(signal.SIGKILL)
        _, _, usage = os.wait4(process.pid, 0)
        sqs.delete_queue(QueueUrl=url)
    return {
        "contender": name, "messages": n, "seconds": round(seconds, 3), "msgs_per_s": round(n / seconds, 1),
        "cpu_s_per_1k": round((usage.ru_utime + usage.ru_stime) / n * 1000, 4),
        "peak_rss_mb": round(peak_rss_kb / 1024, 1),
        "emulator_cpu_s_per_1k": round(emulator / n * 1000, 4),
    }


def drain(args, sqs):
    table = contenders(Path(args.bin), sys.executable, args.endpoint)
    # The attribute variant is for explaining the ceiling; it runs only when asked for.
    names = [n for n in table if n in (args.contenders or [])] if args.contenders else [n for n in table if "attributes" not in n]
    runs = []
    print(f"\nDrain: {args.messages} messages x {len(names)} contenders x {args.rounds} rounds", flush=True)
    for round_number in range(args.rounds):
        order = names[round_number % len(names):] + names[:round_number % len(names)]
        for name in order:
            row = drain_once(name, table[name], sqs, args.endpoint, args.messages, args.localstack_pid,
                             f"{round_number}-{names.index(name)}-{int(time.time())}", args.timeout)
            row["round"] = round_number + 1
            runs.append(row)
            print(f"  round {row['round']} {name:24} {row['msgs_per_s']:>9.1f} msg/s  "
                  f"{row['cpu_s_per_1k']:.4f} CPU s/1k  {row['peak_rss_mb']:.1f} MB", flush=True)
    # A partial run (--contenders) must not overwrite the full run's figures.
    with open(RESULTS / ("drain-partial.csv" if args.contenders else "drain.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["round", *runs[0].keys() - {"round"}])
        writer.writeheader()
        writer.writerows(runs)
    medians = {}
    for name in names:
        mine = [r for r in runs if r["contender"] == name]
        medians[name] = {k: statistics.median(r[k] for r in mine)
                         for k in ["msgs_per_s", "cpu_s_per_1k", "peak_rss_mb", "emulator_cpu_s_per_1k"]}
    return medians


def print_drain(medians, messages, rounds):
    print(f"\nDrain, {messages} messages, median of {rounds} rounds:\n")
    print("| contender | msg/s | consumer CPU s / 1k msgs | peak RSS MB | LocalStack CPU s / 1k msgs |")
    print("|---|---:|---:|---:|---:|")
    for name, m in medians.items():
        print(f"| {name} | {m['msgs_per_s']:.0f} | {m['cpu_s_per_1k']:.4f} | {m['peak_rss_mb']:.1f} | {m['emulator_cpu_s_per_1k']:.3f} |")
    ours, tuned = medians["local-runner"], medians["local-runner tuned"]
    print("\nRatios (same run):")
    for label, mine in [("local-runner", ours), ("local-runner tuned", tuned)]:
        print(f"- {label}: {mine['msgs_per_s'] / medians['python tuned']['msgs_per_s']:.2f}x python tuned, "
              f"{mine['msgs_per_s'] / medians['python original design']['msgs_per_s']:.1f}x original design, "
              f"{mine['msgs_per_s'] / medians['raw rust client']['msgs_per_s'] * 100:.0f} % of the raw client ceiling; "
              f"CPU per message {mine['cpu_s_per_1k'] / medians['python tuned']['cpu_s_per_1k']:.3f} of python tuned")


def chart(medians, messages):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(medians)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = ["#1f6feb" if n.startswith("local-runner") else "#8b949e" for n in names]
    left.barh(names, [medians[n]["msgs_per_s"] for n in names], color=colours)
    left.set_xlabel("messages / s (higher is better)")
    left.invert_yaxis()
    right.barh(names, [medians[n]["cpu_s_per_1k"] for n in names], color=colours)
    right.set_xlabel("consumer CPU s per 1,000 messages (lower is better)")
    right.invert_yaxis()
    right.set_yticklabels([])
    fig.suptitle(f"Draining {messages:,} messages from LocalStack (median of rounds, same machine, same run)")
    fig.tight_layout()
    fig.savefig(RESULTS / "drain.png", dpi=110)


def latency(args, sqs, count=200):
    """send → handled on an idle queue, local-runner with default settings (long polling)."""
    url = sqs.create_queue(QueueName=f"bench-latency-{int(time.time())}")["QueueUrl"]
    process = subprocess.Popen([str(Path(args.bin) / "local-runner"), "--endpoint-url", args.endpoint,
                                "--queue", url, "--log-format", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    handled, polling = {}, threading.Event()

    def read():
        for line in process.stdout:
            entry = json.loads(line)
            if entry.get("message") == "polling":
                polling.set()
            if entry.get("outcome") == "ok":
                handled[entry["id"]] = datetime.fromisoformat(entry["timestamp"]).timestamp()

    threading.Thread(target=read, daemon=True).start()
    polling.wait(30)
    time.sleep(1)  # let both pollers sit in their long poll
    sent = {}
    for i in range(count):
        message_id = f"lat-{i}"
        sent[message_id] = time.time()
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": message_id, "kind": "latency"}))
        time.sleep(0.05)
    deadline = time.time() + 30
    while len(handled) < count and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    sqs.delete_queue(QueueUrl=url)
    millis = sorted((handled[k] - sent[k]) * 1000 for k in sent if k in handled)
    q = statistics.quantiles(millis, n=100)
    return {"messages": count, "handled": len(millis), "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(millis[-1], 1)}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """A minimal Lambda Runtime API for measuring the bootstrap: hands out `remaining` events."""
    event = b""
    remaining = 0
    first_next = None
    answered = 0
    lock = threading.Lock()
    done = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = type(self)
        with cls.lock:
            if cls.first_next is None:
                cls.first_next = time.perf_counter()
            number = cls.remaining
            cls.remaining -= 1
        if number <= 0:
            cls.done.set()
            time.sleep(3600)  # hold the runtime here while it is measured
            return
        self.send_response(200)
        for name, value in [("Content-Type", "application/json"), ("Lambda-Runtime-Aws-Request-Id", f"req-{number}"),
                            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(cls.event)))
        self.end_headers()
        self.wfile.write(cls.event)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with type(self).lock:
            type(self).answered += 1
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def bootstrap_run(bootstrap, invocations):
    RuntimeApi.remaining, RuntimeApi.first_next, RuntimeApi.answered = invocations, None, 0
    RuntimeApi.done.clear()
    records = [{"messageId": f"00000000-0000-4000-8000-{i:012d}", "receiptHandle": "h", "body": body(i),
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"} for i in range(10)]
    RuntimeApi.event = json.dumps({"Records": records}).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}", "AWS_LAMBDA_FUNCTION_NAME": "bench",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_LOG_LEVEL": "INFO", "PATH": "/usr/bin:/bin"}
    started = time.perf_counter()
    process = subprocess.Popen([str(bootstrap)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    RuntimeApi.done.wait(120)
    status = dict(line.split(":", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines() if ":" in line)
    process.kill()
    process.wait()
    server.shutdown()
    return {"first_next_ms": (RuntimeApi.first_next - started) * 1000, "answered": RuntimeApi.answered,
            "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}


def bootstrap_figures(args):
    bootstrap = Path(args.bin) / "bootstrap"
    archive = RESULTS / "bootstrap.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(bootstrap, "bootstrap")
    figures = {"binary_mb": round(bootstrap.stat().st_size / 1e6, 2), "zip_mb": round(archive.stat().st_size / 1e6, 2)}
    archive.unlink()
    cold = [bootstrap_run(bootstrap, 1)["first_next_ms"] for _ in range(7)]
    warm = bootstrap_run(bootstrap, 1000)
    figures.update({"exec_to_first_next_ms_median": round(statistics.median(cold), 2),
                    "exec_to_first_next_ms_runs": [round(c, 2) for c in cold],
                    "invocations": warm["answered"], "rss_after_1000_mb": round(warm["rss_mb"], 1),
                    "peak_rss_mb": round(warm["peak_rss_mb"], 1)})
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--localstack-pid", type=int, required=True)
    parser.add_argument("--bin", required=True, help="folder with the release binaries")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=900, help="seconds one drain may take")
    parser.add_argument("--only", choices=["drain", "latency", "bootstrap"], action="append")
    parser.add_argument("--contenders", action="append", help="run only these drain contenders (repeatable)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    sqs = client(args.endpoint)
    only = set(args.only or ["drain", "latency", "bootstrap"])
    summary = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}, "messages": args.messages,
               "rounds": args.rounds}
    if "bootstrap" in only:
        summary["bootstrap"] = bootstrap_figures(args)
        print("\nLambda bootstrap:", json.dumps(summary["bootstrap"]), flush=True)
    if "latency" in only:
        summary["latency"] = latency(args, sqs)
        print("\nLatency, send -> handled, idle queue, long polling:", json.dumps(summary["latency"]), flush=True)
    if "drain" in only:
        medians = drain(args, sqs)
        summary["drain_medians"] = medians
        if not args.contenders:
            print_drain(medians, args.messages, args.rounds)
            chart(medians, args.messages)
    if not args.contenders:
        (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
