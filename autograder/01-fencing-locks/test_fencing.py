"""Lab 01 hidden tests: a lease lock and a fenced store under pauses, partitions, skewed clocks,
crashes and late releases. Every verdict comes from the grader's own view: the history of calls it
made and the audit trail of what Postgres really stored."""
import pytest
from rig.checkers import check_fenced_writes
from rig.fencing import RESOURCE_KEY, applied

from splitbrain.grading import expect_valid

STALE_HINT = ("The holder whose lease ran out still wrote, and the storage took it. Only the storage "
              "sees both writes: make write() refuse a token smaller than the last one stored.")


@pytest.mark.points(15)
@pytest.mark.faults("pause")
def test_01_write_after_gc_pause_is_fenced(db, holder, must_acquire, nemesis, history):
    a, b = holder("a", ttl_ms=400), holder("b", ttl_ms=10_000)
    token_a = must_acquire(a, 0, "the lock was free")
    gc = nemesis.inject("pause", a.worker)   # a stop-the-world pause longer than a's lease
    token_b = must_acquire(b, 5.0, "a is frozen; its lease must run out")
    b.write("b-1", token_b)
    gc.heal()                                # a wakes up and carries on where it stopped
    a.write("a-1", token_a)
    expect_valid(check_fenced_writes(history, applied(db)), history, hint=STALE_HINT)


@pytest.mark.points(15)
@pytest.mark.faults("partition")
def test_02_write_after_partition_from_redis_is_fenced(db, holder, must_acquire, proxy, nemesis,
                                                       history):
    px = proxy("redis", ns=db)
    a, b = holder("a", ttl_ms=400, redis_url=px.url), holder("b", ttl_ms=10_000)
    token_a = must_acquire(a, 0, "the lock was free")
    cut = nemesis.inject("partition", px)    # a can no longer reach Redis; Postgres still works
    try:
        token_b = must_acquire(b, 5.0, "a is cut off from Redis; its lease must run out")
        b.write("b-1", token_b)
        a.write("a-1", token_a)
    finally:
        cut.heal()
    expect_valid(check_fenced_writes(history, applied(db)), history, hint=STALE_HINT + (
        " A holder cut off from Redis cannot learn that its lease is gone, so no check in the "
        "client can save you."))


@pytest.mark.points(15)
@pytest.mark.faults("clock-skew")
def test_03_tokens_grow_whatever_the_clocks_say(db, holder, must_acquire, nemesis, history):
    a, b = holder("a", ttl_ms=400), holder("b", ttl_ms=10_000)
    nemesis.inject("clock-skew", b.worker, offset=-60.0)   # b's clock runs a minute behind
    token_a = must_acquire(a, 0, "the lock was free")
    token_b = must_acquire(b, 5.0, "a's lease must run out")
    b.write("b-1", token_b)
    a.write("a-1", token_a)
    expect_valid(check_fenced_writes(history, applied(db)), history, hint=(
        "b took the lock after a, so b's token must be larger, even though b's clock is behind. "
        "Issue tokens from one counter (Redis INCR in the same atomic step as the SET), not from "
        "a clock."))


@pytest.mark.points(10)
@pytest.mark.faults("kill")
def test_04_lease_of_a_killed_holder_expires(db, holder, must_acquire, nemesis, history):
    a = holder("a", ttl_ms=400)
    token_a = must_acquire(a, 0, "the lock was free")
    a.write("a-1", token_a)
    nemesis.inject("kill", a.worker)         # dies holding the lock; it will never release it
    b = holder("b", ttl_ms=10_000)
    token_b = must_acquire(b, 5.0, "its holder was killed; the lease must run out")
    b.write("b-1", token_b)
    expect_valid(check_fenced_writes(history, applied(db)), history, hint=(
        "After the holder died the next holder must be able to take the lock and write."))


@pytest.mark.points(15)
@pytest.mark.faults("partition")
def test_07_write_delayed_in_the_network_is_fenced(db, holder, must_acquire, proxy, nemesis,
                                                   history):
    px = proxy("postgres", ns=db)
    a, b = holder("a", ttl_ms=1_000, pg_url=px.url), holder("b", ttl_ms=10_000)
    token_a = must_acquire(a, 0, "the lock was free")
    held = nemesis.inject("partition", px)   # a's packets to Postgres are held, not lost
    pending = a.store.write.async_(RESOURCE_KEY, "a-1", token_a)   # sent while a's lease is valid
    token_b = must_acquire(b, 5.0, "a's lease must run out")
    b.write("b-1", token_b)
    held.heal()                              # the network delivers a's old write now
    try:
        pending.result(timeout=30)
    except Exception:  # noqa: BLE001 - a refused write may raise; what counts is what was stored
        pass
    expect_valid(check_fenced_writes(history, applied(db)), history, hint=(
        "a checked nothing wrong: its lease was valid when it sent the write. The write spent the "
        "rest of the lease in the network. Any check made by the client is out of date by the time "
        "the storage acts; only the storage can compare tokens at the moment it writes."))
