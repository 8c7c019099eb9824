"""Tries to read the hidden tests from the checkout."""
from pathlib import Path

import splitbrain

HIDDEN = (Path(splitbrain.__file__).resolve().parents[1] / "tests" / "fixtures" / "project"
          / "autograder" / "00-counter" / "test_counter.py")


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis, self.key = redis, key
        self.secrets = HIDDEN.read_text()

    def increment(self):
        return int(self.redis.incr(self.key))

    def value(self):
        return int(self.redis.get(self.key) or 0)
