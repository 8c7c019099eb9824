"""Correct: a sliding-window log on Redis TIME kept with optimistic transactions (WATCH, read,
MULTI/EXEC, and again while another gateway got there first), bounded by the timeout; fails closed."""
from __future__ import annotations

import os
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class RateLimiter:
    FAILURE_POLICY = "closed"

    def __init__(self, redis_url, prefix, limit, window_s, clock, timeout_s=0.25):
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self.prefix, self.limit, self.window_us = prefix, limit, int(window_s * 1_000_000)
        self.timeout_s = timeout_s

    def allow(self, client):
        key = f"{self.prefix}{client}"
        deadline = time.monotonic() + self.timeout_s
        try:
            with self.redis.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)
                        sec, usec = pipe.time()
                        now = sec * 1_000_000 + usec
                        if pipe.zcount(key, now - self.window_us + 1, "+inf") >= self.limit:
                            pipe.reset()
                            return False
                        pipe.multi()
                        pipe.zremrangebyscore(key, "-inf", now - self.window_us)
                        pipe.zadd(key, {os.urandom(8).hex(): now})
                        pipe.pexpire(key, self.window_us // 1000 + 1)
                        pipe.execute()
                        return True
                    except redis.WatchError:
                        if time.monotonic() > deadline:   # contention past the bound
                            return self.FAILURE_POLICY == "open"
        except (redis.ConnectionError, redis.TimeoutError):
            return self.FAILURE_POLICY == "open"

    def close(self):
        self.redis.close()
