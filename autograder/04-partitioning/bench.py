"""What consistent hashing and the fenced store cost, measured on lab 04's solution.

Three figures, each printed beside a baseline from the same run:

1. routing: ring lookups per second (160 points per shard, 5 shards) against ``stable_hash % N``.
   Target: the ring routes at least 100,000 keys/s in one Python process (a network round trip
   costs far more, so routing never shows up next to it).
2. puts: fenced ``ShardedStore.put`` (a Lua script checking the epoch) against a plain redis-py
   ``SET`` on the same shard server, one client, sequential. Target: at least 0.5 of the plain rate.
3. rebalance: time to add a fifth shard to four holding N keys (copy with SET NX, switch over, clean
   up), and the fraction of keys that moved.

Run:
    SPLITBRAIN_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python autograder/04-partitioning/bench.py [N]
The control Redis comes from SPLITBRAIN_REDIS_URL or the kit's services; the shards are private
Redis servers started for the run and stopped at the end (the fifth one is added through the
nemesis, as in the hidden tests, before the timing starts).
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
import uuid
from pathlib import Path

import redis

from splitbrain import rig as lab_rig
from splitbrain.faults import Nemesis
from splitbrain.lab import find_lab

LAB = find_lab(Path(__file__).resolve().parent.name)
lab_rig.load(LAB)

from rig import partitioning as part  # noqa: E402 - the lab's rig, loaded just above
from rig.checkers import moved_keys  # noqa: E402

ROUTE_TARGET = 100_000
PUT_RATIO_TARGET = 0.5


def solution():
    path = LAB.solution_path
    spec = importlib.util.spec_from_file_location("lab04_solution", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def control_url() -> str:
    url = os.environ.get("SPLITBRAIN_REDIS_URL")
    if url:
        return url
    from splitbrain.services import ensure_up
    return ensure_up(["redis"]).redis_url


def rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main(n: int) -> int:
    sol = solution()
    names = [f"s{i}" for i in range(5)]
    ks = part.keys(n)
    ring = sol.HashRing(names)
    ring_rate = rate(n, lambda: [ring.owner(k) for k in ks])
    mod_rate = rate(n, lambda: [names[sol.stable_hash(k) % 5] for k in ks])
    print(f"routing    ring {ring_rate:>10,.0f} keys/s   hash % N {mod_rate:>10,.0f} keys/s   "
          f"target >= {ROUTE_TARGET:,} ({'ok' if ring_rate >= ROUTE_TARGET else 'MISSED'})")

    ok = ring_rate >= ROUTE_TARGET
    with part.Shards.start(4) as shards:
        prefix = f"bench:{uuid.uuid4().hex}:"
        control = control_url()
        store = sol.ShardedStore(control, prefix, shards.urls(names[:4]))
        raw = redis.Redis.from_url(shards.urls(["s0"])["s0"], decode_responses=True)
        raw_rate = rate(n, lambda: [raw.set(f"raw:{k}", "x") for k in ks])
        put_rate = rate(n, lambda: [store.put(k, "x") for k in ks])
        ratio = put_rate / raw_rate
        ok &= ratio >= PUT_RATIO_TARGET
        print(f"puts       fenced {put_rate:>8,.0f} /s   plain SET {raw_rate:>8,.0f} /s   "
              f"ratio {ratio:.2f}, target >= {PUT_RATIO_TARGET} "
              f"({'ok' if ratio >= PUT_RATIO_TARGET else 'MISSED'})")
        raw.delete(*[f"raw:{k}" for k in ks])
        before = shards.placement(ks)
        added = Nemesis().inject("add-shard", shards.shard(names[4]))   # starts s4
        t = time.perf_counter()
        store.rebalance(shards.urls(names))
        took = time.perf_counter() - t
        added.heal()
        after = shards.placement(ks)
        moved = len(moved_keys(before, after))
        print(f"rebalance  4 -> 5 shards, {n:,} keys: {took:.2f} s, {moved / n:.1%} of the keys "
              f"moved ({n / took:,.0f} keys scanned/s)")
        redis.Redis.from_url(control).delete(f"{prefix}topology")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
