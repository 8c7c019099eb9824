"""Grader side of lab 04 (partitioning), shared by the hidden tests, the public tests, the
notebook and the bench.

* :class:`Shards` owns the shard servers of one test: private Redis instances started with
  ``splitbrain.services.spawn_redis()`` (adding a shard = starting one more), named ``s0``,
  ``s1``, ... It reads them directly — the ground truth of where each key really is
  (:meth:`Shards.placement`) — and can shut one down, the way an operator decommissions a shard
  once a rebalance says it is empty. :meth:`Shards.shard` names one of them, started or not: the
  target of the lab's ``add-shard`` and ``remove-shard`` faults (``rig.faults``), which a test
  injects through the nemesis.
* :func:`store` spawns one sandboxed worker running the learner's ``ShardedStore``; every worker
  gets its own PYTHONHASHSEED from the sandbox, like two real processes.
* :func:`keys`, :func:`skewed_keys`: the key sets the scenarios write (deterministic for a seed).
* :func:`position`, :func:`ring_points`, :func:`ring_owners`, :func:`modulo_owners`,
  :func:`range_owners`: reference partitioners for the notebook's pictures (pure, no services).
"""
from __future__ import annotations

import hashlib
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import redis

from . import faults as _faults  # noqa: F401 - the faults that act on Shards join the registry

COMPONENT_CLASS = "ShardedStore"


@dataclass
class Shards:
    """The shard servers of one test, by name. Stop them with :meth:`close`.

    A shard is a private Redis server of its own (:meth:`start`), or one database of a server it
    shares with other shards (:meth:`start_dbs`: ten shards for the price of two servers; such a
    shard cannot be stopped on its own)."""

    handles: dict[str, Any] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    dbs: dict[str, int] = field(default_factory=dict)
    _clients: dict[str, redis.Redis] = field(default_factory=dict, repr=False)

    @classmethod
    def start(cls, n: int) -> "Shards":
        """``n`` shards ``s0`` ... ``s(n-1)``, each a server of its own, started side by side (a
        server spends its start waiting to answer, not computing)."""
        from concurrent.futures import ThreadPoolExecutor

        from splitbrain.services import spawn_redis
        s = cls()
        with ThreadPoolExecutor(max_workers=max(1, min(8, n))) as pool:
            futures = [pool.submit(spawn_redis) for _ in range(n)]
        try:
            for i, f in enumerate(futures):
                s.handles[f"s{i}"] = f.result()
        except BaseException:
            for f in futures:     # the servers that did start, whichever failed
                if f.exception() is None:
                    f.result().close()
            s.handles.clear()
            raise
        return s

    @classmethod
    def start_dbs(cls, n: int, per_server: int = 5) -> "Shards":
        """``n`` shards ``s0`` ... as databases 0, 1, ... of ``ceil(n / per_server)`` servers."""
        from splitbrain.services import spawn_redis
        s = cls()
        try:
            server = None
            for i in range(n):
                if i % per_server == 0:
                    server = spawn_redis()
                s.handles[f"s{i}"] = server
                s.dbs[f"s{i}"] = i % per_server
        except BaseException:
            s.close()
            raise
        return s

    def add(self, name: str | None = None) -> str:
        """Start one more shard server (named ``s<count>`` unless ``name`` is given); returns its
        name."""
        from splitbrain.services import spawn_redis
        name = name or f"s{len(self.handles)}"
        if name in self.handles:
            raise ValueError(f"shard {name!r} was already started; shards are "
                             f"{sorted(self.handles)}")
        self.handles[name] = spawn_redis()
        return name

    def shard(self, name: str) -> "Shard":
        """The shard called ``name``, whether or not its server runs yet (the target of the
        ``add-shard`` and ``remove-shard`` faults)."""
        return Shard(self, name)

    def url(self, name: str) -> str:
        url = self.handles[name].url
        if name in self.dbs:
            head, _, _ = url.rpartition("/")
            url = f"{head}/{self.dbs[name]}"
        return url

    def urls(self, names=None) -> dict[str, str]:
        """``{name: url}`` for ``names`` (default: every shard not stopped)."""
        names = self.live if names is None else list(names)
        unknown = [n for n in names if n not in self.handles]
        if unknown:
            raise KeyError(f"no shard named {unknown[0]!r}; shards are {sorted(self.handles)}")
        return {n: self.url(n) for n in names}

    @property
    def live(self) -> list[str]:
        return [n for n in self.handles if n not in self.stopped]

    def stop(self, name: str) -> None:
        """Shut a shard down for good (decommissioned): what it still held is gone."""
        if any(o != name and self.handles[o] is self.handles[name] for o in self.live):
            raise ValueError(f"shard {name!r} is a database of a server other shards use; it "
                             f"cannot be shut down on its own")
        self.handles[name].stop()
        self.stopped.add(name)
        self._drop_client(name)

    def _client(self, name: str) -> redis.Redis:
        """The grader's own client of a shard (kept open: the grader reads the shards often)."""
        if name not in self._clients:
            self._clients[name] = redis.Redis.from_url(self.url(name), decode_responses=True,
                                                       socket_timeout=5)
        return self._clients[name]

    def _drop_client(self, name: str) -> None:
        client = self._clients.pop(name, None)
        if client is not None:
            client.close()

    def placement(self, keys, names=None) -> dict[str, dict[str, str]]:
        """``{key: {shard: value}}`` for the keys found on the live shards, read directly."""
        keys = list(keys)
        out: dict[str, dict[str, str]] = {k: {} for k in keys}
        for name in self.urls(names):
            client = self._client(name)
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                for k, v in zip(chunk, client.mget(chunk)):
                    if v is not None:
                        out[k][name] = v
        return out

    def flush(self) -> None:
        """Empty every live shard (a fresh world for the next round of a test)."""
        for name in self.live:
            self._client(name).flushdb()

    def __enter__(self) -> "Shards":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Kill every server still running (in parallel) and delete its files."""
        from concurrent.futures import ThreadPoolExecutor
        for name in list(self._clients):
            self._drop_client(name)
        servers = {id(h): h for n, h in self.handles.items() if n not in self.stopped}

        def stop(h):
            try:
                (h.close if callable(getattr(h, "close", None)) else h.stop)()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        if servers:
            with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
                list(pool.map(stop, servers.values()))
        self.stopped.update(self.handles)


@dataclass(frozen=True)
class Shard:
    """One shard of a :class:`Shards` set, by name. ``start()`` starts its server (a shard is
    added), ``stop()`` shuts it down for good (a shard is decommissioned)."""

    shards: Shards
    name: str

    @property
    def started(self) -> bool:
        return self.name in self.shards.handles

    @property
    def running(self) -> bool:
        return self.started and self.name not in self.shards.stopped

    def start(self) -> None:
        self.shards.add(self.name)

    def stop(self) -> None:
        self.shards.stop(self.name)

    @property
    def url(self) -> str:
        return self.shards.urls([self.name])[self.name]

    def __repr__(self) -> str:
        return f"Shard({self.name!r})"


def store(spawn, ns, name: str, shards: dict[str, str], prefix: str = "kv:", links=None,
          **spawn_kw):
    """A worker named ``name`` running the submission, and the ``ShardedStore`` built in it.
    With ``links`` (a :class:`rig.links.Links`), the worker reaches every server through its own
    fault proxies."""
    worker = spawn(name, **spawn_kw)
    return worker, store_in(worker, shards, ns, prefix, links)


def keys(n: int, start: int = 0) -> list[str]:
    return [f"user:{i:05d}" for i in range(start, start + n)]


def skewed_keys(n: int, seed: int, tenants: int = 50, s: float = 1.2) -> list[str]:
    """``n`` distinct keys ``t<tenant>:order:<i>`` whose tenants follow a Zipf law: a few tenants
    own most keys, so a range or prefix partitioning puts most keys on one shard."""
    rng = random.Random(f"skewed/{seed}")
    weights = [1 / (r ** s) for r in range(1, tenants + 1)]
    counts: dict[int, int] = {}
    out = []
    for t in rng.choices(range(tenants), weights=weights, k=n):
        counts[t] = counts.get(t, 0) + 1
        out.append(f"t{t:03d}:order:{counts[t]:05d}")
    return out


def write_all(store_obj, pairs) -> dict[str, str]:
    """Put every (key, value) through ``store_obj``; returns what was acknowledged."""
    acked = {}
    for k, v in pairs:
        store_obj.put(k, v)
        acked[k] = v
    return acked


def read_all(store_obj, keys_) -> dict[str, Any]:
    return {k: store_obj.get(k) for k in keys_}


def _settle(fut) -> tuple[bool, Any]:
    try:
        return True, fut.result()
    except Exception:  # noqa: BLE001 - recorded in the history (fail/info); the checkers judge it
        return False, None


def write_many(store_obj, pairs, window: int = 64) -> dict[str, str]:
    """Put every (key, value), up to ``window`` calls in flight (the worker runs them one after
    the other, in order); returns what was acknowledged. A failed put is not raised: the history
    has it, and ``check_available`` reports it. Use distinct keys: calls in flight overlap."""
    acked: dict[str, str] = {}
    pending: deque = deque()

    def settle() -> None:
        k, v, fut = pending.popleft()
        if _settle(fut)[0]:
            acked[k] = v
    for k, v in pairs:
        pending.append((k, v, store_obj.put.async_(k, v)))
        if len(pending) >= window:
            settle()
    while pending:
        settle()
    return acked


def read_many(store_obj, keys_, window: int = 64) -> dict[str, Any]:
    """Get every key, up to ``window`` calls in flight; returns what was read (a failed get is in
    the history, not raised)."""
    got: dict[str, Any] = {}
    pending: deque = deque()

    def settle() -> None:
        k, fut = pending.popleft()
        ok, value = _settle(fut)
        if ok:
            got[k] = value
    for k in keys_:
        pending.append((k, store_obj.get.async_(k)))
        if len(pending) >= window:
            settle()
    while pending:
        settle()
    return got


def counted_call(history, shards: "Shards", keys_, method, *args):
    """Call a remote rebalance ``method`` (``store.migrate``, ...) and count, from the shards
    themselves, the keys it copied (keys that appear on a shard that did not hold them).
    Returns ``(ok, result, invoke index, copies, placement after)``; a failed call is not raised
    (the history has it)."""
    from .checkers import moved_keys
    before = shards.placement(keys_)
    n0 = len(history.events)
    fut = method.async_(*args)
    proc, name = method._w.name, method._name
    inv = next(e.index for e in history.events[n0:]
               if e.type == "invoke" and e.process == proc and e.f == name)
    ok, result = _settle(fut)
    after = shards.placement(keys_)
    return ok, result, inv, len(moved_keys(before, after)), after


def store_in(worker, shards: dict[str, str], ns=None, prefix: str = "kv:", links=None):
    """Build a ``ShardedStore`` in an existing (e.g. restarted) worker, on the same prefix (a
    restarted worker gets its links' routes again)."""
    from splitbrain.sandbox import Ref
    key = ns.key(prefix) if ns is not None else worker.resources["prefix"] + prefix
    control = (Ref("redis_url") if links is None else
               Ref("rig.links:routed", routes=links.routes(worker.name)))
    return worker.new(COMPONENT_CLASS, control, key, dict(shards))


# -- reference partitioners for the pictures (the grader never uses these to judge a store) --------
def position(text: str) -> float:
    """Where ``text`` sits on a ring of circumference 1 (BLAKE2b; the same in every process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64


def ring_points(names, vnodes: int) -> dict[str, list[float]]:
    """``{shard: [positions]}``: ``vnodes`` points per shard, placed by name."""
    return {n: [position(f"{n}#{i}") for i in range(vnodes)] for n in names}


def ring_owners(keys_, names, vnodes: int) -> dict[str, str]:
    """Owner of each key on a consistent-hash ring: the first shard point at or after it."""
    import bisect
    pts = sorted((p, n) for n, ps in ring_points(names, vnodes).items() for p in ps)
    where = [p for p, _ in pts]
    return {k: pts[bisect.bisect_left(where, position(k)) % len(pts)][1] for k in keys_}


def modulo_owners(keys_, names) -> dict[str, str]:
    """Owner of each key under ``stable_hash(key) % N`` (stable, but not consistent)."""
    names = list(names)
    return {k: names[int(position(k) * 2**64) % len(names)] for k in keys_}


def range_owners(keys_, names, tenants: int = 50) -> dict[str, str]:
    """A range split on the tenant prefix of :func:`skewed_keys` (``t000`` ... ``t049``): tenant
    ids are cut into N equal ranges, one per shard."""
    names = list(names)
    return {k: names[min(int(k[1:4]) * len(names) // tenants, len(names) - 1)] for k in keys_}


def load(owners: dict[str, str], names) -> dict[str, int]:
    """Keys per shard."""
    counts = {n: 0 for n in names}
    for n in owners.values():
        counts[n] = counts.get(n, 0) + 1
    return counts


# -- failing with a readable picture --------------------------------------------------------------
def focus(verdict, history, keys_shown: int = 6):
    """The same verdict over a history cut down to the operations on the first ``keys_shown``
    keys that went wrong (plus the faults), so the picture shows a few keys instead of thousands
    of operations. Anomalies on other keys stay in the verdict, without picture events."""
    from splitbrain.checkers.base import Verdict
    from splitbrain.history import History
    shown: list[str] = []
    for a in verdict.anomalies:
        k = a.data.get("key")
        if k is not None and k not in shown:
            shown.append(k)
        if len(shown) == keys_shown:
            break
    keep: set[int] = set()
    for op in history.operations():
        key = op.arg(0, "key")
        if op.f in ("put", "get") and key is not None and str(key) in shown:
            keep.add(op.invoke.index)
            if op.complete is not None:
                keep.add(op.complete.index)
    sub = History.from_events(e for e in history if e.fault or e.index in keep)
    index = {old: new for new, old in enumerate(e.index for e in history
                                                 if e.fault or e.index in keep)}
    def moved(a):
        data = dict(a.data)
        if "context" in data:
            data["context"] = [index[i] for i in data["context"] if i in index]
        return type(a)(a.kind, a.message, tuple(index[i] for i in a.events if i in index), data)

    def undrawn(a):
        data = dict(a.data)
        if "context" in data:
            data["context"] = []
        return type(a)(a.kind, a.message, (), data)
    anomalies = tuple(moved(a) if a.data.get("key") in shown else undrawn(a)
                      for a in verdict.anomalies)
    return Verdict(verdict.valid, anomalies, verdict.checker, verdict.stats), sub


def expect_reads(history, placement, hint: str, checker=None):
    """``expect_valid(checker(history, placement))`` (default :func:`rig.checkers.check_reads`),
    with the picture focused on a few failing keys."""
    from splitbrain.grading import expect_valid

    from .checkers import check_reads
    v = (checker or check_reads)(history, placement)
    if v.valid is True:
        return v
    focused, sub = focus(v, history)
    keys = len({a.data.get("key") for a in v.anomalies})
    shown = len({a.data.get("key") for a in focused.anomalies if a.events})
    note = (f" (The picture and the event numbers above cover the operations on {shown} of the "
            f"{keys} keys that went wrong; the full history is saved next to the report.)")
    return expect_valid(focused, sub, hint=hint + note)


# -- live traffic (the exploring test) -------------------------------------------------------------
class Traffic:
    """Writers that each rewrite their own keys in a loop (one grader thread per writer, one call
    at a time), reading another writer's keys as they go, until :meth:`stop`. Failed calls are in
    the history (``check_available`` judges them); ``done[i]`` counts writer ``i``'s calls."""

    def __init__(self, stores, keys_of, read_every: int = 3, pace_s: float = 0.003) -> None:
        import threading
        self.stores, self.keys_of, self.read_every = list(stores), list(keys_of), read_every
        self.pace_s = pace_s
        self.done = [0] * len(self.stores)
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                          name=f"traffic-{i}") for i in range(len(self.stores))]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _run(self, i: int) -> None:
        own, other = self.keys_of[i], self.keys_of[(i + 1) % len(self.keys_of)]
        n = 0
        while not self._stop.is_set():
            k = own[n % len(own)]
            fut = (self.stores[i].get.async_(other[n % len(other)])
                   if n % self.read_every == self.read_every - 1 else
                   self.stores[i].put.async_(k, f"w{i}.{n}-{k}"))
            ok, _ = _settle(fut)
            n += 1
            with self._cv:
                self.done[i] += 1
                self._cv.notify_all()
            if not ok and not self.stores[i]._sb_worker.alive:
                return
            self._stop.wait(self.pace_s)      # steady traffic, not a busy loop on two cores

    def progress(self, calls: int, timeout: float) -> bool:
        """Wait until every writer made ``calls`` more calls (True), or ``timeout`` passed: a
        correct store may make them wait while a stall holds the rebalance half announced."""
        with self._cv:
            goal = [d + calls for d in self.done]
            return self._cv.wait_for(lambda: all(d >= g for d, g in zip(self.done, goal)),
                                     timeout=timeout)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
