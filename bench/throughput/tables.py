#!/usr/bin/python3
"""Renders bench/results/throughput.json (one or more runs) as the Markdown tables of
docs/benchmarks.md. With several files, each figure is the median over the runs and the spread
(max-min)/median across runs is shown beside it.

    /usr/bin/python3 bench/throughput/tables.py bench/results/throughput.json [more.json ...]
"""
import json
import statistics
import sys


def si(v):
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f} {unit}"
    return f"{v:.0f}"


def across(runs, get):
    vals = [get(r) for r in runs]
    vals = [v for v in vals if isinstance(v, (int, float))]
    if not vals:
        return 0.0, 0.0
    med = statistics.median(vals)
    spread = (max(vals) - min(vals)) / med if med else 0.0
    return med, spread


def fmt(runs, get, kind="si"):
    med, spread = across(runs, get)
    text = si(med) if kind == "si" else (f"{med:.2f}x" if kind == "x" else f"{med:.1f}")
    if len(runs) > 1:
        text += f" (±{100 * spread / 2:.0f}%)"
    return text


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    first = runs[0]
    m = first["machine"]
    print(f"Runs: {len(runs)}; first {m['date']}, commit {m['git_commit']}, "
          f"load at start {', '.join(r['machine']['load_average_at_start'] for r in runs)}.\n")

    rows = []
    if "throughput" in first:
        print("### PUSH/PULL throughput: raw libzmq vs Batcher + envelope::decode\n")
    for i, row in enumerate(first.get("throughput", [])):
        at = lambda f: (lambda r: f(r["throughput"][i]))
        rows.append([f"{row['size']} B",
                     fmt(runs, at(lambda t: t["raw"]["msgs_per_s"])),
                     fmt(runs, at(lambda t: t["raw"]["mb_per_s"]), "f"),
                     fmt(runs, at(lambda t: t["batched"]["msgs_per_s"])),
                     fmt(runs, at(lambda t: t["batched"]["mb_per_s"]), "f"),
                     f"{row['batched']['msgs_per_frame']:.0f}",
                     fmt(runs, at(lambda t: t["ratio_msgs_per_s"]), "x")])
    if rows:
        print(table(["size", "raw msgs/s", "raw MB/s", "batched msgs/s", "batched MB/s",
                     "msgs/batch", "batched/raw"], rows))

    if "latency" in first:
        print("\n### One-way latency, 16 B (µs)\n")
        rows = []
        for i, row in enumerate(first["latency"]):
            at = lambda k: (lambda r: r["latency"][i][k])
            rate = row["rate_target"]
            rows.append([row["link"], f"{rate}/s" if rate != "saturation" else "saturation",
                         fmt(runs, at("achieved_msgs_per_s")), fmt(runs, at("p50_us"), "f"),
                         fmt(runs, at("p99_us"), "f"), fmt(runs, at("p999_us"), "f")])
        print(table(["link", "offered rate", "achieved msgs/s", "p50", "p99", "p99.9"], rows))

    pat = first.get("patterns")
    if isinstance(pat, dict):
        print("\n### Pusher/Puller vs raw libzmq PUSH/PULL (msgs/s)\n")
        rows = []
        for i, row in enumerate(pat["pushpull"]):
            at = lambda k: (lambda r: r["patterns"]["pushpull"][i][k])
            rows.append([f"{row['size']} B", fmt(runs, at("raw_libzmq_msgs_per_s")),
                         fmt(runs, at("pusher_raw_mode_msgs_per_s")),
                         fmt(runs, at("pusher_batched_msgs_per_s")),
                         fmt(runs, at("ratio_batched_over_raw"), "x")])
        print(table(["size", "raw libzmq", "Pusher raw mode", "Pusher batched", "batched/raw"], rows))
        if "latency" in pat:
            print("\n### Pusher/Puller latency (µs)\n")
            rows = []
            for i, row in enumerate(pat["latency"]):
                at = lambda k: (lambda r: r["patterns"]["latency"][i][k])
                rows.append([row["link"], f"{row['rate']}/s", fmt(runs, at("p50_us"), "f"),
                             fmt(runs, at("p99_us"), "f"), fmt(runs, at("p999_us"), "f")])
            print(table(["link", "rate", "p50", "p99", "p99.9"], rows))
        print("\n### Publisher/Subscriber fan-out, 16 B (msgs/s each subscriber received, slowest)\n")
        rows = []
        for i, row in enumerate(pat["pubsub"]):
            at = lambda k: (lambda r: r["patterns"]["pubsub"][i][k])
            rows.append([str(row["subscribers"]), fmt(runs, at("raw_slowest_msgs_per_s")),
                         fmt(runs, at("batched_slowest_msgs_per_s")), fmt(runs, at("ratio"), "x"),
                         f"{row['raw_lost']} / {row['batched_lost']}"])
        print(table(["subscribers", "raw libzmq", "batched", "batched/raw", "lost raw / batched"],
                    rows))
        print("\n### Client/Server request/reply, 16 B (requests/s)\n")
        rows = []
        for i, row in enumerate(pat["rpc"]):
            at = lambda k: (lambda r: r["patterns"]["rpc"][i][k])
            rows.append([str(row["in_flight"]), fmt(runs, at("raw_requests_per_s")),
                         fmt(runs, at("batched_requests_per_s")), fmt(runs, at("ratio"), "x")])
        print(table(["in flight", "raw DEALER/ROUTER", "Client/Server", "batched/raw"], rows))
        print("\n### Reliable link vs plain batched (msgs/s)\n")
        rows = []
        for i, row in enumerate(pat["reliable"]):
            at = lambda k: (lambda r: r["patterns"]["reliable"][i][k])
            rows.append([f"{row['size']} B", fmt(runs, at("plain_batched_msgs_per_s")),
                         fmt(runs, at("reliable_msgs_per_s")), fmt(runs, at("reliable_share"), "x")])
        print(table(["size", "Pusher/Puller batched", "reliable", "reliable/plain"], rows))

    dev = first.get("devices")
    if isinstance(dev, dict):
        print("\n### Through a proxy vs direct\n")
        rows = []
        for i, row in enumerate(dev["proxies"]):
            at = lambda k: (lambda r: r["devices"]["proxies"][i][k])
            unit = "req/s" if row["path"] == "queue" else "msgs/s"
            rows.append([row["path"], row["link"], f"{row['size']} B",
                         fmt(runs, at("direct_per_s")) + " " + unit,
                         fmt(runs, at("via_proxy_per_s")) + " " + unit,
                         fmt(runs, at("via_share"), "x"), row.get("error", "")])
        print(table(["proxy", "link", "size", "direct", "via proxy", "via/direct", "note"], rows))
        if isinstance(dev.get("curve"), list):
            print("\n### CURVE vs plain text, PUSH/PULL (msgs/s)\n")
            rows = []
            for i, row in enumerate(dev["curve"]):
                at = lambda k: (lambda r: r["devices"]["curve"][i][k])
                rows.append([f"{row['size']} B", row["link"], fmt(runs, at("plain_msgs_per_s")),
                             fmt(runs, at("curve_msgs_per_s")), fmt(runs, at("curve_share"), "x")])
            print(table(["size", "link", "plain", "CURVE", "CURVE/plain"], rows))

    if "tune" in first:
        print("\n### BatcherOptions variations, 16 B\n")
        rows = []
        for i, row in enumerate(first["tune"]):
            at = lambda k: (lambda r: r["tune"][i][k])
            rows.append([row["variant"], fmt(runs, at("msgs_per_s")), f"{row['msgs_per_batch']:.0f}",
                         fmt(runs, at("p50_us_at_rate"), "f"), fmt(runs, at("p99_us_at_rate"), "f")])
        print(table(["variant", "msgs/s", "msgs/batch", "p50 µs at 1k/s", "p99 µs at 1k/s"], rows))

    if not first.get("targets"):
        return
    print("\n### Targets\n")
    rows = []
    for i, t in enumerate(first["targets"]):
        med, spread = across(runs, lambda r: r["targets"][i]["value"])
        mets = [r["targets"][i]["met"] for r in runs]
        verdict = "met" if all(mets) else ("not met" if not any(mets) else "met in some runs")
        rows.append([t["name"], f"{med:.2f}x", t["target"].replace("000000", "").rstrip("0").rstrip(".") + "x",
                     verdict])
    print(table(["target", "measured (median)", "target", "verdict"], rows))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
