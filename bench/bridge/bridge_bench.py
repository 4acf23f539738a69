#!/usr/bin/python3
"""bench/bridge: zkit -> bridge -> RabbitMQ quorum queue -> bridge -> zkit, beside rabbitmq-c and
pika publishing directly, all against one broker started for this run (tests/support/rabbitmq.py).

  bridge_bench.py [--build DIR] [--quick] [--repeats R] [--json OUT]

Rows (each at 16 B and 1 KiB unless noted; every side runs R times, interleaved, median shown):
  rabbitmq-c confirms w1000  amqp_direct_bench: persistent publishes into a quorum queue, publisher
                             confirms, up to 1000 unconfirmed (THE BASELINE of every ratio)
  rabbitmq-c confirms w1     the same, waiting for each confirm (16 B)
  pika, article's way        pika_bench.py: the article's loop (classic non-durable 'hello', no
                             confirms), timed until RabbitMQ holds every message
  pika, confirms             pika_bench.py --confirm: quorum, persistent, confirm per publish (16 B)
  bridge message / batch     zkit send --reliable -> zkit bridge --to-amqp -> quorum queue ->
                             zkit bridge --from-amqp -> zkit recv --reliable --check, timed from
                             starting `send` until `recv` has all N (end to end, both bridges)
Target: bridge batch mode >= 10x rabbitmq-c confirms w1000 at 16 B (not judged with --quick).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from rabbitmq import Broker  # noqa: E402

PY = "/usr/bin/python3"  # Debian's, with python3-pika


class BenchError(RuntimeError):
    pass


def run_json(cmd, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BenchError("%s exited %d: %s" % (os.path.basename(cmd[0]), r.returncode,
                                               r.stderr.strip()[-400:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def wait_connected(zkit, control, deadline):
    while time.monotonic() < deadline:
        r = subprocess.run([zkit, "stats", "--control", control, "--json"], capture_output=True,
                           text=True, timeout=10)
        if r.returncode == 0 and json.loads(r.stdout).get("state") == "connected":
            return
        time.sleep(0.05)  # the bridge has no readiness event visible from outside: poll STATS
    raise BenchError("bridge at %s did not connect to RabbitMQ" % control)


def bridge_pipeline(zkit, broker, mode, count, size, tmp, timeout=600):
    """One end-to-end run; returns the figures."""
    tag = "%s-%d-%d" % (mode, size, int(time.monotonic() * 1000))
    queue = "zkit-bench-" + tag
    d = os.path.join(tmp, tag)
    os.makedirs(d)
    creds = os.path.join(d, "credentials")
    with open(creds, "w") as f:
        f.write("zkit:zkit\n")
    url = "amqp://zkit@127.0.0.1:%d/zkit" % broker.port(1)
    procs = []
    deadline = time.monotonic() + timeout
    logs = {n: open(os.path.join(d, n + ".log"), "w+") for n in ("recv", "to", "from", "send")}
    try:
        recv = subprocess.Popen([zkit, "recv", "--reliable", "--bind", "ipc://%s/out" % d,
                                 "--count", str(count), "--quiet", "--check"],
                                stdout=subprocess.DEVNULL, stderr=logs["recv"])
        procs.append(recv)
        common = ["--credentials", creds, "--mode", mode, "--stats-interval", "0"]
        procs.append(subprocess.Popen(
            [zkit, "bridge", "--to-amqp", url, "--listen", "ipc://%s/in" % d, "--routing-key",
             queue, "--declare-queue", queue, "--queue-type", "quorum",
             "--control", "ipc://%s/to-ctl" % d] + common,
            stdout=subprocess.DEVNULL, stderr=logs["to"]))
        wait_connected(zkit, "ipc://%s/to-ctl" % d, deadline)
        procs.append(subprocess.Popen(
            [zkit, "bridge", "--from-amqp", url, "--queue", queue, "--queue-type", "quorum",
             "--to", "ipc://%s/out" % d, "--control", "ipc://%s/from-ctl" % d] + common,
            stdout=subprocess.DEVNULL, stderr=logs["from"]))
        wait_connected(zkit, "ipc://%s/from-ctl" % d, deadline)
        t0 = time.perf_counter()
        send = subprocess.Popen([zkit, "send", "--reliable", "--connect", "ipc://%s/in" % d,
                                 "--count", str(count), "--size", str(size)],
                                stdout=subprocess.DEVNULL, stderr=logs["send"])
        procs.append(send)
        rc = recv.wait(timeout=max(1, deadline - time.monotonic()))
        seconds = time.perf_counter() - t0
        if rc != 0 or send.wait(timeout=60) != 0:
            logs["recv"].seek(0)
            logs["send"].seek(0)
            raise BenchError("bridge %s %d B: recv exited %s, send %s: %s %s" % (
                mode, size, rc, send.returncode, logs["recv"].read()[-300:],
                logs["send"].read()[-300:]))
        logs["recv"].seek(0)
        m = re.search(r"check: (\d+) in order", logs["recv"].read())
        if not m or int(m.group(1)) < count:
            raise BenchError("bridge %s %d B: recv's check did not pass" % (mode, size))
        return {"side": "bridge-" + mode, "count": count, "size": size,
                "seconds": round(seconds, 6), "msg_per_s": round(count / seconds, 1)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in logs.values():
            f.close()
        try:
            broker.ctl(1, "delete_queue", "-p", "zkit", queue, check=False)
        except subprocess.TimeoutExpired:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--quick", action="store_true", help="small counts, 1 repeat, no verdict")
    p.add_argument("--repeats", type=int)
    p.add_argument("--json", help="write every run and the medians here")
    p.add_argument("--zkit", help="the zkit binary (default: BUILD/devices/zkit)")
    p.add_argument("--only", help="run only rows whose name has one of these comma-separated words "
                   "(e.g. 'batch mode,pika'); the baseline always runs")
    a = p.parse_args()
    zkit = a.zkit or os.path.join(a.build, "devices", "zkit")
    direct = os.path.join(a.build, "bench", "bridge", "amqp_direct_bench")
    for exe in (zkit, direct):
        if not os.access(exe, os.X_OK):
            raise SystemExit("bridge_bench: %s is not built (cmake --build %s --target zkit "
                             "amqp_direct_bench)" % (exe, a.build))
    repeats = a.repeats or (1 if a.quick else 3)
    q = 10 if a.quick else 1  # counts divided by this in a quick run

    def direct_row(size, window, count):
        return lambda b, tmp: run_json(
            [direct, "--port", str(b.port(1)), "--user", "zkit", "--password", "zkit",
             "--vhost", "zkit", "--queue", "zkit-bench-direct", "--count", str(count),
             "--size", str(size), "--window", str(window)], 600)

    def pika_row(size, count, confirm):
        return lambda b, tmp: run_json(
            [PY, os.path.join(HERE, "pika_bench.py"), "--url", b.url(1), "--count", str(count),
             "--size", str(size)]
            + (["--confirm", "--queue", "zkit-bench-pika"] if confirm else []),
            600)

    def bridge_row(mode, size, count):
        return lambda b, tmp: bridge_pipeline(zkit, b, mode, count, size, tmp)

    rows = [  # (name, size, runner)
        ("rabbitmq-c confirms w1000", 16, direct_row(16, 1000, 50000 // q)),
        ("rabbitmq-c confirms w1000", 1024, direct_row(1024, 1000, 50000 // q)),
        ("rabbitmq-c confirms w1", 16, direct_row(16, 1, 1000 // q)),
        ("pika, article's way", 16, pika_row(16, 50000 // q, False)),
        ("pika, article's way", 1024, pika_row(1024, 50000 // q, False)),
        ("pika, confirms", 16, pika_row(16, 1000 // q, True)),
        ("bridge message mode", 16, bridge_row("message", 16, 100000 // q)),
        ("bridge message mode", 1024, bridge_row("message", 1024, 100000 // q)),
        ("bridge batch mode", 16, bridge_row("batch", 16, 2000000 // q)),
        ("bridge batch mode", 1024, bridge_row("batch", 1024, 500000 // q)),
    ]
    if a.only:
        wanted = a.only.split(",")
        rows = [r for r in rows  # the baseline always runs
                if any(w in r[0] for w in wanted) or r[0] == "rabbitmq-c confirms w1000"]
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC")
    runs = {(name, size): [] for name, size, _ in rows}
    with tempfile.TemporaryDirectory(prefix="zkit-bridge-bench.") as tmp:
        with Broker(os.path.join(tmp, "rabbitmq"), nodes=1, memory="3GB") as broker:
            for r in range(repeats):
                for name, size, runner in rows:
                    fig = runner(broker, tmp)
                    runs[(name, size)].append(fig)
                    print("  [%d/%d] %-28s %5d B  %10.0f msg/s  (%d msgs, %.2f s)" % (
                        r + 1, repeats, name, size, fig["msg_per_s"], fig["count"],
                        fig["seconds"]), flush=True)

    median = {k: statistics.median(f["msg_per_s"] for f in v) for k, v in runs.items()}
    print("\n| side | size | msg/s (median of %d) | x rabbitmq-c w1000 |" % repeats)
    print("| --- | ---: | ---: | ---: |")
    for name, size, _ in rows:
        base = median.get(("rabbitmq-c confirms w1000", size))
        ratio = "%.2fx" % (median[(name, size)] / base) if base else "-"
        print("| %s | %d B | %.0f | %s |" % (name, size, median[(name, size)], ratio))
    verdict = None
    key = ("bridge batch mode", 16)
    if key in median:
        ratio = median[key] / median[("rabbitmq-c confirms w1000", 16)]
        if a.quick:
            print("\nquick run: figures only, no verdicts")
        else:
            verdict = ratio >= 10
            print("\ntarget: bridge batch mode >= 10x rabbitmq-c confirms at 16 B: %.1fx, %s" % (
                ratio, "met" if verdict else "NOT met"))
    if a.json:
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty",
                                 "--exclude", "*"], capture_output=True, text=True).stdout.strip()
        with open(a.json, "w") as f:
            json.dump({"started": started, "commit": commit, "machine": platform.node(),
                       "cpus": os.cpu_count(), "load_at_end": os.getloadavg(),
                       "repeats": repeats, "quick": a.quick, "target_met": verdict,
                       "rows": [{"side": name, "size": size,
                                 "msg_per_s_median": median[(name, size)],
                                 "runs": runs[(name, size)]} for name, size, _ in rows]},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
