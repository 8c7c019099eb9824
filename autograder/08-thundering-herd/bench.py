"""Lab 08's bench: Brooker's "Exponential Backoff and Jitter" (AWS Architecture Blog, 2015)
comparison, on a real Redis.

N clients each want to write one key once, with optimistic concurrency (WATCH, GET, a short
think time, MULTI/SET/EXEC): whenever another client's write lands in between, EXEC fails and the
client backs off before trying again. For each backoff policy (exponential with no jitter, full
jitter, equal jitter, decorrelated jitter) the bench prints the total calls all clients made
(the work the server did) and the time until the last client finished, the median of a few
rounds. Run:
    .venv/bin/python autograder/08-thundering-herd/bench.py [--clients 10 25 50] [--rounds 3]
A private Redis is started for the run and stopped after it.
"""
from __future__ import annotations

import argparse
import random
import statistics
import threading
import time

import redis

BASE_S, CAP_S, THINK_S = 0.002, 0.5, 0.001


def no_jitter(rng: random.Random, attempt: int, last: float) -> float:
    return min(CAP_S, BASE_S * 2 ** attempt)


def full_jitter(rng: random.Random, attempt: int, last: float) -> float:
    return rng.uniform(0, min(CAP_S, BASE_S * 2 ** attempt))


def equal_jitter(rng: random.Random, attempt: int, last: float) -> float:
    step = min(CAP_S, BASE_S * 2 ** attempt)
    return step / 2 + rng.uniform(0, step / 2)


def decorrelated_jitter(rng: random.Random, attempt: int, last: float) -> float:
    return min(CAP_S, rng.uniform(BASE_S, max(last, BASE_S) * 3))


POLICIES = {"no jitter": no_jitter, "full jitter": full_jitter, "equal jitter": equal_jitter,
            "decorrelated jitter": decorrelated_jitter}


def client(url: str, key: str, policy, seed: int, start: threading.Barrier, out: list) -> None:
    r = redis.Redis.from_url(url)
    rng, calls, attempt, last = random.Random(seed), 0, 0, BASE_S
    start.wait()
    while True:
        calls += 1
        with r.pipeline() as p:
            try:
                p.watch(key)
                n = int(p.get(key) or 0)
                time.sleep(THINK_S)                 # the work between the read and the write
                p.multi()
                p.set(key, n + 1)
                p.execute()
                break
            except redis.WatchError:
                last = policy(rng, attempt, last)
                attempt += 1
                time.sleep(last)
    out.append((calls, time.perf_counter()))
    r.close()


def run(url: str, policy, clients: int, seed: int) -> tuple[int, float]:
    key = f"bench:{seed}:{random.random()}"
    start, out = threading.Barrier(clients + 1), []
    ts = [threading.Thread(target=client, args=(url, key, policy, seed * 1000 + i, start, out))
          for i in range(clients)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return sum(c for c, _ in out), max(t for _, t in out) - t0


def table(url: str, sizes: list[int], rounds: int) -> list[tuple[str, int, int, float]]:
    rows = []
    for n in sizes:
        for name, policy in POLICIES.items():
            results = [run(url, policy, n, seed) for seed in range(1, rounds + 1)]
            rows.append((name, n, int(statistics.median(c for c, _ in results)),
                         statistics.median(t for _, t in results) * 1000))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 25, 50],
                    help="how many contending clients (default: 10 25 50)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per cell, median (default: 3)")
    args = ap.parse_args()
    from splitbrain.services import spawn_redis
    server = spawn_redis()
    try:
        rows = table(server.url, args.clients, args.rounds)
    finally:
        server.close()
    print("| policy | clients | calls | time to finish (ms) |")
    print("|---|---:|---:|---:|")
    for name, n, calls, ms in rows:
        print(f"| {name} | {n} | {calls} | {ms:.0f} |")


if __name__ == "__main__":
    main()
