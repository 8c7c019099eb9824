"""Speed of the grader (figures, not assertions).

Targets: one lab graded under faults <= 10 s median; verify of all labs <= 2 min; a batch of 100
submissions of one lab <= 5 min on 2 cores. Also printed: the cost of one sandboxed worker spawn
and of one namespace, the per-test overheads the plugin adds.

    python bench/bench_grading.py [--lab 01-fencing-locks] [--runs 3] [--batch 20] [--jobs 3]
                                  [--skip-verify] [--verify-repeat 20]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from splitbrain.grading.env import ensure_up, open_namespace, resources_of
from splitbrain.grading.runner import BATCH_JOBS, grade_batch, grade_submission
from splitbrain.grading.verify import verify_labs
from splitbrain.lab import discover_labs, find_lab
from splitbrain.sandbox import spawn

sys.path.insert(0, str(Path(__file__).parent))
from bench_check import PeakRSS  # noqa: E402 - beside this script


def _verdict(result) -> tuple:
    return tuple((t.name, t.status, t.points) for t in result.tests), result.error is None


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_spawn(lab, n: int) -> None:
    ep = ensure_up(lab.services)
    ns_times, spawn_times = [], []
    for _ in range(n):
        t = time.perf_counter()
        ns = open_namespace(ep)
        ns_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        w = spawn(lab.solution_path, "bench", resources_of(ns, ep), module=lab.module_name)
        spawn_times.append(time.perf_counter() - t)
        w.close()
        t = time.perf_counter()
        ns.drop()
        ns_times[-1] += time.perf_counter() - t
    print(f"worker spawn (import the component): median {statistics.median(spawn_times)*1000:.0f} "
          f"ms, max {max(spawn_times)*1000:.0f} ms over {n}")
    print(f"namespace open + drop:               median {statistics.median(ns_times)*1000:.0f} "
          f"ms, max {max(ns_times)*1000:.0f} ms over {n}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lab", default=None, help="lab to time (default: the first lab)")
    p.add_argument("--runs", type=int, default=3, help="single gradings timed (default 3)")
    p.add_argument("--batch", type=int, default=20, help="submissions in the batch run")
    p.add_argument("--jobs", type=int, default=BATCH_JOBS,
                   help=f"gradings at once in the batch (default {BATCH_JOBS}, as `grade`)")
    p.add_argument("--skip-verify", action="store_true")
    p.add_argument("--verify-repeat", type=int, default=0,
                   help="run verify N more times and count distinct verdicts (target: 1)")
    args = p.parse_args()
    lab = find_lab(args.lab) if args.lab else discover_labs()[0]
    print(f"lab {lab.slug}")
    bench_spawn(lab, 10)

    times = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            times.append(timed(lambda: grade_submission(lab, lab.solution_path, 1, out)))
    print(f"one grading (solution):  median {statistics.median(times):.1f} s over {args.runs} "
          f"(target <= 10 s)")

    if not args.skip_verify:
        labs = discover_labs()
        t = timed(lambda: verify_labs(labs))
        print(f"verify of {len(labs)} labs:      {t:.1f} s (target <= 120 s)")
    if args.verify_repeat:
        labs = discover_labs()
        seen = set()
        for _ in range(args.verify_repeat):
            proofs = verify_labs(labs)
            seen.add(tuple((p.lab, p.proves, tuple((t.name, t.status) for t in p.broken.tests),
                            tuple((t.name, t.status) for t in p.solution.tests)) for p in proofs))
        print(f"{args.verify_repeat} reruns of verify: {len(seen)} distinct verdict(s) "
              f"(target 1)")

    with tempfile.TemporaryDirectory() as tmp:
        subs, sources = [], {}
        for i in range(args.batch):
            d = Path(tmp) / "subs" / f"learner{i:03d}"
            d.mkdir(parents=True)
            src = lab.solution_path if i % 2 else lab.component_path
            shutil.copy(src, d / lab.component)
            subs.append(d / lab.component)
            sources[str(d / lab.component)] = src
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            results = grade_batch(lab, subs, Path(tmp) / "out", jobs=args.jobs)
            t = time.perf_counter() - t0
        # the same components graded one at a time, alone: every batch verdict must be theirs
        serial = {src: grade_submission(lab, src, 1, Path(tmp) / "serial" / src.stem)
                  for src in {lab.solution_path, lab.component_path}}
    differ = [r.submission for r in results
              if _verdict(r) != _verdict(serial[sources[str(Path(r.submission))]])]
    per = t / args.batch
    print(f"batch of {args.batch} (jobs {args.jobs}):  {t:.1f} s, {per:.2f} s per submission; "
          f"100 submissions ~ {per * 100 / 60:.1f} min (target <= 5 min)")
    print(f"verdicts equal to a serial grading of the same component: "
          f"{args.batch - len(differ)} of {args.batch}" + (f" (differ: {differ[:3]})" if differ
                                                            else ""))
    print(f"memory: peak {mem.peak / 2**20:.0f} MiB for {args.jobs} gradings at once, "
          f"{mem.peak / 2**20 / args.jobs:.0f} MiB per concurrent grading (proportional set "
          f"size)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
