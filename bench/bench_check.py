"""How long a learner waits for `splitbrain check`, per lab (figures, not assertions).

For each lab: the wall time of one grading of its solution and of its broken handout (the hidden
and public tests under faults, as `check` runs them), the median over --runs, the slowest tests
of the solution's grading (where the time goes: leases, timeouts, broker joins), and the peak
memory of the grading's whole process tree (pytest, the sandboxed workers, private servers).
Targets: a check of labs 01, 04 and 05 <= 5 s median on 2 cores, of every lab <= 10 s.

    python bench/bench_check.py                    every lab, 3 runs each
    python bench/bench_check.py 01 04 --runs 5     two labs
    python bench/bench_check.py 04 --record        also write autograder/04-*/durations.json

--record keeps the median duration of each test of the solution's gradings beside the lab's
hidden tests: a grading reads it to deal the longest tests to different processes first.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import psutil

from splitbrain.grading.env import ensure_up
from splitbrain.grading.runner import CHECK_JOBS, grade_submission, record_durations
from splitbrain.lab import discover_labs, find_lab

FAST = ("01-", "04-", "05-")   # labs whose check should take at most 5 s


class PeakRSS:
    """Samples the memory of this process and all its descendants four times a second: the
    proportional set size (a page shared by N processes counts 1/N in each; forked workers share
    most of theirs with their fork server), else the resident size where PSS cannot be read."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _size(p: psutil.Process) -> int:
        try:
            return p.memory_full_info().pss
        except (psutil.AccessDenied, AttributeError):
            return p.memory_info().rss

    def _run(self) -> None:
        me = psutil.Process()
        base = self._size(me)
        while not self._stop.wait(0.25):
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += self._size(p)
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total - base)

    def __enter__(self) -> PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def grade_once(lab, path):
    with tempfile.TemporaryDirectory() as out, PeakRSS() as mem:
        t = time.perf_counter()
        result = grade_submission(lab, path, 1, out, jobs=CHECK_JOBS)  # as `check` grades
        wall = time.perf_counter() - t
    return wall, result, mem.peak


def cpu_ms() -> float:
    """How fast this machine runs Python: the best of twenty ``sum(range(10**6))``, in ms. Printed
    beside the figures, so that figures taken on two machines can be compared."""
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - t)
    return best * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("labs", nargs="*", help="labs to time (default: every lab)")
    p.add_argument("--runs", type=int, default=3, help="gradings per component (default 3)")
    p.add_argument("--slowest", type=int, default=3, help="slowest tests shown per lab")
    p.add_argument("--record", action="store_true",
                   help="write each lab's durations.json from its solution's gradings")
    args = p.parse_args()
    labs = [find_lab(x) for x in args.labs] if args.labs else discover_labs()
    ensure_up(sorted({s for lab in labs for s in lab.services}))
    rows = []
    for lab in labs:
        sol, brk, mems, last, results = [], [], [], None, []
        for _ in range(args.runs):
            wall, last, mem = grade_once(lab, lab.solution_path)
            sol.append(wall)
            results.append(last)
            mems.append(mem)
            brk.append(grade_once(lab, lab.component_path)[0])
        target = 5.0 if lab.slug.startswith(FAST) else 10.0
        med = statistics.median(sol)
        rows.append((lab.slug, med, statistics.median(brk), max(mems), target))
        verdict = "ok" if med <= target else f"over the {target:.0f} s target"
        print(f"{lab.slug}: solution {med:.1f} s median (min {min(sol):.1f}, max {max(sol):.1f}), "
              f"broken {statistics.median(brk):.1f} s, peak memory {max(mems) / 2**20:.0f} MiB "
              f"[{verdict}]", flush=True)
        if args.record and all(r.error is None and r.score == r.max_score for r in results):
            print(f"    durations written to {record_durations(lab, results)}")
        elif args.record:
            print("    durations not written: a grading of the solution did not get full marks")
        if last is not None:
            for t in sorted(last.tests, key=lambda t: -t.duration_s)[:args.slowest]:
                print(f"    {t.duration_s:5.1f} s  {t.name}")
    print(f"\nthis machine: {os.cpu_count()} cores, sum(range(10**6)) in {cpu_ms():.1f} ms "
          f"(a slower machine grades slower: compare figures at the same speed)")
    print(f"{'lab':28} {'solution':>9} {'broken':>8} {'memory':>8} {'target':>7}")
    for slug, med, brk, mem, target in rows:
        print(f"{slug:28} {med:8.1f}s {brk:7.1f}s {mem / 2**20:6.0f}Mi {target:6.0f}s"
              + ("" if med <= target else "  OVER"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
