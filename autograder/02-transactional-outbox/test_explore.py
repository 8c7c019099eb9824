"""A seeded random fault schedule against the whole pipeline: two order services, two relays, then
a consumer. ``splitbrain check 02 --explore N`` runs it with N more seeds; the seed is in the
report, and ``--seed S`` replays that schedule."""
import random
import threading
import time
from dataclasses import replace

import pytest

from rig.checkers import merge
from rig.world import Member, Replay
from splitbrain.faults.schedule import Schedule
from splitbrain.grading import expect_valid
from splitbrain.sandbox import SandboxError

DURATION_S = 2.0
RELAY_TIMEOUT_S = 3.0
WORKERS = ("app-a", "app-b", "relay-a", "relay-b")
# network faults: on the broker's link and on each worker's own Postgres link
NETWORK = {"partition": {}, "refuse": {}, "stall": {"after": (0, 6)},
           "latency": {"ms": (50, 400)}, "reset": {}}
NETWORK_TARGETS = {"partition": ["kafka", "relay-a-pg", "app-a-pg"], "refuse": ["kafka"],
                   "stall": ["kafka", "relay-a-pg", "relay-b-pg", "app-a-pg", "app-b-pg"],
                   "latency": ["kafka", "relay-a-pg", "app-b-pg"],
                   "reset": ["kafka", "relay-b-pg", "app-a-pg", "app-b-pg"]}
# process faults: crashes at commit points, kills, pauses
PROCESS = {"crash": {"after": (0, 3)}, "kill": {}, "pause": {}}
PROCESS_TARGETS = {"crash": list(WORKERS), "kill": ["app-b", "relay-a", "relay-b"],
                   "pause": ["app-a", "relay-a", "relay-b"]}


def schedule(nemesis, seed: int) -> Schedule:
    """Two seeded schedules laid over each other (each one's windows are apart, the two overlap),
    with the seed's choice of crash point and stall direction."""
    net = nemesis.schedule(NETWORK, DURATION_S, NETWORK_TARGETS, gap_s=(0.05, 0.35),
                           fault_s=(0.15, 0.6))
    proc = Schedule.from_seed(seed * 7919 + 1, PROCESS, DURATION_S, PROCESS_TARGETS,
                              gap_s=(0.05, 0.4), fault_s=(0.1, 0.5))
    rng = random.Random(f"outbox-explore-{seed}")
    events = []
    for e in sorted(net.events + proc.events, key=lambda e: (e.at, e.fault)):
        if e.fault == "crash":
            e = replace(e, params={**e.params,
                                   "point": rng.choice(["before_commit", "after_commit"])})
        elif e.fault == "stall":
            e = replace(e, params={**e.params, "stream": rng.choice(["upstream", "downstream"])})
        events.append(e)
    return Schedule(tuple(events), seed, DURATION_S)


def app_client(world, m: Member, stop: threading.Event, tag: str) -> None:
    """Place orders and cancel some, as fast as the service answers, until ``stop``."""
    i = 0
    while not stop.is_set():
        i += 1
        oid = f"{tag}{i:03d}"
        try:
            m.obj.place_order(oid, f"c{i % 4}", 10 + i)
            if i % 3 == 0:
                m.obj.cancel_order(f"{tag}{i - 1:03d}")
        except SandboxError:
            m.revive()
        time.sleep(0.02)


def relay_client(world, m: Member, stop: threading.Event) -> None:
    # timeout_s well above a broker fault's length: tansu fences an idempotent producer that
    # purges queued records once it has its producer id, so a correct relay's wait must outlast
    # the faults rather than give up in the middle of one
    while not stop.is_set():
        if world.run(m.obj, 500, RELAY_TIMEOUT_S) is None:
            m.revive()
            time.sleep(0.02)


@pytest.mark.explore
@pytest.mark.points(10)
@pytest.mark.faults("concurrency", "redeliver", "crash")
def test_09_seeded_faults_against_the_whole_pipeline(world, history, nemesis, seed):
    """Two services place and cancel orders while two relays publish, under a random schedule
    drawn from the seed: crashes at commit points, kills and pauses of the processes; partitions,
    refused connections, stalls, latency and resets on the broker's link and on each worker's
    own database link, repeated and overlapping. Once everything heals the relays drain, and
    every guarantee is judged over the whole run; then the topic is played into a consumer that
    crashes once and is rebalanced twice."""
    spawned = world.start(*[(name, None, world.link(name)) for name in WORKERS],
                          ("consumer", None))
    members = {name: Member(world, w, "Relay" if name.startswith("relay") else "OrderService")
               for name, (w, _) in zip(WORKERS, spawned)}
    w_consumer = spawned[-1][0]
    for name, m in members.items():
        nemesis.add_target(name, m)
        nemesis.add_target(world.links[name].name, world.links[name])
    nemesis.add_target("kafka", world.kafka)
    sched = schedule(nemesis, seed)
    stop = threading.Event()
    threads = [threading.Thread(target=app_client, args=(world, members[n], stop, n[-1]),
                                daemon=True) for n in ("app-a", "app-b")]
    threads += [threading.Thread(target=relay_client, args=(world, members[n], stop),
                                 daemon=True) for n in ("relay-a", "relay-b")]
    with nemesis.fault("concurrency"):
        for t in threads:
            t.start()
        nemesis.start(sched)
        try:
            nemesis.wait(DURATION_S + 30)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    nemesis.heal_all()
    for m in members.values():
        m.revive()
    world.drain([members["relay-a"].obj, members["relay-b"].obj], timeout_s=2.0)
    outbox = world.check()

    # the consumer: the topic as a consumer group delivers it, with a crash and two rebalances
    got = world.last_read
    rng = random.Random(f"outbox-explore-consumer-{seed}")
    by_partition: dict[int, list] = {}
    for r in got.records:
        if isinstance(r.value, dict):
            by_partition.setdefault(r.partition, []).append(r.value)
    log = []
    while any(by_partition.values()):
        p = rng.choice([p for p, evs in by_partition.items() if evs])
        log.append(by_partition[p].pop(0))
    w, proj = w_consumer, world.new(w_consumer, "OrderProjection")
    feed = Replay(log)
    rewinds = sorted(rng.sample(range(1, len(log)), min(2, max(0, len(log) - 1))))
    crash_at = rng.randrange(len(log)) if log else -1
    point = rng.choice(["before_commit", "after_commit"])
    while not feed.done:
        if feed.pos == crash_at:
            crash_at = -1
            crash = world.crash(w, point)
            try:
                proj.handle(feed.current)
            except SandboxError:
                pass
            crash.heal()
            if w.alive:
                feed.ack()
            else:
                world.restart(w)
                proj = world.new(w, "OrderProjection")
            continue
        proj.handle(feed.current)
        feed.ack()
        if rewinds and feed.pos == rewinds[0]:
            rewinds.pop(0)
            nemesis.inject("redeliver", feed, events=3)
    if crash_at >= 0 or not log:           # nothing was delivered: still a crash and a rebalance
        nemesis.inject("redeliver", feed, events=1)
        world.crash(w, point).heal()
    projection = world.check_projection(world.truth())
    expect_valid(merge([outbox, projection], "outbox+projection"), history,
                 hint=f"Replay this schedule with --seed {seed}. Every guarantee must hold under "
                      f"any interleaving: an event per committed change, in order, under one "
                      f"id, a relay run that returns in time, and a consumer that applies each "
                      f"event once.")
