"""Lab 05's bench: limiter decisions per second from several gateway processes, beside
redis-benchmark's EVALSHA rate of the same script on the same private Redis in the same run.

Target: the limiter reaches at least half of redis-benchmark's EVALSHA rate (the rest is the Python
client's cost per call). Run:
    .venv/bin/python autograder/05-rate-limiting/bench.py [--processes 4] [--seconds 3]
                                                          [--rounds 3] [--component PATH]
The component defaults to the lab's solution. A private Redis is started for the run and stopped
after it; redis-benchmark must be on PATH (Debian: redis-tools).
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from splitbrain import Clock

TARGET = 0.5
LIMIT, WINDOW_S, CLIENTS = 10, 2.0, 1000


def load(component: Path):
    spec = importlib.util.spec_from_file_location("bench_limiter", component)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def gateway(component: str, url: str, seconds: float, start, out) -> None:
    mod = load(Path(component))
    lim = mod.RateLimiter(url, prefix="bench:", limit=LIMIT, window_s=WINDOW_S, clock=Clock(),
                          timeout_s=1.0)
    for i in range(200):                       # warm up: connection, script loaded
        lim.allow(f"warm-{i}")
    start.wait()
    n, admitted, end = 0, 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        admitted += lim.allow(f"client-{n % CLIENTS}") is True
        n += 1
    lim.close()
    out.put((n, admitted))


def limiter_rate(component: Path, url: str, processes: int, seconds: float) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=gateway, args=(str(component), url, seconds, start, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(1.0)                            # let every process import and warm up
    start.set()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    total = sum(n for n, _ in results)
    return total / seconds, sum(a for _, a in results)


def evalsha_rate(url: str, script: str, clients: int, requests: int) -> float:
    import redis
    r = redis.Redis.from_url(url)
    sha = r.script_load(script)
    r.close()
    parts = urlsplit(url)
    cmd = ["redis-benchmark", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379),
           "-n", str(requests), "-c", str(clients), "-r", str(CLIENTS), "-q",
           "EVALSHA", sha, "1", "bench:rb:__rand_int__", str(LIMIT), str(int(WINDOW_S * 1e6)),
           "member:__rand_int__"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    found = re.findall(r"([\d.]+) requests per second", text.replace("\r", "\n"))
    if not found:
        raise RuntimeError(f"could not read redis-benchmark's output:\n{text[-2000:]}")
    return float(found[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--component", type=Path, default=None,
                    help="the limiter to measure (default: the lab's solution)")
    args = ap.parse_args(argv)
    if args.component is None:
        from splitbrain.lab import find_lab
        args.component = find_lab(Path(__file__).resolve().parent.name).solution_path
    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark is not on PATH: install redis-tools (Debian) and run again")
        return 2
    script = getattr(load(args.component), "SLIDING_LOG", None)
    if script is None:
        print(f"{args.component} has no SLIDING_LOG script to hand to redis-benchmark; pass the "
              f"lab's solution")
        return 2
    from splitbrain.services import spawn_redis
    server = spawn_redis()
    rates, benches = [], []
    try:
        for r in range(args.rounds):           # alternate, so both see the same machine load
            rate, admitted = limiter_rate(args.component, server.url, args.processes, args.seconds)
            bench = evalsha_rate(server.url, script, clients=args.processes, requests=100_000)
            rates.append(rate)
            benches.append(bench)
            print(f"round {r + 1}: limiter {rate:10.0f} decisions/s ({admitted} admitted), "
                  f"redis-benchmark EVALSHA {bench:10.0f} calls/s")
    finally:
        server.close()
    rate, bench = max(rates), max(benches)
    ratio = statistics.median(r / b for r, b in zip(rates, benches) if b)  # same-round ratios
    print(f"limiter, {args.processes} processes x {args.seconds:g} s, best of {args.rounds}: "
          f"{rate:10.0f} decisions/s")
    print(f"redis-benchmark EVALSHA, {args.processes} connections, best of {args.rounds}: "
          f"{bench:10.0f} calls/s")
    print(f"ratio, median of the rounds: {ratio:.2f} (target >= {TARGET}): "
          f"{'ok' if ratio >= TARGET else 'BELOW TARGET'}")
    print(f"cores: {os.cpu_count()}; the limiter's Python clients and Redis share them, while "
          f"redis-benchmark is one C process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
