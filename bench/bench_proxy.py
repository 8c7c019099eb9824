"""Round-trip overhead of the fault proxy: Redis PING direct vs through a clean FaultProxy.

Target: the proxy adds at most 0.5 ms per round trip (median). Two setups are measured: the proxy
in the client's own process (``FaultProxy``, sharing the interpreter with the client, as in a test)
and the standalone server (``python -m splitbrain.faults.proxy``, its own process, as a standalone Toxiproxy-compatible server).
Run:
    SPLITBRAIN_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/bench_proxy.py [N]
Without SPLITBRAIN_REDIS_URL the kit's services start a Redis.
"""
from __future__ import annotations

import os
import statistics
import subprocess
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
    server = subprocess.Popen([sys.executable, "-m", "splitbrain.faults.proxy", "--api",
                               "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        from splitbrain.faults.toxiproxy import ToxiproxyClient
        api = ToxiproxyClient(server.stdout.readline().split()[-1])
        remote = api.create("bench", upstream=f"{u.hostname}:{u.port}")
        with FaultProxy(name="bench") as fp:
            fp.start(upstream=(u.hostname, u.port))
            clients = {"direct": redis.Redis.from_url(url),
                       "in-process": redis.Redis.from_url(fp.url_for(url)),
                       "standalone": redis.Redis.from_url(remote.url_for(url))}
            times: dict[str, list[float]] = {k: [] for k in clients}
            for _ in range(5):       # interleave so all three share the machine's noise fairly
                for name, client in clients.items():
                    times[name] += sample(client, n // 5)
    finally:
        server.terminate()
        server.wait(10)
    for name, xs in times.items():
        print(summary(name, xs))
    for name in ("in-process", "standalone"):
        added = statistics.median(times[name]) - statistics.median(times["direct"])
        verdict = "within" if added <= BUDGET_MS else "OVER"
        print(f"added by the {name} proxy: {added:.3f} ms per round trip (median) - {verdict} "
              f"the {BUDGET_MS} ms budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
