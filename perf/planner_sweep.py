#!/usr/bin/env python3
"""Tables for perf/planner_sweep.sh: per size, the algorithm the planner chose and its median
time against the best forced algorithm's median, from the loom-perf --json files in one
directory.

Usage: planner_sweep.py OUT_DIR

The bound (issue 5: the planner's choice is never more than 10% slower than the best algorithm
forced with LOOM_ALGO) is checked on "choice/best": the forced median of the algorithm the
planner chose (loom-perf records it per row, from loomCommChosenAlgorithm) over the best forced
median, all measured in the same interleaved runs. The planner run's own time against the best
forced one ("planner/best", shown too) adds the run-to-run noise of timing one algorithm twice,
which on an oversubscribed host is far above 10%; the last line counts the rows where those two
timings of one algorithm differ by more than the bound. Rows of files without the "algorithm" field
fall back to planner/best. Rows of 0 bytes are shown but not held to the bound: such a call
returns at once and runs no algorithm.
Exit status 1 when the bound is exceeded at any size, 0 otherwise.
"""
import glob
import json
import os
import re
import statistics
import sys

BOUND = 1.10
NAME = re.compile(r"^(?P<coll>[a-z_]+)_np(?P<np>\d+)_(?P<algo>[a-z_]+)_run(?P<run>\d+)(_part\d+)?\.json$")


def load(out_dir):
    # times[(coll, np)][algo][size] = [time_us, ...] (out of place, one value per run)
    # chosen[(coll, np)][size] = {algorithm the planner chose, ...} (one per run; they agree)
    times, chosen = {}, {}
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
                if m["algo"] == "planner" and row.get("algorithm"):
                    chosen.setdefault(key, {}).setdefault(row["size"], set()).add(
                        row["algorithm"])
    return times, chosen


def human(n):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    times, chosen = load(sys.argv[1])
    worst = 0.0
    # The noise floor: the planner run and the forced run of the algorithm it chose time the
    # same algorithm in two launches; how often they differ by more than the bound.
    same, noisy, noisiest = 0, 0, 1.0
    for (coll, np), algos in sorted(times.items()):
        planner = algos.get("planner", {})
        print(f"\n### {coll}, np={np}\n")
        print("| size | chosen | choice (us) | best forced (us) | best | choice/best "
              "| planner run (us) | planner/best | |")
        print("|---:|---|---:|---:|---|---:|---:|---:|---|")
        for size in sorted(planner):
            p = statistics.median(planner[size])
            forced = [(statistics.median(v[size]), a) for a, v in algos.items()
                      if a != "planner" and size in v]
            if not forced:
                continue
            best, best_algo = min(forced)
            picks = chosen.get((coll, np), {}).get(size, set())
            mine = [t for t, a in forced if a in picks]
            choice = max(mine) if mine else p
            name = "/".join(sorted(picks)) if mine else "? (planner run)"
            ratio = choice / best if best > 0 else float("inf")
            prat = p / best if best > 0 else float("inf")
            # A call of 0 bytes returns at once without running any algorithm (the "choice" is
            # not used), so its row is shown but not held to the bound.
            if size > 0:
                worst = max(worst, ratio)
                if mine and len(picks) == 1 and p > 0 and choice > 0:
                    spread = max(p, choice) / min(p, choice)
                    same += 1
                    noisy += spread > BOUND
                    noisiest = max(noisiest, spread)
            mark = "**> 10%**" if ratio > BOUND and size > 0 else ("(0 B: runs nothing)" if size == 0 else "")
            print(f"| {human(size)} | {name} | {choice:.2f} | {best:.2f} | {best_algo} "
                  f"| {ratio:.2f} | {p:.2f} | {prat:.2f} | {mark} |")
    print(f"\nworst choice/best: {worst:.2f} (bound {BOUND:.2f})")
    if same:
        print(f"noise: the planner run and the forced run of the same algorithm differ by more "
              f"than {BOUND - 1:.0%} in {noisy} of {same} rows (at most {noisiest:.2f}x)")
    return 1 if worst > BOUND else 0


if __name__ == "__main__":
    sys.exit(main())
