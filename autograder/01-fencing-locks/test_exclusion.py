"""Lab 01 hidden tests: what a late release does to the next holder, many workers sharing one
counter while one of them stalls inside its critical section, and a stall at every boundary
between the round trips of acquire() and release()."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from rig.checkers import check_counter, counter_value
from rig.fencing import boundaries

from splitbrain.checkers.base import Anomaly, verdict

WORKERS, INCREMENTS = 2, 5
RELEASE_HINT = ("release() must delete the key only if it still holds this lock's own owner "
                "value, checked and deleted in one atomic step (a Lua script), and say whether it "
                "did.")


@pytest.mark.points(10)
@pytest.mark.faults("pause", "server-clock-jump")
def test_05_release_by_a_former_holder_leaves_the_new_lease_alone(world, must_acquire, nemesis):
    a, b = world.holders(*(dict(name=n, ttl_ms=10_000) for n in "ab"))
    must_acquire(a, 0, "the lock was free")
    stall = nemesis.inject("pause", a.worker)   # a stalls ...
    world.jump()                                # ... past its lease
    must_acquire(b, 1.0, "a is frozen; its lease ran out")
    stall.heal()
    a.release()                              # a releases a lock that is b's by now
    if a.acquire(0) is not None:             # b still holds it: nobody else may get it
        a.release()
    b.release()                              # the real owner can release
    must_acquire(a, 2.0, "b released the lock")
    world.expect(RELEASE_HINT, lesson="overlapping-holders")


@pytest.mark.points(15)
@pytest.mark.faults("pause", "server-clock-jump", "concurrency")
def test_06_shared_counter_ends_exact_when_a_holder_stalls(world, must_acquire, nemesis):
    straggler, *workers = world.holders(
        dict(name="s", ttl_ms=10_000), *(dict(name=f"w{i}", ttl_ms=10_000) for i in range(WORKERS)))
    token_s = must_acquire(straggler, 0, "the lock was free")
    seen = straggler.read()
    stall = nemesis.inject("pause", straggler.worker)   # stalls between its read and its write
    world.jump()                                        # ... past its lease

    def increments(h):
        for i in range(INCREMENTS):
            token = must_acquire(h, 8.0, "the others must get their turn")  # < call timeout
            seen_now = h.read()
            h.write(f"{counter_value(seen_now or 0) + 1}:{h.name}:{i}", token)
            h.release()

    with nemesis.fault("concurrency"), ThreadPoolExecutor(WORKERS) as pool:
        for f in [pool.submit(increments, h) for h in workers]:
            f.result()
    stall.heal()
    straggler.write(f"{counter_value(seen or 0) + 1}:s:0", token_s)  # computed long ago

    values = world.applied()
    counted = check_counter(values)
    if counted.valid is True and len(values) != WORKERS * INCREMENTS:
        counted = verdict("counter", [Anomaly(
            "lost-update", f"{WORKERS} workers each incremented {INCREMENTS} times under the lock "
            f"but the storage applied {len(values)} increments")])
    world.expect("The stalled worker's increment was computed from a value that is long gone. Its "
                 "token is older than the ones stored since; the storage must refuse it.",
                 counted, lesson="lost-update")


@pytest.mark.points(15)
@pytest.mark.faults("stall", "server-clock-jump")
def test_08_stall_between_round_trips_to_redis(world, must_acquire, nemesis):
    a, b = world.holders(dict(name="a", ttl_ms=10_000, redis_proxy=True),
                         dict(name="b", ttl_ms=10_000))
    must_acquire(a, 0, "the lock was free")  # a's connection is open, its scripts are loaded
    a.release()
    n = iter(range(100))

    def through(token):                      # a got through without a stall: it holds the lock
        if token is not None:
            if b.acquire(0) is not None:     # ... so b must not get it
                b.release()
            a.release()

    # 1. a stalls inside acquire(): before each request it sends to Redis, and before each reply
    #    reaches it. Meanwhile its lease (if it has one yet) runs out, and b takes the lock and
    #    writes. Whatever token a comes back with must be older than b's.
    for step in boundaries(nemesis, a.redis_px, lambda: a.lock.acquire.async_(0), through=through):
        world.jump()
        token_b = must_acquire(b, 1.0, "a's lease, if it had one, ran out")
        b.write(f"b-{next(n)}", token_b)
        step.stall.heal()
        token_a = step.pending.result(timeout=20)
        if token_a is not None:
            a.write(f"a-{next(n)}", token_a)
            a.release()
        b.release()

    # 2. a stalls inside release(), at each boundary; its lease runs out and b takes the lock.
    #    Whatever a's release does when it comes back, it must leave b's lock alone.
    for step in boundaries(nemesis, a.redis_px, lambda: a.lock.release.async_(),
                           before=lambda: must_acquire(a, 0, "the lock was free")):
        world.jump()
        must_acquire(b, 1.0, "a's lease ran out")
        step.stall.heal()
        step.pending.result(timeout=20)
        if a.acquire(0) is not None:         # b holds the lock: a must not get it back
            a.release()
        b.release()
    world.expect(
        "A stall between two round trips lets a lease run out in the middle of an operation. The "
        "SET that takes the lease and the INCR that draws its token must be one atomic step (one "
        "Lua script), and so must the GET and the DEL of release().", lesson="token-order")
