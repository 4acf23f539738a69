#!/usr/bin/env python3
"""`zkit stats` tables for every device kind (spool with groups, an unknown kind), and
`zkit proxy/spool --metrics`: usage errors (a port in use, a bad endpoint) exit 2 with one line
naming the flag and the endpoint; the status codes of /metrics, /healthz, /readyz and other paths;
/readyz turns 503 when the spool's downstream goes; and a /metrics flood from several threads
while 1,000,000 messages go through a spool loses or stalls nothing (counts only, no timing).

usage: metrics_cli_test.py ZKIT
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../support"))
from devices import endpoints, free_port, stop  # noqa: E402

ZKIT = sys.argv[1]
DEADLINE = time.monotonic() + 100  # the whole test; ctest's TIMEOUT is 120
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def get(ep, path):
    try:
        with urllib.request.urlopen(f"http://{ep}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def usage_errors(tmp):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    busy = f"127.0.0.1:{held.getsockname()[1]}"
    proxy = [ZKIT, "proxy", "--type", "streamer", "--frontend", "tcp://127.0.0.1:*",
             "--backend", "tcp://127.0.0.1:*"]
    spool = [ZKIT, "spool", "--dir", os.path.join(tmp, "busy"), "--listen", "tcp://127.0.0.1:*",
             "--forward", f"tcp://127.0.0.1:{free_port()}"]
    for name, cmd in (("proxy", proxy), ("spool", spool)):
        r = subprocess.run(cmd + ["--metrics", busy], capture_output=True, text=True, timeout=20)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2, f"{name} --metrics on a port in use exits 2 (got {r.returncode})")
        check(len(lines) >= 1 and "--metrics" in lines[-1] and busy in lines[-1]
              and "in use" in lines[-1], f"{name}: the line names --metrics and {busy}: {lines}")
        for bad in ("nonsense", "127.0.0.1:99999", "tcp://127.0.0.1:1"):
            r = subprocess.run(cmd + ["--metrics", bad], capture_output=True, text=True, timeout=20)
            lines = r.stderr.strip().splitlines()
            check(r.returncode == 2 and len(lines) == 1 and "--metrics" in lines[0]
                  and bad in lines[0], f"{name} --metrics {bad}: exit 2, one line: {lines}")
    held.close()


def proxy_pages():
    p = subprocess.Popen([ZKIT, "proxy", "--type", "queue", "--frontend", "tcp://127.0.0.1:*",
                          "--backend", "tcp://127.0.0.1:*", "--metrics", "127.0.0.1:0",
                          "--name", "edge-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        ep = endpoints(p, ["metrics"])["metrics"]
        status, body = get(ep, "/metrics")
        check(status == 200 and 'zkit_proxy_received_messages_total{device="proxy",name="edge-1",'
              'socket="frontend"} 0' in body, "proxy /metrics: 200 with device and name labels")
        check(get(ep, "/healthz") == (200, "alive\n"), "proxy /healthz: 200 alive")
        check(get(ep, "/readyz") == (200, "ready\n"), "proxy /readyz: 200 ready")
        check(get(ep, "/nope")[0] == 404, "proxy /nope: 404")
        check(get(ep, "/metrics/x")[0] == 404, "proxy /metrics/x: 404")
    finally:
        stop(p)
    check(p.returncode == 0, f"proxy exits 0 on SIGTERM with --metrics (got {p.returncode})")


def spool_flood(tmp):
    count = 1_000_000
    down = f"tcp://127.0.0.1:{free_port()}"
    recv = subprocess.Popen([ZKIT, "recv", "--reliable", "--bind", down, "--count", str(count),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    spool = subprocess.Popen([ZKIT, "spool", "--dir", os.path.join(tmp, "flood"), "--listen",
                              "tcp://127.0.0.1:*", "--forward", down, "--metrics", "127.0.0.1:0",
                              "--fsync", "interval=20", "--stats-interval", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eps = endpoints(spool, ["listen", "metrics"])
        ep = eps["metrics"]
        for _ in range(500):  # the downstream link connects (bounded)
            if get(ep, "/readyz")[0] == 200:
                break
            time.sleep(0.02)
        check(get(ep, "/readyz") == (200, "ready\n"), "spool /readyz: 200 with its downstream up")

        done = threading.Event()
        scrapes = [0] * 4

        def hammer(i):
            while not done.is_set() and time.monotonic() < DEADLINE:
                if get(ep, "/metrics")[0] == 200:
                    scrapes[i] += 1

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(scrapes))]
        for t in threads:
            t.start()
        send = subprocess.run([ZKIT, "send", "--reliable", "--endpoint", eps["listen"],
                               "--count", str(count), "--progress", "0"],
                              capture_output=True, text=True, timeout=60)
        recv.wait(timeout=60)
        done.set()
        for t in threads:
            t.join()
        check(send.returncode == 0, f"send: every batch acknowledged under the flood "
                                    f"({send.stderr.strip().splitlines()[-1:]})")
        check(recv.returncode == 0, f"recv: all {count} messages arrived under the flood")
        check(min(scrapes) > 0, f"every hammer thread was answered (scrapes {scrapes})")
        body = ""
        for _ in range(200):  # the figures settle once the last ack is in (bounded)
            body = get(ep, "/metrics")[1]
            if f'zkit_spool_acknowledged_messages_total{{device="spool",name="spool",socket="forward"}} {count}' in body:
                break
            time.sleep(0.05)
        check(f'socket="forward"}} {count}' in body, "spool /metrics counts every acknowledged "
                                                    "message after the flood")
        # The downstream goes: not ready once the link notices (heartbeat timeout, 5 s).
        status = 200
        for _ in range(400):
            status, text = get(ep, "/readyz")
            if status == 503:
                break
            time.sleep(0.05)
        check(status == 503 and text == "not ready: downstream not connected\n",
              f"spool /readyz: 503 'downstream not connected' once it is gone ({status})")
        check(get(ep, "/healthz")[0] == 200, "spool /healthz: still alive")
    finally:
        stop(spool)
        stop(recv)
    check(spool.returncode == 0, f"spool exits 0 on SIGTERM with --metrics ({spool.returncode})")


def fake_device(reply):
    """A REP socket answering every request with `reply` (a device's STATS), on a thread."""
    import zmq
    ctx = zmq.Context.instance()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def serve():
        poller = zmq.Poller()
        poller.register(rep, zmq.POLLIN)
        while not stop.is_set():
            if poller.poll(50):
                rep.recv()
                rep.send_string(reply)
        rep.close()

    t = threading.Thread(target=serve)
    t.start()
    return f"tcp://127.0.0.1:{port}", lambda: (stop.set(), t.join())


def stats_tables():
    import json
    spool = {"device": "spool", "state": "blocked: full", "uptime_s": 2.5,
             "accepted": {"batches": 7, "messages": 70}, "pull": {"batches": 1, "messages": 3},
             "stored": {"batches": 8, "messages": 73},
             "backlog": {"batches": 5, "messages": 50, "bytes": 5000, "oldest_age_ms": 1500},
             "groups": {"forward": {"delivered": 11, "lag_batches": 4},
                        "audit": {"delivered": 12345678901, "dead_lettered": 2}}}
    ep, stop = fake_device(json.dumps(spool))
    try:
        r = subprocess.run([ZKIT, "stats", "--control", ep], capture_output=True, text=True,
                           timeout=20)
        out = r.stdout
        check(r.returncode == 0 and out.startswith("zkit spool (blocked: full), up 2.5 s\n"),
              f"spool table: header ({out[:60]!r})")
        check(any(l.split() == ["backlog", "5", "50", "5000"] for l in out.splitlines()),
              "spool table: the backlog row")
        rows = {l.split()[0]: l.split() for l in out.splitlines() if l.split()}
        # Columns: the union of the groups' figures (in the JSON's key order).
        check(rows.get("group") == ["group", "dead_lettered", "delivered", "lag_batches"],
              f"spool table: one column per group figure ({rows.get('group')})")
        check(rows.get("audit") == ["audit", "2", "12345678901"] and
              rows.get("forward") == ["forward", "11", "4"],
              f"spool table: a row per group ({rows.get('audit')}, {rows.get('forward')})")
        w = subprocess.run([ZKIT, "stats", "--control", ep, "--watch", "0.05", "--count", "2"],
                           capture_output=True, text=True, timeout=20)
        check(w.returncode == 0 and w.stdout.count("zkit spool (") == 2 and "\033" not in w.stdout,
              "--watch into a pipe: the table twice, no terminal codes")
    finally:
        stop()
    bridge = {"device": "bridge", "direction": "from-amqp", "state": "connected", "uptime_s": 3.5,
              "amqp": {"connects": 2, "connection_losses": 1, "connect_failures": 4},
              "deliveries": 120, "redelivered": 20, "suppressed": 15, "rejected": 1,
              "too_large": 1, "not_batch": 0, "batches_sent": 6, "messages_sent": 104,
              "resent_from_journal": 0, "batches_acked_downstream": 5,
              "messages_acked_downstream": 100, "amqp_acks": 5, "messages_acked_amqp": 99,
              "unacked": 21, "journal_errors": 0, "downstream_connected": True,
              "control_commands": 3}
    ep, stop = fake_device(json.dumps(bridge))
    try:
        r = subprocess.run([ZKIT, "stats", "--control", ep], capture_output=True, text=True,
                           timeout=20)
        out = r.stdout
        lines = [l.split() for l in out.splitlines()]
        check(r.returncode == 0 and
              out.startswith("zkit bridge from-amqp (connected), up 3.5 s\n"),
              f"bridge table: header ({out[:60]!r})")
        check("amqp: connects 2, connection losses 1, connect failures 4\n" in out,
              "bridge table: the AMQP connection line")
        check(["sent", "6", "104"] in lines and ["acked", "downstream", "5", "100"] in lines and
              ["unacked", "21"] in lines,
              f"bridge table: the from-amqp rows ({out!r})")
        check("downstream connected yes;" in out, "bridge table: downstream connected")
    finally:
        stop()
    ep, stop = fake_device(json.dumps({"device": "relay", "state": "running",
                                       "amqp": {"published": 9, "confirmed": 8}}))
    try:
        r = subprocess.run([ZKIT, "stats", "--control", ep], capture_output=True, text=True,
                           timeout=20)
        lines = [l.split() for l in r.stdout.splitlines()]
        check(r.returncode == 0 and lines[0] == ["zkit", "relay"] and
              ["amqp.confirmed", "8"] in lines and ["state", "running"] in lines,
              f"a kind without a table of its own: every figure by its path ({r.stdout!r})")
    finally:
        stop()


def main():
    tmp = tempfile.mkdtemp(prefix="zkit-metrics-cli-")
    try:
        stats_tables()
        usage_errors(tmp)
        proxy_pages()
        spool_flood(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
