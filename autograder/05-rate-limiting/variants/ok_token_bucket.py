"""Correct: token bucket (capacity = limit, refill limit/window_s) in Lua on Redis TIME; fails closed."""
from __future__ import annotations


import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local admitted = 0
if tokens >= 1 then
  tokens = tokens - 1
  admitted = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return admitted
"""


class RateLimiter:
    FAILURE_POLICY = "closed"

    def __init__(self, redis_url, prefix, limit, window_s, clock, timeout_s=0.25):
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
        self.script = self.redis.register_script(SCRIPT)
        self.prefix, self.limit, self.window_s, self.clock = prefix, limit, window_s, clock

    def allow(self, client):
        try:
            return self.script(keys=[self.prefix + client],
                               args=[self.limit, self.limit / self.window_s]) == 1
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
