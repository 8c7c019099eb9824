"""Lab 05 hidden tests: when Redis is slow, unreachable, refusing or restarted, every gateway
decides within the bound (timeout_s plus a second), as its declared FAILURE_POLICY says, and
limits again once Redis is back. Every test judges every guarantee of lab.toml over its whole
history (`rig.ratelimit.judge_history`)."""
import pytest

from rig import ratelimit as rl
from rig.ratelimit import LIMIT

POLICY = ("Give the Redis client socket_timeout and socket_connect_timeout of timeout_s and no "
          "retries; catch redis.ConnectionError and redis.TimeoutError and return what "
          "FAILURE_POLICY declares (\"open\": True, \"closed\": False).")


@pytest.mark.points(10)
@pytest.mark.faults("latency")
def test_06_slow_redis_gets_the_declared_decision_within_the_timeout(
        gateways, proxy, nemesis, ns, client, policy, history):
    cfg = rl.Config(timeout_s=0.25)
    p = proxy("redis", ns)
    g1, g2 = gateways(["g1", "g2"], [p.url, p.url], cfg)
    # slow but within the timeout: the limit still holds
    with nemesis.fault("latency", p, ms=20):
        rl.calls(g1, client, LIMIT + 2)
    # far slower than the timeout: the policy decides, in time (g2 has not even connected yet)
    with nemesis.fault("latency", p, ms=2500):
        rl.at_once([g1, g2], f"{client}-slow")
    rl.expect_guarantees(history, POLICY, cfg, policy)


@pytest.mark.points(10)
@pytest.mark.faults("partition", "refuse")
def test_07_unreachable_redis_gets_the_declared_decision_and_recovers(
        gateway, proxy, nemesis, ns, client, policy, history):
    # A timeout above a second: a retry inside allow() (2 x 1.1 s) is then later than the bound
    # (1.1 s plus a second), as the chapter says it is.
    cfg = rl.Config(timeout_s=1.1)
    p = proxy("redis", ns)
    g = gateway("g1", redis_url=p.url, config=cfg)
    rl.calls(g, client, 2)
    with nemesis.fault("partition", p):                # nothing answers
        rl.calls(g, f"{client}-cut", 1)
    rl.calls(g, f"{client}-after", LIMIT + 2)         # a fresh connection, limited as before
    with nemesis.fault("refuse", p):                   # connections refused and closed
        rl.calls(g, f"{client}-refused", 2)
    rl.calls(g, f"{client}-back", LIMIT + 2)
    rl.expect_guarantees(history, "After Redis comes back the next calls must reach it again (a "
                                  "fresh connection) and be limited as before. " + POLICY,
                         cfg, policy)


@pytest.mark.points(10)
@pytest.mark.faults("restart")
def test_08_limits_hold_again_after_a_redis_restart(gateway, nemesis, client, policy, history):
    from splitbrain.services import spawn_redis
    server = spawn_redis()
    try:
        nemesis.add_target("redis", server)
        # refused while it is down, so no call waits for the timeout: the patient one, so that
        # no hiccup of a busy machine turns a decision of the running Redis into the policy's
        g = gateway("g1", redis_url=server.url, prefix_="rl:", config=rl.PATIENT)
        rl.calls(g, client, LIMIT + 2)
        # Redis killed, and started again after the block: meanwhile the gateway must decide
        with nemesis.fault("restart", "redis", down=True):
            rl.calls(g, client, 3)
        rl.wait_redis(server.url)
        rl.calls(g, client, 2 * LIMIT)
        rl.expect_guarantees(
            history, "A restarted Redis has forgotten its scripts: EVALSHA answers NOSCRIPT. "
                     "register_script() reloads the script; so does falling back to EVAL. "
                     "While it is down: " + POLICY, rl.PATIENT, policy)
    finally:
        server.close()
