"""How long the kit's test suite takes, and how long it will take at seventeen labs.

The suite has a part that does not grow with the labs (the kit's own tests) and a part per lab
(its proof, its variants, its selftests, its notebook). This script times each with the wall
clock, the way CI runs them, and projects the whole suite at LABS labs from the mean per lab.
Targets: the fast lane (``pytest -m "not slow"``) under 2 minutes; the whole suite under 40
minutes at 17 labs on 2 cores.

    python bench/bench_suite.py [--labs 17] [--only-fast] [--lab 01 --lab 02 ...]
    python bench/bench_suite.py --junit report.xml   # from a whole run: pytest --junitxml=...
"""
from __future__ import annotations

import argparse
import re
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_pytest(*args: str) -> tuple[float, int, str]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CI": os.environ.get("CI", "")})
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return time.monotonic() - t0, proc.returncode, tail


def from_junit(path: Path, labs: int) -> int:
    """The kit's share and each lab's share of a whole run, from its JUnit XML: a test belongs
    to lab NN when its parameters start with NN- (the lab, a variant, a figure of it)."""
    from xml.etree import ElementTree as ET
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    wall = sum(float(s.get("time", 0)) for s in suites)
    kit, per = 0.0, {}
    shipped = {p.name[:2] for p in (ROOT / "labs").glob("[0-9][0-9]-*") if p.is_dir()}
    for case in root.iter("testcase"):
        t = float(case.get("time", 0))
        m = re.search(r"\[(\d\d)-", case.get("name", ""))
        if m and m.group(1) in shipped:
            per[m.group(1)] = per.get(m.group(1), 0.0) + t
        else:
            kit += t
    overhead = max(0.0, wall - kit - sum(per.values()))
    print(f"whole run: {wall / 60:5.1f} min ({len(per)} labs); the kit's own tests "
          f"{kit / 60:5.1f} min, between tests {overhead / 60:4.1f} min")
    for nn, t in sorted(per.items()):
        print(f"lab {nn}   {t:7.1f} s")
    print("(the variants of every lab are graded together, in the setup of the first variant "
          "test: their time counts for that test's lab)")
    mean = sum(per.values()) / len(per) if per else 0.0
    projected = kit + overhead + mean * labs
    print(f"per lab, mean: {mean:5.1f} s;  projected at {labs} labs: {projected / 60:5.1f} min "
          f"(target < 40 min on 2 cores)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labs", type=int, default=17, help="project the suite at this many labs")
    ap.add_argument("--lab", action="append", default=[],
                    help="time only these labs' parts (default: every shipped lab)")
    ap.add_argument("--only-fast", action="store_true", help="time the fast lane only")
    ap.add_argument("--junit", type=Path, default=None,
                    help="split a finished whole-suite run (pytest --junitxml=FILE) into the kit "
                         "and each lab, instead of running the suite")
    args = ap.parse_args(argv)
    if args.junit:
        return from_junit(args.junit, args.labs)
    sys.path.insert(0, str(ROOT))
    from splitbrain.lab import discover_labs, find_lab

    fast, rc, tail = timed_pytest("tests", "-m", "not slow")
    print(f"fast lane   pytest -m 'not slow'   {fast:7.1f} s   (target < 120 s)   {tail}")
    if args.only_fast:
        return 0 if rc == 0 else 1
    labs = [find_lab(n) for n in args.lab] if args.lab else discover_labs()
    kit, rc_kit, tail = timed_pytest("tests", "-m", "slow", "--no-labs")
    print(f"kit (slow, no lab)                 {kit:7.1f} s   {tail}")
    per_lab = []
    for lab in labs:
        t, rc_lab, tail = timed_pytest("tests", "--lab", lab.slug)
        per_lab.append(t)
        print(f"lab {lab.slug:28s}   {t:7.1f} s   {tail}")
    mean = sum(per_lab) / len(per_lab) if per_lab else 0.0
    now = fast + kit + sum(per_lab)
    projected = fast + kit + mean * args.labs
    print(f"\nwhole suite now ({len(labs)} labs, timed in parts): {now / 60:5.1f} min")
    print(f"per lab, mean: {mean:5.1f} s;  projected at {args.labs} labs: {projected / 60:5.1f} min "
          f"(target < 40 min on 2 cores)")
    return 0 if rc == rc_kit == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
