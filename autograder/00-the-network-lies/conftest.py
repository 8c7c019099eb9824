"""Fixtures of lab 00's hidden tests.

``world`` is one test's world (``rig.world.World``): the bank over this test's database, the fault
proxy in front of it (the nemesis's target ``"network"``; the bank itself is ``"bank"``), and
``world.client(...)``: a worker running the learner's ``TransferClient`` through the network.
``expect(world, hint)`` waits until nothing is left in the network, then judges every guarantee of
the chapter over the whole history and the bank's own table (``rig.checkers.check_transfers``).

The rig is imported inside the fixtures: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
from __future__ import annotations

import pytest

from splitbrain.grading import expect_valid

# The client's settings in every test: three attempts of 0.25 s each.
TIMEOUT_S = 0.25
ATTEMPTS = 3

# What to look at, per anomaly the checkers report (the first one found leads the message).
HINTS = {
    "duplicate-effect": "The bank moved the money more than once for one transfer(): a "
                        "request whose answer you never saw can still have been carried out, "
                        "and a retry without an Idempotency-Key is a new transfer to the bank. "
                        "Make one key per transfer() call, before the first attempt, and send "
                        "the same key with every attempt.",
    "unknown-reported-as-failed": "transfer() answered 'failed' although the bank moved the "
                                  "money. A timeout, a reset or a closed connection says "
                                  "nothing about whether the bank did it: when no attempt got "
                                  "an answer, answer 'unknown'. 'failed' is only for the "
                                  "bank's own no (409).",
    "phantom-success": "transfer() answered 'ok' for money that never moved for it: the bank took "
                       "its key for an earlier, different transfer. Each call is a new transfer, "
                       "even with the same arguments: its key must be new (uuid4), not made from "
                       "the accounts or the amount.",
    "needless-unknown": "The bank's answer could reach you within your attempts, but transfer() "
                        "gave up with 'unknown'. After a timeout, try again (with the same key) "
                        "until your attempts are spent.",
    "wrong-answer": "transfer() answered 'failed' for a transfer the bank would have made: "
                    "'failed' is only for the bank's own no (409).",
    "bad-answer": "transfer() must return 'ok', 'failed' or 'unknown' and never raise for a "
                  "network problem. A 422 from the bank means an Idempotency-Key was reused for a "
                  "different transfer: one key per transfer() call.",
    "overdue": "transfer() must give up after its attempts: at most attempts x timeout_s "
               "seconds (urlopen's timeout=), then answer 'unknown'.",
    "too-many-attempts": "transfer() may send the bank at most `attempts` requests.",
    "wrong-transfer": "The bank moved money no call asked for: send exactly the accounts and "
                      "the amount you were given.",
}


def judge(world, hint: str | None = None, lesson: str | None = None, context: str = ""):
    """Pass if every guarantee held. The hint: this test's ``hint`` when the anomaly it teaches
    (``lesson``) is among those found, else the hint of the first anomaly found; ``context``
    follows it (an exploring test's schedule)."""
    world.nemesis.heal_all()
    world.bank.disarm()
    world.drain()
    v = world.judge()
    if not v.ok:
        kinds = [a.kind for a in v.anomalies]
        if not (hint and (lesson is None or lesson in kinds)):
            hint = HINTS.get(kinds[0] if kinds else "", hint)
        if context:
            hint = f"{hint}\n{context}" if hint else context
    expect_valid(v, world.history, hint=hint)
    return v


@pytest.fixture
def world(ns, spawn, nemesis, history, seed):
    from rig.world import World
    w = World.open(ns, spawn, history, nemesis, seed=seed)
    yield w
    w.close()


@pytest.fixture
def expect(world):
    """``expect(hint, lesson=..., context=...)``: heal, drain, judge every guarantee (``judge``)."""
    return lambda hint=None, lesson=None, context="": judge(world, hint, lesson, context)


@pytest.fixture
def app(world):
    """One client, three attempts of 0.25 s, through the network."""
    return world.client("app", timeout_s=TIMEOUT_S, attempts=ATTEMPTS)
