"""Patches the kit's verdicts to always be valid, then behaves like the broken counter."""
import time

import splitbrain.checkers.base as base
import splitbrain.grading as grading

base.verdict = lambda checker, anomalies, **stats: base.Verdict(True, (), checker)
grading.expect_valid = lambda verdict, history=None, hint=None: verdict


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis, self.key = redis, key

    def increment(self):
        value = int(self.redis.get(self.key) or 0)
        time.sleep(0.01)
        self.redis.set(self.key, value + 1)
        return value + 1

    def value(self):
        return int(self.redis.get(self.key) or 0)
