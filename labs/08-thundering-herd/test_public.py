"""Public tests for lab 08. They use the grader's fixtures and run your thundering_herd.py in worker
processes against real Redis and Postgres, like the hidden tests. Run them from the checkout's root
with

    .venv/bin/python -m pytest -q -p splitbrain.grading.plugin --lab 08-thundering-herd --submission labs/08-thundering-herd/thundering_herd.py labs/08-thundering-herd/test_public.py

Passing them is necessary, not sufficient: the hidden tests release many callers at once, let hot
keys expire under load, kill a caller mid-computation, take the origin down and restart Redis.
"""
import pytest
from rig import world
from rig.checkers import check_stale, judge

from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture
def clients(ns, spawn, seed):
    world.prepare(ns)
    return lambda n: world.clients(spawn, ns, [chr(ord("a") + i) for i in range(n)], seed)


def test_a_miss_is_computed_and_then_served_from_the_cache(clients, ns, history):
    (a,) = clients(1)
    assert a.get("k1") == "k1@v0", "the first get() must return the origin's value"
    assert a.get("k1") == "k1@v0"
    calls = [c for c in world.origin_calls(ns, history) if c.ok]
    assert len(calls) == 1, f"the second get() must be a hit, but the origin was called {len(calls)} times"
    expect_valid(check_stale(history, calls), history)


def test_two_callers_one_after_the_other_share_one_computation(clients, ns, history):
    a, b = clients(2)
    assert a.get("k2") == "k2@v0"
    assert b.get("k2") == "k2@v0", "b must be served the value a cached"
    world.bump(ns, history, "k2")
    expect_valid(judge(history, world.origin_calls(ns, history)), history)
