"""Lab 05's exploring test: three gateways, each behind a fault proxy of its own, serve a hot
client (two gateways at once) and a steady one across several windows, while a schedule drawn
from the seed breaks their links (latency, partitions, refused and reset connections, stalls at a
random boundary) and moves their clocks (skews, jumps of the wall and monotonic clocks, drift).
The seed is in the report: `splitbrain check 05-rate-limiting --seed N` replays it, and
`splitbrain check 05-rate-limiting --explore 20` tries 20 more."""
import random
import time

import pytest

from rig import ratelimit as rl
from rig.ratelimit import LIMIT
from splitbrain.faults import Schedule

STORM = ("A seeded storm of faults broke a guarantee (the schedule is below; the anomaly says "
         "which). Decide in one atomic Lua script on redis.call('TIME'), renew every key's expiry "
         "on every write, bound every round trip by timeout_s with no retries, and answer what "
         "FAILURE_POLICY declares whenever Redis does not answer; replay the schedule with "
         "`splitbrain check 05-rate-limiting --seed {seed}`.\n{schedule}")


@pytest.mark.points(10)
@pytest.mark.explore
@pytest.mark.faults("concurrency")
def test_09_gateways_keep_every_guarantee_through_a_seeded_storm_of_faults(
        gateways, proxy, nemesis, ns, prefix, admin_url, client, policy, history, seed):
    cfg = rl.Config(limit=LIMIT, window_s=0.3, timeout_s=0.25)
    pxs = [proxy("redis", ns) for _ in range(3)]
    gws = gateways(["g1", "g2", "g3"], [p.url for p in pxs], cfg)
    for i, (p, g) in enumerate(zip(pxs, gws), start=1):
        nemesis.add_target(f"p{i}", p)
        nemesis.add_target(f"g{i}", g.worker)
    links = {f"p{i}": [f"g{i}"] for i in (1, 2, 3)}
    duration = 2.5 * cfg.window_s
    rng = random.Random(seed)
    network = nemesis.schedule(
        {"latency": {"ms": (5, 60)}, "partition": {}, "refuse": {}, "reset": {},
         "stall": {"after": (0, 4), "stream": rng.choice(("upstream", "downstream"))}},
        duration, targets=list(links), gap_s=(0.05, 0.4), fault_s=(0.15, 0.5))
    clocks = Schedule.from_seed(
        seed, {"clock-skew": {"offset": (-3.0, 3.0)},
               "clock-jump": {"step": (-3.0, 3.0), "monotonic": True},
               "clock-drift": {"rate": (0.25, 4.0)}},
        duration, ["g1", "g2", "g3"], gap_s=(0.0, 0.3), fault_s=(0.3, 1.0))
    storm = Schedule(tuple(sorted(network.events + clocks.events, key=lambda e: e.at)), seed,
                     duration)
    g1, g2, g3 = gws
    until = time.monotonic() + duration
    run = rl.Storm(nemesis, history, storm).start()
    try:
        with nemesis.fault("concurrency"):
            rl.in_parallel(lambda: rl.hammer(g1, f"{client}-hot", until),
                           lambda: rl.bursts(g2, f"{client}-hot", LIMIT + 2,
                                             (0.3 * cfg.window_s, 0.1 * cfg.window_s), until),
                           lambda: rl.paced(g3, f"{client}-steady", 2.4 / cfg.rate, until))
        run.wait(timeout=30)
    finally:
        run.stop()
    # Faults start and heal while calls are in flight: the policy is judged on the decisions
    # taken while a failure was surely in effect (after its injection returned, before its heal).
    rl.expect_guarantees(history, STORM.format(seed=seed, schedule=storm.describe()), cfg,
                         policy, links=links, ttls=rl.key_ttls(admin_url, prefix),
                         in_effect=run.windows)
