"""Figures for the services (targets from the design, printed, never asserted in tests):

  embedded cold start of Postgres + Redis + Kafka   <= 5 s   (median)
  warm start (state dir kept)                        <= 1.5 s (median)
  per-test namespace reset (open + drop)             <= 20 ms (median)
  standby lag control (visible after apply delay)    +-10 ms  (error of the median)

Run: .venv/bin/python bench/bench_services.py [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


def _fresh_home() -> str:
    home = tempfile.mkdtemp(prefix="sb-bench-")
    os.environ["SPLITBRAIN_HOME"] = home
    return home


def cold_and_warm(rounds: int) -> tuple[list[float], list[float]]:
    from splitbrain.services import down, ensure_up
    cold, warm = [], []
    for _ in range(rounds):
        home = _fresh_home()
        try:
            t = time.perf_counter()
            ensure_up()
            cold.append(time.perf_counter() - t)
            down()
            t = time.perf_counter()
            ensure_up()
            warm.append(time.perf_counter() - t)
        finally:
            down(purge=True)
            shutil.rmtree(home, ignore_errors=True)
    return cold, warm


def first_ever() -> float:
    """Cold start including initdb (an empty template cache)."""
    from splitbrain.services import down, ensure_up
    from splitbrain.services.runtime import cache_dir
    saved = cache_dir().with_name("cache-bench-saved")
    shutil.rmtree(saved, ignore_errors=True)
    os.rename(cache_dir(), saved)
    home = _fresh_home()
    try:
        t = time.perf_counter()
        ensure_up()
        return time.perf_counter() - t
    finally:
        down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(cache_dir(), ignore_errors=True)
        os.rename(saved, cache_dir())


def reset(n: int, test_s: float) -> list[float]:
    """open_namespace + drop, with ``test_s`` seconds of "test" between them (not timed):
    the database pool is refilled and dropped databases are removed in the background."""
    from splitbrain.services import down, ensure_up, open_namespace
    home = _fresh_home()
    try:
        ep = ensure_up(["postgres", "redis"])
        open_namespace(ep).drop()  # make the template, warm the admin connections
        time.sleep(1)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            ns = open_namespace(ep)
            t_open = time.perf_counter() - t
            time.sleep(test_s)
            t = time.perf_counter()
            ns.drop()
            out.append(t_open + time.perf_counter() - t)
            time.sleep(test_s)
        return out
    finally:
        down(purge=True)
        shutil.rmtree(home, ignore_errors=True)


def standby_lag(delay_ms: int, n: int) -> list[float]:
    """Commit on the primary, poll the standby until the row is visible; minus the delay."""
    from splitbrain.services import spawn_postgres
    errs = []
    with spawn_postgres() as pg, pg.standby(apply_delay_ms=delay_ms) as sb:
        with pg.connect() as c:
            c.execute("create table t(x int)")
        sb.set_apply_delay(0)
        sb.wait_caught_up(30)
        sb.set_apply_delay(delay_ms)
        with pg.connect() as p, sb.connect() as s:
            p.execute("set synchronous_commit = on")
            for i in range(n):
                p.execute("insert into t values (%s)", (i,))
                t0 = time.perf_counter()
                while s.execute("select count(*) from t where x = %s", (i,)).fetchone()[0] == 0:
                    time.sleep(0.0005)
                errs.append((time.perf_counter() - t0) * 1000 - delay_ms)
    return errs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--first-ever", action="store_true", help="also time a start with initdb")
    a = ap.parse_args()
    cold, warm = cold_and_warm(a.rounds)
    print(f"embedded cold start (pg+redis+kafka): median {statistics.median(cold):.2f} s "
          f"(runs: {', '.join(f'{x:.2f}' for x in cold)}; target <= 5 s)")
    print(f"embedded warm start (state kept):     median {statistics.median(warm):.2f} s "
          f"(runs: {', '.join(f'{x:.2f}' for x in warm)}; target <= 1.5 s)")
    if a.first_ever:
        print(f"first start ever (initdb included):   {first_ever():.2f} s")
    for gap, label in ((0.05, "50 ms tests"), (0.0, "back to back")):
        r = reset(40, gap)
        print(f"namespace reset, {label + ':':14} median {statistics.median(r) * 1000:.1f} ms, "
              f"p90 {sorted(r)[int(len(r) * 0.9)] * 1000:.1f} ms (target <= 20 ms)")
    for delay in (100, 500):
        e = standby_lag(delay, 10)
        print(f"standby apply delay {delay} ms:          error median {statistics.median(e):+.1f} ms, "
              f"min {min(e):+.1f}, max {max(e):+.1f} (target +-10 ms)")


if __name__ == "__main__":
    main()
