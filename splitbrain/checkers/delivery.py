"""At-least-once delivery, no loss, no phantoms, duplicates, and per-key order.

A producer that says "sent" and a consumer that never sees the message is the bug every relay
and retry loop exists to prevent; a consumer that sees a message nobody committed is the bug
a dual write produces when the database rolls back after the broker said yes. Both are found by
comparing what *must* have been delivered with what *was*.

``check_delivery(committed, delivered, maybe=(), exactly_once=False)``
    ``committed``: ids that certainly happened (acknowledged writes, committed rows).
    ``delivered``: ids in the order consumers received them (duplicates included).
    ``maybe``: ids whose outcome is unknown (a timeout, a crash): they may be delivered or not.
    Anomaly kinds:

    * ``lost-event`` — a committed id was never delivered;
    * ``phantom-event`` — a delivered id was neither committed nor maybe;
    * ``duplicate-event`` — an id delivered more than once (only with ``exactly_once=True``; under
      at-least-once duplicates are expected and counted in ``stats["duplicates"]``).

``check_order(delivered, key=..., seq=...)``
    ``delivered``: records in delivery order; ``key(rec)`` the ordering key (an order id, a
    partition key), ``seq(rec)`` its position in the producer's order (a version, a sequence
    number). Redeliveries of an already-seen sequence number are not order violations. Kinds:

    * ``out-of-order`` — for one key, a record arrived after a record with a higher sequence.

``ids_from_history(history, f)`` splits a history's ``f`` operations into (committed, maybe) ids,
using the invoke argument (or its ``"id"`` field) as the id.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Hashable, Iterable, Mapping

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History, Operation

__all__ = ["check_delivery", "check_order", "ids_from_history"]


def check_delivery(committed: Iterable[Hashable], delivered: Iterable[Hashable],
                   maybe: Iterable[Hashable] = (), exactly_once: bool = False,
                   events: Mapping[Hashable, Iterable[int]] | None = None) -> Verdict:
    """Compare what must have been delivered with what was (see the module docstring).

    ``events`` optionally maps an id to the history indexes that show it (for the picture).
    """
    must = list(dict.fromkeys(committed))
    could = set(must) | set(maybe)
    got = list(delivered)
    counts = Counter(got)
    ev = {k: tuple(v) for k, v in (events or {}).items()}
    anomalies = []
    for i in must:
        if counts[i] == 0:
            anomalies.append(Anomaly("lost-event", f"{i!r} was committed but never delivered",
                                     ev.get(i, ()), {"id": i}))
    for i in dict.fromkeys(got):
        if i not in could:
            anomalies.append(Anomaly("phantom-event",
                                     f"{i!r} was delivered but never committed (the write that "
                                     f"produced it did not happen)", ev.get(i, ()), {"id": i}))
    dups = {i: c for i, c in counts.items() if c > 1}
    if exactly_once:
        for i, c in dups.items():
            anomalies.append(Anomaly("duplicate-event", f"{i!r} was delivered {c} times",
                                     ev.get(i, ()), {"id": i, "count": c}))
    return verdict("delivery", anomalies, committed=len(must), delivered=len(got),
                   unique=len(counts), duplicates=sum(c - 1 for c in dups.values()),
                   maybe=len(could) - len(must))


def check_order(delivered: Iterable[Any], key: Callable[[Any], Hashable] | str = "key",
                seq: Callable[[Any], Any] | str = "seq") -> Verdict:
    """Per key, sequence numbers arrive in increasing order (see the module docstring).

    ``key``/``seq`` are functions of a record, or field names of dict records.
    """
    get_key = key if callable(key) else (lambda r: r[key])
    get_seq = seq if callable(seq) else (lambda r: r[seq])
    high: dict[Hashable, Any] = {}
    seen: dict[Hashable, set] = {}
    anomalies = []
    n = 0
    for pos, rec in enumerate(delivered):
        n += 1
        k, s = get_key(rec), get_seq(rec)
        if s in seen.setdefault(k, set()):
            continue                      # a redelivery, not a reordering
        seen[k].add(s)
        if k in high and s < high[k]:
            event = rec.get("event") if isinstance(rec, Mapping) else None
            anomalies.append(Anomaly(
                "out-of-order", f"for key {k!r}, #{s} arrived after #{high[k]} (delivery {pos})",
                (event,) if isinstance(event, int) else (), {"key": k, "seq": s, "after": high[k]}))
        else:
            high[k] = s
    return verdict("order", anomalies, records=n, keys=len(seen))


def ids_from_history(history: History, f: str = "send",
                     id_of: Callable[[Operation], Hashable] | None = None
                     ) -> tuple[list[Hashable], list[Hashable], dict[Hashable, tuple[int, ...]]]:
    """(committed ids, maybe ids, id -> event indexes) from the ``f`` operations of a history:
    ok -> committed, info or still open -> maybe, fail -> neither. ``id_of(op)`` names the
    message an operation sent (default: its argument ``id``, the first)."""
    id_of = id_of or (lambda op: op.arg(0, "id"))
    committed, maybe, events = [], [], {}
    for op in history.operations():
        if op.f != f:
            continue
        i = id_of(op)
        events[i] = (op.invoke.index,) + ((op.complete.index,) if op.complete else ())
        if op.type == "ok":
            committed.append(i)
        elif op.type == "info":
            maybe.append(i)
    return committed, maybe, events
