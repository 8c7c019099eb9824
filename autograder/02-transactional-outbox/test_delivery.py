"""Every committed change reaches the topic, in order, under one event id, whatever crashes,
lost replies or partitions happen; and a relay run returns within about its timeout."""
import itertools

import pytest

from splitbrain.grading import expect_valid

CUSTOMERS = ("ada", "bob", "cy", "dee")

HINT_LOST = ("A change that committed has no event. Commit the event together with the change "
             "(an outbox row in the same transaction) and publish it from the outbox; a relay "
             "that dies at any point must leave what it had not committed as pending.")


def place_batch(world, svc, first, n, cancel_every=3):
    """Place orders first..first+n-1 and cancel every third; returns the valid requests."""
    valid = []
    for i in range(first, first + n):
        oid = f"o{i:03d}"
        world.place(svc, oid, CUSTOMERS[i % len(CUSTOMERS)], 10 + i)
        valid.append(("place_order", oid))
        if i % cancel_every == 0:
            world.cancel(svc, oid)
            valid.append(("cancel_order", oid))
    return valid


@pytest.mark.points(10)
def test_01_quiet_day_every_change_is_published_once_in_order(world, history):
    """No faults: every order and cancellation is on the topic exactly once, keyed and in order,
    after as many relay runs as one order has events (plus one); rejected orders and
    cancellations publish nothing; valid ones succeed."""
    (_, svc), (w_relay, _) = world.start(("app", "OrderService"), ("relay", None))
    valid = place_batch(world, svc, 1, 12)
    assert not world.place(svc, "bad-amount", "ada", 0), "an order with amount 0 must be rejected"
    assert not world.place(svc, "o001", "bob", 5), "a second order o001 must be rejected"
    assert not world.cancel(svc, "no-such-order"), "cancelling an unknown order must raise"
    assert not world.cancel(svc, "o003"), "cancelling a cancelled order must raise"
    world.shut_down(svc)                   # a clean shutdown, as at the end of a quiet day
    relay = world.new(w_relay, "Relay")
    prompt = world.check_prompt([relay], runs=3)     # two events per order at most, plus one
    expect_valid(prompt, history,
                 hint="An event leaves when the relay next runs: each run_once publishes every "
                      "event that is waiting (one order's next event on the following run).")
    expect_valid(world.check(allow_duplicates=False, expected=valid, reread=False), history,
                 hint="On a quiet day each change is published exactly once, keyed by order id, "
                      "and every valid order or cancellation succeeds.")


@pytest.mark.points(20)
@pytest.mark.faults("crash")
def test_02_crash_at_every_commit_loses_no_event(world, history):
    """The service process dies right after Postgres confirms a COMMIT (an OOM kill, a deploy);
    the change it committed must still be published. Then the relay dies at each of its commits
    in turn, just before and just after it, and a standby relay takes over each time: whatever
    the dead one had not committed stays pending and goes out again, under the same event ids,
    so that consumers can drop the copies."""
    (w, svc), (w_relay, relay), *standby = world.start(
        ("app", "OrderService"), ("relay", "Relay"), ("relay-2", "Relay"), ("relay-3", "Relay"))
    place_batch(world, svc, 1, 4)
    for action in ("place", "cancel"):
        crash = world.crash(w, "after_commit")
        if action == "place":
            world.place(svc, "o100", "ada", 100)
        else:
            world.cancel(svc, "o002")
        crash.heal()
        if not w.alive:                     # it died at the COMMIT: a new process takes over
            world.restart(w)
            svc = world.new(w, "OrderService")
    place_batch(world, svc, 5, 4)
    more = itertools.count(20, 3)

    def new_orders(point, j):              # every round has something to publish
        place_batch(world, svc, next(more), 3)

    def takeover():
        return standby.pop(0) if standby else None

    _, relay = world.crash_points(w_relay, relay, "Relay", lambda r: r.run_once(500, 3.0),
                                  before=new_orders, takeover=takeover)
    world.drain([relay])
    expect_valid(world.check(), history, hint=HINT_LOST)


@pytest.mark.points(15)
@pytest.mark.faults("stall", "refuse", "partition", "kill")
def test_03_lost_replies_and_an_unreachable_broker_lose_nothing(world, history, nemesis):
    """First every request and every reply of a publish is held in turn and the connection to the
    broker dropped meanwhile: the idempotent producer retries within its session, and nothing may
    be published twice. Then the broker is unreachable while orders come in (they must still
    succeed) and while the relay runs (it must return within about its timeout); the service and
    the relay are killed before the network heals; a new relay starts while the broker still
    refuses connections, and once it answers publishes everything that committed."""
    (w_app, svc), (w_relay, _), (w_relay2, _) = world.start(
        ("app", "OrderService"), ("relay", None), ("relay-2", None))
    place_batch(world, svc, 1, 3)
    relay = world.new(w_relay, "Relay")
    world.drain([relay], quiet_rounds=1)
    more = itertools.count(10, 2)

    def new_orders(stream, k):
        place_batch(world, svc, next(more), 2)

    def drop_connection(stream, k, fut):   # the held message dies with its connection
        nemesis.inject("refuse", world.kafka).heal()

    world.stall_points(world.kafka, lambda: relay.run_once.async_(500, 5.0), before=new_orders,
                       during=drop_connection)
    world.drain([relay], quiet_rounds=1)
    expect_valid(world.check(), history,
                 hint="A retry inside one producer session must not duplicate a record: use the "
                      "idempotent producer (enable.idempotence=True) with acks=all.")

    cut = nemesis.inject("partition", world.kafka)
    valid = place_batch(world, svc, 40, 6)
    world.run(relay, 500, 0.5)
    nemesis.inject("kill", w_app)
    nemesis.inject("kill", w_relay)
    gone = nemesis.inject("refuse", world.kafka)   # what the dead had sent dies with them
    cut.heal()
    # A new relay starts while the broker still refuses connections: its records never leave
    # (tansu fences an idempotent producer that drops queued records after it got its producer
    # id, so the relay that takes over has not talked to the broker yet, as after a deploy).
    relay2 = world.new(w_relay2, "Relay")
    world.run(relay2, 500, 0.5)
    gone.heal()
    world.drain([relay2])
    expect_valid(world.check(expected=valid), history,
                 hint="Mark an event published only after its delivery report came back without "
                      "error, and wait for the reports with a timeout (flush(timeout_s)): a relay "
                      "killed before that must leave the event pending for the next relay, and "
                      "placing an order must not need the broker.")
