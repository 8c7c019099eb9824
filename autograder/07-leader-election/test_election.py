"""Lab 07 hidden tests: an elected leader runs a once-per-tick job while it is frozen mid-job past
its lease, held in the network at every boundary between its round trips to Postgres, cut off
from Redis, given a wall clock that steps a minute back, killed, while the lease store itself
fails over and loses the lease its primary acknowledged, and while the reply to its renewal is
held until its lease ran out in Redis; and a renewal must extend the lease in Redis itself.

Every verdict comes from the grader's own view: the history of calls it made and the charges
Postgres really holds, judged against every guarantee of the chapter at once
(``world.expect``; ``rig.checkers.check_election``)."""
import itertools
import time

import pytest
from rig.world import boundaries, engaged, round_, until_blocked

FENCE_HINT = ("The old leader asked 'am I leader?', then stalled, and its charge landed after the "
              "new leader's. Nothing the old leader checks before it acts can be trusted by the "
              "time the charge arrives: send the term with the charge and let the database refuse "
              "a term older than the largest it has seen, in the same transaction that charges "
              "(and skip a tick that is already charged).")


@pytest.mark.points(15)
@pytest.mark.faults("pause", "stall")
def test_01_leader_frozen_mid_job_past_its_lease_is_fenced(world, must_elect, nemesis):
    a, b = world.nodes(dict(name="a", lease_ms=500, pg_proxy=True),
                       dict(name="b", lease_ms=5_000))
    round_([a, b], 1)                         # a is elected and charges tick 1
    assert a.campaign() is not None, "a, the only leader, could not renew its own lease"
    held = nemesis.inject("stall", a.pg_px, after=0)   # a's next words to Postgres are held ...
    pending = a.election.tick.async_(2)       # ... a has checked that it leads, and charges
    engaged(held, pending)
    gc = nemesis.inject("pause", a.worker)    # a stop-the-world pause, longer than a's lease
    must_elect(b, "a is frozen; its 500 ms lease must run out")
    b.tick(2)
    held.heal()                               # the network delivers a's charge ...
    gc.heal()                                 # ... and a wakes up where it stopped
    pending.result(timeout=20)
    a.leading()
    round_([a, b], 3)
    world.expect(FENCE_HINT, lesson="duplicate-tick")


@pytest.mark.points(15)
@pytest.mark.faults("stall")
def test_02_a_charge_held_at_any_boundary_is_fenced(world, must_elect, nemesis):
    a, b = world.nodes(dict(name="a", lease_ms=300, pg_proxy=True),
                       dict(name="b", lease_ms=300))
    n = itertools.count(1)
    current = {}

    def start():                              # a leads and starts the job ...
        must_elect(a, "b stopped renewing; its 300 ms lease must run out")
        current["n"] = next(n)
        return a.election.tick.async_(current["n"])

    # ... and its charge is held on the way to Postgres (before each of its requests, or each
    # reply) while its lease runs out and b is elected and runs the next tick.
    for step in boundaries(nemesis, a.pg_px, start):
        must_elect(b, "a stopped renewing; its 300 ms lease must run out")
        pending_b = b.election.tick.async_(next(n))
        until_blocked(world.ns, pending_b)    # b's charge is done, or waits for a's row lock
        step.stall.heal()
        step.pending.result(timeout=20)
        pending_b.result(timeout=20)
    world.expect(FENCE_HINT.replace("(and skip a tick that is already charged)", "") + (
        " The stall falls between any two of your round trips: a check in one statement and a "
        "charge in the next leave a gap; the fence row's lock must be held from the comparison "
        "to the charge."), lesson="stale-leader-write")


@pytest.mark.points(15)
@pytest.mark.faults("partition")
def test_03_leader_cut_off_from_redis_steps_down(world, must_elect, nemesis):
    a, b = world.nodes(dict(name="a", lease_ms=400, redis_proxy=True),
                       dict(name="b", lease_ms=5_000))
    round_([a, b], 1)                         # a is elected and charges tick 1
    with nemesis.fault("partition", a.redis_px):   # a cannot reach Redis; b can
        a.campaign()                          # a's renewal times out
        must_elect(b, "a is cut off and cannot renew; its 400 ms lease must run out")
        round_([a, b], 2)
        a.leading()
    round_([a, b], 3)
    world.expect(
        "A leader that cannot renew cannot know whether its lease still runs, and the others "
        "can still reach Redis: an unknown renewal means step down, not carry on. And the "
        "charge must carry the term, so that the database refuses the old leader anyway.",
        lesson="split-brain")


@pytest.mark.points(10)
@pytest.mark.faults("clock-skew")
def test_04_wall_clock_step_does_not_extend_the_lease(world, must_elect, nemesis):
    a, b = world.nodes(dict(name="a", lease_ms=400), dict(name="b", lease_ms=5_000))
    round_([a, b], 1)                         # a is elected and charges tick 1
    nemesis.inject("clock-skew", a.worker, offset=-60.0)   # NTP steps a's wall clock back
    must_elect(b, "a stopped renewing; its 400 ms lease must run out")
    a.leading()
    b.tick(2)
    a.tick(2)
    world.expect(
        "a's lease ran out in Redis, but a still believed it led: it measured the lease on the "
        "wall clock, which stepped back a minute. Measure it on clock.monotonic(), from before "
        "the request was sent, and step down a safe share of the lease early.",
        lesson="split-brain")


@pytest.mark.points(10)
@pytest.mark.faults("kill")
def test_05_a_new_leader_takes_over_from_a_killed_one(world, must_elect, nemesis):
    xs = world.nodes(*(dict(name=n, lease_ms=300) for n in "abc"))
    round_(xs, 1)                             # a is elected and charges tick 1 ...
    nemesis.inject("kill", xs[0])             # ... and dies before it could tell anyone
    # The others cannot know how far a got: the next leader runs tick 1 again, then goes on.
    n, led = 1, False
    deadline = time.monotonic() + 5.0
    while n <= 3:
        terms = round_(xs, n, campaigns=True)
        led = led or any(t is not None and not isinstance(t, Exception) for t in terms.values())
        if led:
            n += 1
        elif time.monotonic() > deadline:
            must_elect(xs[1], "a was killed; its 300 ms lease must run out", timeout=0)
        time.sleep(0.02)
    world.expect("After the leader died, one of the others must be elected once its lease ran "
                 "out and charge every tick from then on, but not the tick the dead leader had "
                 "already charged: insert a charge only if its tick has none.",
                 lesson="duplicate-tick")


@pytest.mark.points(15)
@pytest.mark.faults("partition", "replica-failover")
def test_06_lease_store_failover_loses_no_acknowledged_lease(world, must_elect, nemesis):
    store = world.store()
    a, b = world.nodes(dict(name="a", lease_ms=2_000, replicas=1),
                       dict(name="b", lease_ms=2_000, replicas=1), store=store)
    cut = nemesis.inject("partition", store.repl_px)   # the replica stops hearing the primary
    round_([a], 1)                            # a is elected: the primary acknowledges it
    nemesis.inject("replica-failover", store, primary=store.primary)   # ... and dies
    cut.heal()
    must_elect(b, "the promoted replica holds no lease")
    round_([a, b], 2)
    a.leading()
    round_([a, b], 3)
    world.expect(
        "The primary acknowledged a's election and died before its replica had it; the "
        "promoted replica handed the same term to b. An acknowledgement from one Redis is not "
        "durable: after the election, WAIT until `replicas` replicas have it (WAIT numreplicas "
        "timeout_ms), and do not lead if fewer did.", lesson="split-brain")


@pytest.mark.points(5)
@pytest.mark.faults("stall")
def test_08_a_late_reply_does_not_extend_the_lease(world, must_elect, nemesis):
    a, b = world.nodes(dict(name="a", lease_ms=500, redis_proxy=True, redis_timeout_s=5.0),
                       dict(name="b", lease_ms=5_000))
    round_([a, b], 1)                         # a is elected and charges tick 1
    held = nemesis.inject("stall", a.redis_px, after=0, stream="downstream")
    pending = a.election.campaign.async_()    # a renews: Redis extends the lease from now ...
    assert engaged(held, pending), "a's renewal got through without a round trip to Redis"
    must_elect(b, "a's renewal reached Redis and its 500 ms lease ran out there")
    held.heal()                               # ... and the reply reaches a only now
    pending.result(timeout=20)
    a.leading()
    round_([a, b], 2)
    world.expect(
        "a's renewal reached Redis, and its reply was held on the way back until the lease had "
        "run out there and b was elected: a counted its lease from when the reply arrived. Take "
        "the monotonic time before the request leaves (Redis may start counting the moment it "
        "arrives) and lead until then plus a safe share of the lease, not from the reply.",
        lesson="split-brain")


@pytest.mark.points(5)
def test_09_a_renewal_extends_the_lease_in_the_store(world, must_elect):
    """A renewal extends the lease in the store too, not only in the node's reckoning: a renews
    300 ms before its first 1 s lease runs out; b campaigns from the moment that first lease
    would have run out, and may be elected only once the renewed one has (by then a, which
    counts 800 ms from its renewal, has stepped down)."""
    a, b = world.nodes(dict(name="a", lease_ms=1_000), dict(name="b", lease_ms=5_000))
    sent = time.monotonic()
    must_elect(a, "nobody else campaigns yet")
    time.sleep(max(0.0, sent + 0.7 - time.monotonic()))
    assert a.campaign() is not None, "a could not renew its own lease before it ran out"
    time.sleep(max(0.0, sent + 1.0 - time.monotonic()))
    must_elect(b, "a's renewed 1 s lease must run out")
    a.leading()
    world.expect(
        "a renewed its lease before it ran out, and b was elected when the first lease would "
        "have ended while a still counted on the renewed one: the renewal extended the lease "
        "only in a's own reckoning. Renew in the store, in the same atomic step that checks the "
        "lease is still yours (PEXPIRE in the Lua script), or the store hands it on.",
        lesson="split-brain")
