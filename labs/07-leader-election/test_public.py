"""Public tests for lab 07. They use the grader's fixtures and run your leader_election.py in worker
processes against real Redis and Postgres, like the hidden tests. Run them from the checkout's root
with

    .venv/bin/python -m pytest -q -p splitbrain.grading.plugin --lab 07-leader-election --submission labs/07-leader-election/leader_election.py labs/07-leader-election/test_public.py

Passing them is necessary, not sufficient: the hidden tests add pauses, partitions, stalls, a
wall clock that steps, a killed leader and a failover of the lease store.
"""
import pytest
from rig import world
from rig.checkers import check_election

from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture
def nodes(ns, spawn):
    world.prepare(ns)
    return lambda *specs: world.nodes(spawn, ns, list(specs))


def test_one_leader_charges_each_tick_once(nodes, ns, history):
    a, b = nodes(dict(name="a", lease_ms=5_000), dict(name="b", lease_ms=5_000))
    for n in (1, 2, 3):
        world.round_([a, b], n)
    assert a.leading() is not None, "a was elected first and renewed: it must still lead"
    assert b.leading() is None, "b was never elected"
    assert [c["tick"] for c in world.charges(ns)] == [1, 2, 3]
    expect_valid(check_election(history, world.charges(ns), {"a": 5.0, "b": 5.0}), history)


def test_terms_grow_with_every_election(nodes, ns):
    a, b = nodes(dict(name="a", lease_ms=200), dict(name="b", lease_ms=5_000))
    term_a = world.elect(a)
    term_b = world.elect(b)                 # a stops renewing; its 200 ms lease runs out
    assert term_b > term_a, f"b was elected after a, but its term {term_b} is not larger than {term_a}"
    assert a.leading() is None, "a's lease ran out: it must not say it leads"


def test_the_database_refuses_the_old_term(nodes, ns, history):
    a, b = nodes(dict(name="a", lease_ms=200), dict(name="b", lease_ms=5_000))
    world.elect(a)
    world.elect(b)
    assert b.tick(1) is True, "b leads: its charge must land"
    assert b.tick(1) is False, "tick 1 is already charged"
    expect_valid(check_election(history, world.charges(ns), {"a": 0.2, "b": 5.0}), history)
