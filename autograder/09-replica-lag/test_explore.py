"""Lab 09 exploring test: two application servers, two sessions each, write their own keys and
read their own and each other's while a seeded random schedule pauses replay on the standbys and
makes them apply commits late.

The seed is the grading's (``--seed``); ``splitbrain check 09 --explore N`` runs this test with
N more seeds, and a failure names the seed that replays it exactly."""
import random
import threading

import pytest

DURATION_S = 1.5
SESSIONS = {"app1": ("ann", "ben"), "app2": ("cat", "dan")}


@pytest.mark.explore
@pytest.mark.points(10)
@pytest.mark.faults("concurrency")   # the others are drawn by the seed: not every run has each
def test_06_random_lag_against_four_sessions(world, nemesis, seed):
    apps = {name: world.app(name) for name in SESSIONS}
    keys = [f"k-{s}" for ss in SESSIONS.values() for s in ss]
    sched = nemesis.schedule(
        {"replay-pause": {}, "standby-lag": {"ms": (200, 2_000)}},
        duration_s=DURATION_S, gap_s=(0.05, 0.2), fault_s=(0.1, 0.6),
        targets={"replay-pause": [world.a.name, world.b.name],
                 "standby-lag": [world.a.name, world.b.name]})
    stop = threading.Event()
    errors = []

    def client(name, rng):
        app, n = apps[name], 0
        try:
            while not stop.is_set():
                for s in SESSIONS[name]:
                    n += 1
                    app.put(s, f"k-{s}", f"{s}-{n}")
                    app.get(s, f"k-{s}")
                    app.get(s, rng.choice(keys))
        except Exception as e:   # noqa: BLE001 - the checkers judge it; keep the first
            errors.append(e)

    rng = random.Random(seed)
    threads = [threading.Thread(target=client, args=(name, random.Random(rng.random())),
                                daemon=True) for name in SESSIONS]
    with nemesis.fault("concurrency"):
        for t in threads:
            t.start()
        try:
            nemesis.run(sched)
        finally:
            stop.set()
            nemesis.heal_all()
            for t in threads:
                t.join(timeout=30)
    world.expect(context=f"Every guarantee must hold under any mix of the lab's lag faults; seed "
                         f"{seed} drew this schedule:\n{sched.describe()}")
