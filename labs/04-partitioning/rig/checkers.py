"""Lab 04's checks of a key-value store partitioned over several shards.

Each guarantee of the chapter (``[[guarantees]]`` in lab.toml) has its checker, a pure function of
what the grader observed — the whole history of calls and faults, and its own ground truth: what
it read directly from every live shard (``placement``) and counted itself (copies, moves).

* ``check_routing`` (one-route) — a read never misses a value that sits on a live shard: every
  process looks where the writer put it, whatever its PYTHONHASHSEED or its configured shard
  list (``misrouted-read``).
* ``check_lost_writes`` (latest-write-wins) — every read returns the latest acknowledged write of
  its key (or one concurrent with it), and at the end every key's latest acknowledged value is
  still on some live shard (``lost-write``): no copy, no process with an old map and no clean-up
  may put an older value back or drop the newest.
* ``check_placement`` (stored-on-a-shard) — every acknowledged key is stored, with its value, on a
  live shard as a string named exactly the key (``unplaced-key``).
* ``check_movement`` (minimal-movement) — a change of the shard set moves about 1/N of the keys,
  not most of them (``moved-too-many``).
* ``check_balance`` (balanced-shards) — every shard holds about its share (``imbalanced``).
* ``check_available`` (stays-online) — every put and get returns, successfully and within a bound
  (time a stall held the system excluded), while keys move and while the migrator lies dead
  (``unavailable``).
* ``check_move`` (move-completes) — every rebalance call of a live process succeeds, migrate()
  reports exactly the copies the grader saw (at most its limit, 0 only once nothing is left),
  and after the move the store's shard set is the new one (``miscounted-copies``,
  ``unfinished-move``).

``check_reads`` is the first two together (the notebook's single verdict).

Operations in a history are ``put`` (arguments key, value) and ``get`` (argument key; result the
value or None), in the kit's one call record (read with ``Operation.arg``). ``placement`` is what
the grader read directly from each live shard: ``{key: {shard_name: value_found_there}}``.

An anomaly's events are the offending calls only: a stale read names the read, and the
acknowledged write it missed goes in ``data["context"]`` (drawn as evidence, not at fault); a
write lost at the end names that write.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History, Operation

Placement = Mapping[str, Mapping[str, Any]]

__all__ = ["check_reads", "check_routing", "check_lost_writes", "check_movement", "check_balance",
           "check_placement", "check_available", "check_move", "moved_keys", "shard_counts",
           "ABSENT"]

ABSENT = None  # what a read of a never-written key returns
_MISSING = object()


@dataclass(frozen=True)
class _Write:
    op: Operation
    key: str
    value: Any

    @property
    def acked(self) -> bool:
        return self.op.type == "ok"

    @property
    def failed(self) -> bool:
        return self.op.type == "fail"


def _writes_by_key(ops: Iterable[Operation]) -> dict[str, list[_Write]]:
    out: dict[str, list[_Write]] = {}
    for op in ops:
        if op.f != "put":
            continue
        key, value = op.arg(0, "key", _MISSING), op.arg(1, "value", _MISSING)
        if key is _MISSING or value is _MISSING:
            continue
        out.setdefault(str(key), []).append(_Write(op, str(key), value))
    return out


def _allowed(writes: list[_Write], start: float, end: float) -> tuple[list[Any], list[_Write]]:
    """Values a read spanning [start, end] may legally return, and the writes it must not miss.

    A completed write is *superseded* when another acknowledged write to the same key started after
    it completed and completed before the read started. The read must return the value of a
    non-superseded acknowledged write, or of any write that may overlap the read (concurrent or of
    unknown outcome). With no acknowledged write before the read, "absent" is allowed too.
    """
    done = [w for w in writes if w.acked and w.op.end is not None and w.op.end < start]
    latest = [w for w in done
              if not any(o.op.start > w.op.end and o.op.end < start for o in done if o is not w)]
    maybe = [w for w in writes if not w.failed and w not in done and w.op.start < end]
    values = [w.value for w in latest + maybe]
    if not done:
        values.append(ABSENT)
    return values, latest


def _read_anomalies(history: History, placement: Placement | None
                    ) -> tuple[list[Anomaly], int, dict[str, list[_Write]]]:
    """Stale reads, each a ``misrouted-read`` (the expected value is on a live shard) or a
    ``lost-write`` (it is on none); also the number of reads and the writes by key."""
    ops = history.operations()
    writes = _writes_by_key(ops)
    anomalies: list[Anomaly] = []
    reads = 0
    for op in ops:
        if op.f != "get" or op.type != "ok":
            continue
        reads += 1
        key = str(op.arg(0, "key"))
        got = op.result
        if isinstance(got, Mapping) and "value" in got:
            got = got["value"]
        values, latest = _allowed(writes.get(key, []), op.start, op.end)
        if got in values:
            continue
        expected = [w.value for w in latest]
        where = {shard: v for shard, v in (placement or {}).get(key, {}).items()
                 if v in expected}
        events = op.events                     # the stale read is the offender ...
        data = {"key": key, "got": got, "expected": expected, "reader": op.process,
                "writers": sorted({w.op.process for w in latest}), "found_on": sorted(where),
                # ... the acknowledged write it missed is the evidence
                "context": [i for w in latest for i in w.op.events]}
        writer = ", ".join(data["writers"]) or "?"
        if where:
            anomalies.append(Anomaly(
                "misrouted-read",
                f"{op.process} read {key!r} and got {got!r}, but {writer}'s acknowledged value "
                f"{expected[0]!r} is on shard {sorted(where)[0]}: the reader looked on a "
                f"different shard than the writer used",
                events, data))
        else:
            anomalies.append(Anomaly(
                "lost-write",
                f"{op.process} read {key!r} and got {got!r}; {writer}'s acknowledged write of "
                f"{expected[0]!r} is on no live shard",
                events, data))
    return anomalies, reads, writes


def check_reads(history: History, placement: Placement | None = None) -> Verdict:
    """Every read returns the latest acknowledged write of its key (or a concurrent one).

    placement: the grader's direct view of the live shards at the end, used only to tell a
    ``misrouted-read`` (the value is on some live shard) from a ``lost-write`` (it is nowhere).
    """
    anomalies, reads, writes = _read_anomalies(history, placement)
    anomalies.sort(key=lambda a: a.kind != "lost-write")   # the worse news first
    return verdict("partitioning.reads", anomalies, reads=reads,
                   keys_written=len(writes))


def check_routing(history: History, placement: Placement | None = None) -> Verdict:
    """one-route: no read misses a value that sits on a live shard (``misrouted-read``): the
    reader looked on a different shard than the writer used."""
    anomalies, reads, writes = _read_anomalies(history, placement)
    return verdict("partitioning.routing", [a for a in anomalies if a.kind == "misrouted-read"],
                   reads=reads, keys_written=len(writes))


def check_lost_writes(history: History, placement: Placement | None = None) -> Verdict:
    """latest-write-wins: every read returns the latest acknowledged write of its key (or one
    concurrent with the read) unless that value still sits on a live shard (then the read was
    misrouted, see :func:`check_routing`); and every key in ``placement`` still has its latest
    acknowledged value (or one of a write of unknown outcome) on some live shard at the end,
    read or not (``lost-write``)."""
    anomalies, reads, writes = _read_anomalies(history, placement)
    lost = [a for a in anomalies if a.kind == "lost-write"]
    seen = {a.data["key"] for a in anomalies}
    end = float("inf")
    for key, where in sorted((placement or {}).items()):
        ws = writes.get(key)
        if not ws or key in seen:
            continue
        done = [w for w in ws if w.acked]
        if not done:
            continue
        values, latest = _allowed(ws, end, end)
        if any(v in values for v in where.values()):
            continue
        writer = ", ".join(sorted({w.op.process for w in latest})) or "?"
        lost.append(Anomaly(
            "lost-write",
            f"{writer}'s acknowledged write of {latest[0].value!r} to {key!r} is on no live shard "
            f"at the end (the grader read every shard: {dict(where) or 'the key is nowhere'})",
            tuple(i for w in latest for i in w.op.events),
            {"key": key, "got": None, "expected": [w.value for w in latest], "reader": None,
             "writers": sorted({w.op.process for w in latest}), "found_on": [],
             "on_shards": dict(where)}))
    return verdict("partitioning.lost-writes", lost, reads=reads, keys_written=len(writes),
                   keys_checked=len(placement or {}))


def moved_keys(before: Placement, after: Placement) -> list[str]:
    """Keys present, after the change, on a shard that did not hold them before."""
    moved = []
    for key, where in after.items():
        old = {s for s, v in before.get(key, {}).items() if v is not None}
        new = {s for s, v in where.items() if v is not None}
        if new - old:
            moved.append(key)
    return sorted(moved)


def check_movement(before: Placement, after: Placement, shards_before: Iterable[str],
                   shards_after: Iterable[str], epsilon: float = 0.1) -> Verdict:
    """Changing N shards to M moves at most 1/max(N, M) + epsilon of the keys.

    Adding one shard to N must move only what the new shard takes over (about 1/(N+1));
    removing one of N must move only what the removed shard held (about 1/N). ``hash(k) % N``
    moves about N/(N+1) of all keys instead.
    """
    n_before, n_after = len(set(shards_before)), len(set(shards_after))
    if n_before == 0 or n_after == 0:
        raise ValueError("check_movement needs a non-empty shard set before and after")
    keys = [k for k in before if any(v is not None for v in before[k].values())]
    if not keys:
        raise ValueError("check_movement needs keys placed before the change; none were found")
    moved = set(moved_keys({k: before[k] for k in keys}, {k: after.get(k, {}) for k in keys}))
    fraction = len(moved) / len(keys)
    bound = 1 / max(n_before, n_after) + epsilon
    anomalies = []
    if fraction > bound:
        sample = sorted(moved)[:5]
        anomalies.append(Anomaly(
            "moved-too-many",
            f"going from {n_before} to {n_after} shards moved {len(moved)} of {len(keys)} keys "
            f"({fraction:.0%}); a consistent scheme moves about {1 / max(n_before, n_after):.0%} "
            f"(allowed up to {bound:.0%})",
            (), {"moved": len(moved), "keys": len(keys), "fraction": fraction,
                 "bound": bound, "sample": sample}))
    return verdict("partitioning.movement", anomalies, moved=len(moved), keys=len(keys),
                   fraction=round(fraction, 4), bound=round(bound, 4))


def shard_counts(placement: Placement, shards: Iterable[str]) -> dict[str, int]:
    counts = {s: 0 for s in shards}
    for where in placement.values():
        for s, v in where.items():
            if v is not None and s in counts:
                counts[s] += 1
    return counts


def check_balance(placement: Placement, shards: Iterable[str], epsilon: float = 0.4) -> Verdict:
    """Every shard holds between (1 - epsilon) and (1 + epsilon) times the mean number of keys.

    The upper bound catches a hot shard (a range split on skewed keys, a ring with one point per
    shard); the lower bound catches a shard that was added but never given its share.
    """
    counts = shard_counts(placement, shards)
    if not counts:
        raise ValueError("check_balance needs at least one shard")
    total = sum(counts.values())
    mean = total / len(counts)
    anomalies = []
    if total:
        listing = ", ".join(f"{s}={c}" for s, c in sorted(counts.items()))
        fullest = max(counts, key=lambda s: counts[s])
        emptiest = min(counts, key=lambda s: counts[s])
        for shard, bad, bound in ((fullest, counts[fullest] > (1 + epsilon) * mean, 1 + epsilon),
                                  (emptiest, counts[emptiest] < (1 - epsilon) * mean,
                                   1 - epsilon)):
            if bad:
                ratio = counts[shard] / mean
                limit = "up to" if bound > 1 else "at least"
                anomalies.append(Anomaly(
                    "imbalanced",
                    f"shard {shard} holds {counts[shard]} keys, {ratio:.2f}x the mean of "
                    f"{mean:.0f} (allowed {limit} {bound:.2f}x); counts: {listing}",
                    (), {"counts": counts, "ratio": ratio, "shard": shard}))
    return verdict("partitioning.balance", anomalies, counts=counts, total=total)


def check_placement(acked: Mapping[str, Any], placement: Placement) -> Verdict:
    """Every acknowledged key is stored, with its value, on at least one live shard."""
    anomalies = []
    for key, value in sorted(acked.items()):
        if not any(v == value for v in placement.get(key, {}).values()):
            anomalies.append(Anomaly(
                "unplaced-key",
                f"the acknowledged value {value!r} of {key!r} is on none of the shards; "
                f"the store must keep each key on the shard that owns it",
                (), {"key": key, "value": value}))
    return verdict("partitioning.placement", anomalies, keys=len(acked))


# -- liveness -------------------------------------------------------------------------------------
DATA_CALLS = ("put", "get")
MOVE_CALLS = ("begin_rebalance", "migrate", "finish_rebalance", "rebalance")


def _killed(history: History) -> list[tuple[str | None, float]]:
    """(process, time) of every kill or restart of a worker."""
    return [(w.target, w.start) for w in history.fault_windows(("kill", "restart"))]


def _died_during(op: Operation, kills) -> bool:
    end = op.end if op.end is not None else float("inf")
    return any(p == op.process and op.start <= t <= end for p, t in kills)


def _held(history: History) -> list[tuple[float, float]]:
    """Intervals in which a stall or a pause held some process (an op may wait them out)."""
    return [(w.start, w.end if w.end is not None else float("inf"))
            for w in history.fault_windows(("stall", "pause"))]


def _overlap(start: float, end: float, spans) -> float:
    merged: list[list[float]] = []
    for a, b in sorted((max(a, start), min(b, end)) for a, b in spans):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return sum(b - a for a, b in merged)


def _error(op: Operation) -> str:
    v = op.result
    if isinstance(v, dict) and "error" in v:
        return f"{v['error']}: {v.get('message', '')}".strip()
    return "no answer" if op.complete is None else str(v)


def check_available(history: History, bound_s: float = 2.0) -> Verdict:
    """stays-online: every put and get returns successfully, within ``bound_s`` seconds of its own
    (time during which a stall or a pause held part of the system does not count), while keys
    move and while the migrator lies dead. Calls of a process killed while they ran are not
    judged (``unavailable``)."""
    kills, held = _killed(history), _held(history)
    anomalies = []
    judged = 0
    for op in history.operations():
        if op.f not in DATA_CALLS or _died_during(op, kills):
            continue
        judged += 1
        key = op.arg(0, "key")
        if op.type != "ok":
            anomalies.append(Anomaly(
                "unavailable",
                f"{op.process}.{op.f}({key!r}) failed while the store should serve it: "
                f"{_error(op)}", op.events,
                {"key": key, "process": op.process, "error": _error(op)}))
            continue
        own = (op.end - op.start) - _overlap(op.start, op.end, held)
        if own > bound_s:
            anomalies.append(Anomaly(
                "unavailable",
                f"{op.process}.{op.f}({key!r}) took {own:.1f} s (allowed {bound_s:g} s, not "
                f"counting time a fault held the system): the store must keep serving while "
                f"keys move", op.events,
                {"key": key, "process": op.process, "seconds": round(own, 3)}))
    return verdict("partitioning.available", anomalies, calls=judged, bound_s=bound_s)


def check_move(history: History, target: Iterable[str] | None = None,
               copies: Mapping[int, int] | None = None) -> Verdict:
    """move-completes: a rebalance makes progress and ends.

    * every ``begin_rebalance``/``migrate``/``finish_rebalance``/``rebalance`` call of a process
      that was not killed during it succeeds (``unfinished-move``);
    * ``migrate(limit)`` returns an int, at most ``limit``, equal to the copies the grader saw it
      make (``copies``: invoke index of the call -> keys that appeared on a shard that did not
      hold them); a call made after a ``migrate`` returned 0 in the same move (a
      ``finish_rebalance``, or another ``migrate``) copies nothing (``miscounted-copies``);
    * the last ``shards()`` result names exactly ``target`` (``unfinished-move``).
    """
    kills = _killed(history)
    copies = dict(copies or {})
    anomalies = []
    said_done = False
    for op in history.operations():
        if op.f == "begin_rebalance":
            said_done = False
        if op.f not in MOVE_CALLS or _died_during(op, kills):
            continue
        if op.type != "ok":
            anomalies.append(Anomaly(
                "unfinished-move", f"{op.process}.{op.f}() failed: {_error(op)}", op.events,
                {"process": op.process, "call": op.f, "error": _error(op)}))
            continue
        seen = copies.get(op.invoke.index)
        if op.f == "migrate":
            n, limit = op.result, op.arg(0, "limit")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                anomalies.append(Anomaly(
                    "miscounted-copies", f"{op.process}.migrate({limit}) returned {n!r}; it must "
                    f"return how many keys it copied (0 when nothing is left)", op.events,
                    {"returned": n, "limit": limit}))
            elif limit is not None and n > limit:
                anomalies.append(Anomaly(
                    "miscounted-copies", f"{op.process}.migrate({limit}) reported {n} copies, "
                    f"more than its limit", op.events, {"returned": n, "limit": limit}))
            elif seen is not None and seen != n:
                anomalies.append(Anomaly(
                    "miscounted-copies", f"{op.process}.migrate({limit}) returned {n}, but the "
                    f"grader saw {seen} key(s) copied to a shard that did not hold them",
                    op.events, {"returned": n, "limit": limit, "seen": seen}))
            elif limit is not None and seen is not None and seen > limit:
                anomalies.append(Anomaly(
                    "miscounted-copies", f"{op.process}.migrate({limit}) copied {seen} keys, "
                    f"more than its limit", op.events, {"limit": limit, "seen": seen}))
        if said_done and seen:
            anomalies.append(Anomaly(
                "miscounted-copies", f"migrate() had returned 0 (nothing left to copy), yet "
                f"{op.process}.{op.f}() then copied {seen} key(s): migrate() stopped early",
                op.events, {"call": op.f, "seen": seen}))
        if op.f == "migrate" and op.result == 0:
            said_done = True
        if op.f in ("finish_rebalance", "rebalance"):
            said_done = False
    if target is not None:
        want = sorted(set(target))
        last = [op for op in history.operations() if op.f == "shards" and op.type == "ok"]
        if not last:
            raise ValueError("check_move with a target needs a shards() call in the history")
        got = last[-1].result
        names = sorted(got) if isinstance(got, Mapping) else got
        if names != want:
            anomalies.append(Anomaly(
                "unfinished-move", f"after the move, {last[-1].process}.shards() returned "
                f"{names!r}; the store's shard set must be {want}", last[-1].events,
                {"got": names, "want": want}))
    return verdict("partitioning.move", anomalies,
                   calls=sum(1 for op in history.operations() if op.f in MOVE_CALLS))
