"""Subtly wrong: no fence; before writing, the store checks in Redis that this process still holds
the lock. The check passes, then the write spends the rest of the lease in the network.
"""
from __future__ import annotations

import uuid

import psycopg
import redis as redis_lib

from splitbrain import Clock

# Take the lease and issue the next fencing token in one atomic step. If the two were separate
# commands, a holder could stall between SET and INCR, lose its lease, and come back with a token
# larger than the new holder's.
ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('INCR', KEYS[2])
end
return false
"""

# Delete the lock only if it still carries our owner value: compare-and-delete in one step.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLock:
    """A lease lock on one Redis key, plus a counter ``<name>:fence`` that issues fencing tokens."""

    def __init__(self, redis: redis_lib.Redis, name: str, ttl_ms: int = 1000,
                 clock: Clock | None = None) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be a positive number of milliseconds, got {ttl_ms!r}")
        self.redis = redis
        self.name = name
        self.fence_key = f"{name}:fence"
        self.ttl_ms = int(ttl_ms)
        self.clock = clock or Clock()
        self.owner = uuid.uuid4().hex
        self._acquire = redis.register_script(ACQUIRE)
        HELD.append(self)
        self._release = redis.register_script(RELEASE)

    def acquire(self, wait_s: float = 0.0) -> int | None:
        """Take the lock; return a token larger than every token issued before it."""
        deadline = self.clock.monotonic() + wait_s
        while True:
            token = self._acquire(keys=[self.name, self.fence_key], args=[self.owner, self.ttl_ms])
            if token is not None:
                return int(token)
            if self.clock.monotonic() >= deadline:
                return None
            self.clock.sleep(0.01)

    def release(self) -> bool:
        """Release only our own lease; after it expired, the key may be someone else's."""
        return int(self._release(keys=[self.name], args=[self.owner])) == 1


HELD = []


class FencedStore:
    """Storage that refuses any write whose fencing token is smaller than the last one stored."""

    def __init__(self, pg: psycopg.Connection) -> None:
        self.pg = pg

    def write(self, key: str, value: str, token: int) -> bool:
        """Store ``value`` unless a write with a larger token already reached this key.

        One statement, so the comparison and the update cannot be separated by another writer:
        a concurrent INSERT of the same key waits on the row lock, then re-checks the WHERE.
        Equal tokens pass: the same holder may write more than once under one lease.
        """
        lock = HELD[-1]
        if lock.redis.get(lock.name) != lock.owner.encode():
            return False
        with self.pg.transaction():
            self.pg.execute(
                "INSERT INTO resource (key, value, token) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, token = excluded.token",
                (key, value, int(token)))
        return True

    def read(self, key: str) -> str | None:
        with self.pg.transaction():
            row = self.pg.execute("SELECT value FROM resource WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None
