"""Lab 02's test world, shared by the hidden tests, the public ones (the ``world`` fixture) and the
notebook (``World``).

One test gets: the lab's schema in its own database; a private tansu broker behind a fault proxy
(the broker advertises the proxy's port, so every client -- the learner's and the grader's -- goes
through it and a ``partition`` cuts them all); a topic with three partitions; helpers that spawn
the learner's ``OrderService`` / ``Relay`` / ``OrderProjection`` in sandboxed workers, drain the
relays, read the topic to its end and read the database's truth with the admin URL.

Faults go through the world's nemesis (the test's ``nemesis`` fixture, or the notebook
experiment's): ``world.crash(worker, "after_commit")`` arms a commit crash point,
``nemesis.inject("partition", world.kafka)`` cuts the broker off, and
``nemesis.inject("redeliver", replay, events=2)`` makes a :class:`Replay` deliver events again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from rig import faults as _faults  # noqa: F401  (registers "redeliver" for a notebook)
from rig.checkers import OrderTruth, check_outbox, check_projection
from rig.outbox import TopicRead, create_topic, read_topic
from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import call_value

CONNECT = "rig.outbox:connector"
PARTITIONS = 3


def schema_path() -> Path:
    """The lab's schema.sql, beside this rig (grader side only: workers never read it)."""
    return Path(__file__).resolve().parent.parent / "schema.sql"


def prepare(ns: Any) -> None:
    """Apply schema.sql to the namespace's database and let the learner's role use every table."""
    role = conninfo_to_dict(ns.pg_url).get("user")
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        conn.execute(schema_path().read_text())
        if role and role != conninfo_to_dict(ns.pg_admin_url).get("user"):
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                                 "public TO {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}")
                         .format(sql.Identifier(role)))


@dataclass
class Ledger:
    """What the grader asked for and what the service acknowledged."""

    attempted: list[str] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)   # order id -> placed|cancelled

    def ack(self, order_id: str, status: str) -> None:
        self.acknowledged[order_id] = status


class KafkaBehindProxy:
    """A private tansu whose only way in is a fault proxy. As a fault target it is ``"kafka"``:
    ``nemesis.inject("partition", world.kafka)`` holds every byte to and from the broker."""

    name = "kafka"

    def __init__(self, seed: int) -> None:
        from splitbrain.faults.proxy import FaultProxy
        from splitbrain.services import spawn_kafka
        from splitbrain.services.procs import free_port

        port = free_port()
        self.proxy = FaultProxy(f"kafka-{seed}-{port}", seed=seed)
        self.port = self.proxy.start(("127.0.0.1", port))
        try:
            self.broker = spawn_kafka(advertise_port=self.port, port=port)
        except BaseException:
            self.proxy.stop()
            raise
        self.bootstrap = f"127.0.0.1:{self.port}"

    def blackhole(self, timeout_ms: int = 500):
        """The ``partition`` fault: bytes are held, and each connection closes ``timeout_ms``
        after its bytes stopped. Healing it removes the toxic."""
        return self.proxy.blackhole(timeout_ms=timeout_ms)

    def wait_disconnected(self, deadline_s: float = 10.0) -> None:
        """Wait until every connection through the proxy has closed. Like Toxiproxy's, the proxy
        delivers the bytes it held on a connection that is still open when a partition heals;
        waiting for the partition to close them first drops what dead processes had sent, as a
        real network drops it."""
        end = time.monotonic() + deadline_s
        while self.proxy.connections() and time.monotonic() < end:
            time.sleep(0.02)
        if self.proxy.connections():
            raise RuntimeError(f"{self.proxy.connections()} connection(s) to the broker "
                               f"stayed open through the partition for {deadline_s} s")

    def close(self) -> None:
        try:
            self.broker.stop()
        finally:
            self.proxy.stop()


class Crashable:
    """A worker as the kit's ``crash`` fault sees it. A crash point that fired has killed the
    process: then there is nothing left to disarm (a restarted process starts unarmed), so
    healing the fault only records its end."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.name = worker.name

    def arm_crash(self, point: str, after: int = 0) -> None:
        self.worker.arm_crash(point, after)

    def disarm_crash(self, point: str) -> None:
        from splitbrain.sandbox import WorkerDied
        if self.worker.alive:
            try:
                self.worker.disarm_crash(point)
            except WorkerDied:
                pass


class Replay:
    """The grader as a consumer group's fetcher: ``events`` in topic order, from a position (the
    group's committed offset) that the ``redeliver`` fault moves back.

    ``play(handler)`` delivers every event from the position on, committing the offset after
    each one; ``current`` / ``ack()`` do it one event at a time. As a fault target it is named
    ``name`` (the consumer it feeds)."""

    def __init__(self, events: Iterable[Any], name: str = "consumer") -> None:
        self.events = list(events)
        self.pos = 0
        self.name = name

    @property
    def done(self) -> bool:
        return self.pos >= len(self.events)

    @property
    def current(self) -> Any:
        return self.events[self.pos]

    def ack(self) -> None:
        """The event at the position was handled: commit the offset past it."""
        self.pos += 1

    def rewind(self, events: int) -> None:
        """Go back ``events`` events: they are delivered again (the ``redeliver`` fault)."""
        self.pos = max(0, self.pos - int(events))

    def play(self, handler: Callable[[Any], Any]) -> int:
        """Deliver the events from the position to the end; returns how many."""
        n = 0
        while not self.done:
            handler(self.current)
            self.ack()
            n += 1
        return n


class World:
    """One test's lab 02 world. ``app()``, ``relay()``, ``projection()`` spawn workers; faults go
    through ``nemesis`` (the test's, or a new one bound to ``history``)."""

    def __init__(self, ns, spawn, history, seed: int, memory_mb: int = 768,
                 nemesis: Any = None) -> None:
        from splitbrain.faults import Nemesis
        from splitbrain.sandbox import Limits
        self.ns, self._spawn, self.history, self.seed = ns, spawn, history, seed
        self.nemesis = nemesis if nemesis is not None else Nemesis(history, seed=seed)
        self.limits = Limits(memory_mb=max(memory_mb, 768), call_timeout_s=20)
        prepare(ns)
        self.kafka = KafkaBehindProxy(seed)
        self.topic = ns.topic("orders")
        create_topic(self.kafka.bootstrap, self.topic, PARTITIONS)
        self.ledger = Ledger()
        self.workers: dict[str, Any] = {}

    # -- workers ------------------------------------------------------------------------------
    def worker(self, name: str, pg_url: str | None = None):
        res = {"kafka_bootstrap": self.kafka.bootstrap}
        if pg_url:
            res["pg_url"] = pg_url
        w = self._spawn(name, resources=res, limits=self.limits)
        self.workers[name] = w
        return w

    def new(self, w, cls: str):
        from splitbrain.sandbox import Ref
        if cls == "OrderProjection":
            return w.new(cls, Ref(CONNECT))
        return w.new(cls, Ref(CONNECT), self.kafka.bootstrap, self.topic)

    def app(self, name: str = "app", pg_url: str | None = None):
        w = self.worker(name, pg_url)
        return w, self.new(w, "OrderService")

    def relay(self, name: str = "relay", pg_url: str | None = None):
        w = self.worker(name, pg_url)
        return w, self.new(w, "Relay")

    def projection(self, name: str = "consumer"):
        w = self.worker(name)
        return w, self.new(w, "OrderProjection")

    # -- faults -------------------------------------------------------------------------------
    def crash(self, w, point: str = "after_commit", after: int = 0):
        """Arm the commit crash point ``point`` of worker ``w`` (the ``crash`` fault): the worker
        dies at the ``after + 1``-th COMMIT that passes it. ``heal()`` the returned fault once the
        call that may have crashed is over."""
        return self.nemesis.inject("crash", Crashable(w), point=point, after=after)

    def restart(self, w) -> None:
        """A new process takes over from a worker that died (the ``restart`` fault)."""
        self.nemesis.inject("restart", w)

    # -- driving ------------------------------------------------------------------------------
    def place(self, svc, order_id: str, customer: str, amount: int) -> bool:
        """Place an order; True when the service acknowledged it."""
        from splitbrain.sandbox import SandboxError
        self.ledger.attempted.append(order_id)
        try:
            svc.place_order(order_id, customer, amount)
        except SandboxError:
            return False
        self.ledger.ack(order_id, "placed")
        return True

    def cancel(self, svc, order_id: str) -> bool:
        from splitbrain.sandbox import SandboxError
        try:
            svc.cancel_order(order_id)
        except SandboxError:
            return False
        self.ledger.ack(order_id, "cancelled")
        return True

    def shut_down(self, obj) -> None:
        """A graceful stop: call the object's ``close()`` if it has one (a fire-and-forget
        producer gets to flush here, as it would on a clean shutdown)."""
        from splitbrain.sandbox import SandboxError
        try:
            obj.close()
        except SandboxError:
            pass

    def drain(self, relays: list, deadline_s: float = 20.0, timeout_s: float = 2.0,
              quiet_rounds: int = 3) -> int:
        """Call ``run_once`` on each relay in turn until ``quiet_rounds`` rounds in a row publish
        nothing (errors count as "not done": the relay is retried until the deadline). Returns
        the total.

        One empty round is not proof that nothing is pending: a relay whose producer has only
        just connected (a new process after a partition, a slow machine) can see its first
        flush time out and publish nothing. A relay with nothing to do answers an empty round at
        once, so asking again costs it nothing."""
        from splitbrain.sandbox import RemoteError
        total, quiet, end = 0, 0, time.monotonic() + deadline_s
        while time.monotonic() < end:
            round_total, errors = 0, 0
            for r in relays:
                try:
                    n = r.run_once(500, timeout_s)
                except RemoteError:
                    errors += 1
                    continue
                round_total += int(n) if isinstance(n, int) and not isinstance(n, bool) else 0
            total += round_total
            quiet = quiet + 1 if round_total == 0 and errors == 0 else 0
            if quiet >= quiet_rounds:
                break
        return total

    # -- observing ----------------------------------------------------------------------------
    def truth(self) -> dict[str, OrderTruth]:
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            rows = conn.execute("SELECT id, customer, amount, status FROM orders").fetchall()
        return {r[0]: OrderTruth(r[1], r[2], r[3]) for r in rows}

    def read(self) -> TopicRead:
        got = read_topic(self.kafka.bootstrap, self.topic)
        inv = self.history.invoke("grader", "read-topic", call_value([], {"topic": self.topic}))
        self.history.complete(inv, "ok" if got.complete else "info",
                              {"records": len(got.records), "complete": got.complete})
        return got

    def check(self, allow_duplicates: bool = True) -> Verdict:
        """Topic vs database, plus every acknowledged change being in the database."""
        truth = self.truth()
        got = self.read()
        v = check_outbox(got.records, truth, attempted=self.ledger.attempted,
                         allow_duplicates=allow_duplicates, complete=got.complete)
        v = self.locate(v)
        lost = []
        for oid, status in self.ledger.acknowledged.items():
            o = truth.get(oid)
            if o is None or (status == "cancelled" and o.status != "cancelled"):
                lost.append(Anomaly("lost-order", f"{'place' if status == 'placed' else 'cancel'}"
                                    f"_order({oid!r}) returned, but the database does not have "
                                    f"it: the service acknowledged a change it did not commit",
                                    data={"order": oid}))
        if not lost:
            return v
        return self.locate(Verdict(False, tuple(lost) + v.anomalies, "outbox", v.stats))

    def locate(self, v: Verdict) -> Verdict:
        """Point each anomaly about an order at the calls that touched that order, so that the
        pictures outline them."""
        if v.valid is True:
            return v
        where: dict[str, list[int]] = {}
        for op in self.history.operations():
            oid = op.arg(0, "order_id")
            if isinstance(oid, str):
                where.setdefault(oid, []).extend(op.events)
        out = []
        for a in v.anomalies:
            oid = a.data.get("order") if isinstance(a.data, dict) else None
            out.append(replace(a, events=tuple(where.get(oid, ()))) if oid in where else a)
        return replace(v, anomalies=tuple(out))

    def read_model(self) -> tuple[dict, dict]:
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            view = {r[0]: {"customer": r[1], "amount": r[2], "status": r[3]} for r in
                    conn.execute("SELECT order_id, customer, amount, status FROM order_view")}
            stats = {r[0]: {"placed": r[1], "cancelled": r[2], "spent": r[3]} for r in
                     conn.execute("SELECT customer, placed, cancelled, spent FROM customer_stats")}
        return view, stats

    def check_projection(self, truth: dict[str, OrderTruth]) -> Verdict:
        view, stats = self.read_model()
        return check_projection(view, stats, truth)

    def wait_for(self, cond: Callable[[], bool], deadline_s: float, what: str) -> bool:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.02)
        self.history.append("grader", "info", "wait", {"what": what, "deadline_s": deadline_s})
        return False

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.ns.pg_admin_url, autocommit=True)

    def close(self) -> None:
        """Heal what is still injected, then stop the broker and its proxy."""
        try:
            self.nemesis.heal_all()
        finally:
            self.kafka.close()


def liveness(message: str) -> Verdict:
    return verdict("liveness", [Anomaly("unavailable", message)])


@pytest.fixture(name="world")
def world_fixture(ns, spawn, history, seed, lab, nemesis):
    """The ``world`` fixture of the public tests (``from rig.world import world_fixture``)."""
    w = World(ns, spawn, history, seed, lab.memory_mb, nemesis=nemesis)
    yield w
    w.close()
