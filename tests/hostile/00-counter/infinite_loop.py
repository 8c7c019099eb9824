class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis, self.key = redis, key

    def increment(self):
        while True:
            pass

    def value(self):
        return 0
