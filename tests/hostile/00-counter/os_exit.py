import os


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis, self.key = redis, key

    def increment(self):
        os._exit(3)

    def value(self):
        return 0
