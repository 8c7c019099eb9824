"""Subtly wrong: atomic sliding log on Redis TIME with timeouts, but it loads the script once and
calls EVALSHA with the cached digest; after a Redis restart every call fails (NOSCRIPT) and the
limiter, failing closed on every Redis error, rejects everyone."""
from __future__ import annotations

import os

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) / 1000) + 1)
return 1
"""


class RateLimiter:
    FAILURE_POLICY = "closed"

    def __init__(self, redis_url, prefix, limit, window_s, clock, timeout_s=0.25):
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=timeout_s,
                                          socket_connect_timeout=timeout_s,
                                          retry=Retry(NoBackoff(), 0))
        self.sha = self.redis.script_load(SCRIPT)
        self.prefix, self.limit, self.window_us = prefix, limit, int(window_s * 1e6)

    def allow(self, client):
        try:
            return self.redis.evalsha(self.sha, 1, self.prefix + client, self.limit,
                                      self.window_us, os.urandom(8).hex()) == 1
        except redis.RedisError:
            return False

    def close(self):
        self.redis.close()
