"""Lab 01: a distributed lock and the storage it protects.

WHAT TO FIX
-----------
This lock works on a quiet afternoon and corrupts data on a bad one. Under the grader, the process
holding the lock will be frozen (a stop-the-world GC pause) for longer than its lease, cut off from
Redis by a partition, stalled between any two of its round trips to Redis or Postgres, given a
clock that runs minutes behind or jumps, and killed outright; the lock server's own clock may
step ahead and end every lease at once. Another worker takes the lock in the meantime. When the
first holder wakes up, its write must not land, and nothing it does may break the new holder's
lease.

Today three things go wrong (the notebook shows the first one happening):
  * FencedStore.write() stores whatever it is given. A holder whose lease expired overwrites the
    newer holder's value.
  * acquire() returns a number that comes from the holder's own clock, and clocks disagree.
  * release() deletes the lock key even when it belongs to somebody else by now.

Keep the interface below (names, arguments, return values): the grader calls exactly these. How you
implement them is up to you. Check your work with

    splitbrain check 01-fencing-locks

THE INTERFACE
-------------
RedisLock(redis, name, ttl_ms, clock=None)
    redis: a ``redis.Redis`` client (decode_responses is not set: replies are bytes).
    name: the Redis key of the lock. Any other key you need must start with ``name`` (for example
        ``name + ":fence"``): your Redis user may only touch keys under that prefix.
    ttl_ms: the lease, in milliseconds (> 0): how long the lock stays taken if its holder never
        releases it.
    clock: a ``splitbrain.Clock`` (``now()``, ``monotonic()``, ``sleep(s)``). Use it instead of the
        ``time`` module; the grader may skew it, make it jump, or make it run fast.
  acquire(wait_s=0.0) -> int | None
    Take the lock, retrying for up to ``wait_s`` seconds of ``clock.monotonic()``, with a pause of
    a few milliseconds between attempts (``clock.sleep``; a tight loop floods the Redis every
    holder depends on, and the grader counts the requests). Returns the fencing token of this
    acquisition, or None if the lock is still held by someone else when the wait is over.
  release() -> bool
    Give the lock up. True if this call released a lock that this object held, False otherwise.

FencedStore(pg)
    pg: a ``psycopg.Connection`` to the database that holds the table ``resource(key text primary
        key, value text not null, token bigint not null default 0)`` (see schema.sql).
  write(key, value, token) -> bool
    Store ``value`` under ``key`` on behalf of the lock holder whose acquisition returned
    ``token``. True if the value was stored, False if the write was refused.
  read(key) -> str | None
    The value stored under ``key``, or None.
"""
from __future__ import annotations

import uuid

import psycopg
import redis as redis_lib

from splitbrain import Clock


class RedisLock:
    """A lease lock on one Redis key: ``SET name owner NX PX ttl_ms``.

    While a holder is alive and well it finishes its work well within the lease, releases the lock,
    and nobody else can take it in the meantime. If the holder crashes, the lease runs out and the
    lock frees itself, so a crashed holder never blocks everyone forever.
    """

    def __init__(self, redis: redis_lib.Redis, name: str, ttl_ms: int = 1000,
                 clock: Clock | None = None) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be a positive number of milliseconds, got {ttl_ms!r}")
        self.redis = redis
        self.name = name
        self.ttl_ms = int(ttl_ms)
        self.clock = clock or Clock()
        self.owner = uuid.uuid4().hex

    def acquire(self, wait_s: float = 0.0) -> int | None:
        """Take the lock; return a token that is larger for every later acquisition."""
        deadline = self.clock.monotonic() + wait_s
        while True:
            if self.redis.set(self.name, self.owner, nx=True, px=self.ttl_ms):
                # Later acquisitions happen later, so the acquisition time in milliseconds makes
                # a token that grows with every holder.
                return int(self.clock.now() * 1000)
            if self.clock.monotonic() >= deadline:
                return None
            self.clock.sleep(0.01)

    def release(self) -> bool:
        """Give the lock up so the next worker does not have to wait for the lease to run out."""
        return self.redis.delete(self.name) == 1


class FencedStore:
    """The storage the lock protects: one row per key in the ``resource`` table."""

    def __init__(self, pg: psycopg.Connection) -> None:
        self.pg = pg

    def write(self, key: str, value: str, token: int) -> bool:
        """Store ``value`` under ``key``. Only the lock holder calls this, so it always succeeds."""
        with self.pg.transaction():
            self.pg.execute(
                "INSERT INTO resource (key, value, token) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, token = excluded.token",
                (key, value, token))
        return True

    def read(self, key: str) -> str | None:
        with self.pg.transaction():
            row = self.pg.execute("SELECT value FROM resource WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None
