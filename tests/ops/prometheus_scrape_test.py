#!/usr/bin/env python3
"""A real scrape: Debian's prometheus, on a free loopback port with a temporary data directory,
scrapes a running `zkit spool` and `zkit proxy` (loopback ports, --metrics) every 250 ms while
traffic goes through both; then, with the traffic stopped, the figures Prometheus stored (its HTTP
API, /api/v1/query) must equal what the devices' own STATS say (`zkit stats --json`). Also
`promtool check metrics` on each exposition. Bounded in time; fails with the reason when
prometheus cannot start.

usage: prometheus_scrape_test.py --zkit ZKIT --prometheus PROMETHEUS --promtool PROMTOOL
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../support"))
from devices import endpoints, free_port  # noqa: E402

DEADLINE = time.monotonic() + 100  # ctest's TIMEOUT is 120
failures = []
procs = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start(cmd, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    procs.append(p)
    return p


def http(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def query(prom, expr):
    """The one value of an instant query, or None (no series yet)."""
    url = f"http://{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    _, body = http(url)
    result = json.loads(body)["data"]["result"]
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


def stats(zkit, control):
    r = subprocess.run([zkit, "stats", "--control", control, "--json"], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"zkit stats --control {control}: {r.stderr}")
    return json.loads(r.stdout)


def wait_equal(prom, pairs):
    """Polls until Prometheus's stored value of every expression equals the expected one (the
    next scrapes after the traffic stopped), bounded by the test's deadline."""
    got = {}
    while time.monotonic() < DEADLINE:
        got = {expr: query(prom, expr) for expr, _ in pairs}
        if all(got[expr] == want for expr, want in pairs):
            break
        time.sleep(0.25)  # one scrape interval: the next scrape is what we wait for
    for expr, want in pairs:
        check(got.get(expr) == want, f"prometheus {expr} = {got.get(expr)}, STATS says {want}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zkit", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--promtool", required=True)
    a = ap.parse_args()
    for tool in (a.prometheus, a.promtool):
        if shutil.which(tool) is None:
            print(f"FAIL {tool} not found: install Debian's prometheus (scripts/install-deps.sh)")
            return 1
    tmp = tempfile.mkdtemp(prefix="zkit-scrape-")
    try:
        return run(a, tmp)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp):
    z = a.zkit
    # The devices: a spool forwarding to a reliable receiver, and a streamer proxy.
    down = f"tcp://127.0.0.1:{free_port()}"
    spool_n, proxy_n = 200_000, 100_000
    recv_spool = start([z, "recv", "--reliable", "--bind", down, "--count", str(spool_n),
                        "--quiet"])
    spool = start([z, "spool", "--dir", os.path.join(tmp, "spool"), "--listen",
                   "tcp://127.0.0.1:*", "--forward", down, "--control", "tcp://127.0.0.1:*",
                   "--metrics", "127.0.0.1:0", "--name", "spool-a", "--stats-interval", "0"])
    sp = endpoints(spool, ["listen", "control", "metrics"])
    proxy = start([z, "proxy", "--type", "streamer", "--frontend", "tcp://127.0.0.1:*",
                   "--backend", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                   "--metrics", "127.0.0.1:0", "--name", "proxy-a", "--stats-interval", "0"])
    px = endpoints(proxy, ["frontend", "backend", "control", "metrics"])

    # Prometheus, scraping both.
    prom = f"127.0.0.1:{free_port()}"
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: 250ms
  scrape_timeout: 250ms
scrape_configs:
  - job_name: zkit-spool
    static_configs: [{{targets: ["{sp['metrics']}"]}}]
  - job_name: zkit-proxy
    static_configs: [{{targets: ["{px['metrics']}"]}}]
""")
    server = start([a.prometheus, f"--config.file={config}",
                    f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                    f"--web.listen-address={prom}", "--log.level=warn"])
    ready = False
    while time.monotonic() < DEADLINE and not ready:
        if server.poll() is not None:
            print(f"FAIL prometheus exited ({server.returncode}) before it was ready:\n"
                  f"{server.stderr.read()[-3000:]}")
            return 1
        try:
            ready = http(f"http://{prom}/-/ready", timeout=1)[0] == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    if not ready:
        print(f"FAIL prometheus did not become ready on {prom}")
        return 1
    check(True, f"prometheus ready on {prom}")
    while time.monotonic() < DEADLINE and (query(prom, 'up{job="zkit-spool"}') != 1 or
                                           query(prom, 'up{job="zkit-proxy"}') != 1):
        time.sleep(0.1)
    check(query(prom, 'up{job="zkit-spool"}') == 1 and query(prom, 'up{job="zkit-proxy"}') == 1,
          "both devices are up for prometheus")

    # Traffic through both, scraped all along; then it stops.
    recv_proxy = start([z, "recv", "--socket", "pull", "--connect", px["backend"], "--count", str(proxy_n),
                        "--quiet"])
    send_proxy = start([z, "send", "--socket", "push", "--connect", px["frontend"], "--count", str(proxy_n),
                        "--progress", "0"])
    send_spool = subprocess.run([z, "send", "--reliable", "--endpoint", sp["listen"], "--count",
                                 str(spool_n), "--progress", "0"], capture_output=True,
                                text=True, timeout=60)
    check(send_spool.returncode == 0, "send to the spool: every batch acknowledged")
    for p in (recv_spool, send_proxy, recv_proxy):
        p.wait(timeout=60)
        why = "" if p.returncode == 0 else " " + p.stderr.read()[-300:]
        check(p.returncode == 0, f"{' '.join(p.args[1:4])}: exit 0{why}")

    # The devices' own figures, then what Prometheus stored.
    s = stats(z, sp["control"])
    p = stats(z, px["control"])
    check(s["acknowledged"]["messages"] == spool_n, f"spool STATS: {spool_n} acknowledged")
    check(p["frontend"]["recv"]["records"] == proxy_n, f"proxy STATS: {proxy_n} records in")
    sl = 'device="spool",name="spool-a",job="zkit-spool"'
    pl = 'device="proxy",name="proxy-a",job="zkit-proxy"'
    wait_equal(prom, [
        (f'zkit_spool_received_messages_total{{{sl},socket="listen"}}', s["accepted"]["messages"]),
        (f'zkit_spool_received_batches_total{{{sl},socket="listen"}}', s["accepted"]["batches"]),
        (f'zkit_spool_stored_batches_total{{{sl}}}', s["stored"]["batches"]),
        (f'zkit_spool_stored_messages_total{{{sl}}}', s["stored"]["messages"]),
        (f'zkit_spool_forwarded_batches_total{{{sl},socket="forward"}}', s["forwarded"]["batches"]),
        (f'zkit_spool_acknowledged_messages_total{{{sl},socket="forward"}}',
         s["acknowledged"]["messages"]),
        (f'zkit_spool_acknowledged_upstream_batches_total{{{sl},socket="listen"}}',
         s["acknowledged_upstream"]),
        (f'zkit_spool_fsyncs_total{{{sl}}}', s["fsync"]["count"]),
        (f'zkit_spool_batch_age_seconds_count{{{sl},socket="forward"}}', s["batch_age_ms"]["count"]),
        (f'zkit_spool_backlog_batches{{{sl}}}', s["backlog"]["batches"]),
        (f'zkit_spool_disk_bytes{{{sl}}}', s["disk"]["bytes"]),
        (f'zkit_spool_state{{{sl},state="running"}}', 1),
        (f'zkit_proxy_received_messages_total{{{pl},socket="frontend"}}',
         p["frontend"]["recv"]["messages"]),
        (f'zkit_proxy_received_records_total{{{pl},socket="frontend"}}',
         p["frontend"]["recv"]["records"]),
        (f'zkit_proxy_received_bytes_total{{{pl},socket="frontend"}}', p["frontend"]["recv"]["bytes"]),
        (f'zkit_proxy_sent_messages_total{{{pl},socket="backend"}}', p["backend"]["sent"]["messages"]),
        (f'zkit_proxy_sent_frames_total{{{pl},socket="backend"}}', p["backend"]["sent"]["frames"]),
        (f'zkit_proxy_dropped_messages_total{{{pl},socket="backend"}}', p["backend"]["sent"]["dropped"]),
    ])

    # The exposition passes promtool's own checks.
    for name, ep in (("spool", sp["metrics"]), ("proxy", px["metrics"])):
        _, body = http(f"http://{ep}/metrics")
        r = subprocess.run([a.promtool, "check", "metrics"], input=body, capture_output=True,
                           text=True, timeout=30)
        check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
              f"promtool check metrics on the {name}'s exposition: {r.stdout}{r.stderr}".strip())
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
