"""Lab 10's worker side: the ``effects`` object every consumer is built with.

``Ref("rig.effects:make", member="a")`` builds, inside the sandboxed worker, an :class:`Effects`
bound to the worker's Postgres and Kafka. The learner's consumer gets three things from it:

* ``effects.consumer(group, conf)`` -- a ``confluent_kafka.Consumer`` of ``group`` with the lab's
  timings fixed (session timeout, heartbeat, ``max.poll.interval.ms``: see :data:`TIMINGS`) and
  whatever else the learner asks for in ``conf`` (commit policy, assignment strategy, ...);
  ``fetch.wait.max.ms`` defaults to 50 ms: after a ``seek()`` librdkafka waits for the fetch in
  flight, which the broker holds that long when the partition has nothing new;
* ``effects.connect()`` -- a new psycopg connection to the test's database;
* ``effects.apply(conn, msg)`` -- the record's effect, run inside ``conn``'s current transaction
  (it never commits): one row in ``effects`` naming the record's partition and offset and the
  member that applied it, and the record's amount added to its account's balance. Applying a
  record twice adds it twice: the effect is not idempotent by itself.

``apply`` is where the grader reaches into the batch:

* the crash point ``apply`` fires first (``crash`` fault, ``after=k``: the worker dies at the
  k+1-th record it applies, mid-batch);
* a record the grader marked slow takes ``work_ms`` to apply, and a gated one waits until the grader opens its gate (a Postgres advisory lock the
  grader holds): the member is then stuck exactly inside that record, for as long as the grader
  wants, while everything else -- librdkafka's threads included -- runs on.
"""
from __future__ import annotations

import json
import time
from typing import Any

import psycopg

from splitbrain.faults.crash import crash_point

__all__ = ["RESERVED", "TIMINGS", "Effects", "make"]

TIMINGS = {
    "session.timeout.ms": 1000,      # a silent member is evicted after 1 s
    "heartbeat.interval.ms": 300,
    "max.poll.interval.ms": 2000,    # a member that does not poll for 2 s leaves the group
}
RESERVED = ("bootstrap.servers", "group.id", "group.instance.id", "group.protocol",
            *TIMINGS)


class Effects:
    """What one member may touch: its group's consumer, its database, the records' effects."""

    def __init__(self, pg_url: str, bootstrap: str, member: str) -> None:
        self.pg_url, self.bootstrap, self.member = pg_url, bootstrap, member

    def consumer(self, group: str, conf: dict | None = None):
        """A new ``confluent_kafka.Consumer`` of ``group``. ``conf`` may set anything but the
        broker, the group, the protocol and the lab's timings (``ValueError`` if it tries);
        ``auto.offset.reset`` defaults to ``earliest``, ``fetch.wait.max.ms`` to 50."""
        from confluent_kafka import Consumer
        conf = dict(conf or {})
        bad = sorted(k for k in conf if k in RESERVED)
        if bad:
            raise ValueError(f"effects.consumer(): {', '.join(bad)} are fixed by the lab "
                             f"(timings: {TIMINGS})")
        conf.setdefault("auto.offset.reset", "earliest")
        conf.setdefault("fetch.wait.max.ms", 50)
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                         "client.id": self.member, **TIMINGS, **conf})

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        """A new connection to the test's database (``kwargs`` go to ``psycopg.connect``)."""
        kwargs.setdefault("connect_timeout", 5)
        kwargs.setdefault("application_name", f"member-{self.member}")
        return psycopg.connect(self.pg_url, **kwargs)

    def apply(self, conn: psycopg.Connection, msg: Any) -> None:
        """Apply record ``msg`` (a ``confluent_kafka.Message``) inside ``conn``'s current
        transaction; the caller commits. Raises ``ValueError`` for a message that is an error."""
        if msg.error() is not None:
            raise ValueError(f"effects.apply(): {msg.error()} is an error, not a record")
        crash_point("apply")
        value = json.loads(msg.value())
        gate = value.get("gate")
        if gate is not None:
            self._wait_gate(int(gate))
        if value.get("work_ms"):
            time.sleep(float(value["work_ms"]) / 1000.0)
        conn.execute(
            'INSERT INTO effects (topic, "partition", "offset", member, account, amount) '
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (msg.topic(), msg.partition(), msg.offset(), self.member, value["account"],
             value["amount"]))
        conn.execute(
            "INSERT INTO balances (account, total) VALUES (%s, %s) ON CONFLICT (account) "
            "DO UPDATE SET total = balances.total + EXCLUDED.total",
            (value["account"], value["amount"]))

    def _wait_gate(self, key: int) -> None:
        with psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5,
                             application_name=f"gate-{self.member}") as g:
            g.execute("SELECT pg_advisory_lock_shared(%s)", (key,))
            g.execute("SELECT pg_advisory_unlock_shared(%s)", (key,))


def make(resources: dict, member: str = "member") -> Effects:
    """Sandbox helper (``Ref("rig.effects:make", member=...)``)."""
    pg_url, bootstrap = resources.get("pg_url"), resources.get("kafka_bootstrap")
    if not pg_url or not bootstrap:
        raise ValueError("lab 10's workers need resources['pg_url'] and ['kafka_bootstrap']")
    return Effects(pg_url, bootstrap, member)
