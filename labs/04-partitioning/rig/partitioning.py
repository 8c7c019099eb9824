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
from dataclasses import dataclass, field
from typing import Any

import redis

from . import faults as _faults  # noqa: F401 - the faults that act on Shards join the registry

COMPONENT_CLASS = "ShardedStore"


@dataclass
class Shards:
    """The shard servers of one test, by name. Stop them with :meth:`close`."""

    handles: dict[str, Any] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, n: int) -> "Shards":
        s = cls()
        try:
            for _ in range(n):
                s.add()
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

    def urls(self, names=None) -> dict[str, str]:
        """``{name: url}`` for ``names`` (default: every shard not stopped)."""
        names = self.live if names is None else list(names)
        unknown = [n for n in names if n not in self.handles]
        if unknown:
            raise KeyError(f"no shard named {unknown[0]!r}; shards are {sorted(self.handles)}")
        return {n: self.handles[n].url for n in names}

    @property
    def live(self) -> list[str]:
        return [n for n in self.handles if n not in self.stopped]

    def stop(self, name: str) -> None:
        """Shut a shard down for good (decommissioned): what it still held is gone."""
        self.handles[name].stop()
        self.stopped.add(name)

    def placement(self, keys, names=None) -> dict[str, dict[str, str]]:
        """``{key: {shard: value}}`` for the keys found on the live shards, read directly."""
        keys = list(keys)
        out: dict[str, dict[str, str]] = {k: {} for k in keys}
        for name, url in self.urls(names).items():
            client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
            try:
                for i in range(0, len(keys), 500):
                    chunk = keys[i:i + 500]
                    for k, v in zip(chunk, client.mget(chunk)):
                        if v is not None:
                            out[k][name] = v
            finally:
                client.close()
        return out

    def __enter__(self) -> "Shards":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for name, h in self.handles.items():
            if name not in self.stopped:
                try:
                    h.stop()
                except Exception:  # noqa: BLE001 - best effort at teardown
                    pass
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


def store(spawn, ns, name: str, shards: dict[str, str], prefix: str = "kv:", **spawn_kw):
    """A worker named ``name`` running the submission, and the ``ShardedStore`` built in it."""
    from splitbrain.sandbox import Ref
    worker = spawn(name, **spawn_kw)
    return worker, worker.new(COMPONENT_CLASS, Ref("redis_url"), ns.key(prefix), dict(shards))


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


def store_in(worker, shards: dict[str, str], ns=None, prefix: str = "kv:"):
    """Build a ``ShardedStore`` in an existing (e.g. restarted) worker, on the same prefix."""
    from splitbrain.sandbox import Ref
    key = ns.key(prefix) if ns is not None else worker.resources["prefix"] + prefix
    return worker.new(COMPONENT_CLASS, Ref("redis_url"), key, dict(shards))


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
    anomalies = tuple(
        a if a.data.get("key") not in shown else
        type(a)(a.kind, a.message, tuple(index[i] for i in a.events if i in index), a.data)
        for a in verdict.anomalies)
    anomalies = tuple(a if a.data.get("key") in shown else
                      type(a)(a.kind, a.message, (), a.data) for a in anomalies)
    return Verdict(verdict.valid, anomalies, verdict.checker, verdict.stats), sub


def expect_reads(history, placement, hint: str):
    """``expect_valid(check_reads(...))``, with the picture focused on a few failing keys."""
    from splitbrain.grading import expect_valid

    from .checkers import check_reads
    v = check_reads(history, placement)
    if v.valid is True:
        return v
    focused, sub = focus(v, history)
    keys = len({a.data.get("key") for a in v.anomalies})
    shown = len({a.data.get("key") for a in focused.anomalies if a.events})
    note = (f" (The picture and the event numbers above cover the operations on {shown} of the "
            f"{keys} keys that went wrong; the full history is saved next to the report.)")
    return expect_valid(focused, sub, hint=hint + note)
