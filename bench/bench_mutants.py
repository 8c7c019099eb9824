"""How strong each lab's grade is: the share of the solution's mutants its hidden tests kill.

Each generated mutant of a lab's solution (one small mistake: an operator, a constant, a dropped
call or keyword, a comparison inside a Lua or SQL string) and each of the lab's shipped mistakes is
graded like a submission (``splitbrain.grading.mutants``). Target: at least 90% of the
non-equivalent mutants killed, per lab. Minutes per lab.

    python bench/bench_mutants.py [--lab 01 ...] [--sample N] [--from-last]

``--from-last`` prints the figures of the last full ``splitbrain verify --mutants`` run of each
lab (saved in the state directory) instead of grading again.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", action="append", default=[], help="only these labs (default: all)")
    ap.add_argument("--sample", type=int, help="grade a seeded random N of each lab's mutants")
    ap.add_argument("--jobs", type=int, default=2, help="gradings at once (default 2)")
    ap.add_argument("--from-last", action="store_true",
                    help="print the last saved run of each lab instead of grading")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from splitbrain import paths
    from splitbrain.grading.mutants import TARGET, run_mutants, save
    from splitbrain.lab import discover_labs, find_lab
    labs = [find_lab(n) for n in args.lab] if args.lab else discover_labs()
    print(f"{'lab':28s} {'generated':>9s} {'hand':>5s} {'killed':>7s} {'survived':>8s} "
          f"{'equiv':>6s} {'kill rate':>9s} {'time':>7s}   target {TARGET:.0%}")
    worst = 1.0
    for lab in labs:
        last = paths.state_dir() / "mutants" / f"{lab.slug}.json"
        if args.from_last:
            try:
                d = json.loads(last.read_text())
            except (OSError, ValueError):
                print(f"{lab.slug:28s} no saved run (run `splitbrain verify {lab.slug[:2]} "
                      f"--mutants`)")
                continue
            outcomes = d["outcomes"]
            rate, secs = d["kill_rate"], d["duration_s"]
        else:
            t0 = time.monotonic()
            report = run_mutants(lab, jobs=args.jobs, sample=args.sample)
            if args.sample is None:
                save(report, last)
            outcomes = [o.to_dict() for o in report.outcomes]
            rate, secs = report.kill_rate, time.monotonic() - t0
        hand = sum(1 for o in outcomes if o["name"].startswith("variant "))
        count = {s: sum(1 for o in outcomes if o["status"] == s)
                 for s in ("killed", "survived", "equivalent")}
        worst = min(worst, rate)
        print(f"{lab.slug:28s} {len(outcomes) - hand:9d} {hand:5d} {count['killed']:7d} "
              f"{count['survived']:8d} {count['equivalent']:6d} {rate:9.0%} {secs:6.0f}s   "
              f"{'ok' if rate >= TARGET else 'BELOW'}")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
