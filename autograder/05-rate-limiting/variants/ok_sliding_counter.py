"""Correct: Cloudflare's sliding-window counter approximation in Lua on Redis TIME; fails closed."""
from __future__ import annotations


import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local idx = math.floor(now / window)
local elapsed = (now - idx * window) / window
local cur_key = KEYS[1] .. ':' .. idx
local prev_key = KEYS[1] .. ':' .. (idx - 1)
local prev = tonumber(redis.call('GET', prev_key) or '0')
local cur = tonumber(redis.call('GET', cur_key) or '0')
if prev * (1 - elapsed) + cur >= limit then return 0 end
redis.call('INCR', cur_key)
redis.call('PEXPIRE', cur_key, math.ceil(window * 2000))
return 1
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
            return self.script(keys=[self.prefix + client], args=[self.limit, self.window_s]) == 1
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
