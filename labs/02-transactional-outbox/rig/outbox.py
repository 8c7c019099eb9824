"""Lab 02's connections with crash points (worker side), and the topic reader (grader side).

The learner's component never opens its own Postgres connections: it is given ``connect``, a
zero-argument callable that returns a new psycopg connection. That connection is an ordinary
``psycopg.Connection`` with two crash points wired into it, so the grader can kill the process at
the worst moment whatever the component's design:

* ``before_commit`` -- just before a COMMIT is sent (the transaction's work is done, nothing is
  durable yet);
* ``after_commit`` -- right after the server confirmed a COMMIT, before control returns to the
  component (the rows are durable; whatever the component meant to do next never happens).

They fire for ``conn.commit()``, ``with conn:``, ``with conn.transaction():``, an explicit
``COMMIT`` statement, and (in autocommit mode) after every statement that wrote. Unarmed, they cost
one dictionary lookup.

The grader side reads a topic to its end with :func:`read_topic`: tansu's high watermark is not
reliable after multi-record batches, so instead of trusting watermarks it writes a sentinel record
to every partition and reads until it has seen all of them.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg
from psycopg import pq

from splitbrain.faults.crash import crash_point

__all__ = ["CrashPointConnection", "connect", "connector", "read_topic", "create_topic",
           "TopicRecord", "SENTINEL_HEADER", "EVENT_FIELDS"]

SENTINEL_HEADER = "splitbrain-sentinel"
EVENT_FIELDS = ("event_id", "type", "order_id", "customer", "amount")
_WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY")


def _is_write(status: str | None) -> bool:
    return bool(status) and status.split(" ", 1)[0] in _WRITES


class CrashPointCursor(psycopg.Cursor):
    """A cursor that passes the commit crash points around statements that commit."""

    def execute(self, query, params=None, **kwargs):  # type: ignore[override]
        commits = _names_commit(query)
        if commits:
            crash_point("before_commit")
        rv = super().execute(query, params, **kwargs)
        self._after(commits)
        return rv

    def executemany(self, query, params_seq, **kwargs):  # type: ignore[override]
        rv = super().executemany(query, params_seq, **kwargs)
        self._after(False)
        return rv

    def _after(self, commits: bool) -> None:
        idle = self.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
        if idle and (commits or (self.connection.autocommit and _is_write(self.statusmessage))):
            crash_point("after_commit")


def _names_commit(query: Any) -> bool:
    if isinstance(query, bytes):
        text = query.decode("utf-8", "replace")
    elif isinstance(query, str):
        text = query
    else:
        return False
    word = text.strip().rstrip(";").strip().upper()
    return word in ("COMMIT", "END", "COMMIT WORK", "COMMIT TRANSACTION")


class CrashPointConnection(psycopg.Connection):
    """psycopg connection whose COMMITs pass the ``before_commit``/``after_commit`` crash points."""

    def _exec_command(self, command, result_format=pq.Format.TEXT):  # type: ignore[override]
        is_commit = command in (b"COMMIT", "COMMIT")
        if is_commit:
            crash_point("before_commit")
        result = yield from super()._exec_command(command, result_format)
        if is_commit and result is not None:
            crash_point("after_commit")
        return result


def connect(url: str, **kwargs: Any) -> CrashPointConnection:
    """A new connection to ``url`` with the commit crash points wired in."""
    kwargs.setdefault("cursor_factory", CrashPointCursor)
    kwargs.setdefault("connect_timeout", 5)
    return CrashPointConnection.connect(url, **kwargs)


def connector(resources: dict, **kwargs: Any) -> Callable[[], CrashPointConnection]:
    """Sandbox helper (``Ref("rig.outbox:connector")``): a ``connect()`` callable bound to the
    worker's ``pg_url``. Each call opens a new connection."""
    url = resources.get("pg_url")
    if not url:
        raise ValueError("this worker was spawned without resources['pg_url']; lab 02 needs "
                         "'postgres' in lab.toml `services`")

    def connect_() -> CrashPointConnection:
        return connect(url, **kwargs)

    connect_.__doc__ = "Open a new Postgres connection (commit crash points wired in)."
    return connect_


# -- grader side: the topic ------------------------------------------------------------------
@dataclass(frozen=True)
class TopicRecord:
    """One record as the grader read it: where it sits, its key, and its value parsed as JSON
    (``value`` is None and ``error`` says why when the bytes are not a JSON object)."""

    partition: int
    offset: int
    key: str | None
    value: dict | None
    raw: str = ""
    error: str = ""

    def to_dict(self) -> dict:
        return {"partition": self.partition, "offset": self.offset, "key": self.key,
                "value": self.value, "raw": self.raw, "error": self.error}


@dataclass
class TopicRead:
    records: list[TopicRecord] = field(default_factory=list)
    partitions: int = 0
    complete: bool = False


def create_topic(bootstrap: str, topic: str, partitions: int = 3, timeout_s: float = 10.0) -> None:
    """Create ``topic`` with ``partitions`` partitions and wait until the broker lists it."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                            replication_factor=1)])
    futures[topic].result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=2)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.05)
    raise TimeoutError(f"topic {topic!r} did not appear on {bootstrap} within {timeout_s}s")


def _partitions(bootstrap: str, topic: str) -> int:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=5)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        raise RuntimeError(f"topic {topic!r} does not exist on {bootstrap}")
    return len(t.partitions)


def _parse(msg) -> TopicRecord:
    raw_b = msg.value() or b""
    raw = raw_b.decode("utf-8", "backslashreplace")
    key_b = msg.key()
    key = key_b.decode("utf-8", "backslashreplace") if key_b is not None else None
    try:
        value = json.loads(raw_b)
    except ValueError as e:
        return TopicRecord(msg.partition(), msg.offset(), key, None, raw, f"not JSON: {e}")
    if not isinstance(value, dict):
        return TopicRecord(msg.partition(), msg.offset(), key, None, raw, "not a JSON object")
    return TopicRecord(msg.partition(), msg.offset(), key, value, raw)


def read_topic(bootstrap: str, topic: str, timeout_s: float = 15.0,
               partitions: int | None = None) -> TopicRead:
    """Every record of ``topic`` from the beginning, in offset order per partition.

    Writes one sentinel record (header ``splitbrain-sentinel``) to each partition and reads until
    every sentinel written by this call is seen; sentinels (this call's and earlier ones) are left
    out of the result. ``complete`` is False when the deadline passed first. ``partitions``: the
    topic's partition count when the caller knows it (else the broker is asked).
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    n = partitions or _partitions(bootstrap, topic)
    token = uuid.uuid4().hex
    # acks=all without idempotence: an idempotent producer waits half a second for its producer
    # id before its first send, and a sentinel written twice is harmless (only its token counts)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    failures: list[str] = []

    def report(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    for p in range(n):
        producer.produce(topic, value=b"", partition=p, headers=[(SENTINEL_HEADER, token)],
                         on_delivery=report)
    left = producer.flush(timeout_s)
    if left or failures:
        raise RuntimeError(f"could not write the end-of-topic sentinels to {topic!r}: "
                           f"{failures or [f'{left} undelivered']}")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"sb-reader-{token}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "fetch.wait.max.ms": 50})
    out = TopicRead(partitions=n)
    seen: set[int] = set()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(n)])
        deadline = time.monotonic() + timeout_s
        while len(seen) < n and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.02):
                if msg.error():
                    continue
                headers = dict(msg.headers() or [])
                if SENTINEL_HEADER in headers:
                    if headers[SENTINEL_HEADER] in (token, token.encode()):
                        seen.add(msg.partition())
                    continue
                if msg.partition() not in seen:
                    out.records.append(_parse(msg))
    finally:
        consumer.close()
    out.complete = len(seen) == n
    out.records.sort(key=lambda r: (r.partition, r.offset))
    return out
