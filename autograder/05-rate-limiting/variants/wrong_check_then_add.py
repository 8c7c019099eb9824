"""Wrong: a sliding-window log on Redis TIME, with expiries, timeouts and a declared policy, but the
check and the update are two scripts: one drops the old entries and counts, the other adds. Each
script is atomic; the decision between them is not."""
from __future__ import annotations

import os

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# KEYS[1]: the client's log. ARGV: window (microseconds). Returns {count, now}.
COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return {redis.call('ZCARD', KEYS[1]), now}
"""
# KEYS[1]: the client's log. ARGV: time (microseconds), member, window (microseconds).
ADD = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) / 1000) + 1)
return 1
"""


class RateLimiter:
    FAILURE_POLICY = "closed"

    def __init__(self, redis_url, prefix, limit, window_s, clock, timeout_s=0.25):
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self.count = self.redis.register_script(COUNT)
        self.add = self.redis.register_script(ADD)
        self.prefix, self.limit, self.window_us = prefix, limit, int(window_s * 1_000_000)

    def allow(self, client):
        key = f"{self.prefix}{client}"
        try:
            count, now = self.count(keys=[key], args=[self.window_us])
            if count >= self.limit:
                return False
            self.add(keys=[key], args=[now, os.urandom(8).hex(), self.window_us])
            return True
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
