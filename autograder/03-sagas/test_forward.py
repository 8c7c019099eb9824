"""Lab 03 hidden tests, part 1: sagas that run forward, fail cleanly, or lose an answer on the way.
Every verdict comes from the participants' own ledgers, queried by the grader."""
import pytest

from splitbrain.grading import expect_valid
from rig.saga_rig import POOR, SCARCE


@pytest.mark.points(10)
def test_01_orders_that_can_complete_are_booked(rig):
    for i in range(3):
        rig.book(f"ok-{i}", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "With no fault at all, each order must end with the item reserved, the card charged and "
        "the parcel scheduled, and book() must answer 'done'."))


@pytest.mark.points(10)
def test_02_a_declined_step_undoes_the_steps_before_it(rig):
    rig.book("no-stock", rig.order(sku=SCARCE, qty=2), expect="compensated")
    rig.book("no-money", rig.order(account=POOR), expect="compensated")
    rig.book("no-carrier", rig.order(address="Atlantis"), expect="compensated")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "A declined step did nothing; every step before it did something and must be undone, "
        "last first (release after refund), and book() must answer 'compensated'."))


@pytest.mark.points(15)
@pytest.mark.faults("lost-reply")
def test_05_a_lost_answer_means_maybe_done(rig):
    for op in ("inventory.reserve", "payment.charge", "shipping.schedule"):
        sid = "lost-" + op.split(".")[1]
        rig.lose_reply(op, sid)
        rig.book(sid, rig.order(), expect="either")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "A step did its work, but its answer never arrived. That is not a refusal: the step may "
        "have happened. Ask again with the same idempotency key (the participant answers with "
        "the first outcome), then carry on or undo it. Give every call a timeout "
        "(step_timeout_s): without one a lost answer holds the saga up."))


@pytest.mark.points(10)
@pytest.mark.faults("lost-reply")
def test_06_a_compensation_whose_answer_is_lost_is_done_once(rig):
    for op in ("payment.refund", "inventory.release"):
        sid = "lost-" + op.split(".")[1]
        rig.lose_reply(op, sid)
        rig.book(sid, rig.order(address="Atlantis"), expect="compensated")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "A compensation was done, its answer was lost, and it was sent again as a new operation: "
        "a second refund is a second payment. Retry a compensation with the same idempotency "
        "key, derived from the saga id and the step, never a fresh one per attempt."))


@pytest.mark.points(10)
@pytest.mark.faults("unavailable")
def test_07_compensations_are_retried_until_they_succeed(rig):
    for op in ("payment.refund", "inventory.release"):
        sid = "flaky-" + op.split(".")[1]
        rig.unavailable(op, sid, times=6)
        rig.book(sid, rig.order(address="Atlantis"), expect="compensated")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "A compensation answered 503 six times in a row (a participant restarting). A "
        "compensation that gives up leaves the saga half undone forever: retry it (same key, "
        "with a backoff) until it succeeds."))
