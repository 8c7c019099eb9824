"""Fixtures of lab 01's hidden tests: the namespace gets the `resource` table and its audit trail
before any worker starts; `holder(name, ttl_ms)` spawns a worker with the learner's lock and store.

The rig (``rig.fencing``) is imported inside the fixtures: pytest imports this conftest before the
grading plugin's ``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest

from splitbrain.checkers.base import Anomaly, verdict
from splitbrain.grading import expect_valid


@pytest.fixture
def db(ns):
    from rig import fencing
    fencing.prepare(ns)
    return ns


@pytest.fixture
def holder(db, spawn):
    from rig import fencing

    def make(name, ttl_ms, redis_url=None, pg_url=None):
        return fencing.holder(spawn, db, name, ttl_ms, redis_url=redis_url, pg_url=pg_url)
    return make


@pytest.fixture
def must_acquire(history):
    """Acquire or fail the test with a liveness verdict that names who could not get the lock."""
    def run(h, wait_s, why):
        token = h.acquire(wait_s)
        if token is None:
            expect_valid(verdict("liveness", [Anomaly(
                "stuck-lock", f"{h.name} could not take the lock within {wait_s:g} s: {why}")]),
                history, hint="A lease must run out by itself (PX on the SET) and acquire() must "
                              "keep retrying until wait_s is over.")
        return token
    return run
