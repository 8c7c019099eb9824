"""Two instances of the order service at once: a transaction that commits late, and two
cancellations of one order that race."""
import itertools

import pytest

from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError


def _outcome(fut) -> None:
    try:
        fut.result(timeout=20)
    except SandboxError:
        pass


@pytest.mark.points(10)
@pytest.mark.faults("stall", "concurrency")
def test_07_late_commits_and_racing_cancellations(world, history, nemesis):
    """Service A's place_order is held at every boundary between two of its database round trips
    in turn (the request held: a pause; the reply held: done, but A does not know) while service
    B places another order and the relay publishes it; then A's transaction finishes. An outbox
    id is taken at INSERT, not at COMMIT: A's row can commit after B's higher one was published,
    and must still be published. Then A and B cancel the same order at once, A held at every
    boundary: exactly one cancellation may succeed, and one OrderCancelled be published."""
    link = world.link("app-a")
    (_, svc_a), (_, svc_b), (w_relay, _) = world.start(
        ("app-a", "OrderService", link), ("app-b", "OrderService"), ("relay", None))
    world.place(svc_a, "w000", "ada", 10)
    # the orders cancelled in the second half, placed (and published) long before their race
    to_cancel = [f"x{i:03d}" for i in range(1, 17)]
    for oid in to_cancel:
        world.place(svc_b, oid, "cy", 30)
    relay = world.new(w_relay, "Relay")
    world.drain([relay], quiet_rounds=1)
    n = itertools.count(1)
    current: list[str] = []

    def a_order(stream, k):
        current[:] = [f"a{next(n):03d}"]

    def b_meanwhile(stream, k, fut):
        world.place(svc_b, f"b{current[0][1:]}", "bob", 20)
        world.drain([relay], quiet_rounds=1)

    with nemesis.fault("concurrency"):     # two services at work
        world.stall_points(link, lambda: svc_a.place_order.async_(current[0], "ada", 10),
                           before=a_order, during=b_meanwhile)

    def placed_order(stream, k):
        if not to_cancel:                    # more boundaries than expected: one more order
            to_cancel.append(f"y{next(n):03d}")
            world.place(svc_b, to_cancel[0], "cy", 30)
        current[:] = [to_cancel.pop(0)]

    futures: dict[str, object] = {}

    def b_cancels_too(stream, k, fut):
        futures["b"] = svc_b.cancel_order.async_(current[0])
        world.settle(futures["b"])           # B is done, or waits for the row A holds

    def both_done(stream, k, fut):
        _outcome(fut)
        if "b" in futures:
            _outcome(futures.pop("b"))

    with nemesis.fault("concurrency"):
        world.stall_points(link, lambda: svc_a.cancel_order.async_(current[0]),
                           before=placed_order, during=b_cancels_too, after=both_done)
    world.drain([relay])
    expect_valid(world.check(), history,
                 hint="The relay must ask which rows are pending, never which ids are above the "
                      "last one it published: ids are assigned at INSERT, so a row can commit "
                      "after a higher one. And a cancellation must lock the order row (UPDATE ... "
                      "WHERE status = 'placed', or SELECT ... FOR UPDATE) before it decides, so "
                      "that one order's changes are serialised.")
