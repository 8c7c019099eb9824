"""Lab 05 hidden tests: the limit holds for one client across gateways that race (held at every
boundary between two round trips), straddle a window boundary, disagree about the time, or stream
for several windows next to other clients. Every test judges every guarantee of lab.toml over
its whole history (`rig.ratelimit.judge_history`)."""
import time

import pytest

from rig import ratelimit as rl
from rig.ratelimit import LIMIT, WINDOW_S

ATOMIC = ("Two gateways read the same count before either writes it back. Check and count in one "
          "atomic step inside Redis: a Lua script run with EVAL/EVALSHA. (And if you use "
          "WATCH/MULTI, a transaction that lost the race must try again, not refuse the request.)")
SLIDING = ("A fixed window forgets every request at its boundary, wherever the window starts. "
           "Count the requests of the last window_s seconds (a sorted set of times, or a token "
           "bucket).")
ONE_CLOCK = ("Each gateway reads its own clocks, wall and monotonic, and they disagree (and jump). "
             "Take the time inside the Lua script with redis.call('TIME'): one clock for every "
             "gateway.")
BUSY = ("Over several windows a busy client must get the rate and no more, a steady one below the "
        "rate must never be refused, and every key must expire (PEXPIRE renewed on every write, a "
        "little longer than the window). Count only the requests you admit, and let no key live "
        "on a schedule of its own.")


@pytest.mark.points(10)
def test_01_one_gateway_admits_the_limit_then_rejects(spawn, prefix, client, history):
    # No test here makes Redis slow: a timeout past any hiccup of a busy machine, so every
    # decision is Redis's, none the failure policy's (so too in tests 03 to 05).
    cfg = rl.PATIENT
    one = rl.Config(limit=1, timeout_s=cfg.timeout_s)    # and the smallest limit there is
    g, g1 = [x.start() for x in (rl.Gateway(spawn, "g1", prefix, config=cfg, start=False),
                                 rl.Gateway(spawn, "one", prefix, config=one, start=False))]
    # Story first: one process, no boundary in sight (a fixed window passes this one).
    rl.clear_of_boundaries(WINDOW_S, 0.25)
    rl.calls(g, client, 2 * LIMIT)
    rl.expect_guarantees(history, "allow() must admit the first `limit` requests of a quiet "
                                  "client, then reject, and return True or False.", cfg,
                         clients=[client])
    rl.calls(g1, f"{client}-one", 3)
    rl.expect_guarantees(history, "A limit of 1 is a limit too: admit one request, then "
                                  "reject.", one, clients=[f"{client}-one"])


@pytest.mark.points(15)
@pytest.mark.faults("concurrency", "stall")
def test_02_racing_gateways_admit_no_more_than_the_limit(gateways, proxy, nemesis, ns, client,
                                                        history):
    # A long window (a slow refill), and a timeout far longer than any stall here: every
    # decision below is Redis's, none the failure policy's.
    cfg = rl.Config(limit=LIMIT, window_s=20.0, timeout_s=rl.PATIENT_TIMEOUT_S)
    pxs = [proxy("redis", ns) for _ in range(4)]
    racers = gateways(["g1", "g2", "g3", "g4"], [p.url for p in pxs], cfg)
    rl.at_once(racers, f"{client}-warm")        # connections open, scripts loaded
    # For every boundary k between two messages of a decision, on both directions of every
    # link: a fresh client has spent all but two of its limit; four gateways ask at once and
    # each is held after its k-th message, until all are; then all go on together.
    with nemesis.fault("concurrency"):
        for stream in ("upstream", "downstream"):
            rl.convoy(nemesis, racers, pxs, lambda k: f"{client}-{stream}-{k}",
                      lambda who: rl.calls(racers[0], who, LIMIT - 2), stream=stream)
    rl.expect_guarantees(history, ATOMIC, cfg, failing=())


@pytest.mark.points(15)
@pytest.mark.faults("window-boundary")
def test_03_requests_straddling_a_window_boundary_stay_within_the_limit(gateway, nemesis, client,
                                                                        history):
    cfg = rl.Config(limit=LIMIT, window_s=0.3, timeout_s=rl.PATIENT_TIMEOUT_S)
    g = gateway("g1", config=cfg)
    # Spend the limit, then probe until the limiter lets go: if that was a window boundary,
    # the next one is a window later. Stay quiet until just before it, then send across it.
    # Woken too late for that (a loaded machine), the burst would start a window of its own
    # and show nothing: let the limiter go again and take the next boundary.
    for _attempt in range(6):
        rl.clear_of_boundaries(cfg.window_s, 0.1)     # the burst itself straddles nothing
        found = rl.find_release(g, client, cfg.limit, deadline_s=2 * cfg.window_s)
        if found is None:
            break
        before, after = found
        rl.sleep_until(before + cfg.window_s - 0.06, time.monotonic)
        if time.monotonic() > before + cfg.window_s - 0.03:
            continue
        at = (before + after) / 2 + cfg.window_s
        with nemesis.fault("window-boundary", rl.WALL_CLOCK,
                           at_wall=round(time.time() + at - time.monotonic(), 3)):
            rl.hammer(g, client, after + cfg.window_s + 0.1)
        break
    rl.expect_guarantees(history, SLIDING, cfg)


@pytest.mark.points(10)
@pytest.mark.faults("clock-skew", "clock-jump", "clock-drift")
def test_04_gateways_with_skewed_clocks_share_one_limit(gateways, nemesis, client, history):
    a, b, c, d = gateways(["a", "b", "c", "d"], config=rl.PATIENT)
    nemesis.inject("clock-skew", b.worker, offset=+2.5 * WINDOW_S)   # b lives in the future
    nemesis.inject("clock-skew", c.worker, offset=-1.5 * WINDOW_S)   # c in the past ...
    nemesis.inject("clock-drift", c.worker, rate=3.0)                # ... and its clocks run fast
    # d's VM resumed: its wall and monotonic clocks jumped ahead ...
    jump = nemesis.inject("clock-jump", d.worker, step=3 * WINDOW_S, monotonic=True)
    rl.alternate([a, b, c, d], client, LIMIT // 2)
    nemesis.heal(jump)                                               # ... and step back
    rl.alternate([a, b, c, d], client, LIMIT // 2)
    rl.expect_guarantees(history, ONE_CLOCK, rl.PATIENT)


@pytest.mark.points(10)
@pytest.mark.faults("concurrency")
def test_05_busy_clients_get_the_rate_and_no_more_and_leave_no_key_forever(
        gateways, nemesis, prefix, admin_url, client, history):
    cfg = rl.Config(limit=LIMIT, window_s=0.25, timeout_s=rl.PATIENT_TIMEOUT_S)
    g1, g2, g3 = gateways(["g1", "g2", "g3"], config=cfg)
    until = time.monotonic() + 3.6 * cfg.window_s     # across three windows and more
    w = cfg.window_s
    with nemesis.fault("concurrency"):
        rl.in_parallel(
            # a hot client, back to back: the rate and no more, but at least about the rate
            lambda: rl.hammer(g1, f"{client}-hot", until),
            # a steady one at half the rate: never refused
            lambda: rl.paced(g2, f"{client}-steady", 2.4 / cfg.rate, until),
            # a bursty one: quiet for a while, then more than the limit at once
            lambda: rl.bursts(g3, f"{client}-bursty", LIMIT + 2, (0.55 * w, 0.3 * w, 1.1 * w),
                              until))
    rl.expect_guarantees(history, BUSY, cfg, ttls=rl.key_ttls(admin_url, prefix))
