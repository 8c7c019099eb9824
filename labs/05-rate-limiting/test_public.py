"""Public tests for lab 05: a few of the checks the grader makes, with the same fixtures.

Run them with `splitbrain check 05-rate-limiting` (which also runs the hidden tests), or directly:
    pytest labs/05-rate-limiting/test_public.py -p splitbrain.grading.plugin
Each test starts real gateway processes running your limiter.py against real Redis.
"""
import uuid

import pytest

from rig import ratelimit as rl
from rig.checkers import check_policy, combine
from rig.ratelimit import LIMIT
from splitbrain.grading import expect_valid

# Public tests are worth no points: they show how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture
def client():
    return f"client-{uuid.uuid4().hex[:8]}"


def test_one_gateway_admits_the_limit_then_rejects(spawn, ns, client, history):
    # Redis is never slow here: a timeout far past any hiccup of a busy machine, so every
    # decision is Redis's answer, never the failure policy's
    g = rl.Gateway(spawn, "g1", ns.key("rl:"), config=rl.PATIENT)
    rl.calls(g, client, 2 * LIMIT)
    rl.judge(rl.between(history, 0, history.now()), history, bound_s=rl.PATIENT.bound_s,
             hint="Admit the first `limit` requests of a quiet client, then reject.")


@pytest.mark.faults("concurrency", "latency")
def test_two_racing_gateways_share_one_limit(spawn, ns, proxy, nemesis, client, history):
    p = proxy("redis", ns)
    gws = [rl.Gateway(spawn, f"g{i}", ns.key("rl:"), redis_url=p.url, config=rl.PATIENT)
           for i in (1, 2)]
    with nemesis.fault("latency", p, ms=20):
        t0 = history.now()
        with nemesis.fault("concurrency"):
            rl.race(gws, client, LIMIT)
        t1 = history.now()
    rl.judge(rl.between(history, t0, t1), history, bound_s=rl.PATIENT.bound_s,
             hint="Between one gateway's read and its write, the other reads the same count.")


@pytest.mark.faults("partition")
def test_unreachable_redis_gets_the_declared_decision_in_time(spawn, ns, proxy, nemesis,
                                                              component, client, history):
    p = proxy("redis", ns)
    g = rl.Gateway(spawn, "g1", ns.key("rl:"), redis_url=p.url)
    rl.calls(g, client, 1)
    with nemesis.fault("partition", p):
        t0 = history.now()
        rl.calls(g, client, 2)
        ds = rl.between(history, t0, history.now())
    expect_valid(combine([rl.verdict_of(ds, envelope=False, starvation=False),
                          check_policy(ds, rl.declared_policy(component))], "failure policy"),
                 history, hint="Bound every Redis call by timeout_s and return what FAILURE_POLICY "
                               "declares.")
