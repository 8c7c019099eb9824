"""Grader side of lab 01 (locks and fencing tokens), shared by the hidden tests, the public tests
and the notebook.

* :func:`prepare` applies the lab's ``schema.sql`` (beside ``rig/``) to a namespace with the admin
  URL and lets the namespace's own role read and write the ``resource`` table (never the audit
  table).
* :func:`applied` reads, with the admin URL, the values the storage really accepted for a key, in
  the order it applied them: the ground truth the checkers compare against the history.
* :class:`Holder` is one worker process running the learner's ``lock.py``: a ``RedisLock`` and a
  ``FencedStore`` in the same process, the way one application server holds a lock and writes.
  :func:`holder` makes one; :func:`holders` makes several, their workers starting side by side.
* :class:`LockServer` is the namespace's Redis seen with the grader's own connection: the target
  of the lab's ``server-clock-jump`` fault (``rig.faults``), which ends leases at a chosen moment.
* :func:`boundaries` walks the boundaries between the round trips of one operation on one link,
  placing a ``stall`` at each in turn; :func:`until_blocked` waits until a write either finished or
  is waiting for a row lock in Postgres.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

RESOURCE_KEY = "report.txt"   # the key every lab-01 scenario writes (one row of `resource`)


def schema_path() -> Path:
    """The lab's ``schema.sql``: in the lab folder, beside this package (grader side only)."""
    return Path(__file__).resolve().parent.parent / "schema.sql"


def prepare(ns: Any, schema: str | Path | None = None) -> None:
    """Create ``resource`` and its audit trail in the namespace's database (idempotent)."""
    text = Path(schema or schema_path()).read_text()
    role = conninfo_to_dict(ns.pg_url).get("user")
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        conn.execute(text)
        if role and role != conninfo_to_dict(ns.pg_admin_url).get("user"):
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON resource TO {}")
                         .format(sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON resource_audit FROM {}")
                         .format(sql.Identifier(role)))


def applied(ns: Any, key: str = RESOURCE_KEY) -> list[str]:
    """The values the storage accepted for ``key``, in the order it applied them.

    Only the last change of each transaction counts: a design that inserts a placeholder row and
    updates it in the same transaction never exposed the placeholder to anyone.
    """
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT value FROM (SELECT DISTINCT ON (tx) seq, value FROM public.resource_audit "
            "WHERE key = %s ORDER BY tx, seq DESC) last_per_tx ORDER BY seq", (key,)).fetchall()
    return [r[0] for r in rows]


@dataclass
class Holder:
    """One worker with a lock and a store. Calls are RPCs into the sandboxed learner code and are
    recorded in the worker's history (``acquire``, ``write``, ``read``, ``release``).
    ``redis_px`` / ``pg_px``: the fault proxies in front of its services, when it has them;
    ``clock``: the ``rig.clocks.SharedClock`` its lock reads, when it has one (the target of
    clock faults while it is inside a call), else its lock reads the worker's own clock."""

    name: str
    worker: Any
    lock: Any
    store: Any
    ttl_ms: int
    redis_px: Any = None
    pg_px: Any = None
    clock: Any = None

    def acquire(self, wait_s: float = 0.0) -> Any:
        return self.lock.acquire(wait_s)

    def write(self, value: str, token: Any, key: str = RESOURCE_KEY) -> Any:
        return self.store.write(key, value, token)

    def read(self, key: str = RESOURCE_KEY) -> Any:
        return self.store.read(key)

    def release(self) -> Any:
        return self.lock.release()

    # A holder is a fault target under its own name: ``pause`` freezes its worker, the clock
    # faults move the clock its lock reads (its shared clock, when it has one).
    def pause(self) -> None:
        self.worker.pause()

    def resume(self) -> None:
        self.worker.resume()

    def _clock(self) -> Any:
        if self.clock is None:
            raise AttributeError(f"holder {self.name} has no shared clock (shared_clock=True)")
        return self.clock

    def jump(self, seconds: float, monotonic: bool = False) -> None:
        self._clock().jump(seconds, monotonic)

    def set_offset(self, seconds: float) -> None:
        self._clock().set_offset(seconds)

    def set_rate(self, rate: float) -> None:
        self._clock().set_rate(rate)


def _start(spawn: Callable[..., Any], name: str, redis_url: str | None,
           pg_url: str | None) -> Any:
    resources = {k: v for k, v in (("redis_url", redis_url), ("pg_url", pg_url)) if v} or None
    return spawn(name=name, resources=resources) if resources else spawn(name=name)


def _build(w: Any, ns: Any, name: str, ttl_ms: int, lock_name: str | None,
           clock: Any = None) -> Holder:
    from splitbrain.sandbox import Ref
    lock = w.new("RedisLock", Ref("redis"), lock_name or ns.key("lock"), ttl_ms,
                 clock=Ref("clock") if clock is None else Ref("rig.clocks:shared",
                                                               path=clock.path))
    store = w.new("FencedStore", Ref("pg"))
    return Holder(name, w, lock, store, ttl_ms, clock=clock)


def holder(spawn: Callable[..., Any], ns: Any, name: str, ttl_ms: int,
           redis_url: str | None = None, pg_url: str | None = None,
           lock_name: str | None = None) -> Holder:
    """Spawn worker ``name`` and build its lock (lease ``ttl_ms``) and store.

    ``redis_url`` / ``pg_url`` replace the worker's service addresses (a fault proxy in front of
    the service); ``lock_name`` defaults to ``ns.key("lock")``.
    """
    return _build(_start(spawn, name, redis_url, pg_url), ns, name, ttl_ms, lock_name)


def holders(spawn: Callable[..., Any], ns: Any, specs: list[dict[str, Any]],
            proxy: Callable[..., Any] | None = None,
            clocks: str | Path | None = None) -> list[Holder]:
    """Several holders at once: every worker is started before any is waited for, so their
    imports overlap. Each spec: ``name``, ``ttl_ms``, and ``redis_proxy`` / ``pg_proxy`` (True:
    put a fault proxy from the ``proxy`` factory in front of that service for this holder),
    ``shared_clock`` (True: the lock reads a ``rig.clocks.SharedClock`` kept in folder
    ``clocks``, which the nemesis can move while the holder is inside a call)."""
    from rig.clocks import SharedClock
    started = []
    for s in specs:
        rpx = proxy("redis", ns=ns) if s.get("redis_proxy") else None
        ppx = proxy("postgres", ns=ns) if s.get("pg_proxy") else None
        clock = SharedClock(s["name"], clocks) if s.get("shared_clock") else None
        w = _start(spawn, s["name"], rpx.url if rpx else None, ppx.url if ppx else None)
        started.append((s, w, rpx, ppx, clock))
    out = []
    for s, w, rpx, ppx, clock in started:
        h = _build(w, ns, s["name"], s["ttl_ms"], s.get("lock_name"), clock)
        h.redis_px, h.pg_px = rpx, ppx
        out.append(h)
    return out


# -- the lock server, as the grader sees it --------------------------------------------------------
_AGE = """
local n = 0
for _, key in ipairs(KEYS) do
    local left = redis.call('PTTL', key)
    if left > 0 then
        if left <= tonumber(ARGV[1]) then
            redis.call('DEL', key)
        else
            redis.call('PEXPIRE', key, left - tonumber(ARGV[1]))
        end
        n = n + 1
    end
end
return n
"""


@dataclass
class LockServer:
    """The namespace's Redis with the grader's own (admin) connection. ``age(step_ms)`` does to
    the namespace's keys what a step of the server's clock would: each key with an expiry loses
    ``step_ms`` of it (deleted when less was left), in one atomic script. Returns how many keys
    had an expiry. ``name`` labels it in the history."""

    ns: Any
    name: str = "lock-server"
    _client: Any = field(default=None, repr=False)

    def _redis(self) -> Any:
        if self._client is None:
            import redis
            self._client = redis.Redis.from_url(self.ns.redis_admin_url, socket_timeout=10)
        return self._client

    def age(self, step_ms: int) -> int:
        r = self._redis()
        keys = list(r.scan_iter(match=f"{self.ns.prefix}*", count=1000))
        if not keys:
            return 0
        return int(r.eval(_AGE, len(keys), *keys, int(step_ms)))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# -- stalls at every boundary ---------------------------------------------------------------------
@dataclass
class Boundary:
    """One place a stall was put: before the ``k``-th message on ``stream`` of the operation
    (``k`` = 0: before its first). ``stall`` is the engaged fault (heal it to let the operation
    go on; :func:`boundaries` heals it anyway before the next one); ``pending`` the operation's
    future."""

    stream: str
    k: int
    stall: Any
    pending: Any


def engaged(stall: Any, pending: Any, timeout: float = 10.0) -> bool:
    """Wait until the stall engaged (True) or the operation finished without it (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stall.wait(0.003):
            return True
        if pending.done():
            return stall.wait(0)
    raise TimeoutError(f"the operation neither finished nor reached the stall within {timeout} s")


def boundaries(nemesis: Any, px: Any, start: Callable[[], Any],
               before: Callable[[], Any] | None = None,
               through: Callable[[Any], Any] | None = None,
               streams: tuple[str, ...] = ("upstream", "downstream"),
               limit: int = 12) -> Iterator[Boundary]:
    """For each stream, for k = 0, 1, 2, ...: run ``before()`` (what must happen before the
    operation, with the link still clear), stall the link after ``k`` messages, start the
    operation (``start()`` returns its future), and yield the boundary once the stall engaged;
    the walk of a stream ends at the first ``k`` the operation gets through without reaching the
    stall (``through(result)`` is called with that run's result, to tidy up). Every boundary
    between two round trips of the operation on this link is visited, before its first request
    and after its last, holding the request (upstream) or the reply (downstream)."""
    for stream in streams:
        for k in range(limit):
            if before is not None:
                before()
            stall = nemesis.inject("stall", px, after=k, stream=stream)
            pending = start()
            try:
                hit = engaged(stall, pending)
            except BaseException:
                stall.heal()
                raise
            if not hit:
                stall.heal()
                result = pending.result(timeout=10)
                if through is not None:
                    through(result)
                break
            try:
                yield Boundary(stream, k, stall, pending)
            finally:
                stall.heal()
        else:
            raise AssertionError(f"the operation made more than {limit} round trips on one link")


def until_blocked(ns: Any, pending: Any, timeout: float = 10.0) -> bool:
    """Wait until ``pending`` finished (False) or a session of the namespace's database waits for
    a lock (True): a write queued behind another transaction's row lock."""
    dbname = conninfo_to_dict(ns.pg_admin_url).get("dbname")
    deadline = time.monotonic() + timeout
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if pending.done():
                return False
            (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                "wait_event_type = 'Lock'", (dbname,)).fetchone()
            if n:
                return True
            time.sleep(0.003)
    raise TimeoutError(f"the write neither finished nor waited for a lock within {timeout} s")
