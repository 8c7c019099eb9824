"""Lab 03 hidden tests, part 3: the same booking delivered twice, to the same replica or to another
one, after the first delivery finished, died halfway, or while it is still running. The saga id
is the key of the whole saga. Every verdict comes from the participants' own ledgers."""
import time

import pytest

from rig.saga_rig import POOR
from splitbrain.grading import expect_valid


def _until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.002)


@pytest.mark.points(15)
@pytest.mark.faults("duplicate", "kill", "lost-reply")
def test_06_the_same_booking_twice_books_once_on_any_replica(make_rig, nemesis):
    rig = make_rig(replicas=2)
    a, b = rig.replicas.values()
    # a client retried (same saga id): the copy reaches the same replica once the first ended
    with nemesis.fault("duplicate", rig.bookings, p=1.0):
        rig.book("twice", rig.order(), expect="done")
        rig.book("twice-declined", rig.order(account=POOR), expect="compensated")
    # ... and a third copy goes to the other replica
    b.book("twice", rig.orders["twice"])
    b.book("twice-declined", rig.orders["twice-declined"])
    # the first delivery died halfway: the copy reaches the other replica, nothing recovered
    rig.crash("payment.charge", "after", "died-halfway", replica=a)
    rig.expect("died-halfway", "either")
    order = rig.order()
    a.book("died-halfway", order)
    b.book("died-halfway", order)
    # both deliveries at once: the copy arrives while the first waits for a lost answer
    rig.lose_reply("payment.charge", "at-once")
    rig.expect("at-once", "done")
    order = rig.order()
    first = a.book_async("at-once", order)
    _until(lambda: any(f["saga_id"] == "at-once" for f in rig.parts.fired))
    second = b.book_async("at-once", order)
    first.result()
    second.result()
    a.restart()                                      # and a recovery finds nothing left to do
    expect_valid(rig.judge(), rig.history, hint=(
        "book() was called again with a saga id already seen, on this replica or another. A "
        "saga id is an idempotency key for the whole saga: look it up first, and finish the saga "
        "(or answer its outcome) instead of starting it again or answering what the row said "
        "halfway; and never keep a saga's lock after the drive, or the other replicas wait for "
        "ever."))
