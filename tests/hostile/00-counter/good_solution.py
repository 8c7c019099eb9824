"""A shared counter in Redis: INCR reads and writes in one atomic step."""


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis = redis
        self.key = key

    def increment(self):
        return int(self.redis.incr(self.key))

    def value(self):
        return int(self.redis.get(self.key) or 0)
