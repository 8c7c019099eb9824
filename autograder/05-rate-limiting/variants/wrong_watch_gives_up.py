"""Wrong: a sliding-window log on Redis TIME kept with an optimistic transaction (WATCH, read,
MULTI/EXEC), with expiries, timeouts and a declared policy; when another gateway touched the key
first and EXEC aborts, it rejects the request instead of trying again."""
from __future__ import annotations

import os

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class RateLimiter:
    FAILURE_POLICY = "open"

    def __init__(self, redis_url, prefix, limit, window_s, clock, timeout_s=0.25):
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self.prefix, self.limit, self.window_us = prefix, limit, int(window_s * 1_000_000)

    def allow(self, client):
        key = f"{self.prefix}{client}"
        try:
            with self.redis.pipeline() as pipe:
                pipe.watch(key)
                sec, usec = pipe.time()
                now = sec * 1_000_000 + usec
                if pipe.zcount(key, now - self.window_us + 1, "+inf") >= self.limit:
                    return False
                pipe.multi()
                pipe.zremrangebyscore(key, "-inf", now - self.window_us)
                pipe.zadd(key, {os.urandom(8).hex(): now})
                pipe.pexpire(key, self.window_us // 1000 + 1)
                pipe.execute()
                return True
        except redis.WatchError:
            return False      # another gateway got there first: treat it as over the limit
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
