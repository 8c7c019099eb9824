"""Wrong: a token bucket in one Lua script, with expiries, timeouts and a declared policy, timed by
the gateway's monotonic clock (immune to NTP steps, so it seemed safe): every gateway has its own
monotonic clock, and a VM that resumes jumps it."""
from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# KEYS[1]: the bucket. ARGV: capacity, refill rate per second, now (the gateway's monotonic seconds)
SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
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
                               args=[self.limit, self.limit / self.window_s,
                                     repr(self.clock.monotonic())]) == 1
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
