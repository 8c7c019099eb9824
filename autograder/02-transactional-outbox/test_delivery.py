"""Every committed change reaches the topic, in order, whatever crashes or partitions happen."""
import pytest

from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError

CUSTOMERS = ("ada", "bob", "cy", "dee")

HINT_LOST = ("A change that committed has no event. Commit the event together with the change "
             "(an outbox row in the same transaction) and publish it from the outbox.")


def place_batch(world, svc, first, n, cancel_every=3):
    for i in range(first, first + n):
        oid = f"o{i:03d}"
        world.place(svc, oid, CUSTOMERS[i % len(CUSTOMERS)], 10 + i)
        if i % cancel_every == 0:
            world.cancel(svc, oid)


@pytest.mark.points(15)
def test_01_quiet_day_every_change_is_published_once_in_order(world, history):
    """No faults: every order and cancellation is on the topic exactly once, keyed and in order;
    rejected orders and cancellations publish nothing."""
    _, svc = world.app()
    place_batch(world, svc, 1, 12)
    assert not world.place(svc, "bad-amount", "ada", 0), "an order with amount 0 must be rejected"
    assert not world.place(svc, "o001", "bob", 5), "a second order o001 must be rejected"
    assert not world.cancel(svc, "no-such-order"), "cancelling an unknown order must raise"
    assert not world.cancel(svc, "o003"), "cancelling a cancelled order must raise"
    world.shut_down(svc)                   # a clean shutdown, as at the end of a quiet day
    _, relay = world.relay()
    world.drain([relay])
    expect_valid(world.check(allow_duplicates=False), history,
                 hint="On a quiet day each change is published exactly once, keyed by order id.")


@pytest.mark.points(25)
@pytest.mark.faults("crash")
def test_02_crash_right_after_commit_loses_no_event(world, history):
    """The service process dies right after Postgres confirms a COMMIT (an OOM kill, a deploy);
    the change it committed must still be published. Then the relay dies after the broker
    acknowledged its batch and before its own COMMIT: the batch goes out again, under the same
    event ids, so that consumers can drop the copies."""
    w, svc = world.app()
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
    # the relay dies after the broker acknowledged its batch, before its own COMMIT
    w_relay, relay = world.relay()
    crash = world.crash(w_relay, "before_commit")
    try:
        relay.run_once(500, 5.0)
    except SandboxError:
        pass
    crash.heal()
    if not w_relay.alive:
        world.restart(w_relay)
        relay = world.new(w_relay, "Relay")
    world.drain([relay])
    expect_valid(world.check(), history, hint=HINT_LOST)


@pytest.mark.points(15)
@pytest.mark.faults("partition", "kill")
def test_03_broker_partition_then_relay_killed_loses_no_event(world, history, nemesis):
    """The broker is unreachable while orders come in and while the relay tries to publish; the
    service and the relay are killed before the network heals (a deploy during the outage); a new
    relay must publish everything that committed."""
    w_app, svc = world.app()
    w_relay, relay = world.relay()
    place_batch(world, svc, 1, 3)
    world.drain([relay])
    cut = nemesis.inject("partition", world.kafka)
    place_batch(world, svc, 4, 6)
    try:
        relay.run_once(500, 1.0)
    except SandboxError:
        pass
    nemesis.inject("kill", w_app)
    nemesis.inject("kill", w_relay)
    world.kafka.wait_disconnected()        # what the dead processes had sent is gone
    cut.heal()
    _, relay2 = world.relay("relay-2")
    world.drain([relay2])
    expect_valid(world.check(), history,
                 hint="Mark an event published only after the broker acknowledged it; a relay "
                      "killed before that must leave it pending for the next relay.")
