"""Lab 08 hidden tests, the cache's side: many callers released together on a cold key, a hot key
that must be refreshed before it expires, again and again under load while its source changes,
keys cached together that must not expire together (behind a cheap origin, so that only their
TTLs can spread them), and a caller killed while it recomputes a key the others wait for.

Every verdict comes from the grader's own view: the history of get() calls it made and the
origin's own record of every call it served (``world.expect``; ``rig.checkers.judge``)."""
import pytest
from rig.checkers import Bounds
from rig.world import Readers, bump, computing, prepare, read_inside, together, wait_for

HOT = "hot"
CHEAP_MS = 0        # test_03's origin: no time to compute, so XFetch's early margin spreads nothing


@pytest.mark.points(15)
@pytest.mark.faults("concurrency")
def test_01_cold_key_under_concurrent_callers_is_computed_once(world, nemesis):
    cs = world.clients(6)
    with nemesis.fault("concurrency"):
        together(cs, HOT)            # six callers, one cold key, released at once
    together(cs, HOT)                # and once more: every one of them a hit
    world.expect("Six callers missed the same cold key at once, and each of them ran the "
                 "expensive query. Let one caller per key recompute, under a lease in Redis "
                 "(SET lease NX PX lease_ms); the others wait for its value and are served it.",
                 lesson="stampede")


def _computed(world, key):
    return sum(1 for c in world.calls() if c.ok and c.key == key)


def _served(world, key, version):
    return any(c.ok and c.key == key and c.value == f"{key}@v{version}" for c in world.calls())


@pytest.mark.points(15)
@pytest.mark.faults("concurrency")
def test_02_hot_key_expiring_under_load_is_refreshed_once(world, nemesis, history):
    cs = world.clients(4)
    b = Bounds()
    # the readers read in one stretch as long as the test: a hot key that expires has readers
    # there to wait through its recomputation, whatever the machine is doing
    with nemesis.fault("concurrency"), Readers(cs, [HOT], chunk_s=b.ttl_s + b.stale_s + 0.5):
        try:
            wait_for(lambda: _computed(world, HOT) >= 2, timeout=3 * b.ttl_s)
        except TimeoutError:
            pass                     # computed once and never refreshed: the bump shows it
        v = bump(world.ns, history, HOT)     # the source changes just after a refresh: the
        t = history.now()                    # value cached now must expire within its TTL
        try:
            wait_for(lambda: _served(world, HOT, v), timeout=b.stale_s + 0.3)
        except TimeoutError:
            pass                     # never refreshed: the checker names it
        wait_for(lambda: history.now() > t + b.stale_s + 0.1, timeout=5)
    world.expect("Four readers kept asking for one hot key. Each time it expired, more than one "
                 "of them ran the expensive query for it. Only the lease holder may recompute; "
                 "the others serve the value they have, or wait for the new one.",
                 lesson="stampede", hot=[HOT])


@pytest.mark.points(10)
@pytest.mark.faults("concurrency")
def test_03_keys_cached_together_do_not_expire_together(world, nemesis, history):
    prepare(world.ns, cost_ms=CHEAP_MS)
    cs = world.clients(6)
    # twelve keys, two per client: with TTLs drawn over a fifth of ttl_ms (120 ms), nine of
    # twelve lifetimes fall within 20 ms for about one draw in 1,800, where five of six fell so
    # for one in 60; without jitter every lifetime is the same and all twelve do
    keys = [f"k{i}" for i in range(2 * len(cs))]
    owner = {k: cs[i % len(cs)] for i, k in enumerate(keys)}
    with nemesis.fault("concurrency"):
        for k in keys:               # twelve keys filled within milliseconds, one after the other:
            read_inside(owner[k], k, reads=1)   # each computation takes about a millisecond
                                                # (XFetch's delta), each timed by its worker
    filled = history.now()

    def refreshed():
        done = {c.key for c in world.calls() if c.ok and c.start > filled}
        return done >= set(keys)
    # each client reads its two keys inside its own worker, a millisecond apart, in one stretch
    # longer than a TTL: the origin call that refreshes a key dates its expiry to a millisecond
    # or two, where reads sent one by one arrive 20-60 ms apart on a busy machine and blur a wave
    with Readers(cs, {c.name: [k for k in keys if owner[k] is c] for c in cs},
                 chunk_s=Bounds().ttl_s + 0.3):
        try:
            wait_for(refreshed, timeout=3 * Bounds().ttl_s)
        except TimeoutError:
            pass                     # a key never refreshed: the checker names it
    world.expect("Twelve keys cached in the same instant, each with the same TTL, all expired "
                 "together and hit the origin together. Draw each TTL a little short of ttl_ms "
                 "at random (from rng). XFetch alone does not spread them: its early margin "
                 "grows with the computation's time, and this origin answers at once.",
                 lesson="expiry-wave", expiry=(keys, filled))


@pytest.mark.points(10)
@pytest.mark.faults("kill")
def test_04_a_caller_killed_while_recomputing_is_taken_over(world, nemesis):
    cs = world.clients(4)
    holder, waiters = cs[0], cs[1:]
    pending = holder.get_async(HOT)  # the first caller takes the key ...
    computing(world.ns, pending)     # ... is inside the expensive query ...
    nemesis.inject("kill", holder)   # ... and dies there
    together(waiters, HOT)           # the others must be served, once its lease runs out
    together(waiters, HOT)
    world.expect("The caller recomputing the key died. The others must take over once its lease "
                 "runs out (SET NX PX: the lease expires by itself), one of them recompute, and "
                 "the rest be served its value, not run the query each.",
                 lesson="slow-caller")
