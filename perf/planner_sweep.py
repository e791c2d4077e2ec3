#!/usr/bin/env python3
"""Tables for perf/planner_sweep.sh: the planner's median time per size against the best
forced algorithm's median, from the loom-perf --json files in one directory.

Usage: planner_sweep.py OUT_DIR
Exit status 1 when the planner is more than 10% slower than the best forced algorithm at any
size (issue 5's bound), 0 otherwise.
"""
import glob
import json
import os
import re
import statistics
import sys

BOUND = 1.10
NAME = re.compile(r"^(?P<coll>[a-z_]+)_np(?P<np>\d+)_(?P<algo>[a-z_]+)_run(?P<run>\d+)\.json$")


def load(out_dir):
    # times[(coll, np)][algo][size] = [time_us, ...] (out of place, one value per run)
    times = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.json"))):
        m = NAME.match(os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            doc = json.load(f)
        key = (m["coll"], int(m["np"]))
        for run in doc.get("runs", []):
            for row in run.get("results", []):
                meas = row.get("out_of_place")
                if not meas or meas.get("nwrong"):
                    continue
                by_size = times.setdefault(key, {}).setdefault(m["algo"], {})
                by_size.setdefault(row["size"], []).append(meas["time"])
    return times


def human(n):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    times = load(sys.argv[1])
    worst = 0.0
    for (coll, np), algos in sorted(times.items()):
        planner = algos.get("planner", {})
        print(f"\n### {coll}, np={np}\n")
        print("| size | planner (us) | best forced (us) | best | planner/best | |")
        print("|---:|---:|---:|---|---:|---|")
        for size in sorted(planner):
            p = statistics.median(planner[size])
            forced = [(statistics.median(v[size]), a) for a, v in algos.items()
                      if a != "planner" and size in v]
            if not forced:
                continue
            best, best_algo = min(forced)
            ratio = p / best if best > 0 else float("inf")
            worst = max(worst, ratio)
            mark = "**> 10%**" if ratio > BOUND else ""
            print(f"| {human(size)} | {p:.2f} | {best:.2f} | {best_algo} | {ratio:.2f} | {mark} |")
    print(f"\nworst planner/best: {worst:.2f} (bound {BOUND:.2f})")
    return 1 if worst > BOUND else 0


if __name__ == "__main__":
    sys.exit(main())
