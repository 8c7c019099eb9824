"""Wipes the whole Redis server (every other namespace's keys) before counting."""


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        redis.flushall()
        self.redis, self.key = redis, key

    def increment(self):
        return int(self.redis.incr(self.key))

    def value(self):
        return int(self.redis.get(self.key) or 0)
