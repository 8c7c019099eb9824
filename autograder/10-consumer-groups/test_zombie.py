"""A member paused past its session timeout wakes up with a batch it no longer owns."""
import pytest

from splitbrain.grading import expect_valid

HINT = ("A member paused past session.timeout.ms (a GC pause) is thrown out of the group; its "
        "partitions go to another member, which starts from the last committed position. When "
        "the paused one wakes up it is still in the middle of its batch and applies records the "
        "new owner applies too. Keep each partition's next offset in Postgres, written in the "
        "same transaction as the effect; in each record's transaction lock the partition's row "
        "(SELECT ... FOR UPDATE) and skip a record below the stored offset.")


@pytest.mark.points(30)
@pytest.mark.faults("slow-record", "pause", "concurrency")
def test_03_a_member_paused_past_its_session_applies_nothing_twice(world, nemesis, history):
    """Member a takes a batch of both partitions and is stuck in record 2 of partition 0. Once
    the broker holds whatever a's client commits by itself, a is paused (a GC pause) past its
    session timeout and a new member, b, joins the group while a is mid-batch: b takes
    partition 0 over (a is paused first, so that its session has expired when b's join
    completes: tansu makes a follower that joins under a live leader wait 3 s more). Once b has
    applied a record of partition 0 or waits for a lock a holds, a wakes up and finishes its
    batch; then both run until everything is applied: every record exactly once."""
    feed = world.feed
    feed.produce(0, 2)
    gate = nemesis.inject("slow-record", feed, partition=0)
    stuck = feed.records[-1]
    feed.produce(0, 3)
    feed.produce(1, 3)
    a = world.member("a")
    wb = world.worker("b")                  # b's process starts while a joins
    held = world.until_at_gate(a, feed.gate)
    assert held is not None, "member a never reached the slow record"
    world.committed_past(stuck.partition, stuck.offset, deadline_s=0.8)   # whatever a commits
    with nemesis.fault("concurrency"):
        pause = nemesis.inject("pause", a.w)
        b = world.member("b", wb)
        gate.heal()
        feed.produce(0, 2)
        took_over = world.until_taken_over(b, partition=0)
        pause.heal()
        held.exception(timeout=15)
    assert took_over, "member b never took partition 0 over from the paused member a"
    world.drain([a, b])
    expect_valid(world.check(), history, hint=HINT)
