"""Lab 08 hidden tests, the retry policy's side: the origin down for a window while six callers
need it, then back; the cache's Redis killed and started again, empty, while six clients read;
the origin down for longer than a caller's retry budget while others wait for its key, and while
a caller refreshes early a key it has cached.

The grader sees every try itself: the origin writes down each call it receives, down or not, and
each client reaches the private Redis through its own door, which writes down every connection
(``rig.world.CacheStore``). The verdict judges those, not what the clients say."""
import pytest
from rig.checkers import origin_attempts
from rig.world import Readers, outcome, read_inside, wait_for

DOWN_S = 0.7        # how long a dependency stays down
BUDGET = 6          # test_08's retry budget (attempts): its holder gives up within a second


@pytest.mark.points(15)
@pytest.mark.faults("origin-down")
def test_05_clients_back_off_with_jitter_while_the_origin_is_down(world, nemesis, history):
    cs = world.clients(6)
    keys = [f"k{i}" for i in range(len(cs))]
    down = nemesis.inject("origin-down", world.origin)
    t0 = history.now()
    futs = [c.get_async(k) for c, k in zip(cs, keys)]   # each caller its own cold key
    wait_for(lambda: len(origin_attempts(world.calls())) == len(cs), timeout=10,
             why="not every client called the origin")
    wait_for(lambda: history.now() > t0 + DOWN_S, timeout=10)
    down.heal()
    for f in futs:
        outcome(f)
    for c, k in zip(cs, keys):                          # and it is back: every caller is served
        outcome(c.get_async(k))
    calls = world.calls()
    world.expect("While the origin was down, the clients retried together, in waves, or far too "
                 "often. Before each retry wait a random time between 0 and min(cap_ms, base_ms "
                 "* 2**attempt) (full jitter, drawn from rng): the retries spread out and thin "
                 "out, and stop after `attempts` tries.", lesson="retry-storm",
                 storms=[(origin_attempts(calls), world.window("origin-down"), "the origin")])


@pytest.mark.points(15)
@pytest.mark.faults("restart")
def test_06_a_redis_restart_brings_no_reconnect_flood_and_no_stampede(world, nemesis, history):
    store = world.store()
    names = [chr(ord("a") + i) for i in range(6)]
    urls = {n: store.door(n, history.now) for n in names}
    cs = world.clients(len(names), redis_urls=urls)

    def served_after(t):
        return lambda: all(any(op.f == "get" and op.process == c.name and op.type == "ok" and
                               op.start > t for op in history.operations()) for c in cs)
    with Readers(cs, ["hot"]):
        wait_for(served_after(0.0), timeout=10, why="the clients were never served")
        down = nemesis.inject("restart", store, down=True)   # Redis dies ...
        t0 = history.now()
        wait_for(lambda: all(any(t > t0 for t in ts) for ts in store.attempts().values()),
                 timeout=10, why="not every client noticed that Redis was down")
        wait_for(lambda: history.now() > t0 + DOWN_S, timeout=10)
        down.heal()                                           # ... and comes back, empty
        t1 = history.now()
        wait_for(served_after(t1), timeout=10, why="the clients were not served after Redis came "
                                                    "back")
    world.expect("Redis went away for a moment. The clients reconnected over and over, at once "
                 "or in lockstep, and when it came back, empty, they all recomputed the hot key "
                 "together. Back off with full jitter before every retry toward Redis too, and "
                 "let the lease decide who recomputes.", lesson="retry-storm",
                 storms=[(store.attempts(), world.window("restart"), "Redis")])


def _tries(world, client, key):
    return sum(1 for c in world.calls() if c.client == client and c.key == key and not c.ok)


@pytest.mark.points(10)
@pytest.mark.faults("origin-down")
def test_08_a_caller_that_gives_up_makes_its_budget_of_tries_and_hands_the_key_over(world,
                                                                                    nemesis):
    cs = world.clients(4, attempts=BUDGET)
    holder, waiters, reader = cs[0], cs[1:3], cs[3]
    outcome(reader.get_async("hot"))                     # a key cached before the outage
    down = nemesis.inject("origin-down", world.origin)
    first = holder.get_async("cold")
    wait_for(lambda: _tries(world, holder.name, "cold"), timeout=10,
             why="the first caller never called the origin")
    futs = [w.get_async("cold") for w in waiters]        # the others wait for its value ...
    read_inside(reader, "hot", until_origin=True)        # (a refresh that finds the origin down)
    outcome(first, timeout=10)                           # ... it gives up after its budget ...
    wait_for(lambda: any(_tries(world, w.name, "cold") for w in waiters), timeout=10,
             why="no waiting caller took the key over")  # ... and one of them takes over
    down.heal()
    for f in futs:
        outcome(f)
    world.expect("The origin stayed down for longer than a caller's retry budget while two "
                 "others waited for its key. The caller must make exactly `attempts` tries, then "
                 "give up and let go of its lease (compare-and-delete), so that a waiting caller "
                 "takes the key over at once rather than when the lease runs out. A caller whose "
                 "early refresh fails serves the value it has.",
                 lesson="retry-budget", handover=(holder.name, "cold", BUDGET),
                 holding=(reader.name, "hot"))
