"""Subtly wrong: atomic sliding log with timeouts -- but the time comes from the gateway's clock."""
from __future__ import annotations

import os

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SCRIPT = """
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) / 1000) + 1)
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
            return self.script(keys=[self.prefix + client],
                               args=[self.limit, int(self.window_s * 1e6), os.urandom(8).hex(),
                                     int(self.clock.now() * 1e6)]) == 1
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
