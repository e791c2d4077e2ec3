#!/usr/bin/env python3
"""compare_table.py RESULTS_DIR [--peers-dir DIR] [--json-dir DIR] [--ours PREFIX]

Reads the raw outputs of shared/peers/run_all.sh (run with loom-perf as EXTRA_CMD, see
perf/compare.sh) through the peers' own summarize.py, and prints, per collective and rank
count, one Markdown table: size, loom's busbw and time, each peer's busbw (Gloo's best
algorithm per size), the best peer, and loom/best-peer, computed from the median times (the
same bytes and busbw factor on both sides, so the busbw ratio is best_time / loom_time).

With --json-dir, also writes <collective>_np<N>.json per table in loom-perf's --json layout
(one run per library, medians), for `loom-perf --plot`.
"""
import argparse
import json
import os
import statistics
import sys

# loom-perf's collective names for the peers' names.
LOOM_NAME = {"allreduce": "all_reduce", "allgather": "all_gather",
             "reduce_scatter": "reduce_scatter", "bcast": "broadcast", "alltoall": "alltoall"}
COLLECTIVES = ["allreduce", "allgather", "reduce_scatter", "bcast", "alltoall"]
PEER_ORDER = ["ompi", "ompi_ucx", "mpich", "gloo", "gloo_sync"]


def group_of(label):
    """The peer column a raw label belongs to (Gloo's algorithms collapse into one)."""
    if label.startswith("gloo_sync"):
        return "gloo_sync"
    if label.startswith("gloo"):
        return "gloo"
    return label


def medians(data, key):
    """size -> (median time us, median busbw, any wrong) for one (label, coll, n)."""
    out = {}
    for size, vals in data[key].items():
        out[size] = (statistics.median(v[0] for v in vals),
                     statistics.median(v[1] for v in vals),
                     any(v[2] for v in vals), len(vals))
    return out


def fmt_size(b):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= div and b % div == 0:
            return f"{b // div} {unit}"
    return f"{b} B"


def table(data, coll, n, ours_prefix):
    keys = [k for k in data if k[1] == coll and k[2] == n]
    ours = [k for k in keys if k[0].startswith(ours_prefix)]
    if not ours:
        return None, None
    loom = medians(data, ours[0])
    # Per peer group and size: the entry with the smallest median time.
    peers = {}
    for k in keys:
        if k in ours:
            continue
        g = group_of(k[0])
        for size, m in medians(data, k).items():
            cur = peers.setdefault(g, {}).get(size)
            if cur is None or m[0] < cur[0]:
                peers[g][size] = m
    groups = [g for g in PEER_ORDER if g in peers] + sorted(g for g in peers if g not in PEER_ORDER)
    lines = ["| size | loom busbw | loom time (us) | " + " | ".join(groups) +
             " | best peer | best time (us) | loom/best |",
             "|---:|---:|---:|" + "---:|" * len(groups) + "---|---:|---:|"]
    series = {"loom": loom}
    series.update(peers)
    for size in sorted(loom):
        t, bus, wrong, runs = loom[size]
        row = [fmt_size(size), f"{bus:.3f}" + (" WRONG" if wrong else ""), f"{t:.1f}"]
        best = None
        for g in groups:
            m = peers[g].get(size)
            if m is None:
                row.append("")
                continue
            row.append(f"{m[1]:.3f}" + (" WRONG" if m[2] else ""))
            if not m[2] and (best is None or m[0] < best[1][0]):
                best = (g, m)
        if best is None:
            row += ["", "", ""]
        else:
            row += [best[0], f"{best[1][0]:.1f}", f"{best[1][0] / t:.2f}" if t > 0 else ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n", series


def write_json(path, coll, n, series):
    runs = []
    for label, points in series.items():
        rows = []
        for size in sorted(points):
            t, bus, wrong, _ = points[size]
            alg = size / (t * 1e-6) / 1e9 if t > 0 else 0
            rows.append({"size": size, "count": 0, "type": "float", "redop": "sum", "root": -1,
                         "out_of_place": {"time": t, "alg_bw": alg, "bus_bw": bus,
                                          "nwrong": 1 if wrong else 0, "iters": 0},
                         "in_place": None})
        runs.append({"collective": LOOM_NAME.get(coll, coll), "label": label, "nranks": n,
                     "results": rows})
    with open(path, "w") as f:
        json.dump({"version": 1, "tool": "perf/compare_table.py", "runs": runs}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--peers-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "shared", "peers"))
    ap.add_argument("--json-dir")
    ap.add_argument("--ours", default="ours", help="label prefix of loom's rows [ours]")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.peers_dir))
    sys.dont_write_bytecode = True  # leave no __pycache__ in the shared peers directory
    import summarize  # the peers' own parser, so both sides are read the same way

    data, membw = summarize.load(args.results)
    print(f"# loom vs peers ({args.results})\n")
    print("busbw in GB/s (1e9 B/s), medians over runs; loom/best = best peer time / loom time "
          "for the same size (> 1: loom is faster). Gloo = its fastest algorithm per size.\n")
    if membw:
        print("## Memory bandwidth (membw, read + written bytes per second)\n")
        print("| kernel | size | threads | median GB/s |")
        print("|---|---:|---:|---:|")
        for (k, s, t), v in sorted(membw.items(), key=lambda x: (x[0][0],
                                   summarize.parse_label_size(x[0][1]), x[0][2])):
            print(f"| {k} | {s} | {t} | {statistics.median(x[1] for x in v):.1f} |")
        print()
    nps = sorted({k[2] for k in data})
    for coll in COLLECTIVES:
        for n in nps:
            text, series = table(data, coll, n, args.ours)
            if text is None:
                continue
            print(f"## {LOOM_NAME[coll]}, np={n}\n")
            print(text)
            if args.json_dir:
                os.makedirs(args.json_dir, exist_ok=True)
                write_json(os.path.join(args.json_dir, f"{LOOM_NAME[coll]}_np{n}.json"),
                           coll, n, series)


if __name__ == "__main__":
    main()
