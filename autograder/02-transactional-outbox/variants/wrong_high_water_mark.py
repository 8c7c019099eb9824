# Lab 02 variant (a mistake the chapter warns about): one active relay behind an advisory lock that
# remembers the highest outbox id it published (in a table, in the same transaction) and claims
# only rows above it. Ids are assigned at INSERT, not at COMMIT: a row that commits after a higher
# one was published is skipped for ever (lost-event).
"""An order service, its event relay, and a consumer of its events -- with a transactional outbox.

Interface (the grader calls exactly this):

``OrderService(connect, kafka_bootstrap, topic)``
    ``place_order(order_id, customer, amount)`` stores a new order (status ``placed``) and makes
    sure an ``OrderPlaced`` event is published. An order that is rejected (``amount <= 0``, an id
    that already exists) raises an exception; then nothing is stored and no event is published.
    ``cancel_order(order_id)`` sets a ``placed`` order to ``cancelled`` and publishes
    ``OrderCancelled``; it raises ``LookupError`` for an unknown or already cancelled order.

``Relay(connect, kafka_bootstrap, topic)``
    ``run_once(max_events=500, timeout_s=5.0) -> int`` publishes events that are waiting and
    returns how many it published in this call (0: nothing was waiting). It returns within about
    ``timeout_s`` even if the broker does not answer. The grader calls it in a loop, sometimes
    from two relay processes at once.

``OrderProjection(connect)``
    ``handle(event)`` applies one event (a dict as read from the topic) to the read model
    ``order_view`` / ``customer_stats`` (see schema.sql). The grader may deliver an event more
    than once.

Guarantees of this version:
* the order row and its outbox row commit in one transaction, so an event exists iff the change
  committed (no lost event, no phantom event);
* the relay marks a row published only after the broker acknowledged it (acks=all, idempotent
  producer), in the same transaction that claimed it, so a crash anywhere leaves the row pending
  and it is published again: at-least-once;
* the relay claims only the oldest pending event of each order (``FOR UPDATE SKIP LOCKED``), so two
  relays never publish one order's events out of order, and keys records by order id, so one
  order's events share a partition;
* the projection records the event id in the same transaction as the effect and skips ids it has
  seen: at-least-once delivery + idempotent consumer = each event applied once.
"""
from __future__ import annotations

import json
import uuid
from typing import Callable

import psycopg
from confluent_kafka import KafkaException, Producer

Connect = Callable[[], psycopg.Connection]

# The oldest pending event of each order, oldest first. A row whose order still has an older
# pending row is not eligible; rows another relay holds are skipped, not waited for.
CLAIM = """
SELECT o.id, o.aggregate_id, o.payload::text
  FROM outbox o
 WHERE o.id > %s
 ORDER BY o.id
 LIMIT %s
"""


class _Db:
    """One connection, reopened after it broke (a reset, a restarted server)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._conn: psycopg.Connection | None = None

    def get(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.drop()
            self._conn = self._connect()
        return self._conn

    def drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def run(self, fn):
        """Run ``fn(conn)`` in one transaction; forget the connection if it broke."""
        conn = self.get()
        try:
            with conn.transaction():
                return fn(conn)
        except psycopg.OperationalError:
            self.drop()
            raise


def _event(type_: str, order_id: str, customer: str, amount: int) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": type_, "order_id": order_id,
            "customer": customer, "amount": amount}


def _enqueue(conn: psycopg.Connection, event: dict) -> None:
    conn.execute("INSERT INTO outbox (aggregate_id, event_id, payload) VALUES (%s, %s, %s)",
                 (event["order_id"], event["event_id"], json.dumps(event)))


class OrderService:
    """Stores orders and their events in one transaction; it never talks to Kafka."""

    def __init__(self, connect: Connect, kafka_bootstrap: str, topic: str) -> None:
        self.db = _Db(connect)

    def place_order(self, order_id: str, customer: str, amount: int) -> None:
        def tx(conn: psycopg.Connection) -> None:
            conn.execute("INSERT INTO orders (id, customer, amount) VALUES (%s, %s, %s)",
                         (order_id, customer, amount))
            _enqueue(conn, _event("OrderPlaced", order_id, customer, amount))
        self.db.run(tx)

    def cancel_order(self, order_id: str) -> None:
        def tx(conn: psycopg.Connection) -> None:
            row = conn.execute(
                "UPDATE orders SET status = 'cancelled' WHERE id = %s AND status = 'placed' "
                "RETURNING customer, amount", (order_id,)).fetchone()
            if row is None:
                raise LookupError(f"order {order_id!r} does not exist or is already cancelled")
            _enqueue(conn, _event("OrderCancelled", order_id, row[0], row[1]))
        self.db.run(tx)

    def close(self) -> None:
        self.db.drop()


class Relay:
    """Polling publisher: publishes the outbox rows above the last id it published."""

    def __init__(self, connect: Connect, kafka_bootstrap: str, topic: str) -> None:
        self.db = _Db(connect)
        self.topic = topic
        self.producer = Producer({
            "bootstrap.servers": kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,     # broker-side retries never duplicate or reorder
            "linger.ms": 2,
            "message.timeout.ms": 30000,
        })

    def run_once(self, max_events: int = 500, timeout_s: float = 5.0) -> int:
        def tx(conn: psycopg.Connection) -> int:
            if not conn.execute("SELECT pg_try_advisory_xact_lock(4242)").fetchone()[0]:
                return 0
            conn.execute("CREATE TABLE IF NOT EXISTS relay_position "
                         "(id int PRIMARY KEY, last_id bigint NOT NULL)")
            conn.execute("INSERT INTO relay_position VALUES (1, 0) ON CONFLICT DO NOTHING")
            last = conn.execute("SELECT last_id FROM relay_position WHERE id = 1").fetchone()[0]
            rows = conn.execute(CLAIM, (last, max_events)).fetchall()
            if not rows:
                return 0
            acked = set(self._publish(rows, timeout_s))
            # the position moves over the acknowledged prefix of the batch, in id order
            done = 0
            for row_id, _, _ in rows:
                if row_id not in acked:
                    break
                last, done = row_id, done + 1
            conn.execute("UPDATE relay_position SET last_id = %s WHERE id = 1", (last,))
            return done
        return self.db.run(tx)

    def _publish(self, rows: list[tuple], timeout_s: float) -> list[int]:
        """Produce every row; return the ids the broker acknowledged within ``timeout_s``."""
        acked: list[int] = []

        def report(row_id: int):
            def on_delivery(err, _msg) -> None:
                if err is None:
                    acked.append(row_id)
            return on_delivery

        for row_id, key, payload in rows:
            while True:
                try:
                    self.producer.produce(self.topic, key=key, value=payload,
                                          on_delivery=report(row_id))
                    break
                except BufferError:             # local queue full: let it drain a little
                    self.producer.poll(0.05)
        left = self.producer.flush(timeout_s)
        if left:
            # Not acknowledged in time: drop what is still queued here (it stays pending in the
            # outbox and goes out again on a later call). In-flight records may still land; the
            # consumer deduplicates them by event id.
            try:
                self.producer.purge(in_queue=True, in_flight=False)
            except KafkaException:
                pass
            self.producer.poll(0)
        return acked

    def close(self) -> None:
        self.producer.flush(1)
        self.db.drop()


class OrderProjection:
    """Applies each event once: the event id and the effect commit together."""

    def __init__(self, connect: Connect) -> None:
        self.db = _Db(connect)

    def handle(self, event: dict) -> None:
        def tx(conn: psycopg.Connection) -> None:
            if conn.execute("SELECT 1 FROM processed_events WHERE event_id = %s",
                            (str(event["event_id"]),)).fetchone():
                return
            conn.execute("INSERT INTO processed_events (event_id) VALUES (%s)",
                         (str(event["event_id"]),))
            if event["type"] == "OrderPlaced":
                conn.execute(
                    "INSERT INTO order_view (order_id, customer, amount, status) "
                    "VALUES (%s, %s, %s, 'placed') ON CONFLICT (order_id) DO NOTHING",
                    (event["order_id"], event["customer"], event["amount"]))
                conn.execute(
                    "INSERT INTO customer_stats (customer, placed, spent) VALUES (%s, 1, %s) "
                    "ON CONFLICT (customer) DO UPDATE SET placed = customer_stats.placed + 1, "
                    "spent = customer_stats.spent + EXCLUDED.spent",
                    (event["customer"], event["amount"]))
            elif event["type"] == "OrderCancelled":
                conn.execute("UPDATE order_view SET status = 'cancelled' WHERE order_id = %s",
                             (event["order_id"],))
                conn.execute(
                    "INSERT INTO customer_stats (customer, cancelled, spent) VALUES (%s, 1, %s) "
                    "ON CONFLICT (customer) DO UPDATE SET "
                    "cancelled = customer_stats.cancelled + 1, "
                    "spent = customer_stats.spent + EXCLUDED.spent",
                    (event["customer"], -event["amount"]))
        self.db.run(tx)

    def close(self) -> None:
        self.db.drop()
