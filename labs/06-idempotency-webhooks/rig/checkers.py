"""Lab 06's checkers: pure functions of the history (the sender's deliveries) and of what the
tables really hold after the receiver settled: the receiver's ``orders`` and ``shipments`` (read
by the grader) and the payment API's ``payments.charges``.

Records are plain data: ``orders`` maps an order id to ``{"status", "version", "amount"}``;
``shipments`` is a list of order ids (one per row); ``charges`` a list of ``{"order", "amount"}``.

``check_exactly_once_effects`` (safety)
    ``duplicate-effect``: an order shipped more than once (one event applied twice);
    ``double-charge``: the payment API charged one order more than once.
``check_no_lost_events`` (safety)
    ``lost-event``: the receiver acknowledged an event (2xx) whose effect never appeared: the
    order never reached that version, or a confirmed order was never shipped or never charged.
``check_newest_wins`` (order)
    ``stale-overwrite``: the order's stored state is an older version than one the receiver had
    already acknowledged before it: an older event overwrote newer state.
``check_authentic_only`` (safety)
    ``forged-accepted``: a delivery with a wrong signature, or a replay signed long ago, got a
    2xx, or its effect appeared.
``check_every_event_acknowledged`` (liveness)
    ``never-acknowledged``: a genuine event (signed with the endpoint's secret, at the time of
    the attempt) got no 2xx from any of its deliveries, though the faults were healed and the
    provider retried it: a receiver that refuses or never answers is not safe, it is down.
    Forged and replayed deliveries are not genuine and do not count. (That an acknowledged
    event is applied is ``check_no_lost_events``.)
``check_webhooks``: all of them (the hidden tests use this one).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History

__all__ = ["Delivered", "deliveries", "check_exactly_once_effects", "check_no_lost_events",
           "check_newest_wins", "check_authentic_only", "check_every_event_acknowledged",
           "check_webhooks"]


@dataclass(frozen=True)
class Delivered:
    id: str
    type: str
    order: str
    version: int
    status: str
    amount: int
    kind: str
    acked: bool
    acked_at: float | None
    events: tuple[int, ...]
    attempts: int = 1


def deliveries(history: History) -> list[Delivered]:
    out = []
    for op in history.operations():
        if op.f != "deliver" or op.process != "sender":
            continue
        res = op.result if isinstance(op.result, dict) else {}
        out.append(Delivered(str(op.arg(0, "id")), str(op.arg(1, "type")),
                             str(op.arg(2, "order")), int(op.arg(3, "version") or 0),
                             str(op.arg(4, "status")), int(op.arg(5, "amount") or 0),
                             str(op.arg(6, "kind") or "genuine"), bool(res.get("acked")),
                             res.get("acked_at"), op.events,
                             len(res.get("codes") or ()) or 1))
    return out


def _times(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what[:-1]}ies" if what.endswith("y") else \
        f"{n} {what}s"


def _ev(ds: Iterable[Delivered]) -> tuple[int, ...]:
    return tuple(sorted({i for d in ds for i in d.events}))


def _genuine(ds: list[Delivered]) -> dict[str, list[Delivered]]:
    by_order: dict[str, list[Delivered]] = defaultdict(list)
    for d in ds:
        if d.kind == "genuine":
            by_order[d.order].append(d)
    return by_order


def _effects(history: History, shipments: list[str], charges: list[Mapping]) -> list[Anomaly]:
    ds = deliveries(history)
    by_order = _genuine(ds)
    out = []
    for order, n in sorted(Counter(shipments).items()):
        if n > 1:
            ev = [d for d in by_order.get(order, []) if d.type == "order.confirmed"]
            sent = sum(d.attempts for d in ev)
            out.append(Anomaly("duplicate-effect", f"order {order} was shipped {n} times: its "
                               f"order.confirmed event was sent {sent} times "
                               f"({_times(len(ev), 'delivery')}, retries counted) and applied "
                               f"{n} times", _ev(ev), {"order": order, "shipments": n}))
    for order, n in sorted(Counter(str(c["order"]) for c in charges).items()):
        if n > 1:
            ev = [d for d in by_order.get(order, []) if d.type == "order.confirmed"]
            total = sum(int(c["amount"]) for c in charges if c["order"] == order)
            out.append(Anomaly("double-charge", f"the payment API charged order {order} {n} "
                               f"times ({total} in all): one payment, several charges; a retry "
                               f"must reuse the first attempt's Idempotency-Key", _ev(ev),
                               {"order": order, "charges": n}))
    return out


def _order(history: History, orders: Mapping[str, Mapping], shipments: list[str],
           charges: list[Mapping]) -> tuple[list[Anomaly], list[Anomaly]]:
    """(lost-event anomalies, stale-overwrite anomalies)."""
    ds = deliveries(history)
    lost: list[Anomaly] = []
    stale: list[Anomaly] = []
    shipped = set(shipments)
    charged = {str(c["order"]) for c in charges}
    for order, group in sorted(_genuine(ds).items()):
        acked = [d for d in group if d.acked]
        if not acked:
            continue
        row = orders.get(order)
        newest = max(acked, key=lambda d: d.version)
        for d in acked:
            if d.type == "order.confirmed" and (order not in shipped or order not in charged):
                what = ("never shipped nor charged" if order not in shipped and order not in
                        charged else "never shipped" if order not in shipped else "never charged")
                lost.append(Anomaly("lost-event", f"the receiver acknowledged {d.id} "
                                    f"(order.confirmed of {order}), but the order was {what}",
                                    _ev([d]), {"order": order, "event": d.id}))
                break
        if row is None:
            lost.append(Anomaly("lost-event", f"the receiver acknowledged {len(acked)} events "
                                f"of order {order}, and it has no row for it", _ev(acked),
                                {"order": order}))
            continue
        version = int(row.get("version") or 0)
        if version >= newest.version:
            continue
        first = {}
        for d in acked:
            if d.acked_at is not None:
                first[d.version] = min(first.get(d.version, d.acked_at), d.acked_at)
        when_stored = first.get(version)
        when_newest = first.get(newest.version)
        if when_stored is not None and when_newest is not None and when_stored > when_newest:
            culprit = [d for d in acked if d.version == version]
            stale.append(Anomaly(
                "stale-overwrite", f"order {order} holds version {version} "
                f"({row.get('status')!r}), but version {newest.version} ({newest.status!r}) "
                f"was acknowledged before it: an older event, delivered late, overwrote newer "
                f"state", _ev(culprit),
                {"order": order, "stored": version, "newest": newest.version,
                 "context": list(newest.events)}))
        else:
            lost.append(Anomaly(
                "lost-event", f"the receiver acknowledged {newest.id} (version "
                f"{newest.version} of order {order}, {newest.status!r}), but the order holds "
                f"version {version}", _ev([newest]), {"order": order, "stored": version}))
    return lost, stale


def _forged(history: History, orders: Mapping[str, Mapping]) -> list[Anomaly]:
    out = []
    for d in deliveries(history):
        if d.kind == "genuine":
            continue
        row = orders.get(d.order) or {}
        applied = row.get("status") == d.status and int(row.get("version") or 0) == d.version
        if d.acked or applied:
            how = ("signed with the wrong key" if d.kind == "forged" else
                   "signed an hour ago (a replay)")
            what = " and applied" if applied else ""
            out.append(Anomaly("forged-accepted", f"a delivery {how} ({d.type} of {d.order}) "
                               f"was accepted{what}: verify the signature and the timestamp "
                               f"before anything else", d.events, {"order": d.order,
                                                                    "kind": d.kind}))
    return out


def _unacknowledged(history: History) -> list[Anomaly]:
    by_event: dict[str, list[Delivered]] = defaultdict(list)
    for d in deliveries(history):
        if d.kind == "genuine":
            by_event[d.id].append(d)
    out = []
    for event, ds in sorted(by_event.items()):
        if any(d.acked for d in ds):
            continue
        tries = sum(d.attempts for d in ds)
        out.append(Anomaly("never-acknowledged", f"the provider sent {event} ({ds[0].type} of "
                           f"{ds[0].order}, correctly signed and fresh) {_times(tries, 'time')} "
                           f"and never got a 2xx, even after the faults were healed: a genuine "
                           f"delivery must be recorded and answered 2xx", _ev(ds),
                           {"order": ds[0].order, "event": event, "attempts": tries}))
    return out


def check_exactly_once_effects(history: History, shipments: list[str],
                               charges: list[Mapping]) -> Verdict:
    return verdict("exactly-once-effects", _effects(history, shipments, charges))


def check_no_lost_events(history: History, orders: Mapping[str, Mapping], shipments: list[str],
                         charges: list[Mapping]) -> Verdict:
    return verdict("no-lost-events", _order(history, orders, shipments, charges)[0])


def check_newest_wins(history: History, orders: Mapping[str, Mapping]) -> Verdict:
    return verdict("newest-wins", _order(history, orders, [], [])[1])


def check_authentic_only(history: History, orders: Mapping[str, Mapping]) -> Verdict:
    return verdict("authentic-only", _forged(history, orders))


def check_every_event_acknowledged(history: History) -> Verdict:
    return verdict("every-event-acknowledged", _unacknowledged(history))


def check_webhooks(history: History, orders: Mapping[str, Mapping], shipments: list[str],
                   charges: list[Mapping]) -> Verdict:
    lost, stale = _order(history, orders, shipments, charges)
    anomalies = (_forged(history, orders) + _effects(history, shipments, charges) + stale + lost +
                 _unacknowledged(history))
    return verdict("webhooks", anomalies, deliveries=len(deliveries(history)))
