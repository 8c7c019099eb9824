"""Subtly wrong: atomic INCR, Redis TIME, TTLs, timeouts -- but a fixed window (boundary burst)."""
from __future__ import annotations


import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SCRIPT = """
local t = redis.call('TIME')
local idx = math.floor(tonumber(t[1]) / tonumber(ARGV[2]))
local key = KEYS[1] .. ':' .. idx
local n = redis.call('INCR', key)
redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2]) * 1000))
if n > tonumber(ARGV[1]) then return 0 end
return 1
"""


class RateLimiter:
    FAILURE_POLICY = "open"

    def __init__(self, redis_url, prefix, limit, window_s, clock, timeout_s=0.25):
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
        self.script = self.redis.register_script(SCRIPT)
        self.prefix, self.limit, self.window_s, self.clock = prefix, limit, window_s, clock

    def allow(self, client):
        try:
            return self.script(keys=[self.prefix + client], args=[self.limit, int(self.window_s)]) == 1
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
