"""Side-by-side benchmarks of the SQS consumers; bench/run.sh builds the release binaries, starts
LocalStack (its default keep-alive gateway, as users run it) and the stub endpoint, and runs this.

Sections (--only, repeatable; all by default):
  drain     every contender drains the same queue on LocalStack, rounds in rotating order
  stub      the same contenders on a stub SQS endpoint, each pinned to one core (capacity per core)
  scaling   local-runner at 1, 2, 4, 8, 16 pollers, and two processes on one queue
  memory    RSS with 1,000 messages in flight, and with 10,000-message batches under --lambda
  bootstrap the Lambda bootstrap's size, exec -> first /next, RSS after 1,000 invocations
  weight    the same for several functions side by side (--weight; bench/weight.sh builds them)
  latency   send -> handled on an idle queue
  alternatives  --lambda against LocalStack's own event source mapping and `sam local invoke`, on
            the deployed function (bench/alternatives.sh deploys it and runs this; not by default)
  profile   where local-runner's CPU goes on the stub (perf), when perf is installed

Timing starts at a contender's first receive (its start-up is not counted) and ends when the
last message is deleted; CPU is the consumer's (with its child processes) over the same span.
These machines are shared and noisy: every figure is min / median / max over the rounds of one
run, and a ratio is claimed only where the ranges do not overlap.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from datetime import datetime
from pathlib import Path

import botocore.session
from aiobotocore.session import get_session

ROOT = Path(__file__).resolve().parent.parent


def runner_in(folder):
    """The runner with the test handler in `folder`: `local`, or `local-runner` in an older build."""
    folder = Path(folder)
    return folder / "local" if (folder / "local").exists() or not (folder / "local-runner").exists() else folder / "local-runner"
RESULTS = ROOT / "bench" / "results"
TICKS = os.sysconf("SC_CLK_TCK")
PY_ORIGINAL = "python original design"


def client(endpoint, service="sqs"):
    return botocore.session.get_session().create_client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def body(i, work_ms=None, size=None):
    """An example message of about 120 bytes (or `size`), valid for the example handler."""
    message = {"id": f"msg-{i:06d}", "kind": "bench", "payload": {"n": i, "note": "x" * 44}}
    if work_ms is not None:
        message["work_ms"] = work_ms
    text = json.dumps(message)
    if size is not None and len(text) < size:
        message["payload"]["note"] += "x" * (size - len(text))
        text = json.dumps(message)
    return text


async def fill(endpoint, url, n, tasks=8, work_ms=None, size=None):
    """SendMessageBatch from several tasks until n messages are queued."""
    async with get_session().create_client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                                           aws_access_key_id="test", aws_secret_access_key="test") as sqs:
        starts = list(range(0, n, 10))

        async def worker(k):
            for start in starts[k::tasks]:
                entries = [{"Id": str(i - start), "MessageBody": body(i, work_ms, size)}
                           for i in range(start, min(start + 10, n))]
                answer = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
                if answer.get("Failed"):
                    raise RuntimeError(f"send failed: {answer['Failed']}")

        await asyncio.gather(*(worker(k) for k in range(tasks)))


def counts(sqs, url):
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def tree(pid):
    """The process and all its descendants still alive."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_seconds(pid, with_children=True):
    """utime + stime of a process (and its live descendants, and those it has waited for)."""
    total = 0.0
    for p in (tree(pid) if with_children else [pid]):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / TICKS
    return total


def status_kb(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def stop(process):
    process.send_signal(signal.SIGKILL)
    process.wait()
    for p in tree(process.pid)[1:]:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def spread(values, digits=0):
    values = sorted(values)
    fmt = f"{{:,.{digits}f}}"
    return {"min": values[0], "median": statistics.median(values), "max": values[-1],
            "text": " / ".join(fmt.format(v) for v in (values[0], statistics.median(values), values[-1]))}


# ---------------------------------------------------------------------------------------------
# Contenders


def contenders(args, endpoint, url):
    """name -> (argv, extra environment). The runner runs in the repository, as a user does: it
    follows template.yaml's function."""
    bin_dir = Path(args.bin)
    runner = [str(runner_in(bin_dir)), "--endpoint-url", endpoint, "--log-format", "json", "--queue", url]
    python = str(Path(sys.executable))
    raw = [str(bin_dir / "raw-drain"), endpoint, url, "16"]
    return {
        "local-runner": (runner, {}),
        "local-runner tuned": (runner + ["--pollers", "8", "--max-in-flight", "200"], {"RUST_LOG": "warn"}),
        "local-runner --lambda": (runner + ["--lambda", str(bin_dir / "bootstrap")], {}),
        PY_ORIGINAL: ([python, str(ROOT / "bench/baselines/original_design.py"), endpoint, url], {}),
        "python tuned": ([python, str(ROOT / "bench/baselines/tuned.py"), endpoint, url], {}),
        "node sqs-consumer": (["node", str(ROOT / "bench/baselines/node/consumer.js"), endpoint, url], {}),
        "raw rust client": (raw, {}),
        # What separates the defaults from the raw loop: the raw loop asking for every attribute
        # (as the runner must), and the defaults without their line per message.
        "raw rust client, all attributes": (raw + ["all-attributes"], {}),
        # The raw loop with as few receives in flight as the runner's two pollers: on one core,
        # fewer requests at once cost more CPU per message (each one wakes an idle endpoint).
        "raw rust client, all attributes, 2 tasks": (raw[:-1] + ["2", "all-attributes"], {}),
        "raw rust client, all attributes, 5 tasks": (raw[:-1] + ["5", "all-attributes"], {}),
        "local-runner, no line per message": (runner, {"RUST_LOG": "warn"}),
        **({"local-runner baseline": ([str(runner_in(Path(args.baseline_bin)))] + runner[1:], {})}
           if args.baseline_bin else {}),
    }


def start(argv, extra_env, pin=None):
    prefix = ["taskset", "-c", str(pin)] if pin is not None else []
    return subprocess.Popen(prefix + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                            env={**os.environ, **extra_env})


# ---------------------------------------------------------------------------------------------
# Drain on LocalStack


def drain_localstack(args, sqs, name, argv_env, url, n):
    """Runs one contender on a filled queue: from its first receive to an empty queue."""
    process = start(*argv_env)
    try:
        deadline = time.perf_counter() + args.timeout
        # The first receive: messages become in flight (or leave the visible count).
        while True:
            visible, hidden = counts(sqs, url)
            if hidden > 0 or visible < n:
                break
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} before receiving")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} received nothing in {args.timeout} s")
            time.sleep(0.01)
        started, cpu_start = time.perf_counter(), cpu_seconds(process.pid)
        peak, polls = 0, 0
        while sum(counts(sqs, url)) > 0:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} before the queue was empty")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} did not drain {n} messages in {args.timeout} s")
            polls += 1
            if polls % 25 == 0:  # the function processes of --lambda come and go: look now and then
                peak = max(peak, sum(status_kb(p, "VmRSS") for p in tree(process.pid)))
            time.sleep(0.02)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(process.pid) - cpu_start
        peak = max(peak, sum(status_kb(p, "VmHWM") for p in tree(process.pid)))
    finally:
        stop(process)
    return {"contender": name, "messages": n, "seconds": round(seconds, 3), "msgs_per_s": round(n / seconds, 1),
            "cpu_ms_per_msg": round(cpu / n * 1000, 4), "rss_mb": round(peak / 1024, 1)}


def rounds(names, count):
    """Each round starts one later in the list, so no contender always runs first or last."""
    for r in range(count):
        k = r % len(names)
        yield r + 1, names[k:] + names[:k]


def drain(args, sqs):
    names = [n for n in contenders(args, "", "") if not args.contenders or n in args.contenders]
    print(f"\n## Drain on LocalStack: {args.messages} messages, {len(names)} contenders, {args.rounds} rounds", flush=True)
    runs = []
    for number, order in rounds(names, args.rounds):
        for name in order:
            n = args.messages // 5 if name == PY_ORIGINAL else args.messages
            url = sqs.create_queue(QueueName=f"bench-{number}-{names.index(name)}-{int(time.time())}")["QueueUrl"]
            asyncio.run(fill(args.endpoint, url, n))
            row = drain_localstack(args, sqs, name, contenders(args, args.endpoint, url)[name], url, n)
            sqs.delete_queue(QueueUrl=url)
            row["round"] = number
            runs.append(row)
            print(f"  round {number} {name:24} {row['msgs_per_s']:>9,.0f} msg/s  {row['cpu_ms_per_msg']:.4f} CPU ms/msg  "
                  f"{row['rss_mb']:.1f} MB", flush=True)
    return summarise(runs, names)


def summarise(runs, names):
    table = {}
    for name in names:
        mine = [r for r in runs if r["contender"] == name]
        table[name] = {"rate": spread([r["msgs_per_s"] for r in mine]),
                       "cpu": spread([r["cpu_ms_per_msg"] for r in mine], 3),
                       "rss": spread([r["rss_mb"] for r in mine], 1),
                       "messages": mine[0]["messages"], "runs": mine}
    return table


def print_table(title, table):
    print(f"\n{title}\n")
    print("| contender | msg/s min / median / max | CPU ms per msg min / median / max | peak RSS MB (median) |")
    print("|---|---:|---:|---:|")
    for name, t in table.items():
        print(f"| {name} | {t['rate']['text']} | {t['cpu']['text']} | {t['rss']['median']:.1f} |")


def compare(table, ours, theirs, key="rate", higher=True):
    """`ours / theirs` on medians, and whether the ranges are apart (a claim) or overlap."""
    a, b = table[ours][key], table[theirs][key]
    ratio = a["median"] / b["median"] if b["median"] else float("inf")
    apart = (a["min"] > b["max"]) if higher else (a["max"] < b["min"])
    overlap = not (a["min"] > b["max"] or a["max"] < b["min"])
    return {"ratio": round(ratio, 3), "ranges": "apart" if apart else ("overlap" if overlap else "apart, the other way")}


# ---------------------------------------------------------------------------------------------
# The stub endpoint: capacity per core


def stub_get(stub, path):
    with urllib.request.urlopen(stub + path, timeout=5) as answer:
        return json.loads(answer.read())


def stub_start(stub, n):
    urllib.request.urlopen(urllib.request.Request(f"{stub}/control/start?messages={n}", method="POST"), timeout=5).read()


def drain_stub(args, stub, name, argv_env, n):
    stub_start(stub, 0)
    process = start(*argv_env, pin=0)
    try:
        deadline = time.perf_counter() + args.timeout
        while stub_get(stub, "/control/stats")["receives"] == 0:  # started and polling
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} on the stub")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} never polled the stub")
            time.sleep(0.02)
        time.sleep(0.5)
        cpu_start = cpu_seconds(process.pid)
        stub_start(stub, n)
        while (stats := stub_get(stub, "/control/stats"))["deleted"] < n:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} on the stub")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} did not drain {n} stub messages in {args.timeout} s: {stats}")
            time.sleep(0.01)
        cpu = cpu_seconds(process.pid) - cpu_start
        peak = sum(status_kb(p, "VmHWM") for p in tree(process.pid))
    finally:
        stop(process)
    seconds = stats["seconds"]
    return {"contender": name, "messages": n, "seconds": round(seconds, 3), "msgs_per_s": round(n / seconds, 1),
            "cpu_ms_per_msg": round(cpu / n * 1000, 4), "rss_mb": round(peak / 1024, 1)}


def stub(args):
    process = subprocess.Popen(["taskset", "-c", "1", str(Path(args.bin) / "stub-sqs")], stdout=subprocess.PIPE, text=True)
    address = process.stdout.readline().split()[-1]
    url = f"{address}/000000000000/stub"
    names = [n for n in contenders(args, "", "") if not args.contenders or n in args.contenders]
    n_stub = args.stub_messages
    print(f"\n## Stub endpoint, one core each: {n_stub} messages, {len(names)} contenders, {args.rounds} rounds", flush=True)
    runs = []
    try:
        for number, order in rounds(names, args.rounds):
            for name in order:
                n = n_stub // 10 if name == PY_ORIGINAL else n_stub
                row = drain_stub(args, address, name, contenders(args, address, url)[name], n)
                row["round"] = number
                runs.append(row)
                print(f"  round {number} {name:24} {row['msgs_per_s']:>9,.0f} msg/s  {row['cpu_ms_per_msg']:.4f} CPU ms/msg  "
                      f"{row['rss_mb']:.1f} MB", flush=True)
    finally:
        stop(process)
    return summarise(runs, names)


# ---------------------------------------------------------------------------------------------
# Scaling


SCALING = [(1, p) for p in (1, 2, 4, 8, 16)] + [(2, p) for p in (1, 2, 4, 8)]


def scaling_points(points):
    return {key: {"processes": int(key.split("x")[0]), "pollers": int(key.split("x")[1]),
                  "rate": spread([p["msgs_per_s"] for p in v]), "cpu": spread([p["cpu_ms_per_msg"] for p in v], 3)}
            for key, v in points.items()}


def scaling(args, sqs):
    """local-runner by pollers and processes: on LocalStack (what users see), and on the stub with
    every process on one core (where the consumer, not the endpoint, is the limit)."""
    bin_dir = Path(args.bin)
    n = args.messages
    print(f"\n## Scaling on LocalStack: {n} messages, {args.rounds_scaling} rounds", flush=True)
    points = {}
    for number in range(args.rounds_scaling):
        for processes, pollers in SCALING:
            url = sqs.create_queue(QueueName=f"bench-scale-{number}-{processes}x{pollers}-{int(time.time())}")["QueueUrl"]
            asyncio.run(fill(args.endpoint, url, n))
            argv = [str(runner_in(bin_dir)), "--endpoint-url", args.endpoint, "--log-format", "json",
                    "--queue", url, "--pollers", str(pollers)]
            launched = [start(argv, {}) for _ in range(processes)]
            try:
                while True:
                    visible, hidden = counts(sqs, url)
                    if hidden > 0 or visible < n:
                        break
                    time.sleep(0.01)
                started, cpu_start = time.perf_counter(), sum(cpu_seconds(p.pid) for p in launched)
                while sum(counts(sqs, url)) > 0:
                    if time.perf_counter() - started > args.timeout:
                        raise RuntimeError("scaling run did not drain")
                    time.sleep(0.02)
                seconds, cpu = time.perf_counter() - started, sum(cpu_seconds(p.pid) for p in launched) - cpu_start
            finally:
                for p in launched:
                    stop(p)
            sqs.delete_queue(QueueUrl=url)
            points.setdefault(f"{processes}x{pollers}", []).append({"msgs_per_s": n / seconds, "cpu_ms_per_msg": cpu / n * 1000})
            print(f"  round {number + 1} {processes} process(es) x {pollers:>2} pollers  {n / seconds:>8,.0f} msg/s  "
                  f"{cpu / n * 1000:.4f} CPU ms/msg", flush=True)
    result = {"localstack": scaling_points(points), "stub": scaling_stub(args)}
    scaling_chart(result, n, args.stub_messages)
    return result


def scaling_stub(args):
    stub_process = subprocess.Popen(["taskset", "-c", "1", str(Path(args.bin) / "stub-sqs")], stdout=subprocess.PIPE, text=True)
    address = stub_process.stdout.readline().split()[-1]
    n = args.stub_messages
    print(f"\n## Scaling on the stub, every process on one core: {n} messages, {args.rounds_scaling} rounds", flush=True)
    points = {}
    try:
        for number in range(args.rounds_scaling):
            for processes, pollers in SCALING:
                stub_start(address, 0)
                argv = [str(runner_in(Path(args.bin))), "--endpoint-url", address, "--log-format", "json",
                        "--queue", f"{address}/000000000000/stub", "--pollers", str(pollers)]
                launched = [start(argv, {}, pin=0) for _ in range(processes)]
                try:
                    while stub_get(address, "/control/stats")["receives"] < processes:
                        time.sleep(0.02)
                    time.sleep(0.5)
                    cpu_start = sum(cpu_seconds(p.pid) for p in launched)
                    stub_start(address, n)
                    while (stats := stub_get(address, "/control/stats"))["deleted"] < n:
                        time.sleep(0.01)
                    cpu = sum(cpu_seconds(p.pid) for p in launched) - cpu_start
                finally:
                    for p in launched:
                        stop(p)
                rate = n / stats["seconds"]
                points.setdefault(f"{processes}x{pollers}", []).append({"msgs_per_s": rate, "cpu_ms_per_msg": cpu / n * 1000})
                print(f"  round {number + 1} {processes} process(es) x {pollers:>2} pollers  {rate:>8,.0f} msg/s  "
                      f"{cpu / n * 1000:.4f} CPU ms/msg", flush=True)
    finally:
        stop(stub_process)
    return scaling_points(points)


def scaling_chart(result, n, n_stub):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for row, (backend, title) in enumerate([("localstack", f"LocalStack (keep-alive gateway), {n:,} messages"),
                                            ("stub", f"stub endpoint, all on one core, {n_stub:,} messages")]):
        for processes, colour, label in [(1, "#1f6feb", "one process"), (2, "#d29922", "two processes on one queue")]:
            mine = sorted((v for v in result[backend].values() if v["processes"] == processes), key=lambda v: v["pollers"])
            total = [v["pollers"] * processes for v in mine]
            for axis, key in [(axes[row][0], "rate"), (axes[row][1], "cpu")]:
                med = [v[key]["median"] for v in mine]
                low = [v[key]["median"] - v[key]["min"] for v in mine]
                high = [v[key]["max"] - v[key]["median"] for v in mine]
                axis.errorbar(total, med, yerr=[low, high], marker="o", capsize=3, color=colour, label=label)
        for axis in axes[row]:
            axis.set_xscale("log", base=2)
            axis.set_xticks([1, 2, 4, 8, 16])
            axis.set_xticklabels(["1", "2", "4", "8", "16"])
            axis.set_xlabel("pollers in all (one long poll each)")
            axis.set_title(title, fontsize=10)
            axis.legend()
            axis.grid(alpha=0.3)
        axes[row][0].set_ylabel("messages / s (median, min-max bars)")
        axes[row][1].set_ylabel("consumer CPU ms per message")
    fig.suptitle("local-runner (defaults otherwise) by pollers, and two processes on one queue")
    fig.tight_layout()
    fig.savefig(RESULTS / "scaling.png", dpi=110)


def drain_chart(table, stub_table):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, title) for t, title in [(table, "LocalStack"), (stub_table, "stub endpoint, one core each")] if t]
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.8 * len(panels)), squeeze=False)
    for row, (t, title) in enumerate(panels):
        names = list(t)
        colours = ["#1f6feb" if n.startswith("local-runner") else "#8b949e" for n in names]
        for column, (key, label) in enumerate([("rate", "messages / s"), ("cpu", "consumer CPU ms per message")]):
            axis = axes[row][column]
            med = [t[n][key]["median"] for n in names]
            err = [[t[n][key]["median"] - t[n][key]["min"] for n in names], [t[n][key]["max"] - t[n][key]["median"] for n in names]]
            axis.barh(names, med, xerr=err, color=colours, capsize=3)
            axis.set_xlabel(f"{label} (median, min-max bars)")
            axis.set_title(title, fontsize=10)
            axis.invert_yaxis()
            if column:
                axis.set_yticklabels([])
    fig.tight_layout()
    fig.savefig(RESULTS / "drain.png", dpi=110)


# ---------------------------------------------------------------------------------------------
# Memory at scale


def metric(address, name):
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name):
                    return float(line.split()[-1])
    except OSError:
        pass
    return 0.0


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


IN_FLIGHT = (100, 300, 1000, 3000, 10000)


def held(args, sqs, binary, n):
    """RSS of `binary` (a local-runner) holding n messages of 1 KB at once: n slow messages (30 s of
    work each), room for n in flight, 8 pollers. Measured once the runner reports n in flight."""
    url = sqs.create_queue(QueueName=f"bench-inflight-{n}-{int(time.time() * 1000)}",
                           Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    asyncio.run(fill(args.endpoint, url, n, work_ms=30000, size=1024))
    address = f"127.0.0.1:{free_port()}"
    process = start([str(binary), "--endpoint-url", args.endpoint, "--log-format", "json", "--queue", url,
                     "--max-in-flight", str(n), "--pollers", "8", "--metrics-addr", address], {})
    try:
        deadline, most = time.time() + 60, 0.0
        while time.time() < deadline and most < n:
            most = max(most, metric(address, "local_runner_messages_in_flight"))
            time.sleep(0.1)
        time.sleep(1)
        mb = {key: round(status_kb(process.pid, key) / 1024, 1) for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
        # RssFile: the binary's own pages in memory (code and read-only data); RssAnon: the heap,
        # the stacks and the allocator's reserves.
        return {"in_flight": most, "rss_mb": mb["VmRSS"], "peak_rss_mb": mb["VmHWM"], "anon_mb": mb["RssAnon"],
                "file_mb": mb["RssFile"]}
    finally:
        stop(process)
        sqs.delete_queue(QueueUrl=url)


def memory(args, sqs):
    bin_dir = Path(args.bin)
    figures = {}
    # RSS against the number of 1 KB messages held at once, for this build (and the baseline's).
    builds = {"local-runner": runner_in(Path(args.bin))}
    if args.baseline_bin:
        builds["local-runner baseline"] = runner_in(Path(args.baseline_bin))
    print("\n## Memory: RSS against messages in flight (1 KB bodies, 30 s of work each)", flush=True)
    curve = {}
    for n in IN_FLIGHT:
        for name, binary in builds.items():
            point = held(args, sqs, binary, n)
            curve.setdefault(name, {})[str(n)] = point
            print(f"  {name:24} {n:>6,} wanted, {point['in_flight']:>6,.0f} in flight: {point['rss_mb']:6.1f} MB RSS "
                  f"({point['anon_mb']:.1f} anonymous, {point['file_mb']:.1f} of the binary), {point['peak_rss_mb']:6.1f} MB peak",
                  flush=True)
    figures["in_flight_curve"] = curve

    # 10,000-message batches under --lambda.
    n = 10000
    url = sqs.create_queue(QueueName=f"bench-bigbatch-{int(time.time())}", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    asyncio.run(fill(args.endpoint, url, n))
    process = start([str(runner_in(bin_dir)), "--endpoint-url", args.endpoint, "--log-format", "json", "--queue", url,
                     "--lambda", str(bin_dir / "bootstrap"), "--esm-batch-size", "10000", "--batching-window", "5",
                     "--max-concurrency", "2", "--function-timeout", "120"], {})
    try:
        deadline, runner_peak, function_peak = time.time() + 300, 0, 0
        while sum(counts(sqs, url)) > 0 and time.time() < deadline:
            runner_peak = max(runner_peak, status_kb(process.pid, "VmHWM"))
            for p in tree(process.pid)[1:]:
                function_peak = max(function_peak, status_kb(p, "VmHWM"))
            time.sleep(0.05)
        drained = sum(counts(sqs, url)) == 0
        figures["lambda_batches_10000"] = {"drained": drained, "runner_peak_rss_mb": round(runner_peak / 1024, 1),
                                           "function_peak_rss_mb": round(function_peak / 1024, 1)}
    finally:
        stop(process)
        sqs.delete_queue(QueueUrl=url)
    print(f"  10,000-message batches under --lambda: {figures['lambda_batches_10000']}", flush=True)
    return figures


# ---------------------------------------------------------------------------------------------
# Latency and the bootstrap


def latency(args, sqs, count=200):
    """send -> handled on an idle queue, local-runner with default settings (long polling)."""
    url = sqs.create_queue(QueueName=f"bench-latency-{int(time.time())}")["QueueUrl"]
    process = subprocess.Popen([str(runner_in(Path(args.bin))), "--endpoint-url", args.endpoint,
                                "--queue", url, "--log-format", "json"], cwd=ROOT,
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
    stop(process)
    sqs.delete_queue(QueueUrl=url)
    millis = sorted((handled[k] - sent[k]) * 1000 for k in sent if k in handled)
    q = statistics.quantiles(millis, n=100)
    return {"messages": count, "handled": len(millis), "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(millis[-1], 1)}


class RuntimeApi(__import__("http.server").server.BaseHTTPRequestHandler):
    """A minimal Lambda Runtime API for measuring the bootstrap: hands out `remaining` events."""
    event = b""
    remaining = 0
    first_next = None
    answered = 0
    served, posted = [], []  # when each event was handed out, and when its answer came
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
            if number > 0:
                cls.served.append(time.perf_counter())
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
            type(self).posted.append(time.perf_counter())
            type(self).answered += 1
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def bootstrap_run(bootstrap, invocations, body_of=body, extra_env=None, records=10, record_of=None):
    """Starts `bootstrap` against a Runtime API of its own and serves it `invocations` events of
    `records` records (bodies from `body_of(i)`; `record_of(i, body)` shapes each, by default
    with the fewest fields: an id, a receipt handle, one attribute); returns exec ->
    first /next, each invocation's time from the event handed out to its answer, and the resident
    set once it waits for the next event after the last."""
    import http.server
    RuntimeApi.remaining, RuntimeApi.first_next, RuntimeApi.answered = invocations, None, 0
    RuntimeApi.served, RuntimeApi.posted = [], []
    RuntimeApi.done.clear()
    record_of = record_of or minimal_record
    RuntimeApi.event = json.dumps({"Records": [record_of(i, body_of(i)) for i in range(records)]}).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}", "AWS_LAMBDA_FUNCTION_NAME": "bench",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_LOG_LEVEL": "INFO", "PATH": "/usr/bin:/bin", **(extra_env or {})}
    started = time.perf_counter()
    process = subprocess.Popen([str(bootstrap)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not RuntimeApi.done.wait(300):
        process.kill()
        raise SystemExit(f"{bootstrap}: {RuntimeApi.answered} of {invocations} invocations answered within 300 s: "
                         f"{process.stderr.read(2000).decode(errors='replace') if process.poll() is not None else ''}")
    rss, hwm = status_kb(process.pid, "VmRSS"), status_kb(process.pid, "VmHWM")
    process.kill()
    process.wait()
    server.shutdown()
    if RuntimeApi.answered != invocations:
        raise SystemExit(f"{bootstrap}: {RuntimeApi.answered} answers to {invocations} invocations")
    return {"first_next_ms": (RuntimeApi.first_next - started) * 1000, "answered": RuntimeApi.answered,
            "answer_ms": [(p - s) * 1000 for s, p in zip(RuntimeApi.served, RuntimeApi.posted)],
            "event_mb": len(RuntimeApi.event) / 1e6, "rss_mb": rss / 1024, "peak_rss_mb": hwm / 1024}


def minimal_record(i, text):
    """Record number i of an event, with the fewest fields a record has."""
    return {"messageId": f"00000000-0000-4000-8000-{i:012d}", "receiptHandle": "h", "body": text,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"}


def lambda_record(i, text):
    """Record number i of an event, with the fields and attributes Lambda's mapping delivers."""
    return {"messageId": f"4f7b9c2e-1d3a-4c5b-9e8f-{i:012d}",
            "receiptHandle": f"AQEB{i:012d}" + "Z" * 172, "body": text,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1765000000000",
                           "SenderId": "AROAIWPX5BD2BHG722MW4:sender", "ApproximateFirstReceiveTimestamp": "1765000000123"},
            "messageAttributes": {}, "md5OfBody": "5a6b0c3ffbe1ef1e4e0c8e0d0b7d0c5e", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"}


def zipped_mb(binary):
    """The binary's size zipped as Lambda takes it (a `bootstrap` at the archive's root), in MB."""
    archive = RESULTS / "bootstrap.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    size = archive.stat().st_size
    archive.unlink()
    return round(size / 1e6, 2)


def weight(args):
    """Functions side by side (--weight NAME=PATH, with --weight-env NAME:KEY=VALUE and
    --weight-body NAME:JSON, where `{i}` is the record's number): size, zipped size, exec -> first
    /next over --weight-runs cold starts taken in turn, and the resident set after 1,000
    invocations of 10 records."""
    functions = dict(item.split("=", 1) for item in args.weight)
    envs = {name: {} for name in functions}
    for item in args.weight_env or []:
        name, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        envs[name][key] = value
    bodies = {name: (lambda i: body(i)) for name in functions}
    for item in args.weight_body or []:
        name, _, template = item.partition(":")
        bodies[name] = lambda i, template=template: template.replace("{i}", str(i))
    cold = {name: [] for name in functions}
    for _ in range(args.weight_runs):
        for name, path in functions.items():
            cold[name].append(bootstrap_run(path, 1, bodies[name], envs[name])["first_next_ms"])
    figures = {}
    for name, path in functions.items():
        warm = bootstrap_run(path, 1000, bodies[name], envs[name])
        figures[name] = {"binary_mb": round(Path(path).stat().st_size / 1e6, 2), "zip_mb": zipped_mb(path),
                         "exec_to_first_next_ms": spread(cold[name], 1),
                         "invocations": warm["answered"], "rss_after_1000_mb": round(warm["rss_mb"], 1),
                         "peak_rss_mb": round(warm["peak_rss_mb"], 1)}
    print(f"\n## The function's weight\n\n| function | binary | zipped | exec -> first /next (min / median / max of "
          f"{args.weight_runs}) | RSS after 1,000 invocations of 10 records | peak RSS |\n|---|---:|---:|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['binary_mb']} MB | {f['zip_mb']} MB | {f['exec_to_first_next_ms']['text']} ms | "
              f"{f['rss_after_1000_mb']} MB | {f['peak_rss_mb']} MB |", flush=True)
    return figures


def bootstrap_figures(args):
    bootstrap = Path(args.bin) / "bootstrap"
    figures = {"binary_mb": round(bootstrap.stat().st_size / 1e6, 2), "zip_mb": zipped_mb(bootstrap)}
    cold = [bootstrap_run(bootstrap, 1)["first_next_ms"] for _ in range(7)]
    warm = bootstrap_run(bootstrap, 1000)
    figures.update({"exec_to_first_next_ms": spread(cold, 2), "invocations": warm["answered"],
                    "rss_after_1000_mb": round(warm["rss_mb"], 1), "peak_rss_mb": round(warm["peak_rss_mb"], 1)})
    # The guard: Lambda's largest batch by size, 6 MB, as about 8,500 records of 100-byte bodies;
    # 5 invocations a process, --guard-rounds processes, each build in turn (the --baseline-bin
    # folder's bootstrap beside this one's, for an A/B in one run).
    builds = {"this build": bootstrap}
    if args.baseline_bin:
        builds["baseline"] = Path(args.baseline_bin) / "bootstrap"
    runs = {name: [] for name in builds}
    for _ in range(args.guard_rounds):
        for name, path in builds.items():
            runs[name].append(bootstrap_run(path, 5, lambda i: body(i, size=100), records=8500,
                                            record_of=lambda_record))
    print(f"\n## Lambda's largest batch: 5 invocations of 8,500 records a process, {args.guard_rounds} processes\n\n"
          "| build | peak RSS (min / median / max) | event handed out -> answer posted |\n|---|---:|---:|")
    for name, rounds in runs.items():
        guard = {"records": 8500, "event_mb": round(rounds[0]["event_mb"], 2),
                 "answer_ms": spread([ms for run in rounds for ms in run["answer_ms"]], 1),
                 "peak_rss_mb": round(max(run["peak_rss_mb"] for run in rounds), 1),
                 "peak_rss_mb_by_process": spread([run["peak_rss_mb"] for run in rounds], 1)}
        figures["batch_6mb" if name == "this build" else "batch_6mb_baseline"] = guard
        print(f"| {name} | {guard['peak_rss_mb_by_process']['text']} MB | {guard['answer_ms']['text']} ms |", flush=True)
    return figures


# ---------------------------------------------------------------------------------------------
# --lambda against what users run instead (bench/alternatives.sh runs it in the deployed setting)


def machine_busy_seconds():
    """CPU seconds every core has spent busy since boot (/proc/stat). The event source mapping's
    work is spread over processes no contender owns (LocalStack's poller, podman, the function's
    containers), so this section counts the whole machine's CPU for every contender alike."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICKS  # all but idle and iowait


def deployed_mapping(lam, function):
    """The deployed stack's own event source mapping settings, so the rival mappings match them."""
    mappings = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    if not mappings:
        raise SystemExit(f"alternatives: the deployed function {function} has no event source mapping")
    m = mappings[0]
    return {"BatchSize": m["BatchSize"], "MaximumBatchingWindowInSeconds": m.get("MaximumBatchingWindowInSeconds", 0),
            "FunctionResponseTypes": m.get("FunctionResponseTypes", []),
            **({"ScalingConfig": m["ScalingConfig"]} if m.get("ScalingConfig") else {})}


def watch_drain(args, sqs, url, n, name, alive=lambda: True):
    """From now: the seconds until the first batch is handled (the queue's count falls below n)
    and until the queue is empty. LocalStack's two counts are read apart, so a message it is
    handing out can be in neither for a moment (a first read of 7 ms was seen): a count below n
    counts only when the next read agrees, and the time is the first of the two."""
    started, first, below = time.perf_counter(), None, None
    while True:
        total = sum(counts(sqs, url))
        now = time.perf_counter() - started
        if first is None and total < n:
            if below is not None:
                first = below
            below = now
        elif first is None:
            below = None
        if total == 0:
            return (first if first is not None else below), now
        if not alive():
            raise RuntimeError(f"{name} stopped before the queue was empty")
        if now > args.timeout:
            raise RuntimeError(f"{name}: {total} of {n} messages still queued after {args.timeout} s")
        time.sleep(0.02)


def alternative_row(name, n, first, seconds, busy):
    return {"contender": name, "messages": n, "first_s": round(first, 3), "seconds": round(seconds, 3),
            "msgs_per_s": round(n / seconds, 1), "machine_cpu_ms_per_msg": round(busy / n * 1000, 3),
            "machine_cores_busy": round(busy / seconds, 2)}


def drain_by_mapping(args, sqs, lam, stack, mapping, url, n):
    """LocalStack's own event source mapping, created on the filled queue with the deployed one's
    settings, invoking the deployed function (its containers start on the first batch)."""
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    busy = machine_busy_seconds()
    uuid = lam.create_event_source_mapping(FunctionName=stack["function"], EventSourceArn=arn, **mapping)["UUID"]
    try:
        first, seconds = watch_drain(args, sqs, url, n, "LocalStack's event source mapping")
        busy = machine_busy_seconds() - busy
    finally:
        lam.delete_event_source_mapping(UUID=uuid)
    return alternative_row("LocalStack's event source mapping", n, first, seconds, busy)


def drain_by_runner(args, sqs, stack, url, n):
    """`local-runner --lambda` with the deployed function's binary, template and parameters."""
    argv = [str(Path(args.bin) / "local-runner"), "--queue", url, "--endpoint-url", args.endpoint,
            "--lambda", stack["bootstrap"], "--template", str(ROOT / stack["template"]),
            "--parameter-overrides", *stack["parameters"]]
    busy = machine_busy_seconds()
    process = start(argv, {})
    try:
        first, seconds = watch_drain(args, sqs, url, n, "local-runner --lambda", lambda: process.poll() is None)
        busy = machine_busy_seconds() - busy
    finally:
        stop(process)
    return alternative_row("local-runner --lambda", n, first, seconds, busy)


def invoke_sam_local(args, stack, batch):
    """One `sam local invoke` of the deployed function's build with a batch of `batch` messages,
    in a container of the functions' base image, as `sam local invoke -e event.json` runs it."""
    folder = Path(tempfile.mkdtemp(prefix="sam-local-"))
    event, env = folder / "event.json", folder / "env.json"
    event.write_text(json.dumps({"Records": [lambda_record(i, body(i)) for i in range(batch)]}))
    # The event's queue is not real: no visibility to set (scripts/sam-local.sh does the same).
    env.write_text(json.dumps({"Parameters": {"RETRY_BACKOFF_SECS": "0"}}))
    template = Path(stack["bootstrap"]).parent.parent / "template.yaml"
    argv = [str(ROOT / "scripts/sam.sh"), "local", "invoke", "HandlerFunction", "-e", str(event), "--template",
            str(template), "--env-vars", str(env), "--invoke-image", args.deployed_image, "--skip-pull-image",
            "--parameter-overrides", "Architecture=x86_64"]
    busy, started = machine_busy_seconds(), time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    finally:
        shutil.rmtree(folder)
    seconds, busy = time.perf_counter() - started, machine_busy_seconds() - busy
    try:
        answer, _ = json.JSONDecoder().raw_decode(done.stdout.lstrip())
    except ValueError:
        answer = None
    if done.returncode != 0 or answer != {"batchItemFailures": []}:
        raise RuntimeError(f"sam local invoke failed ({done.returncode}): {done.stdout[:300]} {done.stderr[-500:]}")
    return alternative_row("sam local invoke", batch, seconds, seconds, busy)


def alternatives(args, sqs):
    stack = json.loads(Path(args.deployed_stacks).read_text())["standard"]
    lam = client(args.endpoint, "lambda")
    mapping = deployed_mapping(lam, stack["function"])
    visibility = sqs.get_queue_attributes(QueueUrl=stack["queue_url"], AttributeNames=["VisibilityTimeout"])
    attributes = {"VisibilityTimeout": visibility["Attributes"]["VisibilityTimeout"]}
    names = [n for n in ["LocalStack's event source mapping", "local-runner --lambda", "sam local invoke"]
             if not args.contenders or n in args.contenders]
    if not names:
        raise SystemExit(f"alternatives: no contender named {args.contenders}: LocalStack's event source mapping, "
                         "local-runner --lambda or sam local invoke")
    # LocalStack's mapping waits this long between two polls (1 s unless set where it starts).
    interval = os.environ.get("LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC") or "1 (LocalStack's default)"
    print(f"\n## --lambda against the alternatives: {args.messages} messages, {args.rounds} rounds, the deployed "
          f"mapping's settings {json.dumps(mapping)}, LocalStack's poll interval {interval} s", flush=True)
    # What the machine does with nothing to drain (LocalStack with Lambda idles busier than with
    # SQS alone): every contender's machine CPU includes it for as long as its drain lasts.
    busy = machine_busy_seconds()
    time.sleep(5)
    idle = (machine_busy_seconds() - busy) / 5
    print(f"  idle: the machine busy {idle * 100:.0f} % of one core", flush=True)
    runs = []
    for number, order in rounds(names, args.rounds):
        for name in order:
            if name == "sam local invoke":
                row = invoke_sam_local(args, stack, mapping["BatchSize"])
            else:
                url = sqs.create_queue(QueueName=f"alt-{number}-{names.index(name)}-{int(time.time())}",
                                       Attributes=attributes)["QueueUrl"]
                asyncio.run(fill(args.endpoint, url, args.messages))
                row = (drain_by_mapping(args, sqs, lam, stack, mapping, url, args.messages)
                       if name == "LocalStack's event source mapping" else drain_by_runner(args, sqs, stack, url, args.messages))
                sqs.delete_queue(QueueUrl=url)
            row["round"] = number
            runs.append(row)
            print(f"  round {number} {name:34} first batch {row['first_s']:7.3f} s  drained {row['seconds']:8.3f} s  "
                  f"{row['msgs_per_s']:>8,.1f} msg/s  {row['machine_cpu_ms_per_msg']:.3f} machine CPU ms/msg", flush=True)
    table = {}
    for name in names:
        mine = [r for r in runs if r["contender"] == name]
        table[name] = {"first": spread([r["first_s"] for r in mine], 3), "seconds": spread([r["seconds"] for r in mine], 2),
                       "rate": spread([r["msgs_per_s"] for r in mine], 1),
                       "cpu": spread([r["machine_cpu_ms_per_msg"] for r in mine], 3),
                       "cores": spread([r["machine_cores_busy"] for r in mine], 2),
                       "messages": mine[0]["messages"], "runs": mine}
    print(f"\n| contender | messages | first batch handled, s | drained, s | msg/s | machine CPU ms per message | "
          "cores busy |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, t in table.items():
        print(f"| {name} | {t['messages']:,} | {t['first']['text']} | {t['seconds']['text']} | {t['rate']['text']} | "
              f"{t['cpu']['text']} | {t['cores']['text']} |")
    return {"mapping": mapping, "poll_interval_s": interval, "idle_cores": round(idle, 3), "table": table}


# ---------------------------------------------------------------------------------------------
# Where the CPU goes


def perf_drain(args, address, name, data, n):
    """perf record over one contender (its child processes included) draining n stub messages."""
    argv, env = contenders(args, address, f"{address}/000000000000/stub")[name]
    # The same code with symbols (cargo's `profiling` profile), when bench/run.sh built it.
    profiling = ROOT / "target" / "profiling"
    if runner_in(profiling).exists():
        argv = [str(runner_in(profiling)), *argv[1:]]
        if "--lambda" in argv and (profiling / "bootstrap").exists():
            argv[argv.index("--lambda") + 1] = str(profiling / "bootstrap")
    stub_start(address, 0)
    runner = start(["perf", "record", "-F", "999", "-g", "-o", str(data), "--", *argv], env, pin=0)
    try:
        while stub_get(address, "/control/stats")["receives"] == 0:
            time.sleep(0.02)
        time.sleep(0.5)
        stub_start(address, n)
        while stub_get(address, "/control/stats")["deleted"] < n:
            time.sleep(0.05)
    finally:
        # perf writes its data when the profiled command ends: end the command, not perf.
        for p in tree(runner.pid)[1:2]:
            os.kill(p, signal.SIGTERM)
        try:
            runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop(runner)


def perf_lines(data, *options):
    text = subprocess.run(["perf", "report", "-i", str(data), "--stdio", *options], capture_output=True, text=True).stdout
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def profile(args):
    """perf over local-runner (defaults) and over `--lambda` (the runner and its function
    processes) draining the stub on one core: the top symbols, the inclusive shares, and for
    `--lambda` the split between processes."""
    if subprocess.run(["which", "perf"], capture_output=True).returncode != 0:
        return {"skipped": "perf is not installed"}
    process = subprocess.Popen(["taskset", "-c", "1", str(Path(args.bin) / "stub-sqs")], stdout=subprocess.PIPE, text=True)
    address = process.stdout.readline().split()[-1]
    data = RESULTS / "perf.data"
    figures = {}
    try:
        for name, n in (("local-runner", args.stub_messages * 10), ("local-runner --lambda", args.stub_messages * 4)):
            perf_drain(args, address, name, data, n)
            key = "lambda" if "--lambda" in name else "in_process"
            figures[key] = {
                "self": perf_lines(data, "--no-children", "--sort", "dso,sym", "--percent-limit", "0.7", "-g", "none")[:30],
                # Inclusive shares: how much of the CPU is under each stage.
                "inclusive": perf_lines(data, "--children", "--sort", "sym", "--percent-limit", "4", "-g", "none")[:40],
                "processes": perf_lines(data, "--no-children", "--sort", "comm", "-g", "none")[:10],
            }
            data.unlink(missing_ok=True)
            Path(str(data) + ".old").unlink(missing_ok=True)
    finally:
        stop(process)
    return figures


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bin", required=True, help="folder with the release binaries")
    parser.add_argument("--messages", type=int, default=5000, help="messages per drain on LocalStack")
    parser.add_argument("--stub-messages", type=int, default=20000, help="messages per drain on the stub")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rounds-scaling", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=600, help="seconds one drain may take")
    parser.add_argument("--only", choices=["drain", "stub", "scaling", "memory", "bootstrap", "latency", "profile",
                                           "weight", "alternatives"], action="append")
    parser.add_argument("--weight", action="append", help="NAME=PATH: a function for the weight section")
    parser.add_argument("--weight-env", action="append", help="NAME:KEY=VALUE: a variable of that function")
    parser.add_argument("--weight-body", action="append", help="NAME:JSON: its records' body ({i}: the record's number)")
    parser.add_argument("--weight-runs", type=int, default=15, help="cold starts of each function")
    parser.add_argument("--contenders", action="append", help="run only these contenders (repeatable)")
    parser.add_argument("--baseline-bin", help="a folder with an earlier build's local-runner (and, for the bootstrap "
                        "section's 6 MB guard, its bootstrap): raced in the same rounds, for an A/B measured side by side")
    parser.add_argument("--deployed-stacks", help="the alternatives section's stacks.json (scripts/deploy-localstack.sh)")
    parser.add_argument("--deployed-image", help="the alternatives section's base image for `sam local invoke`")
    parser.add_argument("--guard-rounds", type=int, default=1,
                        help="processes of the 6 MB guard (5 invocations each), each build in turn")
    args = parser.parse_args()
    if args.guard_rounds < 1:
        parser.error(f"--guard-rounds must be at least 1, got {args.guard_rounds}")
    if "alternatives" in (args.only or []) and not (args.deployed_stacks and args.deployed_image):
        parser.error("--only alternatives needs --deployed-stacks and --deployed-image: run bench/alternatives.sh")
    if args.messages < 1 or args.rounds < 1:
        parser.error(f"--messages and --rounds must be at least 1, got {args.messages} and {args.rounds}")
    only = args.only or ["bootstrap", "latency", "memory", "drain", "stub", "scaling", "profile"]
    if "bootstrap" in only and args.baseline_bin and not (Path(args.baseline_bin) / "bootstrap").is_file():
        parser.error(f"--baseline-bin {args.baseline_bin}: no bootstrap there for the 6 MB guard to race "
                     "(copy the earlier build's target/release/bootstrap into it)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    sqs = client(args.endpoint)
    path = RESULTS / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() and args.only else {}
    summary.update({"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
                    "date": datetime.now().date().isoformat()})
    if "weight" in only:
        summary["weight"] = weight(args)
    if "bootstrap" in only:
        summary["bootstrap"] = bootstrap_figures(args)
        print("\n## Lambda bootstrap\n", json.dumps(summary["bootstrap"]), flush=True)
    if "latency" in only:
        summary["latency"] = latency(args, sqs)
        print("\n## Latency, send -> handled, idle queue, long polling\n", json.dumps(summary["latency"]), flush=True)
    if "memory" in only:
        summary["memory"] = memory(args, sqs)
    if "drain" in only:
        summary["drain"] = drain(args, sqs)
        print_table(f"Drain on LocalStack, {args.messages} messages ({args.messages // 5} for {PY_ORIGINAL}), {args.rounds} rounds",
                    summary["drain"])
    if "stub" in only:
        summary["stub"] = stub(args)
        print_table(f"Stub endpoint, one core each, {args.stub_messages} messages ({args.stub_messages // 10} for {PY_ORIGINAL}), "
                    f"{args.rounds} rounds", summary["stub"])
    if "drain" in only or "stub" in only:
        drain_chart(summary.get("drain"), summary.get("stub"))
    if "scaling" in only:
        summary["scaling"] = scaling(args, sqs)
    if "alternatives" in only:
        interval = os.environ.get("LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC")
        summary["alternatives" + (f"_poll_{interval}_s" if interval else "")] = alternatives(args, sqs)
    if "profile" in only:
        summary["profile"] = profile(args)
        for key, what in (("in_process", "local-runner"), ("lambda", "local-runner --lambda")):
            p = summary["profile"].get(key, {})
            print(f"\n## Profile: {what} on the stub, one core\n### processes\n" + "\n".join(p.get("processes", []))
                  + "\n### self\n" + "\n".join(p.get("self", [])) + "\n### inclusive\n" + "\n".join(p.get("inclusive", [])),
                  flush=True)
    summary["targets"] = targets(summary)
    print("\n## Targets\n" + "\n".join(f"- {t}" for t in summary["targets"]), flush=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")


def targets(summary):
    out = []
    drain, stub = summary.get("drain"), summary.get("stub")
    if drain and {"local-runner", "raw rust client", "python tuned"} <= drain.keys():
        c = compare(drain, "local-runner", "raw rust client")
        out.append(f"LocalStack: local-runner at {c['ratio'] * 100:.0f} % of the raw client (target >= 95 %; ranges {c['ranges']})")
        c = compare(drain, "local-runner", "python tuned")
        out.append(f"LocalStack: local-runner {c['ratio']:.2f}x python tuned (target >= 1; ranges {c['ranges']})")
    if drain and {"local-runner", "local-runner --lambda"} <= drain.keys():
        c = compare(drain, "local-runner --lambda", "local-runner")
        out.append(f"LocalStack: --lambda at {c['ratio'] * 100:.0f} % of in process (target >= 70 %; ranges {c['ranges']})")
    if stub and {"local-runner", "raw rust client"} <= stub.keys():
        c = compare(stub, "local-runner", "raw rust client")
        out.append(f"stub, one core: local-runner at {c['ratio'] * 100:.0f} % of the raw client's msg/s (target >= 90 %; "
                   f"ranges {c['ranges']})")
        c = compare(stub, "local-runner", "raw rust client", key="cpu", higher=False)
        out.append(f"stub: local-runner CPU per message {c['ratio']:.2f}x the raw client's (target <= 1.2; ranges {c['ranges']})")
    if stub and {"local-runner", "local-runner --lambda"} <= stub.keys():
        c = compare(stub, "local-runner --lambda", "local-runner")
        out.append(f"stub, one core: --lambda at {c['ratio'] * 100:.0f} % of in process (target >= 70 %; ranges {c['ranges']})")
    for peer in ("python tuned", "node sqs-consumer"):
        if stub and {"local-runner", peer} <= stub.keys():
            c = compare(stub, "local-runner", peer)
            cpu = compare(stub, "local-runner", peer, key="cpu", higher=False)
            out.append(f"stub, one core: local-runner {c['ratio']:.1f}x {peer}'s msg/s (ranges {c['ranges']}), "
                       f"{cpu['ratio']:.2f}x its CPU per message (ranges {cpu['ranges']})")
    memory = summary.get("memory", {})
    curve = memory.get("in_flight_curve", {}).get("local-runner", {})
    if "10000" in curve:
        m = curve["10000"]
        out.append(f"RSS with {m['in_flight']:,.0f} of 1 KB in flight: {m['rss_mb']} MB (target <= 20 MB)")
    if "lambda_batches_10000" in memory:
        m = memory["lambda_batches_10000"]
        out.append(f"10,000-message batches under --lambda: runner {m['runner_peak_rss_mb']} MB, function {m['function_peak_rss_mb']} MB")
    if isinstance(summary.get("bootstrap", {}).get("exec_to_first_next_ms"), dict):
        b = summary["bootstrap"]
        out.append(f"bootstrap: {b['peak_rss_mb']} MB peak RSS after 1,000 invocations (was 4.8), exec -> first /next "
                   f"{b['exec_to_first_next_ms']['median']:.1f} ms median (was 3.5)")
        if "batch_6mb" in b:
            g = b["batch_6mb"]
            late, heavy = g["answer_ms"]["max"] > 500, g["peak_rss_mb"] > 32
            out.append(f"bootstrap, a {g['event_mb']} MB batch of {g['records']:,} records: answered in {g['answer_ms']['text']} ms "
                       f"(target <= 500: {'MISSED' if late else 'met'}), peak RSS {g['peak_rss_mb']} MB "
                       f"(target <= 32: {'MISSED' if heavy else 'met'})")
    return out


if __name__ == "__main__":
    main()
