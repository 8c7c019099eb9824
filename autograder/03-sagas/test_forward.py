"""Lab 03 hidden tests, part 1: sagas that run forward or turn back, answers that are lost, and
participants that are down for a while. Every verdict comes from the participants' own ledgers,
queried by the grader, and from what the participants saw of each call."""
import pytest

from rig.saga_rig import POOR, SCARCE
from splitbrain.grading import expect_valid

#: a saga the carrier refuses: reserve, charge, schedule (declined), refund, release
REFUSED_AT_THE_END = {"address": "Atlantis"}


@pytest.mark.points(10)
def test_01_sagas_run_forward_or_turn_back_last_step_first(rig):
    for i in range(2):
        rig.book(f"ok-{i}", rig.order(), expect="done")
    rig.book("no-stock", rig.order(sku=SCARCE, qty=2), expect="compensated")
    rig.book("no-money", rig.order(account=POOR), expect="compensated")
    rig.book("no-carrier", rig.order(**REFUSED_AT_THE_END), expect="compensated")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "With no fault at all, an order that nothing refuses ends reserved, charged and "
        "scheduled, and book() answers 'done'. A declined step did nothing; every step before it "
        "did something and is undone, last first (refund, then release), and book() answers "
        "'compensated'. No step runs before the one before it succeeded."))


@pytest.mark.points(15)
@pytest.mark.faults("lost-reply", "unavailable")
def test_02_a_lost_answer_is_a_maybe_and_costs_one_timeout(make_rig):
    rig = make_rig(step_timeout_s=0.1)
    # every answer of a saga lost, one call after the other: forward, refused, and back
    for op in ("inventory.reserve", "payment.charge", "shipping.schedule"):
        rig.lose_reply(op, "lost-all")
    rig.book("lost-all", rig.order(), expect="done")
    for op in ("inventory.reserve", "payment.charge", "shipping.schedule", "payment.refund",
               "inventory.release"):
        rig.lose_reply(op, "lost-all-back")
    rig.book("lost-all-back", rig.order(**REFUSED_AT_THE_END), expect="compensated")
    # the charge is made, its answer lost, and the next three asks get 503: still a maybe
    rig.lose_reply("payment.charge", "lost-then-down")
    rig.unavailable("payment.charge", "lost-then-down", times=3)
    rig.book("lost-then-down", rig.order(), expect="done")
    # a refusal whose answer is lost is still a refusal once asked again
    rig.lose_reply("payment.charge", "lost-refusal")
    rig.book("lost-refusal", rig.order(account=POOR), expect="compensated")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "A step did its work, but its answer never arrived. That is not a refusal: the step may "
        "have happened. Ask again with the same idempotency key (the participant answers with "
        "the first outcome), however many times it takes, then carry on or undo it. Give every "
        "call a timeout (step_timeout_s): without one a lost answer holds the saga for as long "
        "as the connection stays open."))


@pytest.mark.points(10)
@pytest.mark.faults("unavailable", "lost-reply")
def test_03_compensations_outlast_an_outage_and_retries_back_off(rig):
    # the refund's participant is down for 0.6 s, then the release's answers 503 four times
    rig.unavailable("payment.refund", "down-refund", for_s=0.6)
    rig.unavailable("inventory.release", "down-refund", times=4)
    rig.book("down-refund", rig.order(**REFUSED_AT_THE_END), expect="compensated")
    # a forward step whose participant is down a moment: the saga still completes
    rig.unavailable("payment.charge", "down-charge", times=3)
    rig.book("down-charge", rig.order(), expect="done")
    # a refund whose answer is lost, then is down: done once, whatever it takes
    rig.lose_reply("payment.refund", "lost-refund")
    rig.unavailable("payment.refund", "lost-refund", times=2)
    rig.book("lost-refund", rig.order(**REFUSED_AT_THE_END), expect="compensated")
    rig.book("after", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history, hint=(
        "A compensation answered 503 for a while (a participant restarting). A compensation "
        "that gives up leaves the saga half undone forever: retry it with the same key until it "
        "succeeds, and pause between attempts with a backoff that grows (capped, with jitter): "
        "a retry loop with no pause floods a participant that is trying to come back."))
