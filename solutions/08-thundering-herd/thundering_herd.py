"""A read-through cache in Redis in front of an expensive query, shared by many processes.

Interface (the grader calls exactly this, in several worker processes at once):

    cache = HerdCache(redis, origin, "a", prefix="ns:cache:", ttl_ms=600, lease_ms=300,
                      base_ms=40, cap_ms=400, attempts=10, clock=clock, rng=rng)
    cache.get("k1")          # -> "k1@v3": the key's value, from Redis or from the origin

The solution: one caller per key recomputes, under a lease in Redis (SET NX PX, released and
renewed only by its holder); the others wait for its value. A value is refreshed early with a
probability that grows as its expiry nears (XFetch), and each TTL is drawn a little short of
ttl_ms, so keys cached together do not expire together. Every retry, toward the origin or Redis,
waits a random time up to a capped exponential step (full jitter), at most ``attempts`` tries.
"""
from __future__ import annotations

import json
import math
import secrets

import redis as redis_lib

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
REDIS_DOWN = (redis_lib.ConnectionError, redis_lib.TimeoutError)


class LostLease(Exception):
    """The lease ran out while its holder waited to retry: another caller recomputes now."""


class HerdCache:
    BETA = 1.0          # XFetch: larger refreshes earlier
    TTL_SPREAD = 0.2    # each TTL is drawn from [ttl_ms * (1 - spread), ttl_ms]
    POLL_S = 0.01       # how often a waiter looks for the holder's value

    def __init__(self, redis, origin, name: str, *, prefix: str, ttl_ms: int, lease_ms: int,
                 base_ms: int, cap_ms: int, attempts: int, clock, rng) -> None:
        self.redis, self.origin, self.name, self.prefix = redis, origin, name, prefix
        self.ttl_ms, self.lease_ms = ttl_ms, lease_ms
        self.base_ms, self.cap_ms, self.attempts = base_ms, cap_ms, attempts
        self.clock, self.rng = clock, rng
        self._release = redis.register_script(RELEASE)
        self._renew = redis.register_script(RENEW)

    def get(self, key: str) -> str:
        vkey, lkey = f"{self.prefix}v:{key}", f"{self.prefix}l:{key}"
        while True:
            raw, left_ms = self._redis(self._peek, vkey)
            if raw is not None:
                entry = json.loads(raw)
                if not self._refresh_early(entry["d"], left_ms):
                    return entry["v"]
                token = self._lease(lkey)
                if token is None:           # someone else refreshes it: serve what we have
                    return entry["v"]
                try:
                    return self._refresh(key, vkey, lkey, token)
                except (LostLease, ConnectionError, *REDIS_DOWN):
                    return entry["v"]       # the refresh can wait; the value is still good
                finally:
                    self._let_go(lkey, token)
            token = self._lease(lkey)
            if token is not None:
                try:
                    return self._refresh(key, vkey, lkey, token)
                except LostLease:
                    continue                # wait for the new holder's value
                finally:
                    self._let_go(lkey, token)
            self.clock.sleep(self.POLL_S)   # the holder's value is on its way

    # -- the cached value ------------------------------------------------------------------------
    def _peek(self, vkey: str):
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(vkey)
        pipe.pttl(vkey)
        return pipe.execute()

    def _refresh_early(self, delta_s: float, left_ms: int) -> bool:
        """XFetch (Vattani et al.): recompute when delta * beta * -ln(u) reaches the time left."""
        if left_ms < 0:
            return left_ms == -1            # no expiry: refresh it (-2: gone since the GET)
        u = 1.0 - self.rng.random()          # in (0, 1]
        return -delta_s * self.BETA * math.log(u) * 1000 >= left_ms

    def _refresh(self, key: str, vkey: str, lkey: str, token: str) -> str:
        value, delta_s = self._fetch(key, lkey, token)
        ttl = int(self.ttl_ms * (1 - self.TTL_SPREAD * self.rng.random()))
        entry = json.dumps({"v": value, "d": delta_s})
        self._redis(lambda: self.redis.set(vkey, entry, px=max(ttl, 1)))
        return value

    def _fetch(self, key: str, lkey: str, token: str) -> tuple[str, float]:
        """The origin's value and how long the call took, retried with capped exponential
        backoff and full jitter; before each pause the lease is renewed to outlast it."""
        for attempt in range(self.attempts):
            if attempt:
                pause = self._delay(attempt - 1)
                kept = self._redis(self._hold, lkey, token, int(pause * 1000) + self.lease_ms)
                if not kept:
                    raise LostLease(key)    # it ran out: someone else recomputes now
                self.clock.sleep(pause)
            started = self.clock.monotonic()
            try:
                return self.origin(key), self.clock.monotonic() - started
            except ConnectionError:
                if attempt + 1 == self.attempts:
                    raise
        raise ConnectionError("no attempts allowed")

    # -- the lease -------------------------------------------------------------------------------
    def _lease(self, lkey: str) -> str | None:
        token = f"{self.name}:{secrets.token_hex(8)}"
        got = self._redis(lambda: self.redis.set(lkey, token, nx=True, px=self.lease_ms))
        return token if got else None

    def _hold(self, lkey: str, token: str, ms: int) -> int:
        return self._renew(keys=[lkey], args=[token, ms])

    def _let_go(self, lkey: str, token: str) -> None:
        try:
            self._release(keys=[lkey], args=[token])
        except REDIS_DOWN:
            pass                             # it runs out by itself

    # -- retries ---------------------------------------------------------------------------------
    def _delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to the capped exponential step, in seconds."""
        return self.rng.uniform(0, min(self.cap_ms, self.base_ms * 2 ** attempt)) / 1000

    def _redis(self, op, *args):
        for attempt in range(self.attempts):
            if attempt:
                self.clock.sleep(self._delay(attempt - 1))
            try:
                return op(*args)
            except REDIS_DOWN:
                if attempt + 1 == self.attempts:
                    raise
        raise redis_lib.ConnectionError("no attempts allowed")
