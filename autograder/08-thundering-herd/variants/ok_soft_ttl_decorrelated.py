"""A different correct design: a soft expiry inside the value instead of XFetch, one Lua script
that hands out the value or the lease in one round trip (the lease tokens of Facebook's memcache),
and decorrelated jitter instead of full jitter.

The value carries a soft deadline, drawn a little short of the TTL; the key itself expires at the
TTL. A reader past the soft deadline asks the script for the lease and refreshes if it gets it;
every other reader serves the value it has. A reader that finds no value and no lease gets the
lease; one that finds a lease polls for the value.
"""
from __future__ import annotations

import json
import secrets

import redis as redis_lib

READ = """
local v = redis.call('GET', KEYS[1])
if v then
  if tonumber(ARGV[3]) > 0 then return {v, 0} end
  if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {v, 1} end
  return {v, 0}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {false, 1} end
return {false, 0}
"""
DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
HOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
DOWN = (redis_lib.ConnectionError, redis_lib.TimeoutError)


class Lost(Exception):
    pass


class HerdCache:
    def __init__(self, redis, origin, name: str, *, prefix: str, ttl_ms: int, lease_ms: int,
                 base_ms: int, cap_ms: int, attempts: int, clock, rng) -> None:
        self.r, self.origin, self.name, self.prefix = redis, origin, name, prefix
        self.ttl_ms, self.lease_ms = ttl_ms, lease_ms
        self.base_ms, self.cap_ms, self.attempts = base_ms, cap_ms, attempts
        self.clock, self.rng = clock, rng
        self.read = redis.register_script(READ)
        self.drop = redis.register_script(DROP)
        self.hold = redis.register_script(HOLD)

    def get(self, key: str) -> str:
        keys = [f"{self.prefix}{key}", f"{self.prefix}{key}:lease"]
        while True:
            token = secrets.token_hex(8)
            raw, leased = self._retry(self._read, keys, token)
            entry = json.loads(raw) if raw is not None else None
            if leased:
                try:
                    return self._compute(key, keys, token)
                except Lost:
                    if entry is None:
                        continue
                    return entry["v"]
                except (ConnectionError, *DOWN):
                    if entry is None:
                        raise
                    return entry["v"]
                finally:
                    try:
                        self.drop(keys=[keys[1]], args=[token])
                    except DOWN:
                        pass
            if entry is not None:
                return entry["v"]
            self.clock.sleep(0.015)

    def _read(self, keys, token):
        # a reader asks for the lease only when the value is missing or past its soft deadline
        raw = self.r.get(keys[0])
        fresh = 0
        if raw is not None and json.loads(raw)["soft"] > self.clock.now():
            fresh = 1
        v, leased = self.read(keys=keys, args=[token, self.lease_ms, fresh])
        return v, leased

    def _compute(self, key, keys, token) -> str:
        sleep_ms = self.base_ms
        for attempt in range(self.attempts):
            if attempt:
                sleep_ms = min(self.cap_ms, self.rng.uniform(self.base_ms, sleep_ms * 3))
                if not self._retry(self._hold, keys[1], token, int(sleep_ms) + self.lease_ms):
                    raise Lost(key)
                self.clock.sleep(sleep_ms / 1000)
            try:
                value = self.origin(key)
                break
            except ConnectionError:
                if attempt + 1 == self.attempts:
                    raise
        soft = self.clock.now() + self.ttl_ms / 1000 * self.rng.uniform(0.6, 0.85)
        entry = json.dumps({"v": value, "soft": soft})
        self._retry(lambda: self.r.set(keys[0], entry, px=self.ttl_ms))
        return value

    def _hold(self, lease: str, token: str, ms: int) -> int:
        return self.hold(keys=[lease], args=[token, ms])

    def _retry(self, op, *args):
        sleep_ms = self.base_ms
        for attempt in range(self.attempts):
            try:
                return op(*args)
            except DOWN:
                if attempt + 1 == self.attempts:
                    raise
                sleep_ms = min(self.cap_ms, self.rng.uniform(self.base_ms, sleep_ms * 3))
                self.clock.sleep(sleep_ms / 1000)
