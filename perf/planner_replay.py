#!/usr/bin/env python3
"""Replays planner sweeps (perf/planner_sweep.sh output directories) for a cost-model profile:
per sweep and for the sweeps' pooled medians, how many (collective, ranks, size) rows the
planner's choice would be more than 10% slower than the fastest forced algorithm. Only the
forced runs are read, so sweeps run with any library or profile can be pooled; the choices
come from loom-planner-replay (the planner itself, for processes of one host with the window).

Usage: planner_replay.py [--profile FILE] [--cpus N] [--bin PATH] [-v] SWEEP_DIR...

With -v it lists the pooled rows over the bound: row, choice, ratio, fastest. The built-in
defaults of algorithms/cost_model.h were chosen this way (docs/ALGORITHMS.md).
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys

BOUND = 1.10
NAME = re.compile(r"^(?P<coll>[a-z_]+)_np(?P<np>\d+)_(?P<algo>[a-z_]+)_run(?P<run>\d+)"
                  r"(_part\d+)?\.json$")
HERE = os.path.dirname(os.path.abspath(__file__))


def forced_medians(sweep_dir):
    """{(coll, np, size): {algo: median time}} over the forced runs of one sweep."""
    times = {}
    for path in glob.glob(os.path.join(sweep_dir, "*.json")):
        m = NAME.match(os.path.basename(path))
        if not m or m["algo"] == "planner":
            continue
        with open(path) as f:
            doc = json.load(f)
        for run in doc.get("runs", []):
            for row in run.get("results", []):
                meas = row.get("out_of_place")
                if not meas or meas.get("nwrong") or row["size"] == 0:
                    continue
                key = (m["coll"], int(m["np"]), row["size"])
                times.setdefault(key, {}).setdefault(m["algo"], []).append(meas["time"])
    return {k: {a: statistics.median(v) for a, v in algos.items()} for k, algos in times.items()}


def choices(binary, profile, cpus, nps, max_bytes):
    cmd = [binary, "--np", ",".join(map(str, sorted(nps))), "--max", str(max_bytes)]
    if profile:
        cmd += ["--profile", profile]
    if cpus:
        cmd += ["--cpus", str(cpus)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        coll, np_, size, algo, _ = line.split()
        result[(coll, int(np_), int(size))] = algo
    return result


def over(chosen, table, rows=None):
    count, n = 0, 0
    for key, algos in sorted(table.items()):
        pick = chosen.get(key)
        if pick not in algos:
            continue
        fastest = min(algos, key=algos.get)
        ratio = algos[pick] / algos[fastest]
        n += 1
        if ratio > BOUND:
            count += 1
            if rows is not None:
                rows.append((key, pick, ratio, fastest))
    return count, n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sweeps", nargs="+")
    p.add_argument("--profile", default="")
    p.add_argument("--cpus", type=int, default=0,
                   help="CPUs of the machine the sweeps ran on (default: this one's)")
    p.add_argument("--bin", default=os.path.join(HERE, "..", "build", "perf",
                                                 "loom-planner-replay"))
    p.add_argument("-v", action="store_true")
    args = p.parse_args()
    sweeps = {d: forced_medians(d) for d in args.sweeps}
    pooled = {}
    for table in sweeps.values():
        for key, algos in table.items():
            for algo, t in algos.items():
                pooled.setdefault(key, {}).setdefault(algo, []).append(t)
    pooled = {k: {a: statistics.median(v) for a, v in algos.items()} for k, algos in pooled.items()}
    if not pooled:
        print("planner_replay.py: no forced runs found", file=sys.stderr)
        return 2
    nps = {k[1] for k in pooled}
    max_bytes = max(k[2] for k in pooled)
    chosen = choices(args.bin, args.profile, args.cpus, nps, max_bytes)
    per = [over(chosen, t)[0] for t in sweeps.values()]
    rows = []
    count, n = over(chosen, pooled, rows)
    print(f"profile {args.profile or '(built-in)'}: pooled medians of {len(sweeps)} sweeps: "
          f"{count} of {n} rows over {BOUND:.2f}; per sweep {per} (sum {sum(per)})")
    if args.v:
        for key, pick, ratio, fastest in rows:
            print(f"  {key[0]} np={key[1]} {key[2]} B: {pick} {ratio:.2f}x the fastest ({fastest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
