"""Saga atomicity, judged from the participants' own ledgers.

Every saga must end **fully done** (the item reserved, the card charged, the parcel scheduled, each
exactly once) or **fully compensated** (every effect undone, each exactly once, nothing undone that
never happened). The checker reads what the participants recorded, not what the orchestrator said,
adds the effects up per saga, and names what is wrong:

* ``dangling-saga``: some effects remain and others do not (charged, nothing shipped, no refund);
* ``double-charge`` / ``double-reservation`` / ``double-shipment``: a forward step done twice;
* ``double-refund`` / ``double-release`` / ``double-cancel``: more undone than was done;
* ``abandoned-saga``: a saga that could have completed was compensated instead;
* ``wrong-outcome``: the saga ended otherwise than required, or than the orchestrator reported;
* ``unknown-saga``: effects recorded under a saga id that was never booked;
* ``money-not-conserved`` / ``stock-not-conserved``: the totals do not add up to the done sagas.

Input is plain data: ledger rows (dicts or ``rig.saga_server.LedgerRow``: ``service, op, key,
saga_id, args, status``), the orders by saga id (``sku, qty, account, amount, address``), what each
saga must end as (``"done"``, ``"compensated"`` or ``"either"``), optionally what the orchestrator
reported, and the history whose participant calls carry the idempotency keys (for the evidence).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from splitbrain.checkers.base import Anomaly, Verdict, get, verdict
from splitbrain.history import History

__all__ = ["check_saga_ledger", "SagaSummary", "summarize", "effects", "STEPS"]

#: the lab's forward steps, in order
STEPS = ("reserve", "charge", "schedule")

OUTCOMES = ("done", "compensated", "either")
_FORWARD = {"reserve": "release", "charge": "refund", "schedule": "cancel"}
_BACKWARD = {v: k for k, v in _FORWARD.items()}
_DOUBLE_FWD = {"reserve": "double-reservation", "charge": "double-charge",
               "schedule": "double-shipment"}
_DOUBLE_BACK = {"release": "double-release", "refund": "double-refund", "cancel": "double-cancel"}


@dataclass
class SagaSummary:
    """What the ledgers say about one saga: counts of successful calls per op, and net effects."""

    saga_id: str
    counts: Counter = field(default_factory=Counter)       # op -> ok calls
    stock: Counter = field(default_factory=Counter)        # sku -> qty taken (net)
    money: Counter = field(default_factory=Counter)        # account -> amount taken (net)
    parcels: Counter = field(default_factory=Counter)      # address -> shipments (net)
    keys: list[str] = field(default_factory=list)

    def state(self, order: Mapping[str, Any]) -> str:
        """"done", "compensated" or "dangling"."""
        stock = {k: v for k, v in self.stock.items() if v}
        money = {k: v for k, v in self.money.items() if v}
        parcels = {k: v for k, v in self.parcels.items() if v}
        if not stock and not money and not parcels:
            return "compensated"
        if (stock == {order["sku"]: order["qty"]} and money == {order["account"]: order["amount"]}
                and parcels == {order["address"]: 1}):
            return "done"
        return "dangling"

    def describe(self) -> str:
        parts = []
        for sku, q in sorted(self.stock.items()):
            if q:
                parts.append(f"{q} {sku} reserved" if q > 0 else f"{-q} {sku} released too many")
        for acc, m in sorted(self.money.items()):
            if m:
                parts.append(f"{acc} charged {m}" if m > 0 else f"{acc} refunded {-m} too much")
        for addr, n in sorted(self.parcels.items()):
            if n:
                parts.append(f"{n} parcel(s) to {addr} scheduled" if n > 0
                             else f"{-n} cancellation(s) too many to {addr}")
        return ", ".join(parts) or "no effect left"


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, SagaSummary]:
    """Add up the successful ledger rows per saga."""
    out: dict[str, SagaSummary] = {}
    for r in rows:
        if get(r, "status") != "ok":
            continue
        sid = get(r, "saga_id")
        s = out.setdefault(sid, SagaSummary(sid))
        op, a = get(r, "op"), get(r, "args")
        s.counts[op] += 1
        s.keys.append(get(r, "key"))
        sign = 1 if op in _FORWARD else -1
        if op in ("reserve", "release"):
            s.stock[a["sku"]] += sign * a["qty"]
        elif op in ("charge", "refund"):
            s.money[a["account"]] += sign * a["amount"]
        else:
            s.parcels[a["address"]] += sign
    return out


def _evidence(history: History | None, keys: Iterable[str]) -> tuple[int, ...]:
    """The history events of the participant calls made with these idempotency keys (a
    participant records its calls with named arguments only: ``key``, ``saga_id``, ...)."""
    if history is None:
        return ()
    keys = set(keys)
    return tuple(sorted(i for op in history.operations() if op.kwargs.get("key") in keys
                        for i in op.events))


def check_saga_ledger(rows: Iterable[Mapping[str, Any]], orders: Mapping[str, Mapping[str, Any]],
                      expected: Mapping[str, str] | None = None,
                      reported: Mapping[str, str] | None = None,
                      history: History | None = None) -> Verdict:
    """Judge every booked saga from the ledgers; see the module docstring."""
    expected = dict(expected or {})
    reported = dict(reported or {})
    for sid, want in expected.items():
        if want not in OUTCOMES:
            raise ValueError(f"expected outcome of saga {sid!r} must be one of {OUTCOMES}, "
                             f"got {want!r}")
        if sid not in orders:
            raise ValueError(f"expected outcome given for saga {sid!r}, which is not in orders")
    sums = summarize(rows)
    anomalies: list[Anomaly] = []
    states: dict[str, str] = {}
    for sid, order in orders.items():
        s = sums.get(sid, SagaSummary(sid))
        ev = _evidence(history, s.keys)
        for op, kind in _DOUBLE_FWD.items():
            if s.counts[op] > 1:
                anomalies.append(Anomaly(kind, f"saga {sid}: {op} done {s.counts[op]} times "
                                               f"(once is the most a saga may do it)", ev,
                                         {"saga_id": sid, "op": op, "count": s.counts[op]}))
        for op, kind in _DOUBLE_BACK.items():
            fwd = _BACKWARD[op]
            if s.counts[op] > s.counts[fwd]:
                anomalies.append(Anomaly(kind, f"saga {sid}: {op} done {s.counts[op]} times for "
                                               f"{s.counts[fwd]} {fwd}(s): a compensation "
                                               f"repeated or undoing what never happened", ev,
                                         {"saga_id": sid, "op": op, "count": s.counts[op],
                                          "forward": s.counts[fwd]}))
        state = s.state(order)
        states[sid] = state
        if state == "dangling":
            anomalies.append(Anomaly("dangling-saga", f"saga {sid} stopped halfway: "
                                                      f"{s.describe()}", ev,
                                     {"saga_id": sid, "left": s.describe()}))
            continue
        want = expected.get(sid, "either")
        if want == "done" and state == "compensated":
            anomalies.append(Anomaly("abandoned-saga", f"saga {sid} could complete (nothing "
                                                       f"refused it) but ended compensated", ev,
                                     {"saga_id": sid}))
        elif want == "compensated" and state == "done":
            anomalies.append(Anomaly("wrong-outcome", f"saga {sid} had to be compensated but "
                                                      f"ended done", ev, {"saga_id": sid}))
        said = reported.get(sid)
        if said is not None and said != state:
            anomalies.append(Anomaly("wrong-outcome", f"saga {sid}: the orchestrator answered "
                                                      f"{said!r} but the participants show "
                                                      f"{state!r}", ev,
                                     {"saga_id": sid, "reported": said, "actual": state}))
    for sid in sorted(set(sums) - set(orders)):
        anomalies.append(Anomaly("unknown-saga", f"effects recorded for saga {sid!r}, which was "
                                                 f"never booked: {sums[sid].describe()}",
                                 _evidence(history, sums[sid].keys), {"saga_id": sid}))
    done = [sid for sid, st in states.items() if st == "done"]
    money_taken = sum(sum(s.money.values()) for s in sums.values())
    stock_taken = sum(sum(s.stock.values()) for s in sums.values())
    money_due = sum(orders[sid]["amount"] for sid in done)
    stock_due = sum(orders[sid]["qty"] for sid in done)
    if money_taken != money_due:
        anomalies.append(Anomaly("money-not-conserved", f"customers paid {money_taken} in total "
                                                        f"for {len(done)} done saga(s) worth "
                                                        f"{money_due}", (),
                                 {"taken": money_taken, "due": money_due}))
    if stock_taken != stock_due:
        anomalies.append(Anomaly("stock-not-conserved", f"{stock_taken} item(s) left the shelf "
                                                        f"for {len(done)} done saga(s) that "
                                                        f"need {stock_due}", (),
                                 {"taken": stock_taken, "due": stock_due}))
    counts = Counter(states.values())
    return verdict("saga-atomicity", anomalies, sagas=len(orders), done=counts["done"],
                   compensated=counts["compensated"], dangling=counts["dangling"],
                   money_taken=money_taken, money_due=money_due, stock_taken=stock_taken,
                   stock_due=stock_due, states=states)



def effects(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The ledger rows as the generic saga checker's effects (``splitbrain.checkers.saga``):
    ``{"saga", "step", "action": "do" | "undo", "key"}`` for every successful call, so that
    ``check_sagas(effects(rows), STEPS)`` and ``viz.saga_graph(STEPS, effects(rows))`` work on them."""
    out = []
    for r in rows:
        if get(r, "status") != "ok":
            continue
        op = get(r, "op")
        fwd = op in _FORWARD
        out.append({"saga": get(r, "saga_id"), "step": op if fwd else _BACKWARD[op],
                    "action": "do" if fwd else "undo", "key": get(r, "key")})
    return out
