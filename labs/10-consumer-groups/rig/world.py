"""Lab 10's test world, shared by the hidden tests, the public ones (``world`` fixture) and the
notebook (``World``).

One test gets: the lab's schema in its own database; a private tansu broker (a fresh group
coordinator, so no other test's group can wedge it); a topic with two partitions; one consumer
group; the grader's producer (:class:`Feed`), which writes every record the members will see and
keeps where each one landed; helpers that spawn members (``EffectConsumer`` in sandboxed
workers) and drive them one ``step()`` at a time.

The grader judges from its own ground truth only: the records it produced (partition, offset,
from the delivery reports: tansu's high watermark is wrong after multi-record batches, so lag is
never read from it), the ``effects`` rows in Postgres (who applied which record, how often) and
the offsets the broker holds for the group (read with the grader's own client).

Faults go through the nemesis: ``nemesis.inject("slow-record", world.feed, partition=0)`` writes a
record whose apply waits at a gate until the fault heals; ``"kill"`` / ``"pause"`` act on a
member's worker; ``"concurrency"`` marks a member joining while another is mid-batch.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rig import faults as _faults  # noqa: F401  (registers "slow-record" for a notebook)
from rig.checkers import Produced, judge
from rig.effects import TIMINGS
from splitbrain.checkers.base import Verdict
from splitbrain.services.procs import wait_until

PARTITIONS = 2
COMPONENT = "EffectConsumer"


def schema_path() -> Path:
    return Path(__file__).resolve().parent.parent / "schema.sql"


def prepare(ns: Any) -> None:
    """Apply schema.sql to the namespace's database and let the learner's role use it."""
    ns.apply_schema(schema_path().read_text())


class Gate:
    """A record's gate: a Postgres advisory lock the grader holds; the record's apply waits for
    it. ``waiting()`` is True while a member is stuck inside that record. pg_locks shows the
    whole cluster, and two gradings with the same seed use the same keys: only a waiter in this
    test's own database counts."""

    def __init__(self, admin_url: str, key: int) -> None:
        self.key, self.admin_url = key, admin_url
        self.conn = psycopg.connect(admin_url, autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(%s)", (key,))

    def waiting(self) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            row = c.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid = %s AND objid = %s AND objsubid = 1",
                (self.key >> 32, self.key & 0xFFFFFFFF)).fetchone()
        return bool(row[0])

    def open(self) -> None:
        if not self.conn.closed:
            self.conn.close()                 # the session ends: the lock is released


class Feed:
    """The grader's producer. ``produce(partition, n, ...)`` writes ``n`` records and waits for
    their delivery reports; ``records`` is every record produced, in order. As a fault target
    (``slow-record``) it is named ``"feed"``."""

    name = "feed"

    def __init__(self, bootstrap: str, topic: str, admin_url: str, seed: int) -> None:
        from confluent_kafka import Producer
        self.topic, self.admin_url = topic, admin_url
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                                  "enable.idempotence": False})
        self.records: list[Produced] = []
        self.gates: list[Gate] = []
        self.seq = 0
        self.key_base = (seed % 100_000) * 1000 + 7

    def produce(self, partition: int, n: int = 1, work_ms: int = 0,
                gate: Gate | None = None) -> list[Produced]:
        out: list[Produced] = []
        for _ in range(n):
            self.seq += 1
            value = {"n": self.seq, "account": f"acct-{self.seq % 3}", "amount": self.seq}
            if work_ms:
                value["work_ms"] = work_ms
            if gate is not None:
                value["gate"] = gate.key
            got: dict = {}
            self.producer.produce(self.topic, json.dumps(value).encode(), partition=partition,
                                  on_delivery=lambda err, msg, got=got: got.update(
                                      err=err, offset=msg.offset()))
            if self.producer.flush(15) or got.get("err") is not None:
                raise RuntimeError(f"the grader could not produce to {self.topic}: {got}")
            rec = Produced(partition, int(got["offset"]), self.seq, bool(work_ms),
                           gate is not None)
            self.records.append(rec)
            out.append(rec)
        return out

    def slow(self, partition: int = 0, ms: int | None = None, count: int = 1):
        """The ``slow-record`` fault: ``count`` records that take ``ms`` each to apply, or (no
        ``ms``) one record held at a gate until :meth:`open` -- returns the gate then."""
        if ms:
            self.produce(partition, count, work_ms=ms)
            return None
        gate = Gate(self.admin_url, self.key_base + len(self.gates))
        self.gates.append(gate)
        self.produce(partition, 1, gate=gate)
        return gate

    def open(self) -> None:
        for g in self.gates:
            g.open()

    def close(self) -> None:
        """Open every gate and let go of the producer (before the broker stops, so that it
        does not keep calling a broker that is gone)."""
        self.open()
        self.producer = None


@dataclass
class Member:
    """One member of the group: its worker and its ``EffectConsumer``. As a fault target it is
    the worker (``pause``, ``kill``)."""

    world: World
    name: str
    w: Any
    obj: Any
    steps: list = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.w.alive

    def pause(self) -> None:
        self.w.pause()

    def resume(self) -> None:
        self.w.resume()

    def kill(self) -> None:
        self.w.kill()

    def step(self, timeout_s: float = 15.0) -> int | None:
        """One ``step()``; its count, or None when it raised, died or hung."""
        from concurrent.futures import TimeoutError as FutureTimeout

        from splitbrain.sandbox import SandboxError
        if not self.w.alive:
            return None
        try:
            n = self.obj.step.async_().result(timeout=timeout_s)
        except (SandboxError, FutureTimeout):
            return None
        return n if isinstance(n, int) and not isinstance(n, bool) else 0

    def start_step(self):
        return self.obj.step.async_()


class World:
    """One test's lab 10 world. ``member(name)`` spawns a member; ``drain(members)`` steps them
    until every produced record has its effect; ``check()`` judges the run."""

    def __init__(self, ns, spawn, history, seed: int, memory_mb: int = 512,
                 nemesis: Any = None) -> None:
        from splitbrain.faults import Nemesis
        from splitbrain.sandbox import Limits
        from splitbrain.services import spawn_kafka
        self.ns, self._spawn, self.history, self.seed = ns, spawn, history, seed
        self.nemesis = nemesis if nemesis is not None else Nemesis(history, seed=seed)
        self.limits = Limits(memory_mb=max(memory_mb, 512), call_timeout_s=20)
        prepare(ns)
        self.broker = spawn_kafka()
        self.bootstrap = self.broker.bootstrap
        self.topic, self.group = ns.topic("ledger"), ns.group("appliers")
        create_topic(self.bootstrap, self.topic, PARTITIONS)
        self.feed = Feed(self.bootstrap, self.topic, ns.pg_admin_url, seed)
        self.members: dict[str, Member] = {}

    # -- members ------------------------------------------------------------------------------
    def worker(self, name: str):
        """A worker for member ``name``, started ahead (``member(name, worker)`` makes it one):
        a member that joins the group at a given moment then does not wait for its process."""
        return self._spawn(name, resources={"pg_url": self.ns.pg_url,
                                            "kafka_bootstrap": self.bootstrap},
                           limits=self.limits)

    def member(self, name: str, worker: Any = None) -> Member:
        from splitbrain.sandbox import Ref
        w = worker if worker is not None else self.worker(name)
        obj = w.new(COMPONENT, Ref("rig.effects:make", member=name), self.topic, self.group)
        m = Member(self, name, w, obj)
        self.members[name] = m
        return m

    def until_at_gate(self, m: Member, gate: Gate, deadline_s: float = 15.0):
        """Step ``m`` until one of its steps is stuck at ``gate``; returns that step's future
        (None if the member got there in no step before the deadline)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and m.alive:
            fut = m.start_step()
            while not fut.done():
                if gate.waiting():
                    return fut
                time.sleep(0.01)
        return None

    def until_taken_over(self, m: Member, partition: int, deadline_s: float = 12.0) -> bool:
        """Step ``m`` until it has applied a record of ``partition`` or one of its steps waits
        for a lock another transaction holds (it has the partition and found its previous owner
        in the middle of a record). True when it got there before the deadline."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and m.alive:
            fut = m.start_step()
            while True:
                if self.applied_by(m.name, partition) or self.lock_waiters(m.name):
                    return True
                if fut.done():
                    break
                time.sleep(0.01)
        return False

    def applied_by(self, member: str, partition: int) -> bool:
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            return conn.execute('SELECT 1 FROM effects WHERE topic = %s AND "partition" = %s '
                                "AND member = %s LIMIT 1",
                                (self.topic, partition, member)).fetchone() is not None

    def lock_waiters(self, member: str) -> int:
        """Backends of ``member`` waiting for a lock another transaction holds."""
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            return int(conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND application_name = %s",
                (f"member-{member}",)).fetchone()[0])

    def drain(self, members: Iterable[Member], deadline_s: float = 12.0,
              quiet_s: float = 6.0) -> bool:
        """Step the live members, side by side (each round starts one step on every live member
        and waits for them all), until every produced record has an effect (True), or nothing
        new was applied for ``quiet_s`` (long enough for a dead member's session to expire and
        the group to rebalance), or ``deadline_s`` passed (False)."""
        members = list(members)
        end = time.monotonic() + deadline_s
        last, last_t = -1, time.monotonic()
        while time.monotonic() < end:
            missing = len(self.missing())
            if not missing:
                return True
            if missing != last:
                last, last_t = missing, time.monotonic()
            elif time.monotonic() - last_t > quiet_s:
                return False
            live = [m for m in members if m.alive]
            if not live:
                return False
            self.round(live)
        return not self.missing()

    def round(self, members: Iterable[Member], timeout_s: float = 15.0) -> None:
        """One step of each member at once; waits for all of them."""
        from concurrent.futures import TimeoutError as FutureTimeout

        from splitbrain.sandbox import SandboxError
        futs = [m.start_step() for m in members if m.alive]
        for f in futs:
            try:
                f.result(timeout=timeout_s)
            except (SandboxError, FutureTimeout):
                pass

    # -- ground truth -------------------------------------------------------------------------
    def effects(self) -> list[tuple[int, int, str]]:
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(
                'SELECT "partition", "offset", member FROM effects WHERE topic = %s ORDER BY id',
                (self.topic,))]

    def missing(self) -> list[Produced]:
        done = {(p, o) for p, o, _ in self.effects()}
        return [r for r in self.feed.records if (r.partition, r.offset) not in done]

    def committed(self) -> dict[int, int]:
        """The offsets the broker holds for the group, read with the grader's own client
        (partitions without one are left out)."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False})
        try:
            got = c.committed([TopicPartition(self.topic, p) for p in range(PARTITIONS)],
                              timeout=10)
        finally:
            c.close()
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}

    def committed_past(self, partition: int, offset: int, deadline_s: float) -> bool:
        """Wait (at most ``deadline_s``) until the broker holds a committed offset past
        ``offset`` on ``partition``: the group has declared that record done."""
        return wait_until(lambda: self.committed().get(partition, -1) > offset, deadline_s, 0.05)

    def check(self) -> Verdict:
        """Every guarantee over the whole run: the produced records against the effects in
        Postgres and the offsets the broker holds, and the history of steps."""
        inv = self.history.invoke("grader", "read-truth", {"args": [], "kwargs": {}})
        effects, committed = self.effects(), self.committed()
        self.history.complete(inv, "ok", {"effects": len(effects), "committed": committed})
        return self.locate(judge(self.feed.records, effects, committed, self.history,
                                 TIMINGS["max.poll.interval.ms"] / 1000.0))

    def locate(self, v: Verdict) -> Verdict:
        """Point each lost record at the steps that never returned (the member died holding
        its batch) and each duplicate at the steps of the members that applied it, so that the
        pictures outline them."""
        if v.valid is True:
            return v
        ops = [op for op in self.history.operations() if op.f.endswith("step")]
        died = tuple(e for op in ops if op.type != "ok" for e in op.events)
        out = []
        for a in v.anomalies:
            if not a.events and a.kind == "lost-record" and died:
                a = replace(a, events=died)
            elif not a.events and a.kind == "duplicate-effect":
                members = set(a.data.get("members", ()))
                busy = [op for op in ops if op.process in members and op.result]
                a = replace(a, events=tuple(e for op in busy[-2:] for e in op.events))
            out.append(a)
        return replace(v, anomalies=tuple(out))

    def close(self) -> None:
        try:
            self.nemesis.heal_all()
        finally:
            try:
                self.feed.close()
            finally:
                self.broker.stop()


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                           replication_factor=1)]).values():
        f.result(15)


@pytest.fixture(name="world")
def world_fixture(ns, spawn, history, seed, lab, nemesis):
    """The ``world`` fixture of the public tests (``from rig.world import world_fixture``)."""
    w = World(ns, spawn, history, seed, lab.memory_mb, nemesis=nemesis)
    yield w
    w.close()
