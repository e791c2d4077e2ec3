#!/usr/bin/env python3
"""Tests of perf/planner_sweep.py on made-up loom-perf JSON files: the bound is checked on the
forced time of the algorithm the planner chose, and a slow choice fails the sweep."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf",
                      "planner_sweep.py")


def write_run(out_dir, coll, np, algo, run, rows):
    """rows: [(size, time_us, chosen_algorithm_or_None)]"""
    results = []
    for size, time_us, chosen in rows:
        row = {"size": size, "count": size // 4, "type": "float", "redop": "sum", "root": -1,
               "out_of_place": {"time": time_us, "alg_bw": 0, "bus_bw": 0, "nwrong": 0,
                                "iters": 5},
               "in_place": None}
        if chosen is not None:
            row["algorithm"] = chosen
        results.append(row)
    doc = {"version": 1, "runs": [{"collective": coll, "nranks": np, "results": results}]}
    with open(os.path.join(out_dir, f"{coll}_np{np}_{algo}_run{run}.json"), "w") as f:
        json.dump(doc, f)


def sweep(out_dir):
    return subprocess.run([sys.executable, SCRIPT, out_dir], capture_output=True, text=True,
                          timeout=60)


class PlannerSweepTest(unittest.TestCase):
    def check(self, files, want_status, want_lines):
        """files: [(coll, np, algo, run, rows)]; runs the sweep on them."""
        with tempfile.TemporaryDirectory() as d:
            for f in files:
                write_run(d, *f)
            r = sweep(d)
        self.assertEqual(r.returncode, want_status, r.stdout + r.stderr)
        for line in want_lines:
            self.assertIn(line, r.stdout)

    def test_choice_is_timed_from_its_forced_runs(self):
        # The planner chose ring; its own run was noisy (3x), but forced ring is the best.
        self.check([("all_reduce", 4, "planner", 1, [(1024, 30.0, "ring")]),
                    ("all_reduce", 4, "ring", 1, [(1024, 10.0, None)]),
                    ("all_reduce", 4, "recursive_doubling", 1, [(1024, 10.5, None)])], 0,
                   ["| 1K | ring | 10.00 | 10.00 | ring | 1.00 | 30.00 | 3.00 |",
                    "worst choice/best: 1.00"])

    def test_a_slow_choice_fails_the_bound(self):
        files = []
        for run, (pairwise, bruck) in enumerate([(10.0, 20.0), (11.0, 21.0), (30.0, 19.0)], 1):
            files += [("alltoall", 2, "planner", run, [(8, 20.0, "bruck")]),
                      ("alltoall", 2, "pairwise", run, [(8, pairwise, None)]),
                      ("alltoall", 2, "bruck", run, [(8, bruck, None)])]
        # Medians: pairwise 11, bruck 20 -> 1.82.
        self.check(files, 1, ["| 8 | bruck | 20.00 | 11.00 | pairwise | 1.82 |", "**> 10%**"])

    def test_zero_byte_rows_are_not_held_to_the_bound(self):
        # A 0-byte call runs nothing: a slow-looking choice there does not fail the sweep.
        self.check([("all_gather", 4, "planner", 1, [(0, 0.3, "bruck"), (64, 10.0, "bruck")]),
                    ("all_gather", 4, "bruck", 1, [(0, 0.3, None), (64, 10.0, None)]),
                    ("all_gather", 4, "ring", 1, [(0, 0.2, None), (64, 12.0, None)])], 0,
                   ["| 0 | bruck | 0.30 | 0.20 | ring | 1.50 |", "(0 B: runs nothing)",
                    "worst choice/best: 1.00"])

    def test_files_without_the_choice_fall_back_to_the_planner_run(self):
        self.check([("broadcast", 2, "planner", 1, [(64, 12.0, None)]),
                    ("broadcast", 2, "chain", 1, [(64, 10.0, None)])], 1,
                   ["| 64 | ? (planner run) | 12.00 | 10.00 | chain | 1.20 |"])


if __name__ == "__main__":
    unittest.main()
