#!/usr/bin/python3
"""Renders throughput_bench JSON (one or more runs) as the Markdown tables of docs/benchmarks.md:
one table per section, one line per row. With several files each figure is the median over the
runs, with +-half the spread (max-min)/median between them.

    /usr/bin/python3 bench/throughput/tables.py run1.json [run2.json ...]
"""
import json
import statistics
import sys


def si(v):
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f} {unit}"
    return f"{v:.1f}"


def fig(values, text):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "failed"
    med = statistics.median(values)
    out = text(med)
    if len(values) > 1 and med:
        out += f" (±{50 * (max(values) - min(values)) / med:.0f}%)"
    return out


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    for r in runs:
        m = r["machine"]
        print(f"- {m['date']}, commit {m['git_commit']}, load {m['load_average_at_start']}, "
              f"{r['config']['repeats']} repeats of {r['config']['duration_ms']} ms")
    section = None
    for i, row in enumerate(runs[0]["rows"]):
        same = [r["rows"][i] for r in runs if len(r["rows"]) > i]
        latency = row["unit"] == "p50 us"
        if row["section"] != section:
            section = row["section"]
            value = "p50 / p99 / p99.9 µs" if latency else row["unit"]
            print(f"\n#### {section}\n\n| row | baseline | {value} | zkit | {value} | zkit/baseline |")
            print("|---|---|---|---|---|---|")
        cells = []
        for side in ("baseline", "zkit"):
            if latency:
                text = " / ".join(fig([s[side].get(k, s[side]["value"]) for s in same], lambda v: f"{v:.0f}")
                                  for k in ("value", "p99_us", "p999_us"))
            else:
                text = fig([s[side]["value"] for s in same], si)
            extra = [s[side].get("msgs_per_frame") for s in same if s[side].get("msgs_per_frame")]
            if extra:
                text += f", {statistics.median(extra):.0f}/frame"
            lost = max(s[side].get("lost", 0) for s in same)
            if lost:
                text += f", lost {lost}"
            cells += [row[side]["name"], text]
        ratio = fig([s["ratio"] for s in same], lambda v: f"{v:.2f}x")
        print(f"| {row['label']} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1:])
