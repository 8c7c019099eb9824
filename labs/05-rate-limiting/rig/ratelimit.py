"""Grader side of lab 05 (distributed rate limiting), shared by the hidden tests, the public tests,
the notebook and the bench (``rig.ratelimit``).

* :class:`Gateway` is one API gateway process: a sandboxed worker running the learner's
  ``limiter.py`` with one ``RateLimiter`` in it, the way each gateway replica holds its own limiter
  against the shared Redis.
* :func:`race`, :func:`stream` and :func:`alternate` drive gateways from grader threads, each call
  recorded in the history when it is really sent (never queued ahead), so the time between a call
  and its answer brackets the moment the limiter decided.
* :func:`declared_policy` reads ``FAILURE_POLICY`` from the component's source without running it.
* :func:`key_ttls` reads, with the grader's own Redis connection, the expiry of every key under a
  prefix: what the limiter really left behind.
* :func:`next_boundary` is when the next fixed window of ``window_s`` starts on the machine's clock;
  :data:`WALL_CLOCK` is that clock as the target of the ``window-boundary`` condition.

Faults go through the nemesis like every other: ``nemesis.inject("clock-skew", gateway.worker,
offset=5.0)``, ``with nemesis.fault("latency", proxy, ms=20): ...``.
"""
from __future__ import annotations

import ast
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

LIMIT = 10                   # requests per client ...
WINDOW_S = 2.0               # ... in any window of this many seconds
TIMEOUT_S = 0.5              # what each limiter is told to spend on Redis, at most, per round trip
BOUND_S = TIMEOUT_S + 1.0    # what the grader allows a decision to take (network and scheduling)
CALL_TIMEOUT_S = 3.0         # a call still unanswered after this is hung: the worker is killed


class Gateway:
    """One gateway process with one limiter. ``allow(client)`` returns True/False, or None when
    the call raised or never answered (the history has the details)."""

    def __init__(self, spawn: Callable[..., Any], name: str, prefix: str, *,
                 redis_url: str | None = None, limit: int = LIMIT, window_s: float = WINDOW_S,
                 timeout_s: float = TIMEOUT_S, call_timeout_s: float = CALL_TIMEOUT_S,
                 memory_mb: int = 512) -> None:
        from splitbrain.sandbox import Limits, Ref
        self.name = name
        resources = {"redis_url": redis_url} if redis_url else None
        self.worker = spawn(name, resources=resources,
                            limits=Limits(memory_mb=memory_mb, call_timeout_s=call_timeout_s))
        self.limiter = self.worker.new("RateLimiter", Ref("redis_url"), prefix=prefix, limit=limit,
                                       window_s=window_s, clock=Ref("clock"), timeout_s=timeout_s)

    def allow(self, client: str) -> bool | None:
        from splitbrain.sandbox import SandboxError
        try:
            got = self.limiter.allow(client)
        except SandboxError:
            return None
        return got if isinstance(got, bool) else None

    @property
    def alive(self) -> bool:
        return self.worker.alive


def calls(gateway: Gateway, client: str, n: int, pace_s: float = 0.0) -> list[bool | None]:
    """``n`` calls one after another from one gateway. Calls to a gateway that died (killed after
    a hung call) fail at once and are recorded as unanswered, so they count against it."""
    out: list[bool | None] = []
    for i in range(n):
        out.append(gateway.allow(client))
        if pace_s and i < n - 1:
            time.sleep(pace_s)
    return out


def race(gateways: Sequence[Gateway], client: str, n_each: int) -> list[list[bool | None]]:
    """Every gateway sends ``n_each`` calls for ``client`` at the same time (one thread each)."""
    start = threading.Barrier(len(gateways))

    def run(g: Gateway) -> list[bool | None]:
        start.wait(timeout=30)
        return calls(g, client, n_each)

    with ThreadPoolExecutor(len(gateways)) as pool:
        return [f.result() for f in [pool.submit(run, g) for g in gateways]]


def stream(gateways: Sequence[Gateway], client: str, until: float, pace_s: float = 0.01,
           clock: Callable[[], float] = time.time) -> list[list[bool | None]]:
    """Every gateway calls for ``client`` every ``pace_s`` seconds until ``clock() >= until``."""
    def run(g: Gateway) -> list[bool | None]:
        out: list[bool | None] = []
        while clock() < until and g.alive:
            out.append(g.allow(client))
            time.sleep(pace_s)
        return out

    with ThreadPoolExecutor(len(gateways)) as pool:
        return [f.result() for f in [pool.submit(run, g) for g in gateways]]


def alternate(gateways: Sequence[Gateway], client: str, rounds: int) -> list[bool | None]:
    """One call from each gateway in turn, ``rounds`` times: no two calls overlap."""
    out = []
    for _ in range(rounds):
        for g in gateways:
            out.append(g.allow(client))
    return out


class WallClock:
    """The machine's wall clock, which every gateway's Clock follows unless skewed: the target of
    the ``window-boundary`` condition, named ``clock`` in the history."""

    name = "clock"

    def __repr__(self) -> str:
        return "WALL_CLOCK"


WALL_CLOCK = WallClock()


def next_boundary(window_s: float, now: float | None = None) -> float:
    """Wall-clock time at which the next fixed window of ``window_s`` seconds begins."""
    now = time.time() if now is None else now
    return (int(now // window_s) + 1) * window_s


def sleep_until(t: float, clock: Callable[[], float] = time.time) -> None:
    while True:
        left = t - clock()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def declared_policy(component: str | Path, class_name: str = "RateLimiter") -> str | None:
    """The string literal assigned to ``FAILURE_POLICY`` in the class body, or None."""
    try:
        tree = ast.parse(Path(component).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            found = None
            for stmt in node.body:
                targets: list[ast.expr] = []
                if isinstance(stmt, ast.Assign):
                    targets, value = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    targets, value = [stmt.target], stmt.value
                if any(isinstance(t, ast.Name) and t.id == "FAILURE_POLICY" for t in targets):
                    found = value.value if isinstance(value, ast.Constant) and isinstance(
                        value.value, str) else None
            return found
    return None


def key_ttls(redis_url: str, prefix: str) -> dict[str, int]:
    """PTTL (ms; -1 = no expiry, -2 = gone) of every key under ``prefix``, read by the grader."""
    import redis
    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.pttl(k)
        ttls = pipe.execute() if keys else []
        return {k.decode("utf-8", "backslashreplace"): int(t) for k, t in zip(keys, ttls)}
    finally:
        r.close()


def wait_redis(url: str, deadline_s: float = 10.0) -> None:
    """Until Redis at ``url`` answers PING (after a restart), or raise TimeoutError."""
    import redis
    end = time.monotonic() + deadline_s
    while True:
        try:
            r = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                if r.ping():
                    return
            finally:
                r.close()
        except redis.RedisError:
            pass
        if time.monotonic() > end:
            raise TimeoutError(f"Redis at {url} did not answer within {deadline_s:g}s")
        time.sleep(0.05)


def between(history, t0: float, t1: float, f: str = "allow"):
    """The decisions whose call and answer both fell within [t0, t1] (history clock); a call
    that never answered counts when it started within."""
    from rig.checkers import decisions_from_history
    return [d for d in decisions_from_history(history, f)
            if t0 <= d.start <= t1 and (d.end is None or d.end <= t1)]


def verdict_of(decisions, *, bound: bool = True, envelope: bool = True, starvation: bool = True,
               limit: int = LIMIT, window_s: float = WINDOW_S, name: str = "rate-limit"):
    """Decision types, the decision bound, the envelope and starvation over ``decisions``."""
    from rig import checkers as c
    parts = [c.check_decision_types(decisions)]
    if bound:
        parts.append(c.check_bounded(decisions, BOUND_S))
    if envelope:
        parts.append(c.check_envelope(decisions, limit, window_s))
    if starvation:
        parts.append(c.check_starvation(decisions, limit, window_s))
    return c.combine(parts, name)


def judge(decisions, history, hint: str, **kw: Any) -> None:
    """Fail the running test (through ``expect_valid``) if ``verdict_of(decisions)`` has anomalies."""
    from splitbrain.grading import expect_valid
    expect_valid(verdict_of(decisions, **kw), history, hint=hint)
