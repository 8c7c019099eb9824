"""Lab 05 hidden tests: the limit holds for one client across gateways that race, straddle a
window boundary, disagree about the time, or share Redis with a hotter client."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rig import ratelimit as rl
from rig.checkers import check_key_expiry, combine
from rig.ratelimit import LIMIT, WINDOW_S
from splitbrain.grading import expect_valid

ATOMIC = ("Two gateways read the same count before either writes it back. Check and count in one "
          "atomic step inside Redis: a Lua script run with EVAL/EVALSHA.")
SLIDING = ("A fixed window forgets every request at its boundary. Count the requests of the last "
           "window_s seconds (a sorted set of times, or a token bucket).")
ONE_CLOCK = ("Each gateway reads its own clock, and they disagree. Take the time inside the Lua "
             "script with redis.call('TIME'): one clock for every gateway.")


@pytest.mark.points(10)
def test_01_one_gateway_admits_the_limit_then_rejects(gateway, client, history):
    g = gateway("g1")
    rl.calls(g, client, 2 * LIMIT)
    rl.judge(rl.between(history, 0, history.now()), history,
             hint="allow() must admit the first `limit` requests of a quiet client, then reject, "
                  "and return True or False.")


@pytest.mark.points(20)
@pytest.mark.faults("concurrency", "latency")
def test_02_racing_gateways_admit_no_more_than_the_limit(gateway, proxy, nemesis, ns, client,
                                                        history):
    p = proxy("redis", ns)
    gws = [gateway(f"g{i}", redis_url=p.url) for i in range(1, 5)]
    # a slower network widens the gap between a read and its write-back
    with nemesis.fault("latency", p, ms=20):
        t0 = history.now()
        with nemesis.fault("concurrency"):
            rl.race(gws, client, LIMIT)
        t1 = history.now()
    rl.judge(rl.between(history, t0, t1), history, hint=ATOMIC)


@pytest.mark.points(15)
@pytest.mark.faults("window-boundary")
def test_03_requests_straddling_a_window_boundary_stay_within_the_limit(gateway, nemesis, client,
                                                                        history):
    gws = [gateway("g1"), gateway("g2")]
    for attempt in range(3):
        who = f"{client}-{attempt}"
        boundary = rl.next_boundary(WINDOW_S, time.time() + 0.4)
        rl.sleep_until(boundary - 0.3)
        with nemesis.fault("window-boundary", rl.WALL_CLOCK, at_wall=boundary):
            t0 = history.now()
            rl.stream(gws, who, until=boundary + 0.3, pace_s=0.01)
            t1 = history.now()
        ds = [d for d in rl.between(history, t0, t1) if d.client == who]
        # The stream must have covered both sides of the boundary; on a stalled machine, again.
        if ds and ds[0].start < t0 + 0.2 and ds[-1].start > t1 - 0.2:
            break
    rl.judge(ds, history, hint=SLIDING)


@pytest.mark.points(15)
@pytest.mark.faults("clock-skew")
def test_04_gateways_with_skewed_clocks_share_one_limit(gateway, nemesis, client, history):
    a, b, c = gateway("a"), gateway("b"), gateway("c")
    # b lives two and a half windows in the future, c one and a half in the past
    nemesis.inject("clock-skew", b.worker, offset=+2.5 * WINDOW_S)
    nemesis.inject("clock-skew", c.worker, offset=-1.5 * WINDOW_S)
    t0 = history.now()
    rl.alternate([a, b, c], client, LIMIT)
    t1 = history.now()
    rl.judge(rl.between(history, t0, t1), history, hint=ONE_CLOCK)


@pytest.mark.points(10)
@pytest.mark.faults("concurrency")
def test_05_a_hot_client_neither_starves_others_nor_leaves_keys_forever(
        gateway, nemesis, ns, prefix, client, history):
    g1, g2, g3 = gateway("g1"), gateway("g2"), gateway("g3")
    hot, quiet = f"{client}-hot", f"{client}-quiet"
    t0 = history.now()
    with nemesis.fault("concurrency"), ThreadPoolExecutor(1) as pool:
        hammer = pool.submit(rl.stream, [g1, g2], hot, time.time() + 1.0, 0.005)
        rl.calls(g3, quiet, 5, pace_s=0.15)
        hammer.result()
    t1 = history.now()
    ttls = rl.key_ttls(getattr(ns, "redis_admin_url", None) or ns.redis_url, prefix)
    expect_valid(combine([rl.verdict_of(rl.between(history, t0, t1)),
                          check_key_expiry(ttls, max_ttl_ms=10 * WINDOW_S * 1000)],
                         "hot and quiet clients"), history,
                 hint="Keep one limit per client (a key per client under the prefix), and give "
                      "every key an expiry (PEXPIRE) a little longer than the window, renewed when "
                      "it is written; otherwise memory grows with every client and window.")
