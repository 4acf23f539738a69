#!/usr/bin/env python3
"""What --metrics costs the message path: throughput through `zkit spool` and `zkit proxy` with
metrics off, on and scraped (10 scrapes/s, 40 times Prometheus' usual 15 s interval), and on
under a flood (4 threads scraping as fast as they can), in the same run. The modes are
interleaved round by round; each figure is the median of the rounds, each ratio is against
"off" of the same run.

  spool: `zkit send --reliable --count N` -> spool (--fsync interval=50, so the loop is CPU-bound)
         -> `zkit recv --reliable`; figure: messages acknowledged end to end per second (send's).
  proxy: `zkit send --socket push` -> streamer -> `zkit recv --socket pull`; figure: recv's msg/s.

usage: metrics_bench.py --zkit build/devices/zkit [--messages N] [--rounds R] [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/support"))
from devices import endpoints, free_port  # noqa: E402

MODES = ["off", "on, scraped 10/s", "on, flooded"]


class Scraper:
    """Scrapes http://EP/metrics from `threads` threads, every `period` seconds (0: flat out)."""

    def __init__(self, ep, threads, period):
        self.stop = threading.Event()
        self.count = 0
        self.threads = [threading.Thread(target=self.run, args=(ep, period))
                        for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, ep, period):
        while not self.stop.is_set():
            with urllib.request.urlopen(f"http://{ep}/metrics", timeout=10) as r:
                r.read()
            self.count += 1
            if period:
                self.stop.wait(period)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def rate(text):
    m = re.search(r"([0-9.]+) msg/s", text)
    if not m:
        raise RuntimeError(f"no msg/s in: {text[-300:]}")
    return float(m.group(1))


def with_metrics(mode, cmd):
    return cmd + (["--metrics", "127.0.0.1:0"] if mode != "off" else [])


def scrape(mode, ep):
    if mode == "on, scraped 10/s":
        return Scraper(ep, 1, 0.1)
    if mode == "on, flooded":
        return Scraper(ep, 4, 0)
    return None


def stop(p):
    p.terminate()
    p.wait(timeout=30)


def spool_round(z, mode, n, tmp):
    down = f"tcp://127.0.0.1:{free_port()}"
    d = tempfile.mkdtemp(dir=tmp)
    recv = subprocess.Popen([z, "recv", "--reliable", "--bind", down, "--count", str(n), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    spool = subprocess.Popen(with_metrics(mode, [z, "spool", "--dir", d, "--listen",
                                                 "tcp://127.0.0.1:*", "--forward", down,
                                                 "--fsync", "interval=50", "--stats-interval", "0"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    eps = endpoints(spool, ["listen"] + (["metrics"] if mode != "off" else []))
    s = scrape(mode, eps.get("metrics"))
    try:
        send = subprocess.run([z, "send", "--reliable", "--endpoint", eps["listen"], "--count",
                               str(n), "--progress", "0"], capture_output=True, text=True,
                              timeout=300)
        recv.wait(timeout=60)
    finally:
        if s:
            s.close()
        stop(spool)
        if recv.poll() is None:
            stop(recv)
        shutil.rmtree(d, ignore_errors=True)
    if send.returncode != 0 or recv.returncode != 0:
        raise RuntimeError(f"spool round failed: {send.stderr[-300:]}")
    return rate(send.stderr), s.count if s else 0


def proxy_round(z, mode, n):
    proxy = subprocess.Popen(with_metrics(mode, [z, "proxy", "--type", "streamer", "--frontend",
                                                 "tcp://127.0.0.1:*", "--backend",
                                                 "tcp://127.0.0.1:*", "--stats-interval", "0"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    eps = endpoints(proxy, ["frontend", "backend"] + (["metrics"] if mode != "off" else []))
    recv = subprocess.Popen([z, "recv", "--socket", "pull", "--connect", eps["backend"], "--count",
                             str(n), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    s = scrape(mode, eps.get("metrics"))
    try:
        send = subprocess.run([z, "send", "--socket", "push", "--connect", eps["frontend"],
                               "--count", str(n), "--progress", "0"], capture_output=True,
                              text=True, timeout=300)
        _, err = recv.communicate(timeout=120)
    finally:
        if s:
            s.close()
        stop(proxy)
    if send.returncode != 0 or recv.returncode != 0:
        raise RuntimeError(f"proxy round failed: {send.stderr[-300:]} {err[-300:]}")
    return rate(err), s.count if s else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zkit", required=True)
    ap.add_argument("--messages", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="zkit-metrics-bench-")
    results = {}
    try:
        for device in ("spool", "proxy"):
            figures = {m: [] for m in MODES}
            scrapes = {m: 0 for m in MODES}
            for r in range(a.rounds):
                order = MODES if r % 2 == 0 else list(reversed(MODES))
                for m in order:
                    if device == "spool":
                        v, c = spool_round(a.zkit, m, a.messages, tmp)
                    else:
                        v, c = proxy_round(a.zkit, m, a.messages)
                    figures[m].append(v)
                    scrapes[m] += c
            base = statistics.median(figures["off"])
            print(f"{device}: {a.messages} messages of 16 B, {a.rounds} rounds, median msg/s")
            for m in MODES:
                med = statistics.median(figures[m])
                print(f"  {m:<18} {med:>12,.0f}  ratio {med / base:.3f}  "
                      f"(rounds {', '.join(f'{x:,.0f}' for x in figures[m])}; "
                      f"scrapes {scrapes[m]})")
            results[device] = {m: {"median": statistics.median(figures[m]),
                                   "ratio": statistics.median(figures[m]) / base,
                                   "rounds": figures[m], "scrapes": scrapes[m]} for m in MODES}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"messages": a.messages, "rounds": a.rounds, "results": results}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
