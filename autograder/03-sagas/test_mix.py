"""Lab 03 hidden tests, part 3: many sagas, each with its own fault, chosen from the seed (the
report prints it; `--seed N` replays the same schedule). Money and stock must add up across all."""
import random

import pytest

from splitbrain.grading import expect_valid
from splitbrain.labsupport.saga_rig import POOR, SCARCE

KINDS = {   # what the order is like -> (order fields, the calls a saga of that kind makes)
    "completes": ({}, ["inventory.reserve", "payment.charge", "shipping.schedule"]),
    "card-declined": ({"account": POOR}, ["inventory.reserve", "payment.charge",
                                          "inventory.release"]),
    "out-of-stock": ({"sku": SCARCE, "qty": 2}, ["inventory.reserve"]),
    "not-served": ({"address": "Atlantis"}, ["inventory.reserve", "payment.charge",
                                             "shipping.schedule", "payment.refund",
                                             "inventory.release"]),
}
FAULTS = ["none", "crash-before", "crash-after", "lost-reply", "unavailable"]


def schedule(seed, n=10):
    rnd = random.Random(f"03-sagas/{seed}")
    plan = []
    for i in range(n):
        kind = rnd.choice(sorted(KINDS))
        fault = rnd.choice(FAULTS)
        plan.append((f"mix-{i}-{kind}", kind, fault, rnd.choice(KINDS[kind][1])))
    return plan


@pytest.mark.points(10)
@pytest.mark.faults("kill", "lost-reply", "unavailable", "decline")
def test_09_many_sagas_under_a_seeded_schedule_add_up(rig, seed):
    for sid, kind, fault, op in schedule(seed):
        if fault.startswith("crash"):
            rig.crash(op, fault.split("-")[1], sid)
        elif fault == "lost-reply":
            rig.lose_reply(op, sid)
        elif fault == "unavailable":
            rig.unavailable(op, sid, times=3)
        expect = "done" if kind == "completes" and fault == "none" else (
            "either" if kind == "completes" else "compensated")
        answer = rig.book(sid, rig.order(**KINDS[kind][0]), expect=expect)
        if answer is None:
            rig.restart_and_recover()
    expect_valid(rig.judge(), rig.history, hint=(
        f"Ten sagas, each with one fault chosen from seed {seed}; the anomalies name the sagas. "
        f"Replay the same schedule with --seed {seed}."))
