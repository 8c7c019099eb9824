"""The world of lab 06, shared by the hidden tests, the public tests and the notebook.

``World`` holds the learner's receiver (``Receiver`` from the component, in a sandboxed worker,
serving HTTP on a port the world picks), the fault proxy every delivery crosses
(``world.link``), the webhook provider (:class:`rig.sender.Sender`) and the payment API
(:class:`rig.payments.Payments`, in this process). It makes orders, sends their events, lets the
provider retry what was never acknowledged once the faults are healed, waits until the receiver
has settled, and judges every guarantee from the tables themselves::

    with World.open(ns, spawn, history, nemesis) as world:
        order = world.order()                       # its three events: created, confirmed, shipped
        with nemesis.fault("latency", "network", ms=800):
            world.send_all(order)
        verdict = world.settle_and_judge()

Targets the nemesis knows by name: ``"network"`` (the proxy), ``"sender"`` (``duplicate``,
``reorder``, ``forged-delivery``, ``replayed-delivery``), ``"payments"`` (``lost-payment-reply``,
``slow-payment``) and ``"receiver"`` (the worker: ``crash``, ``kill``).
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg

from rig import faults as _faults  # noqa: F401  (registers the lab's faults)
from rig.checkers import check_webhooks, deliveries
from rig.payments import Payments
from rig.sender import Event, Sender
from rig.signing import make_secret
from splitbrain.checkers.base import Verdict
from splitbrain.history import History
from splitbrain.truth import MOMENT_S, snapshot, writing

__all__ = ["World", "TABLES_SQL", "COMPONENT_CLASS", "SETTLE_S", "MOMENT_S"]

COMPONENT_CLASS = "Receiver"
SETTLE_S = 3.0
# Anomalies that stay true once seen: a charge the payment API made (its table only grows, and
# the receiver cannot write it), a second shipment committed (the goods left twice), a genuine
# delivery never acknowledged (the history, once the provider has stopped sending); so is a
# forged or replayed delivery that got a 2xx. Settling stops at once on a verdict made only of
# these, instead of waiting out SETTLE_S for a receiver that cannot pass any more.
FINAL = frozenset({"double-charge", "duplicate-effect", "never-acknowledged"})
TABLES_SQL = """
CREATE TABLE IF NOT EXISTS orders (
    id text PRIMARY KEY,
    status text NOT NULL,
    version int NOT NULL,
    amount bigint NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (
    id bigserial PRIMARY KEY,
    order_id text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
GRANT ALL ON orders, shipments TO PUBLIC;
GRANT ALL ON SEQUENCE shipments_id_seq TO PUBLIC;
GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC;
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class World:
    admin_url: str
    payments: Payments
    link: Any
    sender: Sender
    spawn: Callable[..., Any]
    history: History
    nemesis: Any
    port: int
    secret: str
    seed: int = 0
    sent: dict[str, Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()
        self.worker: Any = None
        self.receiver: Any = None
        self.nemesis.add_target("network", self.link)
        self.nemesis.add_target("sender", self.sender)
        self.nemesis.add_target("payments", self.payments)

    @classmethod
    def open(cls, ns: Any, spawn: Callable[..., Any], history: History, nemesis: Any = None,
             seed: int = 0, timeout_s: float = 0.5) -> "World":
        if nemesis is None:
            from splitbrain.faults import Nemesis
            nemesis = Nemesis(history)
        from splitbrain.faults.proxy import FaultProxy
        with psycopg.connect(ns.pg_admin_url, autocommit=True) as c:
            c.execute(TABLES_SQL)
        payments = Payments(ns.pg_admin_url, history).start()
        payments.prepare()
        port = _free_port()
        link = FaultProxy("network", seed=seed)
        link.start(("127.0.0.1", port))
        secret = make_secret(str(seed))
        sender = Sender(link.host, link.port, secret, history, seed=seed, timeout_s=timeout_s)
        w = cls(ns.pg_admin_url, payments, link, sender, spawn, history, nemesis, port, secret,
                seed)
        try:
            w.start_receiver()
        except BaseException:
            w.close()
            raise
        return w

    # -- the receiver --------------------------------------------------------------------------
    def start_receiver(self) -> None:
        """Start (or, after a crash, start again) the learner's receiver on the world's port."""
        from splitbrain.sandbox import Ref
        if self.worker is None:
            self.worker = self.spawn("receiver")
            self.nemesis.add_target("receiver", self.worker)
        elif not self.worker.alive:
            self.worker.restart()
        self.receiver = self.worker.new(COMPONENT_CLASS, Ref("rig.db:connector"),
                                        self.payments.url, self.secret)
        self.receiver.serve(self.port)

    def died(self, timeout: float) -> bool:
        """Wait until the receiver's process is dead (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self.worker.alive:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def restart_receiver(self) -> None:
        """The receiver's process died (a crash): start a new one, as its supervisor would."""
        self.died(5)
        self.start_receiver()

    # -- events --------------------------------------------------------------------------------
    def order(self, amount: int | None = None) -> list[Event]:
        """A new order's events, in the order the provider makes them (versions 1, 2, 3)."""
        with self._lock:
            self._n += 1
            n = self._n
        oid = f"ord_{n}"
        amount = amount if amount is not None else 1000 + n
        return [Event(f"evt_{oid}_{v}", t, oid, v, amount) for v, t in
                ((1, "order.created"), (2, "order.confirmed"), (3, "order.shipped"))]

    def send(self, event: Event) -> None:
        self.sent[event.id] = event
        self.sender.send(event)

    def send_all(self, events: list[Event]) -> None:
        for e in events:
            self.send(e)

    def wait_applied(self, event: Event, timeout: float = MOMENT_S) -> bool:
        """Wait until the order holds ``event``'s version or a newer one (a receiver that
        acknowledges first applies later) and the provider holds an acknowledgement for it (on
        a loaded machine every try may have timed out: it redelivers, as a provider would).
        True once both hold, False at the deadline. Both matter: an event left unacknowledged
        is redelivered when the test settles, after whatever the test sends next, and would
        then undo (or redo) what the test meant to show."""
        def applied() -> bool:
            with psycopg.connect(self.admin_url, autocommit=True) as c:
                row = c.execute("SELECT version FROM orders WHERE id = %s",
                                (event.order,)).fetchone()
            return row is not None and int(row[0]) >= event.version
        end = time.monotonic() + timeout
        while True:
            if not self.sender.acked.get(event.id):
                self.sender.redeliver(event)
            if self.sender.acked.get(event.id) and applied():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)

    # -- settling and judging -------------------------------------------------------------------
    def tables(self) -> tuple[dict, list, list]:
        """The orders, the shipments and the payment API's charges, read in one snapshot: read
        one by one, a receiver's COMMIT falling between two reads would show an order's old
        version beside the shipment of its newer one, a state that never existed."""
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            with snapshot(c):
                orders = {i: {"status": s, "version": int(v), "amount": int(a)}
                          for i, s, v, a in c.execute(
                              "SELECT id, status, version, amount FROM orders").fetchall()}
                ships = [r[0] for r in c.execute("SELECT order_id FROM shipments ORDER BY id")]
                charges = self.payments.charges(c)
        return orders, ships, charges

    def writing(self) -> bool:
        """True while a transaction that has written (or locked rows) is open in the lab's
        database: a receiver in the middle of applying something, whose COMMIT is still to
        come."""
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            return writing(c)

    def judge(self) -> Verdict:
        orders, ships, charges = self.tables()
        return check_webhooks(self.history, orders, ships, charges)

    def settle(self, timeout: float = SETTLE_S) -> Verdict:
        """Heal every fault, deliver what the provider still holds, retry every event never
        acknowledged (the provider's later retries), then wait until the tables satisfy every
        guarantee with no write of the receiver's still to commit (a passing state it is about
        to leave is not a pass), or ``timeout`` passed; returns the verdict."""
        self.nemesis.heal_all()
        self.payments.disarm()
        self.sender.flush()
        if self.worker is not None and not self.worker.alive:
            self.restart_receiver()
        for _ in range(3):
            missing = [e for e in self.sent.values() if not self.sender.acked.get(e.id)]
            if not missing:
                break
            for e in missing:
                self.sender.redeliver(e)
        deadline = time.monotonic() + timeout
        while True:
            busy = self.writing()           # before the snapshot: a write begun after it is
            v = self.judge()                # seen on the next round
            if (v.ok and not busy) or time.monotonic() >= deadline or self._final(v):
                return v
            time.sleep(0.05)

    def _final(self, v: Verdict) -> bool:
        """True when no later moment can make ``v`` pass: every anomaly in it is a fact that no
        longer changes (the provider has stopped sending, and the payment API is answering no
        request), so waiting out the settle time would only repeat it."""
        if self.payments.in_flight or not v.anomalies:
            return False
        acked = {(d.order, d.kind) for d in deliveries(self.history)
                 if d.kind != "genuine" and d.acked}
        return all(a.kind in FINAL or (a.kind == "forged-accepted" and
                                       (a.data.get("order"), a.data.get("kind")) in acked)
                   for a in v.anomalies)

    # -- showing (notebook) ------------------------------------------------------------------------
    def show_tables(self) -> str:
        orders, ships, charges = self.tables()
        lines = ["orders:"] + [f"  {o}: {r['status']} (version {r['version']}), amount "
                               f"{r['amount']}" for o, r in sorted(orders.items())]
        lines += ["shipments: " + (", ".join(ships) or "(none)")]
        lines += ["charges:"] + [f"  #{c['id']} {c['order']} {c['amount']} key="
                                 f"{c['key'] or '(none)'}" for c in charges]
        return "\n".join(lines)

    def close(self) -> None:
        try:
            self.nemesis.heal_all()
        except Exception:  # noqa: BLE001
            pass
        for f in (self.link.stop, self.payments.stop):
            try:
                f()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
