"""Lab 03 hidden tests, part 3: many sagas, each with its own fault, chosen from the seed (the
report prints it; `--seed N` replays the same schedule). Money and stock must add up across all.

The faults go through the test's nemesis like every other: a participant declines a step
(``decline``), loses an answer (``lost-reply``) or answers 503 (``unavailable``) for that saga's
call, or the orchestrator is killed (``kill``) when the call arrives or right after it committed.
They are not laid out in time (``Schedule.from_seed``'s windows): each one waits for its own
saga's call, so the seed picks, per saga, the order, the fault and the call it hits."""
import random

import pytest

from splitbrain.grading import expect_valid

KINDS = {   # what the order is like -> (the step a participant declines, the calls a saga makes)
    "completes": (None, ["inventory.reserve", "payment.charge", "shipping.schedule"]),
    "card-declined": ("payment.charge", ["inventory.reserve", "payment.charge",
                                         "inventory.release"]),
    "out-of-stock": ("inventory.reserve", ["inventory.reserve"]),
    "not-served": ("shipping.schedule", ["inventory.reserve", "payment.charge",
                                         "shipping.schedule", "payment.refund",
                                         "inventory.release"]),
}
FAULTS = ["none", "crash-before", "crash-after", "lost-reply", "unavailable"]
#: every schedule has at least one fault of each of these (the test's `faults` marker)
FAMILIES = {"kill": {"crash-before", "crash-after"}, "lost-reply": {"lost-reply"},
            "unavailable": {"unavailable"}}


def schedule(seed, n=10):
    """[(saga id, kind, fault, the call it hits)], the same for the same seed; drawn again (from
    the same random stream) until every family of faults and a declined step are in it."""
    rnd = random.Random(f"03-sagas/{seed}")
    while True:
        plan = []
        for i in range(n):
            kind = rnd.choice(sorted(KINDS))
            fault = rnd.choice(FAULTS)
            plan.append((f"mix-{i}-{kind}", kind, fault, rnd.choice(KINDS[kind][1])))
        faults = {fault for _, _, fault, _ in plan}
        if all(faults & family for family in FAMILIES.values()) and any(
                KINDS[kind][0] for _, kind, _, _ in plan):
            return plan


@pytest.mark.points(10)
@pytest.mark.faults("kill", "lost-reply", "unavailable", "decline")
def test_09_many_sagas_under_a_seeded_schedule_add_up(rig, seed):
    for sid, kind, fault, op in schedule(seed):
        declined = KINDS[kind][0]
        if declined:
            rig.decline(declined, sid)
        if fault.startswith("crash"):
            rig.crash(op, fault.split("-")[1], sid)
        elif fault == "lost-reply":
            rig.lose_reply(op, sid)
        elif fault == "unavailable":
            rig.unavailable(op, sid, times=3)
        expect = "done" if kind == "completes" and fault == "none" else (
            "either" if kind == "completes" else "compensated")
        answer = rig.book(sid, rig.order(), expect=expect)
        if answer is None:
            rig.restart_and_recover()
    expect_valid(rig.judge(), rig.history, hint=(
        f"Ten sagas, each with one fault chosen from seed {seed}; the anomalies name the sagas. "
        f"Replay the same schedule with --seed {seed}."))
