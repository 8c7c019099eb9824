"""Public tests for lab 06: they run your receiver.py in a worker against the real provider and
payment API, through the fault proxy, like the hidden tests. From the checkout's root:

    .venv/bin/python -m pytest -q -p splitbrain.grading.plugin --lab 06-idempotency-webhooks
        --submission labs/06-idempotency-webhooks/receiver.py labs/06-idempotency-webhooks/test_public.py
"""
import pytest

from splitbrain.grading import expect_valid

pytestmark = pytest.mark.points(0)


@pytest.fixture
def world(ns, spawn, nemesis, history, seed):
    from rig.world import World
    with World.open(ns, spawn, history, nemesis, seed=seed) as w:
        yield w


def test_a_quiet_day(world):
    world.send_all(world.order())
    expect_valid(world.settle(), world.history,
                 hint="On a quiet day each event is applied once, in order.")


@pytest.mark.faults("duplicate")
def test_the_same_event_twice_ships_once(world, nemesis):
    with nemesis.fault("duplicate", "sender", p=1.0):
        world.send_all(world.order())
    expect_valid(world.settle(), world.history,
                 hint="Record each webhook-id with its effect, and skip one you have seen.")
