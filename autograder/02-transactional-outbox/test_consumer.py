"""The consumer side: at-least-once delivery + an idempotent consumer = each event applied once."""
import random
import uuid

import pytest

from splitbrain.checkers.outbox import CANCELLED, PLACED, OrderTruth
from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError


def events_and_truth(rng: random.Random, n: int = 10):
    truth, streams = {}, []
    for i in range(1, n + 1):
        oid, customer, amount = f"o{i:03d}", f"c{i % 3}", rng.randint(5, 50)
        cancelled = rng.random() < 0.4
        truth[oid] = OrderTruth(customer, amount, "cancelled" if cancelled else "placed")
        base = {"order_id": oid, "customer": customer, "amount": amount}
        s = [{"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "type": PLACED, **base}]
        if cancelled:
            s.append({"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "type": CANCELLED,
                      **base})
        streams.append(s)
    # interleave the orders' streams, keeping each order's own events in order (one partition)
    log = []
    while any(streams):
        s = rng.choice([s for s in streams if s])
        log.append(s.pop(0))
    return truth, log


@pytest.mark.points(20)
@pytest.mark.faults("duplicate", "crash")
def test_06_redelivered_events_are_applied_once(world, history, seed):
    """The grader plays the topic into OrderProjection.handle the way a consumer group does after
    crashes and rebalances: from the last committed offset again, so events arrive twice; once the
    consumer dies right after its COMMIT and the event it was handling comes again."""
    rng = random.Random(f"outbox-consumer-{seed}")
    truth, log = events_and_truth(rng)
    w, proj = world.projection()
    delivered = 0
    rewinds = sorted(rng.sample(range(3, len(log)), 2))
    crash_at = rng.randrange(len(log) // 2, len(log))
    pos, crashed = 0, False
    while pos < len(log):
        if pos == crash_at and not crashed:
            crashed = True
            w.arm_crash("after_commit", after=0)
            history.fault("crash-point", "consumer", phase="start", point="after_commit")
            try:
                proj.handle(log[pos])
            except SandboxError:
                pass
            history.fault("crash-point", "consumer", phase="end", point="after_commit")
            if w.alive:                          # it did not commit anything: move on
                w.arm_crash("after_commit", after=10**6)
                pos += 1
                continue
            w.restart()
            proj = world.new(w, "OrderProjection")
            continue                             # the offset was not committed: deliver again
        proj.handle(log[pos])
        delivered += 1
        pos += 1
        if rewinds and pos == rewinds[0]:
            rewinds.pop(0)
            back = rng.randint(2, 3)
            history.fault("redeliver", "consumer", phase="start", events=back)
            history.fault("redeliver", "consumer", phase="end")
            pos -= back                          # a rebalance: the last events come again
    with world.admin() as conn:
        for oid, o in truth.items():
            conn.execute("INSERT INTO orders (id, customer, amount, status) VALUES (%s,%s,%s,%s)",
                         (oid, o.customer, o.amount, o.status))
    expect_valid(world.check_projection(truth), history,
                 hint="Kafka delivers at least once. Store each event id in the same transaction "
                      "as the event's effect, and skip an event whose id is already stored.")
