"""Relays that run twice at once, and connections that reset under the service and the relay."""
import pytest

from rig.world import liveness
from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError

HOLDING_CLAIM = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND state = 'idle in transaction' AND backend_xid IS NOT NULL
"""


@pytest.mark.points(15)
@pytest.mark.faults("concurrency", "latency")
def test_04_two_relays_keep_each_orders_events_in_order(world, history, proxy, nemesis):
    """Twenty orders are placed, then ten cancelled. Relay A claims a batch but its database
    replies are slow; relay B runs meanwhile. No order's OrderCancelled may overtake its
    OrderPlaced, and nothing may be lost."""
    slow = proxy("postgres", world.ns)
    _, relay_a = world.relay("relay-a", pg_url=slow.url)
    _, relay_b = world.relay("relay-b")
    world.drain([relay_a, relay_b])          # both relays are up and connected
    _, svc = world.app()
    for i in range(1, 21):
        world.place(svc, f"o{i:03d}", f"c{i % 4}", 10 + i)
    for i in range(2, 21, 2):
        world.cancel(svc, f"o{i:03d}")
    world.shut_down(svc)
    lag = nemesis.inject("latency", slow, ms=1500)
    with nemesis.fault("concurrency"):       # relay B runs while relay A holds its claim
        first = relay_a.run_once.async_(10, 5.0)
        with world.admin() as conn:
            world.wait_for(lambda: first.done() or conn.execute(HOLDING_CLAIM).fetchone()[0] > 0,
                           8.0,
                           "relay A holds its claim")
        world.drain([relay_b])
        lag.heal()
        try:
            first.result(timeout=30)
        except SandboxError:
            pass
    world.drain([relay_a, relay_b])
    expect_valid(world.check(), history,
                 hint="With FOR UPDATE SKIP LOCKED the second relay takes the rows the first one "
                      "holds back, including later events of the same orders. Claim only the "
                      "oldest pending event of each order, or let one relay publish at a time.")


@pytest.mark.points(10)
@pytest.mark.faults("reset")
def test_05_connection_reset_then_service_and_relay_recover(world, history, proxy, nemesis):
    """Postgres connections of the service and the relay are reset (TCP RST) mid-request. After the
    network heals, both must work again and every committed change must be published."""
    flaky = proxy("postgres", world.ns)
    _, svc = world.app(pg_url=flaky.url)
    _, relay = world.relay(pg_url=flaky.url)
    for i in range(1, 5):
        world.place(svc, f"o{i:03d}", f"c{i % 2}", 10 + i)
    world.drain([relay])
    reset = nemesis.inject("reset", flaky)
    for i in range(5, 7):
        world.place(svc, f"o{i:03d}", f"c{i % 2}", 10 + i)
    try:
        relay.run_once(500, 1.0)
    except SandboxError:
        pass
    reset.heal()
    refused = []
    for i in range(7, 11):
        if not world.place(svc, f"o{i:03d}", f"c{i % 2}", 10 + i):
            refused.append(f"o{i:03d}")
    if refused:
        expect_valid(liveness(f"after the reset healed, place_order still failed for "
                              f"{', '.join(refused)}: the service kept a broken connection"),
                     history, hint="A reset connection stays broken; open a new one with "
                                   "connect() when the old one is closed or broken.")
    world.drain([relay])
    expect_valid(world.check(), history,
                 hint="Every committed change must reach the topic after the network heals; "
                      "reconnect with connect() when a connection broke.")
