"""Checkers for locks and fencing tokens (lab 01).

The history holds what the grader asked each worker to do and what came back: ``acquire`` (result:
the fencing token, or None when the lock was not taken), ``write`` (arguments key, value, token,
read from the one call record with ``Operation.arg``; result: whether the store says it stored the
value) and ``release``. The grader also reads, with its own connection, the order in which the
storage really applied writes (lab 01's audit table, ``rig.fencing.applied``); that list of values
is the ground truth, whatever a component claims.

Three properties, each with the anomaly it reports:

* ``stale-write`` (check_fenced_writes): a write made under a lease that had already been superseded
  reached the storage after a write made under the newer lease. Leases are numbered in the order the
  grader saw them granted, not by the tokens a component hands out, so a component cannot make its
  own stale write look fresh.
* ``rejected-write`` (check_fenced_writes): the newest holder wrote and its value was never stored.
  (A store that refuses everything is safe and useless.)
* ``overlapping-holders`` (``check_mutual_exclusion``, shared with every lock:
  ``splitbrain.checkers.mutex``): two workers were granted the lock while the first one's lease
  had certainly not run out and it had not released it.
* ``lost-update`` (check_counter): a counter incremented under the lock skipped or repeated a value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.checkers.mutex import check_mutual_exclusion
from splitbrain.history import History, Operation

__all__ = ["Lease", "Write", "leases", "writes", "check_fenced_writes", "check_mutual_exclusion",
           "check_counter"]


@dataclass(frozen=True)
class Lease:
    """A granted acquisition: ``generation`` numbers leases in the order they were granted."""

    holder: str
    token: Any
    generation: int
    invoked: float
    granted: float
    events: tuple[int, ...]


@dataclass(frozen=True)
class Write:
    """A write the grader asked for, with the lease its writer held at the time (None: no lease)."""

    holder: str
    key: str
    value: str
    token: Any
    lease: Lease | None
    invoked: float
    completed: float | None
    outcome: str           # "ok" | "fail" | "info"
    claimed: Any           # what the component answered (True / False), for the message only
    events: tuple[int, ...]


def _name(op: Operation) -> str:
    return op.f.rsplit(".", 1)[-1]


def leases(history: History) -> list[Lease]:
    """Granted acquisitions (an ``ok`` acquire whose result is not None), in the order granted."""
    granted = [op for op in history.operations()
               if _name(op) == "acquire" and op.type == "ok" and op.result is not None]
    granted.sort(key=lambda op: (op.end, op.invoke.index))
    return [Lease(op.process, op.result, g, op.start, op.end or op.start, op.events)
            for g, op in enumerate(granted)]


def writes(history: History) -> list[Write]:
    """Every write the grader asked for, paired with the writer's latest lease before it."""
    all_leases = leases(history)
    out = []
    for op in history.operations():
        if _name(op) != "write":
            continue
        mine = [l for l in all_leases if l.holder == op.process and l.granted <= op.start]
        out.append(Write(op.process, str(op.arg(0, "key")), str(op.arg(1, "value")),
                         op.arg(2, "token"), mine[-1] if mine else None, op.start, op.end,
                         op.type, op.result, op.events))
    return out


def _who(w: Write) -> str:
    if w.lease is None:
        return f"{w.holder} (holding no lease)"
    return f"{w.holder} (lease #{w.lease.generation + 1}, token {w.lease.token!r})"


def check_fenced_writes(history: History, applied: Iterable[str]) -> Verdict:
    """Writes under a superseded lease must never land after the newer holder's; the newest
    holder's writes must land.

    ``applied``: the values the storage accepted, in the order it applied them (from the grader's
    own query). Values are unique per write (the grader chooses them), which is how an applied
    value is traced back to the write and the lease it came from.
    """
    applied = list(applied)
    all_writes = writes(history)
    all_leases = leases(history)
    by_value = {w.value: w for w in all_writes}
    anomalies: list[Anomaly] = []

    for v in applied:
        if v not in by_value:
            anomalies.append(Anomaly(
                "phantom-write", f"the storage holds {v!r}, which no worker was asked to write",
                (), {"value": v}))

    # 1. In storage order, a write from an older lease after a write from a newer one.
    newest: Write | None = None
    for v in applied:
        w = by_value.get(v)
        if w is None or w.lease is None:
            continue
        if newest is not None and w.lease.generation < newest.lease.generation:
            anomalies.append(Anomaly(
                "stale-write",
                f"{_who(w)} wrote {w.value!r} after {_who(newest)} had written {newest.value!r}: "
                f"the storage accepted a write from an expired lease over the newer holder's",
                newest.events + w.events,
                {"stale": w.value, "newer": newest.value}))
        elif newest is None or w.lease.generation > newest.lease.generation:
            newest = w

    # 2. In real time: a write from an older lease stored although a newer holder had already
    #    written (even if that newer write was itself refused).
    stored = set(applied)
    for w in all_writes:
        if w.lease is None or w.value not in stored:
            continue
        earlier_newer = [x for x in all_writes if x.lease is not None and x.completed is not None
                         and x.lease.generation > w.lease.generation and x.completed < w.invoked]
        if earlier_newer and not any(a.kind == "stale-write" and a.data.get("stale") == w.value
                                     for a in anomalies):
            x = earlier_newer[0]
            anomalies.append(Anomaly(
                "stale-write",
                f"{_who(w)} wrote {w.value!r} after {_who(x)} had written {x.value!r}, and the "
                f"storage accepted the older holder's value",
                x.events + w.events, {"stale": w.value, "newer": x.value}))

    # 3. The newest holder's completed writes must be stored.
    for w in all_writes:
        if w.lease is None or w.outcome != "ok" or w.value in stored:
            continue
        superseded = any(l.generation > w.lease.generation and l.invoked < (w.completed or 0)
                         for l in all_leases)
        if not superseded:
            anomalies.append(Anomaly(
                "rejected-write",
                f"{_who(w)} held the newest lease and wrote {w.value!r}, but the storage never "
                f"applied it (the component answered {w.claimed!r})",
                w.events, {"value": w.value}))
    return verdict("fenced-writes", anomalies, writes=len(all_writes), applied=len(applied),
                   leases=len(all_leases))


def check_counter(applied: Sequence[str], start: int = 0) -> Verdict:
    """A counter incremented under the lock must take the values start+1, start+2, ... in order."""
    anomalies = []
    expected = start + 1
    for i, raw in enumerate(applied):
        try:
            n = int(raw)
        except (TypeError, ValueError):
            anomalies.append(Anomaly("lost-update", f"write #{i + 1} stored {raw!r}, not a number",
                                     (), {"position": i}))
            break
        if n != expected:
            anomalies.append(Anomaly(
                "lost-update",
                f"write #{i + 1} stored {n} where {expected} was due: two holders read the same "
                f"value and one increment was lost" if n < expected else
                f"write #{i + 1} stored {n} where {expected} was due",
                (), {"position": i, "stored": n, "expected": expected}))
            expected = n
        expected += 1
    return verdict("counter", anomalies, increments=len(applied))
