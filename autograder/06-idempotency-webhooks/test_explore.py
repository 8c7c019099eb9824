"""Lab 06 exploring test: the provider sends several orders' events while a seeded random
schedule duplicates and reorders deliveries, delays answers, resets connections and loses or
holds the payment API's answers; an attacker forges one delivery. ``splitbrain check 06
--explore 20`` runs 20 more seeds."""
import random
from contextlib import nullcontext

import pytest


@pytest.mark.explore
@pytest.mark.points(10)
@pytest.mark.faults("concurrency", "forged-delivery")
def test_08_random_faults(world, nemesis, seed, expect):
    rng = random.Random(seed)
    faults = [("duplicate", "sender", {"p": 0.5}), ("reorder", "sender", {"p": 0.5}),
              ("latency", "network", {"ms": 600}), ("reset", "network", {}),
              ("lost-payment-reply", "payments", {}), ("slow-payment", "payments", {})]
    plan = []
    orders = [world.order() for _ in range(4)]
    with nemesis.fault("concurrency"):
        for i, events in enumerate(orders):
            name, target, params = rng.choice(faults)
            plan.append(f"order {i + 1}: {name}")
            f = nemesis.inject(name, target, **params)
            # under latency every answer is late: a try and one retry per event show it
            with world.sender.tries(2) if name == "latency" else nullcontext():
                for e in events:
                    world.send(e)
                    if name == "slow-payment" and e.type == "order.confirmed":
                        f.heal()
            if f.active:
                f.heal()
    nemesis.inject("forged-delivery", "sender", order=orders[0][0].order)
    expect(context=f"seed {seed}: " + "; ".join(plan))
