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

A worker can get a Postgres link of its own (``world.link("relay-a")``, a fault proxy named
``relay-a-pg`` in the history): a stall on it holds exactly that worker's next request or reply.
``world.stall_points(link, call, ...)`` goes through every boundary between two round trips of a
call on a link; ``world.crash_points(...)`` through every commit of a call, before and after.

``world.check()`` judges every topic-side guarantee of the chapter over the whole run (see
``rig.checkers``): the topic the grader read to its end, the database's rows, and the history
(what the service acknowledged, which relay runs failed, how long each relay run took).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import psycopg
import pytest

from rig import faults as _faults  # noqa: F401  (registers "redeliver" for a notebook)
from rig.checkers import (SLACK_S, OrderTruth, check_available, check_projection, check_prompt,
                          judge_outbox, merge)
from rig.outbox import TopicRead, create_topic, read_topic
from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import call_value
from splitbrain.truth import MOMENT_S

CONNECT = "rig.outbox:connector"
PARTITIONS = 3


def schema_path() -> Path:
    """The lab's schema.sql, beside this rig (grader side only: workers never read it)."""
    return Path(__file__).resolve().parent.parent / "schema.sql"


def prepare(ns: Any) -> None:
    """Apply schema.sql to the namespace's database and let the learner's role use every table."""
    ns.apply_schema(schema_path().read_text())


@dataclass
class Ledger:
    """What the grader asked for and what the service acknowledged."""

    attempted: list[str] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)   # order id -> placed|cancelled

    def ack(self, order_id: str, status: str) -> None:
        self.acknowledged[order_id] = status


class KafkaBehindProxy:
    """A private tansu whose only way in is a fault proxy. As a fault target it is ``"kafka"``:
    ``nemesis.inject("partition", world.kafka)`` holds every byte to and from the broker,
    ``"refuse"`` closes every connection and refuses new ones, ``"stall"`` holds the next request
    (or reply) of whoever talks to the broker.

    A tansu defect the tests design around (besides those ``splitbrain.services.kafka`` lists):
    an idempotent producer that purges records it had queued, once it holds a producer id,
    bumps its epoch, and tansu fences it for good (every later send fails with
    PRODUCER_FENCED, where a real broker accepts the bump). So no test leaves a correct relay
    with records queued when its wait runs out: its timeout outlasts the broker fault, or the
    relay that waits in vain is one that never reached the broker (a new process)."""

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

    def refuse(self):
        """The ``refuse`` fault: open connections are closed (what they held is gone) and new
        ones refused until healed."""
        return self.proxy.refuse()

    def stall(self, after: int = 0, stream: str = "upstream"):
        return self.proxy.stall(after=after, stream=stream)

    def latency(self, ms: float = 100, jitter: float = 0, stream: str = "downstream"):
        return self.proxy.latency(ms, jitter, stream)

    def reset_peer(self, timeout_ms: int = 0, stream: str = "both"):
        return self.proxy.reset_peer(timeout_ms, stream)

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
    healing the fault only records its end. Arming a worker that is dead (a schedule's crash
    that lands while the worker is being replaced) arms nothing."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.name = worker.name

    def arm_crash(self, point: str, after: int = 0) -> None:
        from splitbrain.sandbox import SandboxError
        try:
            self.worker.arm_crash(point, after)
        except SandboxError:
            if self.worker.alive:
                raise

    def disarm_crash(self, point: str) -> None:
        from splitbrain.sandbox import SandboxError
        if self.worker.alive:
            try:
                self.worker.disarm_crash(point)
            except SandboxError:
                pass


class Member:
    """One client of an explored run: a worker and the object it serves (``obj``), replaced by a
    new process when it dies (``revive()``). As a fault target it stands for the worker, under
    its name: ``pause``, ``kill`` and ``crash`` reach the current process. Faults and
    replacement take turns (one lock), so a fault never lands on a process being replaced."""

    def __init__(self, world: "World", w: Any, cls: str) -> None:
        self.world, self.w, self.cls = world, w, cls
        self.name = w.name
        self.lock = threading.RLock()
        self.obj = world.new(w, cls)

    @property
    def alive(self) -> bool:
        return self.w.alive

    def pause(self) -> None:
        with self.lock:
            self.w.pause()

    def resume(self) -> None:
        with self.lock:
            self.w.resume()

    def kill(self) -> None:
        with self.lock:
            self.w.kill()

    def arm_crash(self, point: str, after: int = 0) -> None:
        with self.lock:
            Crashable(self.w).arm_crash(point, after)

    def disarm_crash(self, point: str) -> None:
        with self.lock:
            Crashable(self.w).disarm_crash(point)

    def revive(self) -> None:
        """A new process (and object) takes over if the worker died."""
        with self.lock:
            if not self.w.alive:
                self.world.restart(self.w)
                self.obj = self.world.new(self.w, self.cls)


class Link:
    """One worker's own Postgres link: a fault proxy in front of the test's database, named
    ``<worker>-pg`` in the history. Faults on it (``stall``, ``latency``, ``reset``,
    ``partition``) reach that worker's connections only."""

    def __init__(self, ns: Any, name: str, seed: int) -> None:
        from splitbrain.grading.proxies import ServiceProxy
        self.px = ServiceProxy("postgres", None, ns, seed)
        self.name = f"{name}-pg"
        self.worker = name
        self.url = self.px.url

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "px":
            raise AttributeError(attr)
        return getattr(self.px, attr)

    def close(self) -> None:
        self.px.close()


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


def wait_until(cond: Callable[[], bool], deadline_s: float, poll_s: float = 0.005) -> bool:
    """Poll ``cond`` until it holds (True) or ``deadline_s`` passed (False)."""
    end = time.monotonic() + deadline_s
    while True:
        if cond():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(poll_s)


LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


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
        self.links: dict[str, Link] = {}
        self.last_read: TopicRead | None = None

    # -- workers ------------------------------------------------------------------------------
    def worker(self, name: str, pg_url: str | None = None):
        res = {"kafka_bootstrap": self.kafka.bootstrap}
        if pg_url:
            res["pg_url"] = pg_url
        w = self._spawn(name, resources=res, limits=self.limits)
        self.workers[name] = w
        return w

    def link(self, name: str) -> Link:
        """A Postgres link of worker ``name``'s own (spawn the worker with ``link=...``)."""
        if name not in self.links:
            self.links[name] = Link(self.ns, name, self.seed + 101 + len(self.links))
        return self.links[name]

    def new(self, w, cls: str):
        from splitbrain.sandbox import Ref
        if cls == "OrderProjection":
            return w.new(cls, Ref(CONNECT))
        return w.new(cls, Ref(CONNECT), self.kafka.bootstrap, self.topic)

    def _url(self, name: str, pg_url: str | None, link: Link | bool | None) -> str | None:
        if link is True:
            link = self.link(name)
        if isinstance(link, Link):
            self.links[name] = link
            return link.url
        return pg_url

    def app(self, name: str = "app", pg_url: str | None = None, link: Link | bool | None = None):
        w = self.worker(name, self._url(name, pg_url, link))
        return w, self.new(w, "OrderService")

    def relay(self, name: str = "relay", pg_url: str | None = None,
              link: Link | bool | None = None):
        w = self.worker(name, self._url(name, pg_url, link))
        return w, self.new(w, "Relay")

    def projection(self, name: str = "consumer", link: Link | bool | None = None):
        w = self.worker(name, self._url(name, None, link))
        return w, self.new(w, "OrderProjection")

    def start(self, *specs: tuple) -> list[tuple[Any, Any]]:
        """Spawn several workers at once, then build their objects: ``specs`` are ``(name,
        cls)`` or ``(name, cls, link)``; returns ``[(worker, object), ...]`` in that order (a
        ``cls`` of None: the object is built later with ``world.new(worker, cls)``). The
        processes start side by side. An idempotent producer asks for its producer id on a
        half-second timer from its creation: a relay built long before its first send, or just
        before it, waits least."""
        made = []
        for spec in specs:
            name, cls, link = (*spec, None)[:3]
            made.append((self.worker(name, self._url(name, None, link)), cls))
        return [(w, self.new(w, cls) if cls else None) for w, cls in made]

    # -- faults -------------------------------------------------------------------------------
    def crash(self, w, point: str = "after_commit", after: int = 0):
        """Arm the commit crash point ``point`` of worker ``w`` (the ``crash`` fault): the worker
        dies at the ``after + 1``-th COMMIT that passes it. ``heal()`` the returned fault once the
        call that may have crashed is over."""
        return self.nemesis.inject("crash", Crashable(w), point=point, after=after)

    def restart(self, w) -> None:
        """A new process takes over from a worker that died (the ``restart`` fault)."""
        self.nemesis.inject("restart", w)

    def crash_points(self, w, obj, cls: str, call: Callable[[Any], Any],
                     points: Iterable[str] = ("before_commit", "after_commit"),
                     before: Callable[[str, int], Any] | None = None,
                     takeover: Callable[[], tuple[Any, Any]] | None = None,
                     limit: int = 8) -> tuple[Any, Any]:
        """Kill the worker at each COMMIT ``call(obj)`` makes, before and after it: for each
        point, j = 0, 1, ... lets j commits pass and dies at the next, until the call completes
        without reaching it (every commit visited). After each death a new process takes over:
        ``takeover()`` gives one (a standby ``(worker, object)``), else the dead worker is
        restarted with a new ``cls`` object. ``before(point, j)`` prepares each round. Returns
        the last ``(worker, object)``."""
        from splitbrain.sandbox import SandboxError
        for point in points:
            for j in range(limit):
                if before is not None:
                    before(point, j)
                fault = self.crash(w, point, after=j)
                try:
                    call(obj)
                except SandboxError:
                    pass
                fault.heal()
                if w.alive:
                    break
                fresh = takeover() if takeover is not None else None
                if fresh is not None:
                    w, obj = fresh
                else:
                    self.restart(w)
                    obj = self.new(w, cls)
        return w, obj

    def stall_points(self, link: Any, call: Callable[[], Any], *,
                     streams: Iterable[str] = ("upstream", "downstream"),
                     before: Callable[[str, int], Any] | None = None,
                     during: Callable[[str, int, Any], Any] | None = None,
                     after: Callable[[str, int, Any], Any] | None = None,
                     engage_s: float = MOMENT_S, result_s: float = 20.0, limit: int = 40) -> int:
        """Place a stall at every boundary between two round trips of ``call()`` on ``link``:
        for each stream ("upstream" holds the next request: a pause before it; "downstream" the
        next reply: done, but the caller does not know), k = 0, 1, ... lets k messages through
        and holds the next, until the call completes without the stall engaging. ``call()``
        starts the operation and returns its Future; at each engaged stall ``during(stream, k,
        future)`` runs while the message is held; then the stall heals, and ``after(stream, k,
        future)`` (or a plain wait) collects the outcome. Returns how many boundaries were
        held.

        ``engage_s`` is how long a call may take to reach the stall or finish: a call that does
        neither in that time ends the walk of its stream as one that got through would, so the
        boundaries after it are never held. Generous, since a loaded machine can take seconds
        to get a call to its k-th message; a call that gets through returns long before."""
        from splitbrain.sandbox import SandboxError
        held = 0
        for stream in streams:
            for k in range(limit):
                if before is not None:
                    before(stream, k)
                stall = self.nemesis.inject("stall", link, after=k, stream=stream)
                fut = call()
                engaged = False
                end = time.monotonic() + engage_s
                while time.monotonic() < end:
                    if stall.wait(0):
                        engaged = True
                        break
                    if fut.done():
                        engaged = stall.wait(0)
                        break
                    time.sleep(0.003)
                if engaged:
                    held += 1
                    if during is not None:
                        during(stream, k, fut)
                stall.heal()
                if after is not None:
                    after(stream, k, fut)
                else:
                    try:
                        fut.result(timeout=result_s)
                    except (SandboxError, FutureTimeout):
                        pass
                if not engaged:
                    break
        return held

    def lock_waiters(self) -> int:
        """Backends of this test's database waiting for a lock (another transaction holds it)."""
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            return int(conn.execute(LOCK_WAITERS).fetchone()[0])

    def settle(self, fut: Any, deadline_s: float = 10.0) -> bool:
        """Wait until ``fut`` is done or its worker waits for a lock another holds (the moment
        to release the holder). True when it is done.

        The tests build their race on that moment and go on whatever this returns, so the
        deadline is generous: on a loaded machine the second call can take seconds to reach the
        lock, and a holder released before it did would let the two run one after the other,
        where a mistake that shows only when they overlap (a check-then-act) passes. Only a call
        that neither returns nor waits for a lock waits it out."""
        wait_until(lambda: fut.done() or self.lock_waiters() > 0, deadline_s, 0.01)
        return fut.done()

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

    def run(self, relay, max_events: int = 500, timeout_s: float = 2.0) -> int | None:
        """One ``run_once``, waited for at most ``timeout_s`` + the bound's slack: a run that has
        not returned by then breaks the relay-returns-in-time guarantee (the history shows it),
        and its worker is killed so the test goes on. Returns the run's count, or None when it
        raised or was stopped."""
        from splitbrain.sandbox import SandboxError
        w = relay._sb_worker
        if not w.alive:
            return None
        fut = relay.run_once.async_(max_events, timeout_s)
        try:
            n = fut.result(timeout=timeout_s + SLACK_S + 0.5)
        except FutureTimeout:
            self.nemesis.inject("kill", w)
            return None
        except SandboxError:
            return None
        return int(n) if isinstance(n, int) and not isinstance(n, bool) else 0

    def drain(self, relays: list, deadline_s: float = 15.0, timeout_s: float = 2.0,
              quiet_rounds: int = 3) -> int:
        """Call ``run_once`` on each relay in turn until ``quiet_rounds`` rounds in a row publish
        nothing (errors count as "not done": the relay is retried until the deadline). Returns
        the total.

        One empty round is not proof that nothing is pending: a relay whose producer has only
        just connected (a new process after a partition, a slow machine) can see its first
        flush time out and publish nothing. A relay with nothing to do answers an empty round at
        once, so asking again costs it nothing."""
        total, quiet, end = 0, 0, time.monotonic() + deadline_s
        while time.monotonic() < end:
            live = [r for r in relays if r._sb_worker.alive]
            if not live:
                break
            round_total, errors = 0, 0
            for r in live:
                n = self.run(r, 500, timeout_s)
                if n is None:
                    errors += 1
                else:
                    round_total += n
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
        """The topic read to its end by the grader (kept as ``last_read``)."""
        inv = self.history.invoke("grader", "read-topic", call_value([], {"topic": self.topic}))
        got = read_topic(self.kafka.bootstrap, self.topic, partitions=PARTITIONS)
        self.history.complete(inv, "ok" if got.complete else "info",
                              {"records": len(got.records), "complete": got.complete})
        self.last_read = got
        return got

    def relay_links(self) -> dict[str, str]:
        return {name: link.name for name, link in self.links.items()}

    def check(self, allow_duplicates: bool | None = None,
              expected: Iterable[tuple[str, str]] = (), reread: bool = True) -> Verdict:
        """Every topic-side guarantee over the whole run: the topic against the database and
        the history (see ``rig.checkers.judge_outbox``). ``allow_duplicates``: None lets the
        history say whether a failed publish explains a second copy; False/True forces it.
        ``expected``: ``(method, order_id)`` requests that were valid and made while Postgres
        answered (the service-available guarantee). ``reread=False`` judges the last read of
        the topic when nothing ran since."""
        truth = self.truth()
        got = self.read() if reread or self.last_read is None else self.last_read
        parts = [judge_outbox(got.records, truth, self.history, links=self.relay_links(),
                              complete=got.complete, allow_duplicates=allow_duplicates)]
        expected = list(expected)
        if expected:
            parts.append(check_available(self.history, expected))
        return self.locate(merge(parts, "outbox", **parts[0].stats))

    def check_prompt(self, relays: list, runs: int, timeout_s: float = 3.0) -> Verdict:
        """The relay-publishes-promptly guarantee: ``runs`` rounds of ``run_once`` (the broker
        answering), then every committed change must be on the topic. When some is not, the
        relays drain and the verdict says whether it came late (``late-event``) or never
        (``lost-event``, from :meth:`check`)."""
        for _ in range(runs):
            for r in relays:
                self.run(r, 500, timeout_s)
        truth = self.truth()
        got = self.read()
        v = check_prompt(got.records, truth, runs, complete=got.complete)
        if v.valid is not False:
            return v
        self.drain(relays)
        later = self.read()
        now_on = {(r.value.get("order_id"), r.value.get("type")) for r in later.records
                  if isinstance(r.value, dict)}
        late = tuple(a for a in v.anomalies if (a.data.get("order"), a.data.get("type")) in now_on)
        if not late:            # they never came: check() reports them as lost
            return Verdict(True, (), v.checker, v.stats)
        return self.locate(Verdict(False, late, v.checker, v.stats))

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
            if oid in where and not a.events:
                a = replace(a, events=tuple(where[oid]))
            out.append(a)
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
        if wait_until(cond, deadline_s, 0.02):
            return True
        self.history.append("grader", "info", "wait", {"what": what, "deadline_s": deadline_s})
        return False

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.ns.pg_admin_url, autocommit=True)

    def close(self) -> None:
        """Heal what is still injected, then stop the broker, its proxy and the links."""
        try:
            self.nemesis.heal_all()
        finally:
            try:
                self.kafka.close()
            finally:
                for link in self.links.values():
                    link.close()


def liveness(message: str) -> Verdict:
    return verdict("liveness", [Anomaly("unavailable", message)])


@pytest.fixture(name="world")
def world_fixture(ns, spawn, history, seed, lab, nemesis):
    """The ``world`` fixture of the public tests (``from rig.world import world_fixture``)."""
    w = World(ns, spawn, history, seed, lab.memory_mb, nemesis=nemesis)
    yield w
    w.close()
