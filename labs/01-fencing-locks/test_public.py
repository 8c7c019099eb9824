"""Public tests for lab 01. They use the grader's fixtures and run your lock.py in worker processes
against real Redis and Postgres, like the hidden tests. Run them from this folder with

    python -m pytest -q -p splitbrain.grading.plugin --lab 01-fencing-locks --submission lock.py test_public.py

Passing them is necessary, not sufficient: the hidden tests add pauses, partitions, skewed clocks
and crashes.
"""
import pytest
from rig import fencing
from rig.checkers import check_fenced_writes, check_mutual_exclusion

from splitbrain.grading import expect_valid


# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture
def holder(ns, spawn):
    fencing.prepare(ns)
    return lambda name, ttl_ms: fencing.holder(spawn, ns, name, ttl_ms)


def test_lock_excludes_a_second_worker_until_released(holder, history):
    a, b = holder("a", 10_000), holder("b", 10_000)
    assert a.acquire() is not None, "a could not take a free lock"
    assert b.acquire() is None, "b took the lock while a held it"
    assert a.release() is True, "a could not release its own lock"
    assert b.acquire(wait_s=2.0) is not None, "b could not take the lock after a released it"
    expect_valid(check_mutual_exclusion(history, 10.0), history)


def test_a_late_release_leaves_the_new_holder_alone(holder):
    a, b, c = holder("a", 200), holder("b", 10_000), holder("c", 10_000)
    assert a.acquire() is not None
    assert b.acquire(wait_s=5.0) is not None, "a's 200 ms lease never ran out"
    a.release()                                # too late: the lock is b's now
    assert c.acquire() is None, "a's release freed b's lock, and c took it while b held it"


def test_the_store_refuses_an_older_token(holder, ns, history):
    a, b = holder("a", 200), holder("b", 10_000)
    token_a = a.acquire()
    token_b = b.acquire(wait_s=5.0)            # a's 200 ms lease runs out first
    assert token_b is not None, "a's lease never ran out"
    b.write("b-1", token_b)
    a.write("a-1", token_a)                    # a does not know its lease is gone
    expect_valid(check_fenced_writes(history, fencing.applied(ns)), history)
