"""Public tests for lab 02: run them with

    pytest labs/02-transactional-outbox/test_public.py -p splitbrain.grading.plugin

They use the same world as the hidden tests: the schema in a database of your own, a private
Kafka broker behind a fault proxy, and your component running in sandboxed workers.
"""
import pytest

from rig.checkers import OrderTruth
from rig.world import Replay, world_fixture  # noqa: F401  (the `world` fixture)
from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


def test_orders_and_cancellations_reach_the_topic(world, history):
    """No faults: three orders, one cancellation, one rejected order."""
    _, svc = world.app()
    for i, customer in enumerate(("ada", "bob", "cy"), start=1):
        world.place(svc, f"o{i}", customer, 10 * i)
    world.cancel(svc, "o2")
    assert not world.place(svc, "o4", "dee", -5), "an order with a negative amount must raise"
    world.shut_down(svc)
    _, relay = world.relay()
    world.drain([relay])
    expect_valid(world.check(allow_duplicates=False), history)


@pytest.mark.faults("crash")
def test_a_crash_right_after_the_commit_loses_nothing(world, history):
    """The service dies the moment Postgres confirms the COMMIT of order o2."""
    w, svc = world.app()
    world.place(svc, "o1", "ada", 10)
    crash = world.crash(w, "after_commit")  # the next COMMIT kills the service
    world.place(svc, "o2", "bob", 20)      # dies at its COMMIT (if it commits anything)
    crash.heal()
    _, relay = world.relay()
    world.drain([relay])
    expect_valid(world.check(), history)


@pytest.mark.faults("redeliver")
def test_a_redelivered_event_is_applied_once(world, history, nemesis):
    """The same OrderPlaced arrives twice, as it does after a consumer crash or a rebalance."""
    _, proj = world.projection()
    event = {"event_id": "e-1", "type": "OrderPlaced", "order_id": "o1", "customer": "ada",
             "amount": 10}
    feed = Replay([event])                  # what the consumer group reads, and where it is
    feed.play(proj.handle)
    nemesis.inject("redeliver", feed, events=1)    # a rebalance: the group reads it again
    feed.play(proj.handle)
    expect_valid(world.check_projection({"o1": OrderTruth("ada", 10, "placed")}), history)
