"""Lab 00 exploring test: two clients make transfers side by side while a seeded random schedule
delays the bank's answers, holds or resets the network, loses answers after the bank did the work
and stalls requests at the bank. Then the network is quiet again and each client makes one more
transfer, which must go through.

The seed is the grading's (``--seed``); ``splitbrain check 00 --explore 20`` runs this test with
20 more seeds, and a failure names the seed that replays it exactly."""
import random
import threading

import pytest

DURATION_S = 1.6
ROUTES = [("alice", "bob"), ("bob", "carol"), ("carol", "alice"), ("dave", "alice"),
          ("alice", "dave")]


@pytest.mark.explore
@pytest.mark.points(10)
@pytest.mark.faults("concurrency")   # the others are drawn by the seed: not every run has each
def test_07_random_faults_against_two_clients(world, nemesis, seed, expect):
    rng = random.Random(seed)
    clients = [world.client(name, timeout_s=rng.choice([0.2, 0.3]), attempts=rng.choice([2, 3]),
                            build=False) for name in ("app", "app2")]
    for c in clients:
        c.build()
    sched = nemesis.schedule(
        {"latency": {"ms": (200, 900)}, "blackhole": {}, "reset": {},
         "lost-reply": {"how": "hang", "times": (1, 3)},
         "held-request": {}},
        duration_s=DURATION_S, gap_s=(0.05, 0.3), fault_s=(0.1, 0.5),
        targets={"latency": ["network"], "blackhole": ["network"], "reset": ["network"],
                 "lost-reply": ["bank"], "held-request": ["bank"]})
    stop = threading.Event()

    def run(c):
        pick = random.Random(f"{seed}-{c.name}")
        while not stop.is_set():
            src, dst = pick.choice(ROUTES)
            c.transfer(src, dst, world.amount())

    with nemesis.fault("concurrency"):
        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        try:
            nemesis.run(sched)
        finally:
            stop.set()
            nemesis.heal_all()
            world.bank.disarm()
            for t in threads:
                t.join(timeout=30)
    world.drain()
    for c in clients:                                # a quiet network: it must go through
        c.transfer("carol", "bob", world.amount(), expect="ok")
    expect(context=f"Every guarantee must hold under any mix of the lab's faults; seed {seed} "
                   f"drew this schedule:\n{sched.describe()}")
