#!/usr/bin/python3
"""The queue benchmark's tables (bench/queues/run.sh calls it): medians per row over every run of
the inputs, the ratios between medians, the target verdicts (not for a smoke run), and with --write
the results JSON of one run.

  tables.py [--smoke] [--failed N] [--write OUT.json] INPUT...
  INPUT: run.sh's result lines (one JSON object a line) or a results JSON it wrote ("runs");
  several inputs pool their runs: bench/queues/tables.py bench/results/queues*.json
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--smoke", action="store_true", help="figures only, no verdicts")
p.add_argument("--failed", type=int, default=0, help="runs that failed (recorded in the JSON)")
p.add_argument("--write", help="write the results JSON here (one input only)")
p.add_argument("inputs", nargs="+")
a = p.parse_args()
if a.write and len(a.inputs) != 1:
    p.error("--write takes one input")
smoke = a.smoke
runs = []
for path in a.inputs:
    with open(path) as f:
        text = f.read()
    try:
        runs += json.loads(text)["runs"]  # a results JSON
    except (ValueError, KeyError, TypeError):
        runs += [json.loads(l) for l in text.splitlines() if l.startswith("{")]  # result lines
if not runs:
    sys.exit("tables.py: no runs in %s" % " ".join(a.inputs))
def key(r): return (r["system"], r.get("label", ""), r["size"], r.get("groups", 1), r["consumers"])
rows = {}
for r in runs:
    rows.setdefault(key(r), []).append(r)
def med(system, size, consumers=4, groups=1, label="", field="msgs_per_s"):
    rs = rows.get((system, label, size, groups, consumers))
    return statistics.median(r[field] for r in rs) if rs else None
def fmt(v):
    if v is None: return "-"
    return "%.2f M" % (v / 1e6) if v >= 1e6 else "%.1f k" % (v / 1e3) if v >= 1e3 else "%.0f" % v
def ratio(a, b): return a / b if a is not None and b else None
def rfmt(x): return "-" if x is None else "%.2fx" % x
def name(k):
    system, _, size, groups, consumers = k
    return {"zkit": "zkit, %d group(s) x %d consumer(s)" % (groups, consumers),
            "raw-zmq": "raw libzmq PUSH/PULL, %d PULL sockets" % consumers,
            "raw-disk": "raw write+fdatasync every 8 frames",
            "rabbitmq": "RabbitMQ quorum queue, %d consumers" % consumers,
            "jetstream": "JetStream WorkQueue, %d pull consumers" % consumers,
            "redelivery": "zkit redelivery after a member's SIGKILL"}.get(system, system)
order = ["raw-zmq", "raw-disk", "zkit", "rabbitmq", "jetstream", "redelivery"]
n = max(len(v) for v in rows.values())
print("\n| size | row | msgs/s, median of %d (min-max) | lost | duplicates |" % n)
print("|---|---|---|---|---|")
for k in sorted(rows, key=lambda k: (k[2], order.index(k[0]) if k[0] in order else 9, k[3], k[4])):
    rs = rows[k]
    if k[0] == "redelivery":
        v = [r["redelivery_s"] for r in rs]
        fig = "%.3f s (%.3f-%.3f) until acked by another member" % (statistics.median(v), min(v), max(v))
    else:
        v = [r["msgs_per_s"] for r in rs]
        fig = "%s (%s-%s)" % (fmt(statistics.median(v)), fmt(min(v)), fmt(max(v)))
    print("| %d B | %s | %s | %d | %d |" % (k[2], name(k), fig, sum(r["lost"] for r in rs),
                                            sum(r["duplicates"] for r in rs)))
checks = []
for size in (16, 1024):
    z1, z4, z16 = (med("zkit", size, c) for c in (1, 4, 16))
    g3 = med("zkit", size, 1, 3, field="min_group_msgs_per_s")
    rows_r = [
        ("%d B: zkit 4 consumers / 1 consumer" % size, ratio(z4, z1), 0.8),
        ("%d B: zkit 16 consumers / 1 consumer" % size, ratio(z16, z1), None),
        ("%d B: zkit 3 groups, slowest group / 1 group" % size, ratio(g3, z1), 0.7),
        ("%d B: zkit 4 consumers / RabbitMQ quorum queue" % size, ratio(z4, med("rabbitmq", size)), 50 if size == 16 else None),
        ("%d B: zkit 4 consumers / JetStream WorkQueue" % size, ratio(z4, med("jetstream", size)), 20 if size == 16 else None),
        ("%d B: zkit 4 consumers / raw libzmq PUSH/PULL" % size, ratio(z4, med("raw-zmq", size)), None),
        ("%d B: zkit 4 consumers / raw write+fdatasync" % size, ratio(z4, med("raw-disk", size, 1)), None),
    ]
    checks += rows_r
red = [r["redelivery_s"] for r in runs if r["system"] == "redelivery"]
print("\n| ratio | value | target |")
print("|---|---|---|")
verdicts = []
for name, v, target in checks:
    t = "" if target is None else ">= %g" % target
    if not smoke and target is not None and v is not None:
        t += " (%s)" % ("met" if v >= target else "not met")
    print("| %s | %s | %s |" % (name, rfmt(v), t))
if red:
    v = statistics.median(red)
    t = "<= 2 s" + ("" if smoke else " (%s)" % ("met" if v <= 2.0 else "not met"))
    print("| redelivery after a member's SIGKILL (s) | %.3f | %s |" % (v, t))
if smoke:
    print("\nrun.sh: smoke run, figures only, no verdicts")
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smoke": smoke,
       "commit": sh("git -C '%s' describe --always --dirty --exclude '*'" % os.path.dirname(os.path.abspath(__file__))),
       "load": open("/proc/loadavg").read().split()[:3], "machine": platform.platform(),
       "nproc": os.cpu_count(), "runs": runs,
       "ratios": {name: v for name, v, _ in checks}, "redelivery_s": red,
       "failed_runs": a.failed}
if a.write:
    with open(a.write, "w") as f:
        json.dump(doc, f, indent=1)
    print("run.sh: JSON %s" % a.write)
