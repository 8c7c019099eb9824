"""A different correct design: tokens from MULTI/EXEC (SET NX + INCR, the counter grows even when
the SET fails) and a fence made of SELECT ... FOR UPDATE and an UPDATE in one transaction, with
a placeholder row.
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
        self._release = redis.register_script(RELEASE)

    def acquire(self, wait_s: float = 0.0) -> int | None:
        """Take the lock; return a token larger than every token issued before it."""
        deadline = self.clock.monotonic() + wait_s
        while True:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self.name, self.owner, nx=True, px=self.ttl_ms)
            pipe.incr(self.fence_key)
            took, token = pipe.execute()
            if took:
                return int(token)
            if self.clock.monotonic() >= deadline:
                return None
            self.clock.sleep(0.01)

    def release(self) -> bool:
        """Release only our own lease; after it expired, the key may be someone else's."""
        return int(self._release(keys=[self.name], args=[self.owner])) == 1


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
        with self.pg.transaction():
            self.pg.execute("INSERT INTO resource (key, value, token) VALUES (%s, '', -1) "
                            "ON CONFLICT (key) DO NOTHING", (key,))
            (last,) = self.pg.execute("SELECT token FROM resource WHERE key = %s FOR UPDATE",
                                      (key,)).fetchone()
            if last > token:
                return False
            self.pg.execute("UPDATE resource SET value = %s, token = %s WHERE key = %s",
                            (value, token, key))
        return True

    def read(self, key: str) -> str | None:
        with self.pg.transaction():
            row = self.pg.execute("SELECT value FROM resource WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None
