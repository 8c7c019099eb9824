"""Public tests for lab 10: run them with

    pytest labs/10-consumer-groups/test_public.py -p splitbrain.grading.plugin

They use the same world as the hidden tests: the schema in a database of your own, a private
Kafka-compatible broker, a topic with two partitions, one consumer group, and your component
running in sandboxed workers, one `step()` at a time.
"""
import pytest
from rig.world import world_fixture  # noqa: F401  (the `world` fixture)

from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


def test_one_member_applies_every_record_once(world, history):
    """No faults: one member, a few records on each partition."""
    world.feed.produce(0, 3)
    world.feed.produce(1, 3)
    a = world.member("a")
    assert world.drain([a]), "not every record was applied"
    expect_valid(world.check(), history)


def test_a_member_that_leaves_hands_its_partitions_over(world, history):
    """Member a applies a batch and leaves the group cleanly (close()); b joins and takes over
    the records written after."""
    world.feed.produce(0, 3)
    a = world.member("a")
    world.drain([a])
    a.obj.close()
    world.feed.produce(0, 2)
    world.feed.produce(1, 2)
    b = world.member("b")
    assert world.drain([b]), "b did not apply the records written after a left"
    expect_valid(world.check(), history)
