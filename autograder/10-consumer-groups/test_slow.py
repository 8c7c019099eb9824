"""Slow records: a member must keep polling, or the group throws it out while it works."""
import pytest

from splitbrain.grading import expect_valid

HINT = ("A step that applies a whole batch of slow records does not poll for longer than "
        "max.poll.interval.ms (2 s): librdkafka takes the member out of its group although it "
        "is alive, its partitions move, and the next owner takes the same batch and goes the "
        "same way. Bound the time one step spends applying (well under 2 s) and seek back to the "
        "first record left over, so the next step starts there.")


@pytest.mark.points(25)
@pytest.mark.faults("slow-record")
def test_02_slow_records_never_keep_a_member_from_polling(world, nemesis, history):
    """Two members share the two partitions. Each partition gets a backlog of ten records that
    take 250 ms each to apply: one poll can return more work than max.poll.interval.ms (2 s)
    allows between two polls. Both members step side by side until the backlog is applied:
    every record once, and no step longer than 2 s."""
    a, b = world.member("a"), world.member("b")
    for p in (0, 1):
        nemesis.inject("slow-record", world.feed, partition=p, ms=250, count=10)
    world.drain([a, b], deadline_s=20)
    expect_valid(world.check(), history, hint=HINT)
