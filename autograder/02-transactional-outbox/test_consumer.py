"""The consumer side: at-least-once delivery + an idempotent consumer = each event applied once."""
import itertools
import random
import uuid

import pytest

from rig.checkers import CANCELLED, PLACED, OrderTruth
from rig.world import Replay
from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError

HINT = ("Kafka delivers at least once. Store each event id in the same transaction as the event's "
        "effect, and let that insert decide (INSERT ... ON CONFLICT DO NOTHING, then look at the "
        "row count): skip an event whose id is already stored, even when another consumer is "
        "storing it at this very moment.")


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


def commit_truth(world, truth):
    """The orders the events describe, as the order service committed them."""
    with world.admin() as conn:
        for oid, o in truth.items():
            conn.execute("INSERT INTO orders (id, customer, amount, status) VALUES (%s,%s,%s,%s)",
                         (oid, o.customer, o.amount, o.status))


@pytest.mark.points(15)
@pytest.mark.faults("redeliver", "crash")
def test_06_redelivered_events_are_applied_once(world, history, seed, nemesis):
    """The grader plays the topic into OrderProjection.handle the way a consumer group does after
    crashes and rebalances: from the last committed offset again, so events arrive twice; the
    consumer dies once just before a COMMIT and once just after one, and the event it was
    handling comes again."""
    rng = random.Random(f"outbox-consumer-{seed}")
    truth, log = events_and_truth(rng)
    w, proj = world.projection()
    feed = Replay(log, name="consumer")     # the consumer group's position in the topic
    rewinds = sorted(rng.sample(range(3, len(log)), 2))
    crash_at = dict(zip(rng.sample(range(1, len(log)), 2), ("before_commit", "after_commit")))
    while not feed.done:
        point = crash_at.pop(feed.pos, None)
        if point is not None:
            crash = world.crash(w, point)
            try:
                proj.handle(feed.current)
            except SandboxError:
                pass
            crash.heal()
            if w.alive:                          # it did not commit anything: move on
                feed.ack()
                continue
            world.restart(w)
            proj = world.new(w, "OrderProjection")
            continue                             # the offset was not committed: deliver again
        proj.handle(feed.current)
        feed.ack()
        if rewinds and feed.pos == rewinds[0]:
            rewinds.pop(0)                       # a rebalance: the last events come again
            nemesis.inject("redeliver", feed, events=rng.randint(2, 3))
    commit_truth(world, truth)
    expect_valid(world.check_projection(truth), history, hint=HINT)


@pytest.mark.points(10)
@pytest.mark.faults("stall", "concurrency")
def test_08_two_consumers_handle_the_same_event_at_once(world, history, nemesis):
    """A rebalance hands an event to consumer B while consumer A, which had it before, is still
    working on it. A is held at every boundary between two of its database round trips in turn
    (its request held, or its reply) while B handles the same event; a consumer whose handle
    raised gets the event again, as its group would redeliver it. Each event is applied once."""
    link = world.link("consumer-a")
    (_, proj_a), (_, proj_b) = world.start(("consumer-a", "OrderProjection", link),
                                           ("consumer-b", "OrderProjection"))
    truth: dict[str, OrderTruth] = {}
    n = itertools.count(1)
    warm = {"event_id": "warm-up", "type": PLACED, "order_id": "o000", "customer": "c0",
            "amount": 5}
    truth["o000"] = OrderTruth("c0", 5, "placed")
    proj_a.handle(warm)                      # both consumers have their connection
    proj_b.handle(warm)
    current: list[dict] = []

    def next_event(stream, k):
        i = next(n)
        oid, customer, amount = f"o{(i + 1) // 2:03d}", f"c{i % 3}", 10 + i
        if i % 2:                            # odd: a new order is placed ...
            current[:] = [{"event_id": f"e{i}", "type": PLACED, "order_id": oid,
                           "customer": customer, "amount": amount}]
            truth[oid] = OrderTruth(customer, amount, "placed")
        else:                                # ... even: the previous one is cancelled
            prev = current[0]
            current[:] = [{**prev, "event_id": f"e{i}", "type": CANCELLED}]
            truth[oid] = OrderTruth(prev["customer"], prev["amount"], "cancelled")

    futures: dict[str, object] = {}

    def b_takes_it_over(stream, k, fut):
        futures["b"] = proj_b.handle.async_(current[0])
        world.settle(futures["b"])           # B is done, or waits for a lock A holds

    def both_done(stream, k, fut):
        for proj, f in ((proj_a, fut), (proj_b, futures.pop("b", None))):
            if f is None:
                continue
            for _ in range(3):               # the group delivers it again until handle returns
                try:
                    f.result(timeout=20)
                    break
                except SandboxError:
                    f = proj.handle.async_(current[0])

    with nemesis.fault("concurrency"):     # two consumers of one group
        world.stall_points(link, lambda: proj_a.handle.async_(current[0]), before=next_event,
                           during=b_takes_it_over, after=both_done)
    commit_truth(world, truth)
    expect_valid(world.check_projection(truth), history, hint=HINT)
