"""A different correct design: the counter is drawn on every attempt inside one Lua script and
the token itself is the lease's owner value; release is optimistic (WATCH, GET, MULTI/DEL/EXEC);
the fence is a conditional UPDATE, then an INSERT ... ON CONFLICT DO NOTHING for a new key, then
the UPDATE once more (a concurrent writer inserted the key first).
"""
from __future__ import annotations

import psycopg
import redis as redis_lib

from splitbrain import Clock

# Draw the next number on every attempt, and take the lease with that number as its owner value.
# The counter grows even when the SET fails: tokens still grow with every acquisition.
ACQUIRE = """
local token = redis.call('INCR', KEYS[2])
if redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[1]) then
    return token
end
return false
"""


class RedisLock:
    def __init__(self, redis: redis_lib.Redis, name: str, ttl_ms: int = 1000,
                 clock: Clock | None = None) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms!r}")
        self.redis = redis
        self.name = name
        self.counter = name + ":counter"
        self.ttl_ms = int(ttl_ms)
        self.clock = clock if clock is not None else Clock()
        self.token: int | None = None
        self._acquire = redis.register_script(ACQUIRE)

    def acquire(self, wait_s: float = 0.0) -> int | None:
        give_up = self.clock.monotonic() + wait_s
        while True:
            token = self._acquire(keys=[self.name, self.counter], args=[self.ttl_ms])
            if token:
                self.token = int(token)
                return self.token
            if self.clock.monotonic() > give_up:
                return None
            self.clock.sleep(0.005)

    def release(self) -> bool:
        if self.token is None:
            return False
        mine = str(self.token).encode()
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.name)
                if pipe.get(self.name) != mine:
                    return False
                pipe.multi()
                pipe.delete(self.name)
                return pipe.execute()[0] == 1
            except redis_lib.WatchError:   # the key changed (expired, taken) after the GET
                return False


class FencedStore:
    def __init__(self, pg: psycopg.Connection) -> None:
        self.pg = pg

    def _update(self, key: str, value: str, token: int) -> bool:
        return self.pg.execute(
            "UPDATE resource SET value = %s, token = %s WHERE key = %s AND token <= %s "
            "RETURNING 1", (value, token, key, token)).fetchone() is not None

    def write(self, key: str, value: str, token: int) -> bool:
        token = int(token)
        with self.pg.transaction():
            if self._update(key, value, token):
                return True
            if self.pg.execute(
                    "INSERT INTO resource (key, value, token) VALUES (%s, %s, %s) "
                    "ON CONFLICT (key) DO NOTHING RETURNING 1",
                    (key, value, token)).fetchone() is not None:
                return True
            return self._update(key, value, token)

    def read(self, key: str) -> str | None:
        with self.pg.transaction():
            row = self.pg.execute("SELECT value FROM resource WHERE key = %s", (key,)).fetchone()
        return None if row is None else row[0]
