"""Lab 05 hidden tests: when Redis is slow, unreachable or restarted, every gateway decides within
the bound, as its declared FAILURE_POLICY says, and limits again once Redis is back."""
import pytest

from rig import ratelimit as rl
from rig.checkers import check_policy, combine
from rig.ratelimit import LIMIT
from splitbrain.grading import expect_valid

POLICY = ("Give the Redis client socket_timeout and socket_connect_timeout of timeout_s and no "
          "retries; catch redis.ConnectionError and redis.TimeoutError and return what "
          "FAILURE_POLICY declares (\"open\": True, \"closed\": False).")
FAULTED_CALLS = 3


def failing_phase(g, client, history, policy, label):
    """FAULTED_CALLS decisions while Redis fails: each within the bound, each per the policy."""
    t0 = history.now()
    rl.calls(g, client, FAULTED_CALLS)
    ds = rl.between(history, t0, history.now())
    expect_valid(combine([rl.verdict_of(ds, envelope=False, starvation=False),
                          check_policy(ds, policy)], f"decisions while {label}"),
                 history, hint=POLICY)


@pytest.mark.points(10)
@pytest.mark.faults("latency")
def test_06_slow_redis_gets_the_declared_decision_within_the_timeout(
        gateway, proxy, nemesis, ns, client, policy, history):
    p = proxy("redis", ns)
    g = gateway("g1", redis_url=p.url)
    # slow but within the timeout: the limit still holds
    with nemesis.fault("latency", p, ms=30):
        t0 = history.now()
        rl.calls(g, client, 2 * LIMIT)
        rl.judge(rl.between(history, t0, history.now()), history,
                 hint="A little latency is no excuse: keep deciding, one round trip per call.")
    # far slower than the timeout: the policy decides, in time
    with nemesis.fault("latency", p, ms=2500):
        failing_phase(g, f"{client}-slow", history, policy, "Redis answered after 2.5 s")


@pytest.mark.points(10)
@pytest.mark.faults("partition")
def test_07_unreachable_redis_gets_the_declared_decision_and_recovers(
        gateway, proxy, nemesis, ns, client, policy, history):
    p = proxy("redis", ns)
    g = gateway("g1", redis_url=p.url)
    rl.calls(g, client, 2)
    with nemesis.fault("partition", p):
        failing_phase(g, client, history, policy, "Redis was unreachable")
    t0 = history.now()
    rl.calls(g, f"{client}-after", LIMIT)
    rl.judge(rl.between(history, t0, history.now()), history,
             hint="After the partition heals, the next calls must reach Redis again (a fresh "
                  "connection) and be limited as before.")


@pytest.mark.points(10)
@pytest.mark.faults("restart")
def test_08_limits_hold_again_after_a_redis_restart(gateway, nemesis, client, policy, history):
    from splitbrain.services import spawn_redis
    server = spawn_redis()
    try:
        nemesis.add_target("redis", server)
        g = gateway("g1", redis_url=server.url, prefix_="rl:")
        t0 = history.now()
        rl.calls(g, client, LIMIT + 2)
        rl.judge(rl.between(history, t0, history.now()), history, hint=POLICY)
        # Redis killed, and started again after the block: meanwhile the gateway must decide
        with nemesis.fault("restart", "redis", down=True):
            failing_phase(g, client, history, policy, "Redis was down")
        rl.wait_redis(server.url)
        t0 = history.now()
        rl.calls(g, client, 2 * LIMIT)
        rl.judge(rl.between(history, t0, history.now()), history,
                 hint="A restarted Redis has forgotten its scripts: EVALSHA answers NOSCRIPT. "
                      "register_script() reloads the script; so does falling back to EVAL.")
    finally:
        server.close()
