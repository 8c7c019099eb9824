"""Checkers for lab 02 (transactional outbox), one per guarantee the chapter teaches.

Each is pure: it takes what the grader itself observed -- the topic's records (read to the end),
the database's rows (read with the admin URL), and the test's history (every call into the
learner's component and every fault, with their times) -- and returns a :class:`Verdict`. The
lab's ``lab.toml`` lists them under ``[[guarantees]]``.

======================  =========  =============================================================
guarantee               checker    anomalies
======================  =========  =============================================================
no-lost-event           liveness   ``lost-event`` a committed change has no event on the topic once
                                   the faults healed and relays ran; ``lost-order`` the service
                                   acknowledged a change the database does not have
no-phantom-event        safety     ``phantom-event`` an event for a change that did not commit (or
                                   that says something else than the committed row);
                                   ``malformed-event`` a record that is not an order event
per-order-order         order      ``out-of-order`` one order's events on two partitions, or a
                                   cancellation before its placement; ``wrong-key``
stable-event-id         safety     ``duplicate-event`` one change under two event ids, or a second
                                   copy of an event that no failed publish attempt explains
relay-returns-in-time   bound      ``slow-relay`` a ``run_once`` that took longer than about its
                                   ``timeout_s`` while its own database link was healthy
relay-counts-truly      safety     ``miscounted-run`` a ``run_once`` that returned something
                                   other than a count (an int >= 0), or counts that add up to
                                   more records than the topic holds
relay-publishes-promptly liveness  ``late-event`` an event still not on the topic after as many
                                   relay runs as one order has events (plus one), the broker
                                   answering
service-available       liveness   ``unavailable`` a valid place/cancel that failed although
                                   Postgres answered (the broker's state must not matter)
applied-once            safety     ``duplicate-effect``, ``missing-effect``, ``wrong-state`` in the
                                   read model after every event was delivered at least once
======================  =========  =============================================================

``check_outbox`` runs the four topic checkers at once (the notebook, the public tests and the
book's figure use it); ``judge_outbox`` adds what only the history knows (acknowledged changes,
whether a failed publish explains a copy, the relays' time bound).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.checkers.base import Anomaly, Verdict, verdict

__all__ = ["OrderTruth", "check_outbox", "check_projection", "expected_events", "EVENT_FIELDS",
           "PLACED", "CANCELLED", "SLACK_S", "check_no_lost_event", "check_no_phantom_event",
           "check_order", "check_event_ids", "check_relay_bound", "check_counts", "check_prompt",
           "check_available", "judge_outbox", "acknowledged", "attempted", "duplicate_excuse",
           "merge", "RelayRun", "relay_runs"]

PLACED = "OrderPlaced"
CANCELLED = "OrderCancelled"
EVENT_FIELDS = ("event_id", "type", "order_id", "customer", "amount")
SLACK_S = 3.0          # "returns within about timeout_s": this much more, at most
# faults on a relay's own Postgres link or on the relay process that only delay it: time under
# them does not count against its bound, and they explain no second copy of an event
_DELAYS = ("stall", "latency", "partition", "blackhole", "bandwidth", "slicer")


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


@dataclass
class _Topic:
    """The topic's records, parsed once: what each checker reads."""

    recs: list[dict]
    malformed: list[Anomaly]
    events: list[tuple[dict, dict]]                       # (record, event) of well-formed ones
    ids: dict[tuple[str, str], list[str]]                 # (order, type) -> event ids, first seen
    copies: dict[str, list[tuple[int, int]]]              # event id -> where each copy sits
    first: dict[str, list[tuple[str, int, int]]]          # order -> (type, partition, offset)
    partitions: dict[str, set[int]]


def _topic(records: Sequence[Any]) -> _Topic:
    recs = sorted((_rec(r) for r in records), key=lambda r: (r["partition"], r["offset"]))
    t = _Topic(recs, [], [], defaultdict(list), defaultdict(list), defaultdict(list),
               defaultdict(set))
    for r in recs:
        where = f"partition {r['partition']} offset {r['offset']}"
        v = r.get("value")
        missing = [f for f in EVENT_FIELDS if not isinstance(v, Mapping) or f not in v]
        if v is None or missing:
            why = r.get("error") or f"missing field(s) {', '.join(missing)}"
            t.malformed.append(Anomaly("malformed-event", f"record at {where} is not an order "
                                       f"event ({why}): {str(r.get('raw', ''))[:80]!r}",
                                       data={"record": r}))
            continue
        typ = str(v["type"])
        if typ not in (PLACED, CANCELLED):
            t.malformed.append(Anomaly("malformed-event", f"record at {where} has type {typ!r}; "
                                       f"expected {PLACED!r} or {CANCELLED!r}",
                                       data={"record": r}))
            continue
        oid, eid = str(v["order_id"]), str(v["event_id"])
        t.events.append((r, v))
        t.partitions[oid].add(r["partition"])
        t.copies[eid].append((r["partition"], r["offset"]))
        if eid not in t.ids[(oid, typ)]:
            t.ids[(oid, typ)].append(eid)
            t.first[oid].append((typ, r["partition"], r["offset"]))
    return t


def _where(r: dict) -> str:
    return f"partition {r['partition']} offset {r['offset']}"


# -- no-lost-event ----------------------------------------------------------------------------
def check_no_lost_event(records: Sequence[Any], orders: Mapping[str, Any], *,
                        acknowledged: Mapping[str, str] | None = None,
                        complete: bool = True, kind: str = "lost-event") -> Verdict:
    """Every committed change has its event on the topic; every change the service acknowledged
    (order id -> "placed" | "cancelled") is committed.

    complete: False when the grader could not read the topic to its end; a missing event is then
        no proof and the verdict is "unknown" unless something else is wrong.
    kind: "late-event" when the grader asks after a bounded number of relay runs (the
        relay-publishes-promptly guarantee) rather than after the relays went quiet.
    """
    truth = _truth(orders)
    t = _topic(records)
    anomalies: list[Anomaly] = []
    for oid, status in (acknowledged or {}).items():
        o = truth.get(oid)
        if o is None or (status == "cancelled" and o.status != "cancelled"):
            what = "place" if status == "placed" else "cancel"
            anomalies.append(Anomaly("lost-order", f"{what}_order({oid!r}) returned, but the "
                                     f"database does not have it: the service acknowledged a "
                                     f"change it did not commit", data={"order": oid}))
    missing = []
    for oid, types in expected_events(truth).items():
        for typ in types:
            if not t.ids.get((oid, typ)):
                missing.append((oid, typ))
    if complete:
        for oid, typ in missing:
            if kind == "late-event":
                msg = (f"order {oid}: the {typ} change committed, but its event was still not on "
                       f"the topic after the relay's runs; an event leaves when the relay next "
                       f"runs")
            else:
                msg = f"order {oid}: the {typ} change committed but no {typ} event is on the topic"
            anomalies.append(Anomaly(kind, msg, data={"order": oid, "type": typ}))
    v = verdict("no-lost-event", anomalies, orders=len(truth), missing=len(missing))
    if v.valid is True and missing and not complete:
        return Verdict("unknown", (), "no-lost-event", v.stats)
    return v


# -- no-phantom-event -------------------------------------------------------------------------
def check_no_phantom_event(records: Sequence[Any], orders: Mapping[str, Any], *,
                           attempted: Iterable[str] = ()) -> Verdict:
    """No event for a change that did not commit; each event says what the committed row says;
    every record is an order event."""
    truth = _truth(orders)
    attempted = set(map(str, attempted))
    t = _topic(records)
    anomalies = list(t.malformed)
    seen: set[str] = set()
    for r, v in t.events:
        oid, typ, eid = str(v["order_id"]), str(v["type"]), str(v["event_id"])
        if eid in seen:
            continue                                      # a copy: judged by stable-event-id
        seen.add(eid)
        where = _where(r)
        o = truth.get(oid)
        if o is None:
            tail = " (the order was rejected or rolled back)" if oid in attempted else ""
            anomalies.append(Anomaly("phantom-event", f"{typ} for order {oid} at {where}, but "
                                     f"no such order committed{tail}",
                                     data={"order": oid, "event": v}))
        elif typ == CANCELLED and o.status != "cancelled":
            anomalies.append(Anomaly("phantom-event", f"OrderCancelled for order {oid} at "
                                     f"{where}, but the order is still 'placed' (the cancellation "
                                     f"did not commit)", data={"order": oid, "event": v}))
        elif str(v["customer"]) != o.customer or v["amount"] != o.amount:
            anomalies.append(Anomaly("phantom-event", f"{typ} for order {oid} at {where} says "
                                     f"customer={v['customer']!r} amount={v['amount']!r}; the "
                                     f"committed order has customer={o.customer!r} "
                                     f"amount={o.amount!r}", data={"order": oid, "event": v}))
    return verdict("no-phantom-event", anomalies, records=len(t.recs))


# -- per-order-order --------------------------------------------------------------------------
def check_order(records: Sequence[Any]) -> Verdict:
    """Each record is keyed by its order id; one order's events share a partition and its
    OrderPlaced comes before its OrderCancelled (by first copy)."""
    t = _topic(records)
    anomalies: list[Anomaly] = []
    for r, v in t.events:
        oid = str(v["order_id"])
        if r.get("key") != oid:
            anomalies.append(Anomaly("wrong-key", f"{v['type']} of order {oid} at {_where(r)} "
                                     f"has key {r.get('key')!r}; key records by order id so one "
                                     f"order's events share a partition", data={"record": r}))
    for oid, seq in t.first.items():
        if len(t.partitions[oid]) > 1:
            anomalies.append(Anomaly("out-of-order", f"order {oid}'s events are on partitions "
                                     f"{sorted(t.partitions[oid])}: Kafka keeps no order between "
                                     f"partitions", data={"order": oid}))
            continue
        types = [typ for typ, _, _ in seq]
        if CANCELLED in types and PLACED in types and types.index(CANCELLED) < types.index(PLACED):
            _, p, off = seq[types.index(CANCELLED)]
            anomalies.append(Anomaly("out-of-order", f"order {oid}: OrderCancelled (partition {p} "
                                     f"offset {off}) is before OrderPlaced; a consumer sees the "
                                     f"cancellation of an order it does not know yet",
                                     data={"order": oid}))
    return verdict("per-order-order", anomalies, orders=len(t.first))


# -- stable-event-id --------------------------------------------------------------------------
def check_event_ids(records: Sequence[Any], *, excuse: str | None = None) -> Verdict:
    """One change is published under one event id. A second copy of an event is at-least-once
    delivery only when a publish attempt failed (``excuse`` says which, see
    :func:`duplicate_excuse`); None: nothing failed, so no copy is explained."""
    t = _topic(records)
    anomalies: list[Anomaly] = []
    for (oid, typ), eids in t.ids.items():
        if len(eids) > 1:
            anomalies.append(Anomaly("duplicate-event", f"order {oid}: {typ} was published under "
                                     f"{len(eids)} different event ids ({', '.join(eids[:3])}); "
                                     f"a consumer cannot tell they are the same change",
                                     data={"order": oid, "event_ids": eids}))
    if excuse is None:
        for eid, where in t.copies.items():
            if len(where) > 1:
                anomalies.append(Anomaly("duplicate-event", f"event {eid} is on the topic "
                                         f"{len(where)} times ({where[:3]}), but no publish "
                                         f"attempt failed in this run: every relay run returned "
                                         f"in time and no relay died, so nothing needed a second "
                                         f"copy", data={"event_id": eid}))
    return verdict("stable-event-id", anomalies,
                   duplicates=sum(len(w) - 1 for w in t.copies.values()), excuse=excuse or "")


def check_outbox(records: Sequence[Any], orders: Mapping[str, OrderTruth | Mapping[str, Any]], *,
                 attempted: Iterable[str] = (), allow_duplicates: bool = True,
                 complete: bool = True) -> Verdict:
    """The topic against the committed orders: no-lost-event, no-phantom-event, per-order-order
    and stable-event-id at once (``allow_duplicates``: a failure explains copies)."""
    truth = _truth(orders)
    recs = list(records)
    parts = [check_no_phantom_event(recs, truth, attempted=attempted),
             check_no_lost_event(recs, truth, complete=complete), check_order(recs),
             check_event_ids(recs, excuse="a fault" if allow_duplicates else None)]
    t = _topic(recs)
    return merge(parts, "outbox", records=len(t.recs), orders=len(truth),
                 duplicates=sum(len(w) - 1 for w in t.copies.values()))


def merge(parts: Sequence[Verdict], checker: str, **stats: Any) -> Verdict:
    """One verdict from several: invalid if any is, unknown if any is and none is invalid."""
    anomalies = tuple(a for p in parts for a in p.anomalies)
    if anomalies or any(p.valid is False for p in parts):
        return Verdict(False, anomalies, checker, stats)
    if any(p.valid != True for p in parts):  # noqa: E712 - "unknown" is truthy
        return Verdict("unknown", (), checker, stats)
    return Verdict(True, (), checker, stats)


# -- the history: what the service acknowledged, how the relays ran ----------------------------
def _ops(history: Any, f: str) -> list:
    return [op for op in history.operations() if op.f == f]


def acknowledged(history: Any) -> dict[str, str]:
    """order id -> "placed" | "cancelled": the changes the service said it made (a call that
    returned)."""
    out: dict[str, str] = {}
    for op in history.operations():
        if op.f in ("place_order", "cancel_order") and op.type == "ok":
            oid = op.arg(0, "order_id")
            if isinstance(oid, str):
                out[oid] = "placed" if op.f == "place_order" else "cancelled"
    return out


def attempted(history: Any) -> set[str]:
    return {op.arg(0, "order_id") for op in _ops(history, "place_order")
            if isinstance(op.arg(0, "order_id"), str)}


@dataclass(frozen=True)
class RelayRun:
    """One ``run_once`` call: who, when, how it ended, and how long it took that counts against
    its bound (time under a delay of its own database link, or paused, does not)."""

    process: str
    start: float
    end: float
    type: str            # ok | fail | info (died, timed out)
    timeout_s: float
    net_s: float
    events: tuple[int, ...]


def _overlap(a0: float, a1: float, windows: Iterable[tuple[float, float]]) -> float:
    spans = sorted((max(a0, s), min(a1, e)) for s, e in windows if e > a0 and s < a1)
    total, cur0, cur1 = 0.0, None, None
    for s, e in spans:
        if cur1 is None or s > cur1:
            if cur1 is not None:
                total += cur1 - cur0
            cur0, cur1 = s, e
        else:
            cur1 = max(cur1, e)
    if cur1 is not None:
        total += cur1 - cur0
    return total


def relay_runs(history: Any, links: Mapping[str, str] | None = None) -> list[RelayRun]:
    """Every ``run_once`` of the history. ``links``: relay worker -> the name of its own
    Postgres link (a fault target); faults that delay that link or pause the worker are taken
    out of the run's time."""
    links = dict(links or {})
    end_of_history = max((e.time for e in history.events), default=0.0)
    windows = history.fault_windows()
    out = []
    for op in _ops(history, "run_once"):
        end = op.end if op.end is not None else end_of_history
        own = {links.get(op.process), op.process} - {None}
        delays = [(w.start, w.end if w.end is not None else end_of_history) for w in windows
                  if w.target in own and (w.name in _DELAYS or w.name == "pause")]
        timeout = op.arg(1, "timeout_s", 5.0)
        timeout = float(timeout) if isinstance(timeout, (int, float)) else 5.0
        net = (end - op.start) - _overlap(op.start, end, delays)
        out.append(RelayRun(op.process, op.start, end, op.type, timeout, net, tuple(op.events)))
    return out


def duplicate_excuse(history: Any, links: Mapping[str, str] | None = None) -> str | None:
    """Why a second copy of an event may be on the topic, or None when nothing explains one.

    At-least-once comes from a publish attempt whose outcome the relay could not know: a
    ``run_once`` that did not return (the relay died, was killed, raised), or one whose wait for
    the broker ran out (it took its whole ``timeout_s``, not counting delays of its own
    database link)."""
    for run in relay_runs(history, links):
        if run.type != "ok":
            return f"{run.process}.run_once did not return normally at t={run.start:.2f} s"
        if run.net_s >= 0.9 * run.timeout_s:
            return (f"{run.process}.run_once at t={run.start:.2f} s used its whole timeout_s "
                    f"({run.timeout_s:g} s): some records may have landed unacknowledged")
    return None


# -- relay-returns-in-time --------------------------------------------------------------------
def check_relay_bound(history: Any, links: Mapping[str, str] | None = None,
                      slack_s: float = SLACK_S) -> Verdict:
    """Every ``run_once`` returned within ``timeout_s + slack_s`` seconds, whatever the broker or
    another relay did; only delays of its own database link (and pauses of its own process)
    are not held against it."""
    anomalies = []
    for run in relay_runs(history, links):
        if run.net_s > run.timeout_s + slack_s:
            how = "returned" if run.type == "ok" else "was still running (then stopped)"
            anomalies.append(Anomaly("slow-relay", f"{run.process}.run_once(timeout_s="
                                     f"{run.timeout_s:g}) {how} after {run.net_s:.1f} s, although "
                                     f"its own database answered: run_once must return within "
                                     f"about timeout_s, whether the broker answers or not and "
                                     f"whatever another relay holds", events=run.events,
                                     data={"relay": run.process, "seconds": round(run.net_s, 2)}))
    return verdict("relay-returns-in-time", anomalies)


# -- relay-counts-truly -------------------------------------------------------------------------
def check_counts(records: Sequence[Any], history: Any, complete: bool = True) -> Verdict:
    """Every ``run_once`` that returned said how many events it published in that call: an int,
    0 when nothing was waiting. What the runs counted adds up to no more than the records on the
    topic, copies included: each counted event was acknowledged by the broker, so it is there
    (one acknowledged twice is there twice). A run whose wait ran out may publish records it
    does not count (they landed after it gave up), never the other way round. The grader's relay
    loop trusts the count: a run that says "nothing was waiting" is not asked again."""
    anomalies = []
    total, counted = 0, []
    for op in _ops(history, "run_once"):
        if op.type != "ok":
            continue
        n = op.result
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            anomalies.append(Anomaly(
                "miscounted-run", f"{op.process}.run_once returned {n!r}; it must return how "
                f"many events it published in this call, an int (0 when nothing was waiting)",
                events=op.events, data={"relay": op.process, "returned": repr(n)}))
            continue
        total += n
        if n:
            counted.append(op)
    on_topic = len(records)
    if complete and not anomalies and total > on_topic:
        anomalies.append(Anomaly(
            "miscounted-run", f"the relays' run_once calls say they published {total} events "
            f"together, but the topic holds {on_topic} records: a run counted events the broker "
            f"never acknowledged (count only delivery reports without an error, and return 0 "
            f"when nothing was waiting)", events=tuple(e for op in counted[-20:]
                                                       for e in op.events),
            data={"counted": total, "on_topic": on_topic}))
    return verdict("relay-counts-truly", anomalies, counted=total, on_topic=on_topic)


# -- relay-publishes-promptly -----------------------------------------------------------------
def check_prompt(records: Sequence[Any], orders: Mapping[str, Any], runs: int,
                 complete: bool = True) -> Verdict:
    """After ``runs`` relay runs with the broker answering (as many as one order has events,
    plus one), every committed change is on the topic: an event leaves when the relay next
    runs, a later event of the same order on the run after."""
    v = check_no_lost_event(records, orders, complete=complete, kind="late-event")
    return Verdict(v.valid, tuple(a for a in v.anomalies if a.kind == "late-event"),
                   "relay-publishes-promptly", {**v.stats, "runs": runs})


# -- service-available ------------------------------------------------------------------------
def check_available(history: Any, expected: Iterable[tuple[str, str]]) -> Verdict:
    """Each ``(method, order_id)`` in ``expected`` -- a valid request the grader made while
    Postgres answered -- returned normally (its first call: a later repeat of it is invalid)."""
    want = set(expected)
    last: dict[tuple[str, str], Any] = {}
    for op in history.operations():
        key = (op.f, op.arg(0, "order_id"))
        if key in want:
            last.setdefault(key, op)
    anomalies = []
    for f, oid in sorted(want):
        op = last.get((f, oid))
        if op is None or op.type == "ok":
            continue
        err = op.result if isinstance(op.result, dict) else {}
        anomalies.append(Anomaly("unavailable", f"{f}({oid!r}) failed ({err.get('error', '?')}: "
                                 f"{str(err.get('message', ''))[:120]}) although the request was "
                                 f"valid and Postgres answered", events=tuple(op.events),
                                 data={"order": oid}))
    return verdict("service-available", anomalies, requests=len(want))


def judge_outbox(records: Sequence[Any], orders: Mapping[str, Any], history: Any, *,
                 links: Mapping[str, str] | None = None, complete: bool = True,
                 allow_duplicates: bool | None = None) -> Verdict:
    """Every topic-side guarantee over the whole run: the topic and the database against each
    other and against the history (what the service acknowledged, which orders were attempted,
    whether a failed publish explains a copy, whether each relay run kept its bound).
    ``allow_duplicates``: None judges it from the history; False/True forces it."""
    truth = _truth(orders)
    recs = list(records)
    if allow_duplicates is None:
        excuse = duplicate_excuse(history, links)
    else:
        excuse = "forced" if allow_duplicates else None
    parts = [check_no_phantom_event(recs, truth, attempted=attempted(history)),
             check_no_lost_event(recs, truth, acknowledged=acknowledged(history),
                                 complete=complete),
             check_order(recs), check_event_ids(recs, excuse=excuse),
             check_relay_bound(history, links), check_counts(recs, history, complete)]
    t = _topic(recs)
    return merge(parts, "outbox", records=len(t.recs), orders=len(truth),
                 duplicates=sum(len(w) - 1 for w in t.copies.values()), excuse=excuse or "")


# -- applied-once -----------------------------------------------------------------------------
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
