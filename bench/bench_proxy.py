"""Round-trip overhead of the fault proxy: Redis PING direct vs through a clean FaultProxy.

Target: the proxy adds at most 0.5 ms per round trip (median). Run:
    SPLITBRAIN_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/bench_proxy.py [N]
Without SPLITBRAIN_REDIS_URL the kit's services start a Redis.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from urllib.parse import urlsplit

import redis

from splitbrain.faults.proxy import FaultProxy

BUDGET_MS = 0.5


def redis_url() -> str:
    url = os.environ.get("SPLITBRAIN_REDIS_URL")
    if url:
        return url
    from splitbrain.services import ensure_up
    return ensure_up(["redis"]).redis_url


def sample(r: redis.Redis, n: int) -> list[float]:
    for _ in range(200):
        r.ping()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r.ping()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(name: str, xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[int(len(xs) * 0.99) - 1]
    return f"{name:<14} median {statistics.median(xs):.3f} ms   p99 {p99:.3f} ms   n={len(xs)}"


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    url = redis_url()
    u = urlsplit(url)
    direct = redis.Redis.from_url(url)
    with FaultProxy(name="bench") as fp:
        fp.start(upstream=(u.hostname, u.port))
        proxied = redis.Redis.from_url(fp.url_for(url))
        d, p = [], []
        for _ in range(5):           # interleave to share the machine's noise fairly
            d += sample(direct, n // 5)
            p += sample(proxied, n // 5)
    print(summary("direct", d))
    print(summary("through proxy", p))
    added = statistics.median(p) - statistics.median(d)
    verdict = "within" if added <= BUDGET_MS else "OVER"
    print(f"added by proxy: {added:.3f} ms per round trip (median) - {verdict} the {BUDGET_MS} ms budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
