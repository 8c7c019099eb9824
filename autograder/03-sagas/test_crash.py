"""Lab 03 hidden tests, part 2: the orchestrator dies at every step boundary and is restarted; the
same booking request arrives twice. Every verdict comes from the participants' own ledgers."""
import pytest

from rig.saga_rig import POOR
from splitbrain.grading import expect_valid

FORWARD = ["inventory.reserve", "payment.charge", "shipping.schedule"]
BACKWARD = ["payment.refund", "inventory.release"]
CRASH_HINT = ("The orchestrator was killed {when} {op} and restarted; recover() had to finish the "
              "saga. Persist the saga's state before each step (which step may have started), so "
              "that a new process can resume it forward or undo it backward, with the same "
              "idempotency keys as the first attempt.")


@pytest.mark.points(15)
@pytest.mark.faults("kill")
def test_03_crash_at_every_forward_step_then_recover(rig):
    for op in FORWARD:
        for when in ("before", "after"):
            sid = f"crash-{when}-{op.split('.')[1]}"
            rig.crash(op, when, sid)
            rig.book(sid, rig.order(), expect="either")
            rig.restart_and_recover()
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=CRASH_HINT.format(
        when="before or right after", op="a forward step (reserve, charge, schedule)"))


@pytest.mark.points(10)
@pytest.mark.faults("kill")
def test_04_crash_while_compensating_then_recover(rig):
    for op in BACKWARD:
        for when in ("before", "after"):
            sid = f"crash-{when}-{op.split('.')[1]}"
            rig.crash(op, when, sid)
            rig.book(sid, rig.order(address="Atlantis"), expect="compensated")
            rig.restart_and_recover()
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=CRASH_HINT.format(
        when="before or right after", op="a compensation (refund, release)"))


@pytest.mark.points(10)
@pytest.mark.faults("kill", "duplicate")
def test_08_the_same_booking_twice_books_once(rig, nemesis):
    # every booking is delivered twice (the client retried: same saga id), the second copy once
    # the first delivery ended; after a kill, the copy reaches the restarted process
    with nemesis.fault("duplicate", rig.bookings, p=1.0):
        rig.book("twice", rig.order(), expect="done")
        rig.book("twice-declined", rig.order(account=POOR), expect="compensated")
        rig.crash("payment.charge", "after", "twice-crashed")
        rig.book("twice-crashed", rig.order(), expect="either")
    rig.restart_and_recover()                             # and recovery finds nothing left to do
    expect_valid(rig.judge(), rig.history, hint=(
        "book() was called again with a saga id it had already seen. A saga id is an idempotency "
        "key for the whole saga: look it up first, and finish it (or answer its outcome) instead "
        "of starting it again."))
