# ---------------------------------------------------------------------------------------------
# LAB 05 -- what to fix
#
# Several API gateway processes run this limiter against one Redis, and together they must admit
# at most `limit` requests per client per `window_s` seconds. This version looks right in a
# single-process test and breaks in three ways in production:
#
#   * under concurrency, two gateways read the same count and both admit (a lost update);
#   * a fixed window admits `limit` just before a window boundary and `limit` again just after;
#   * each gateway decides which window it is in from its own clock, and gateway clocks disagree.
#
# And when Redis is slow or unreachable, a call to `allow()` hangs or raises instead of returning
# the decision FAILURE_POLICY promises, within `timeout_s`.
#
# Keep the interface below (the grader calls it). Make the decision atomic in Redis, judge time by
# one clock everyone shares, count over a window that slides, give every key an expiry, and keep
# the declared failure policy within the timeout. `splitbrain check 05-rate-limiting` grades it.
# ---------------------------------------------------------------------------------------------
"""A per-client rate limiter shared by every gateway process, kept in Redis.

Interface (what the grader calls):

    limiter = RateLimiter(redis_url, prefix="ns:rl:", limit=10, window_s=2.0, clock=clock,
                          timeout_s=0.25)
    limiter.allow("client-42")  # -> True (admit) or False (reject with 429)
    limiter.close()

Guarantees it claims:
  * Per client, across all gateways: at most `limit` requests at once, and after that no faster
    than `limit / window_s` per second. In any interval of d seconds at most
    `limit + d * limit / window_s` are admitted (a sliding window, a token bucket or GCRA keep
    this; a quiet client may spend its whole `limit` at once).
  * A client that stays within the limit is never rejected.
  * Every key it writes starts with `prefix` and expires on its own.
  * `allow()` returns within `timeout_s` (plus a little for the network). If Redis is slow or
    unreachable it returns the decision named by FAILURE_POLICY: "open" admits the request,
    "closed" rejects it. FAILURE_POLICY is a string literal in the class body, "open" or
    "closed"; the grader reads it from there.
"""
from __future__ import annotations

import redis

from splitbrain import Clock


class RateLimiter:
    """Fixed-window counter: one Redis key per client per window."""

    # What allow() answers when Redis cannot: "open" admits, "closed" rejects.
    FAILURE_POLICY = "closed"

    def __init__(self, redis_url: str, prefix: str, limit: int, window_s: float,
                 clock: Clock, timeout_s: float = 0.25) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"limit must be >= 1 and window_s > 0, got {limit}, {window_s}")
        self.redis = redis.Redis.from_url(redis_url)
        self.prefix = prefix
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.timeout_s = timeout_s

    def allow(self, client: str) -> bool:
        """True if this request of `client` is within the limit (and counts it), else False."""
        window = int(self.clock.now() // self.window_s)
        key = f"{self.prefix}{client}:{window}"
        count = int(self.redis.get(key) or 0)
        if count >= self.limit:
            return False
        self.redis.set(key, count + 1)
        return True

    def close(self) -> None:
        self.redis.close()
