"""Fixtures of lab 06's hidden tests.

``world`` is one test's world (``rig.world.World``): the learner's receiver in a worker behind the
fault proxy (``"network"``), the provider (``"sender"``), the payment API (``"payments"``), the
receiver's worker (``"receiver"``). ``expect(hint)`` heals every fault, lets the provider retry
what was never acknowledged, waits until the receiver settled, and judges every guarantee over
the whole history and the tables (``rig.checkers.check_webhooks``).

The rig is imported inside the fixtures: the grading plugin loads it after this conftest."""
from __future__ import annotations

import pytest

from splitbrain.grading import expect_valid

HINTS = {
    "forged-accepted": "A delivery nobody signed (or signed an hour ago) was accepted. Verify the "
                       "webhook-signature (HMAC-SHA256 of 'id.timestamp.body' with the secret's "
                       "key bytes, hmac.compare_digest) and a webhook-timestamp within five "
                       "minutes, before anything else; answer 400 otherwise.",
    "duplicate-effect": "An order shipped twice: the provider delivered the same event again "
                        "(a slow or lost answer, a duplicate) and it was applied again. Record "
                        "each webhook-id in the same transaction as its effect, and skip an id "
                        "already recorded.",
    "double-charge": "The payment API charged one order twice. A retried charge (after a lost "
                     "answer) or a redelivered event must reach it with the same "
                     "Idempotency-Key: one key per payment, e.g. made from the order.",
    "stale-overwrite": "An older version of an order overwrote a newer one: deliveries arrive in "
                       "any order. Update only when data.version is higher than the stored one.",
    "lost-event": "An event you acknowledged was never applied. Answer 2xx only after the "
                  "delivery is committed (an inbox table), and apply what the inbox holds when "
                  "serve() starts again.",
    "never-acknowledged": "A genuine delivery (right key, fresh timestamp) never got a 2xx, "
                          "even after every fault healed and the provider retried it. Refusing "
                          "everything is not safe, it is down: verify, record the delivery, "
                          "commit, and answer 2xx.",
}


def judge(world, hint=None, lesson=None, context="", hints=None):
    """``hints`` overrides HINTS for this test (an anomaly its scenario explains better)."""
    v = world.settle()
    if not v.ok:
        kinds = [a.kind for a in v.anomalies]
        if not (hint and (lesson is None or lesson in kinds)):
            hint = {**HINTS, **(hints or {})}.get(kinds[0] if kinds else "", hint)
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
    return lambda hint=None, lesson=None, context="", hints=None: judge(world, hint, lesson,
                                                                         context, hints)
