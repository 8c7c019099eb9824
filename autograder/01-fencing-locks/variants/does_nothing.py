"""Hostile-lazy: hands out tokens without touching Redis and says every write was stored.
"""
import itertools

_tokens = itertools.count(1)


class RedisLock:
    def __init__(self, redis, name, ttl_ms=1000, clock=None):
        pass

    def acquire(self, wait_s=0.0):
        return next(_tokens)

    def release(self):
        return True


class FencedStore:
    def __init__(self, pg):
        pass

    def write(self, key, value, token):
        return True

    def read(self, key):
        return None
