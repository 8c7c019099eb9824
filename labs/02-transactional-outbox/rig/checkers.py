"""Checkers for lab 02 (transactional outbox): what reached the topic, and what the consumer did.

Both are pure: they take what the grader itself read (the topic's records, the database's rows)
and return a :class:`Verdict`.

``check_outbox(records, orders, ...)`` compares the topic with the database's truth:

* ``lost-event``     a committed change (an order, a cancellation) has no event on the topic;
* ``phantom-event``  an event for a change that never committed (a rolled-back or rejected order,
                     a cancellation of an order that is still placed), or whose content differs
                     from the committed row;
* ``out-of-order``   one order's events are not in commit order, or are spread over partitions
                     (Kafka orders records within a partition only);
* ``wrong-key``      a record's key is not its order id;
* ``duplicate-event`` the same event published twice where no fault excuses it, or one change
                     published under two different event ids (no consumer can deduplicate that);
* ``malformed-event`` a record that is not a JSON object with the agreed fields.

``check_projection(view, stats, orders)`` compares the consumer's read model with the truth:
``duplicate-effect`` (an event applied twice), ``missing-effect`` (an event not applied) and
``wrong-state`` (a view row that differs from the order).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.checkers.base import Anomaly, Verdict, verdict

__all__ = ["OrderTruth", "check_outbox", "check_projection", "expected_events", "EVENT_FIELDS",
           "PLACED", "CANCELLED"]

PLACED = "OrderPlaced"
CANCELLED = "OrderCancelled"
EVENT_FIELDS = ("event_id", "type", "order_id", "customer", "amount")


@dataclass(frozen=True)
class OrderTruth:
    """One committed order as the grader read it from the database."""

    customer: str
    amount: int
    status: str   # "placed" | "cancelled"


def _truth(orders: Mapping[str, OrderTruth | Mapping[str, Any]]) -> dict[str, OrderTruth]:
    out = {}
    for oid, o in orders.items():
        out[str(oid)] = o if isinstance(o, OrderTruth) else OrderTruth(
            str(o["customer"]), int(o["amount"]), str(o["status"]))
    return out


def expected_events(orders: Mapping[str, OrderTruth | Mapping[str, Any]]) -> dict[str, list[str]]:
    """order id -> the event types the topic must carry for it, in order."""
    return {oid: [PLACED] + ([CANCELLED] if o.status == "cancelled" else [])
            for oid, o in _truth(orders).items()}


def _rec(r: Any) -> dict:
    if isinstance(r, Mapping):
        return dict(r)
    return r.to_dict()


def check_outbox(records: Sequence[Any], orders: Mapping[str, OrderTruth | Mapping[str, Any]], *,
                 attempted: Iterable[str] = (), allow_duplicates: bool = True,
                 complete: bool = True) -> Verdict:
    """Check the topic against the committed orders.

    records: what the grader read from the topic, each a ``TopicRecord`` or a dict with
        ``partition``, ``offset``, ``key``, ``value`` (the parsed JSON object or None) and
        ``error``; sorted by (partition, offset) or not, the checker sorts them.
    orders: order id -> the committed row (customer, amount, status).
    attempted: order ids the grader asked to create, committed or not (names rolled-back orders
        in phantom messages).
    allow_duplicates: False where no fault could excuse a second copy of an event.
    complete: False when the grader could not read the topic to its end; then a missing event is
        not proof of loss and the verdict is "unknown" unless something else is wrong.
    """
    truth = _truth(orders)
    attempted = set(map(str, attempted))
    recs = sorted((_rec(r) for r in records), key=lambda r: (r["partition"], r["offset"]))
    anomalies: list[Anomaly] = []
    # (order, type) -> event ids (first-seen order) and where each copy sits
    ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    copies: dict[str, list[tuple[int, int]]] = defaultdict(list)
    first: dict[str, list[tuple[str, int, int]]] = defaultdict(list)   # order -> (type, p, off)
    partitions: dict[str, set[int]] = defaultdict(set)

    for r in recs:
        where = f"partition {r['partition']} offset {r['offset']}"
        v = r.get("value")
        missing = [f for f in EVENT_FIELDS if not isinstance(v, Mapping) or f not in v]
        if v is None or missing:
            why = r.get("error") or f"missing field(s) {', '.join(missing)}"
            anomalies.append(Anomaly("malformed-event", f"record at {where} is not an order "
                                     f"event ({why}): {str(r.get('raw', ''))[:80]!r}",
                                     data={"record": r}))
            continue
        oid, typ, eid = str(v["order_id"]), str(v["type"]), str(v["event_id"])
        if r.get("key") != oid:
            anomalies.append(Anomaly("wrong-key", f"{typ} of order {oid} at {where} has key "
                                     f"{r.get('key')!r}; key records by order id so one order's "
                                     f"events share a partition", data={"record": r}))
        if typ not in (PLACED, CANCELLED):
            anomalies.append(Anomaly("malformed-event", f"record at {where} has type {typ!r}; "
                                     f"expected {PLACED!r} or {CANCELLED!r}", data={"record": r}))
            continue
        partitions[oid].add(r["partition"])
        copies[eid].append((r["partition"], r["offset"]))
        if eid not in ids[(oid, typ)]:
            ids[(oid, typ)].append(eid)
            first[oid].append((typ, r["partition"], r["offset"]))
        o = truth.get(oid)
        if o is None:
            tail = " (the order was rejected or rolled back)" if oid in attempted else ""
            if len(copies[eid]) == 1:
                anomalies.append(Anomaly("phantom-event", f"{typ} for order {oid} at {where}, "
                                         f"but no such order committed{tail}",
                                         data={"order": oid, "event": v}))
            continue
        if typ == CANCELLED and o.status != "cancelled" and len(copies[eid]) == 1:
            anomalies.append(Anomaly("phantom-event", f"OrderCancelled for order {oid} at "
                                     f"{where}, but the order is still 'placed' (the cancellation "
                                     f"did not commit)", data={"order": oid, "event": v}))
        elif (str(v["customer"]) != o.customer or v["amount"] != o.amount) and \
                len(copies[eid]) == 1:
            anomalies.append(Anomaly("phantom-event", f"{typ} for order {oid} at {where} says "
                                     f"customer={v['customer']!r} amount={v['amount']!r}; the "
                                     f"committed order has customer={o.customer!r} "
                                     f"amount={o.amount!r}", data={"order": oid, "event": v}))

    for oid, types in expected_events(truth).items():
        for typ in types:
            if not ids.get((oid, typ)) and complete:
                anomalies.append(Anomaly("lost-event", f"order {oid}: the {typ} change committed "
                                         f"but no {typ} event is on the topic",
                                         data={"order": oid, "type": typ}))
    for (oid, typ), eids in ids.items():
        if len(eids) > 1:
            anomalies.append(Anomaly("duplicate-event", f"order {oid}: {typ} was published under "
                                     f"{len(eids)} different event ids ({', '.join(eids[:3])}); "
                                     f"a consumer cannot tell they are the same change",
                                     data={"order": oid, "event_ids": eids}))
    if not allow_duplicates:
        for eid, where in copies.items():
            if len(where) > 1:
                anomalies.append(Anomaly("duplicate-event", f"event {eid} is on the topic "
                                         f"{len(where)} times ({where[:3]}) in a run with no fault "
                                         f"that would excuse a retry", data={"event_id": eid}))
    for oid, seq in first.items():
        if len(partitions[oid]) > 1:
            anomalies.append(Anomaly("out-of-order", f"order {oid}'s events are on partitions "
                                     f"{sorted(partitions[oid])}: Kafka keeps no order between "
                                     f"partitions", data={"order": oid}))
            continue
        types = [t for t, _, _ in seq]
        if CANCELLED in types and PLACED in types and types.index(CANCELLED) < types.index(PLACED):
            _, p, off = seq[types.index(CANCELLED)]
            anomalies.append(Anomaly("out-of-order", f"order {oid}: OrderCancelled (partition {p} "
                                     f"offset {off}) is before OrderPlaced; a consumer sees the "
                                     f"cancellation of an order it does not know yet",
                                     data={"order": oid}))
    stats = {"records": len(recs), "orders": len(truth),
             "duplicates": sum(len(w) - 1 for w in copies.values())}
    v = verdict("outbox", anomalies, **stats)
    if v.valid is True and not complete:
        return Verdict("unknown", (), "outbox", stats)
    return v


def check_projection(view: Mapping[str, Mapping[str, Any]], stats: Mapping[str, Mapping[str, Any]],
                     orders: Mapping[str, OrderTruth | Mapping[str, Any]]) -> Verdict:
    """Check the consumer's read model after every event was delivered (some more than once).

    view: order id -> {"customer", "amount", "status"} from ``order_view``.
    stats: customer -> {"placed", "cancelled", "spent"} from ``customer_stats``.
    orders: the committed orders (the truth the events describe).
    """
    truth = _truth(orders)
    anomalies: list[Anomaly] = []
    want: dict[str, dict[str, int]] = defaultdict(lambda: {"placed": 0, "cancelled": 0,
                                                            "spent": 0})
    for o in truth.values():
        w = want[o.customer]
        w["placed"] += 1
        if o.status == "cancelled":
            w["cancelled"] += 1
        else:
            w["spent"] += o.amount
    for customer in sorted(set(want) | set(stats)):
        w = want.get(customer, {"placed": 0, "cancelled": 0, "spent": 0})
        got = {k: int((stats.get(customer) or {}).get(k) or 0) for k in w}
        for field_ in ("placed", "cancelled"):
            if got[field_] > w[field_]:
                anomalies.append(Anomaly("duplicate-effect", f"customer {customer}: {field_}="
                                         f"{got[field_]} but only {w[field_]} such event(s) "
                                         f"exist; a redelivered event was applied again",
                                         data={"customer": customer, "got": got, "want": w}))
            elif got[field_] < w[field_]:
                anomalies.append(Anomaly("missing-effect", f"customer {customer}: {field_}="
                                         f"{got[field_]}, expected {w[field_]}; an event was "
                                         f"delivered but not applied",
                                         data={"customer": customer, "got": got, "want": w}))
        if got["placed"] == w["placed"] and got["cancelled"] == w["cancelled"] and \
                got["spent"] != w["spent"]:
            anomalies.append(Anomaly("wrong-state", f"customer {customer}: spent={got['spent']}, "
                                     f"expected {w['spent']}", data={"customer": customer}))
    for oid, o in truth.items():
        row = view.get(oid)
        if row is None:
            anomalies.append(Anomaly("missing-effect", f"order {oid} is not in order_view",
                                     data={"order": oid}))
        elif str(row.get("status")) != o.status or row.get("customer") != o.customer or \
                row.get("amount") != o.amount:
            anomalies.append(Anomaly("wrong-state", f"order_view has order {oid} as "
                                     f"{dict(row)}; the order is {o.status} ({o.customer}, "
                                     f"{o.amount})", data={"order": oid}))
    for oid in sorted(set(view) - set(truth)):
        anomalies.append(Anomaly("wrong-state", f"order_view has order {oid}, which never "
                                 f"committed", data={"order": oid}))
    return verdict("projection", anomalies, orders=len(truth), customers=len(want))
