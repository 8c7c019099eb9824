"""A member killed mid-batch: nothing it had not applied may be declared done."""
import pytest

from splitbrain.grading import expect_valid

HINT = ("Auto-commit declares a record done when poll() hands it to you, not when its effect has "
        "committed: a member killed mid-batch leaves the rest of the batch committed and never "
        "applied. Turn enable.auto.commit off and record the position yourself after the effect "
        "(best: in Postgres, in the same transaction as the effect), and on assignment start "
        "from that position.")


@pytest.mark.points(30)
@pytest.mark.faults("slow-record", "kill")
def test_01_a_member_killed_mid_batch_loses_no_record(world, nemesis, history, seed):
    """One member takes a batch of both partitions and is stuck in record 3 of partition 0 (a
    slow record, held). While it is stuck its consumer's threads run on; once the broker holds
    a committed offset past the stuck record (or after a while, if it never does), the member is
    killed. A new member joins the group and takes over: every record must be applied exactly
    once."""
    feed = world.feed
    feed.produce(0, 3)
    gate = nemesis.inject("slow-record", feed, partition=0)
    stuck = feed.records[-1]
    feed.produce(0, 4)
    feed.produce(1, 4)
    a = world.member("a")
    wb = world.worker("b")                  # b's process starts while a joins
    assert world.until_at_gate(a, feed.gate) is not None, "member a never reached the slow record"
    world.committed_past(stuck.partition, stuck.offset, deadline_s=1.0)
    nemesis.inject("kill", a.w)
    gate.heal()
    b = world.member("b", wb)
    world.drain([b])
    expect_valid(world.check(), history, hint=HINT)
