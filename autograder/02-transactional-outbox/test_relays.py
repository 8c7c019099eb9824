"""Relays that run twice at once, and connections that reset under the service and the relay."""
import itertools

import pytest

from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError


@pytest.mark.points(15)
@pytest.mark.faults("stall", "concurrency")
def test_04_two_relays_keep_each_orders_events_in_order(world, history, nemesis):
    """Relay A is held at every boundary between two of its database round trips in turn (its
    request held: a pause before it; its reply held: done, but A does not know yet) while relay
    B runs. Whatever A holds, B must return within about its timeout and publish the other
    orders' events; no order's OrderCancelled may overtake its OrderPlaced; no event may go out
    twice (no relay failed); nothing may be lost."""
    link = world.link("relay-a")
    (_, relay_a), (_, relay_b), (_, svc) = world.start(
        ("relay-a", "Relay", link), ("relay-b", "Relay"), ("app", "OrderService"))
    world.place(svc, "o000", "c0", 10)
    world.drain([relay_a, relay_b], quiet_rounds=1)    # both relays are up and connected
    batch = itertools.count(1)

    def new_orders(stream, k):             # three orders, then their three cancellations
        n = next(batch)
        oids = [f"o{n:02d}{x}" for x in "abc"]
        for i, oid in enumerate(oids):
            world.place(svc, oid, f"c{i}", 10 + n)
        for oid in oids:
            world.cancel(svc, oid)

    def relay_b_runs(stream, k, fut):      # A is held: B does its work meanwhile
        for _ in range(4):
            if not world.run(relay_b, 500, 2.0):
                break

    def finish_a(stream, k, fut):
        try:
            fut.result(timeout=20)
        except SandboxError:
            pass

    with nemesis.fault("concurrency"):     # two relays at work
        world.stall_points(link, lambda: relay_a.run_once.async_(2, 5.0), before=new_orders,
                           during=relay_b_runs, after=finish_a)
    world.drain([relay_a, relay_b])
    expect_valid(world.check(), history,
                 hint="With FOR UPDATE SKIP LOCKED the second relay takes the rows the first one "
                      "holds back, including later events of the same orders. Claim only the "
                      "oldest pending event of each order, or let one relay publish at a time; "
                      "lock what you claim (FOR UPDATE) so that two relays never publish the same "
                      "row, and skip (SKIP LOCKED) what another relay holds instead of waiting "
                      "behind it.")


@pytest.mark.points(5)
@pytest.mark.faults("reset")
def test_05_connection_reset_then_service_and_relay_recover(world, history, nemesis):
    """Postgres connections of the service and the relay are reset (TCP RST) mid-request. After the
    network heals, both must work again and every committed change must be published."""
    flaky = world.link("app")
    (_, svc), (w_relay, _) = world.start(("app", "OrderService", flaky),
                                         ("relay", None, flaky))   # the reset hits them both
    for i in range(1, 5):
        world.place(svc, f"o{i:03d}", f"c{i % 2}", 10 + i)
    relay = world.new(w_relay, "Relay")
    world.drain([relay], quiet_rounds=1)
    reset = nemesis.inject("reset", flaky)
    for i in range(5, 7):
        world.place(svc, f"o{i:03d}", f"c{i % 2}", 10 + i)
    world.run(relay, 500, 1.0)
    reset.heal()
    valid = []
    for i in range(7, 11):
        world.place(svc, f"o{i:03d}", f"c{i % 2}", 10 + i)
        valid.append(("place_order", f"o{i:03d}"))
    world.cancel(svc, "o008")
    valid.append(("cancel_order", "o008"))
    world.drain([relay])
    expect_valid(world.check(expected=valid), history,
                 hint="A reset connection stays broken; open a new one with connect() when the old "
                      "one is closed or broken, and every committed change must reach the topic "
                      "once the network heals.")
