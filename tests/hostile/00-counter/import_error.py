import module_that_does_not_exist  # noqa: F401


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis, self.key = redis, key
