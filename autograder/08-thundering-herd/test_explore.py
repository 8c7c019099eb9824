"""Lab 08 exploring test: four clients read three shared keys while a seeded random schedule takes
the origin down and brings it back, and the grader changes the source now and then.

The seed is the grading's (``--seed``); ``splitbrain check 08 --explore N`` runs this test with
N more seeds, and a failure names the seed that replays it exactly."""
import random
import threading

import pytest
from rig.checkers import origin_attempts
from rig.world import Readers, bump

DURATION_S = 1.2
KEYS = ["x", "y", "z"]


@pytest.mark.explore
@pytest.mark.points(10)
@pytest.mark.faults("concurrency")   # origin-down is drawn by the seed: not every run has it
def test_07_random_outages_of_the_origin_under_load(world, nemesis, history, seed):
    rng = random.Random(seed)
    cs = world.clients(4)
    nemesis.add_target("origin", world.origin)
    sched = nemesis.schedule({"origin-down": {}}, duration_s=DURATION_S, gap_s=(0.1, 0.4),
                             fault_s=(0.1, 0.5), targets={"origin-down": ["origin"]})
    stop = threading.Event()

    def changes():
        while not stop.wait(rng.uniform(0.2, 0.5)):
            bump(world.ns, history, rng.choice(KEYS))

    with nemesis.fault("concurrency"), Readers(cs, KEYS):
        t = threading.Thread(target=changes, daemon=True)
        t.start()
        try:
            nemesis.run(sched)
        finally:
            stop.set()
            nemesis.heal_all()
            t.join(timeout=10)
    calls = world.calls()
    storms = [(origin_attempts(calls), (w.start, w.end if w.end is not None else history.now()),
               "the origin") for w in history.fault_windows(["origin-down"])]
    world.expect(storms=storms, context=f"Every guarantee must hold under any mix of the lab's "
                                        f"faults; seed {seed} drew this schedule:\n"
                                        f"{sched.describe()}")
