"""The lab-08 checkers (``rig.checkers``) on hand-written histories and origin records: each
guarantee, held and broken."""
from rig.checkers import (
    Bounds,
    check_expiry_wave,
    check_handover,
    check_hot_expiry,
    check_latency,
    check_retry_storm,
    check_served_while_down,
    check_stale,
    check_stampede,
    judge,
    origin_attempts,
)
from rig.world import Call

from splitbrain.history import Event, History, call_value


def build(steps):
    return History.from_events(Event(p, t, f, v, time, fault=p == "nemesis")
                               for time, p, t, f, v in steps)


def get(t0, t1, p, key, result, type_="ok"):
    return [(t0, p, "invoke", "get", call_value([key])), (t1, p, type_, "get", result)]


def fault(t0, t1, name, target, **params):
    return [(t0, "nemesis", "info", name, {"phase": "start", "target": target, **params}),
            (t1, "nemesis", "info", name, {"phase": "end", "target": target})]


def call(seq, key, client, t0, t1, ok=True, version=0):
    return Call(seq, key, client, t0, t1, ok, f"{key}@v{version}" if ok else None)


def herd(n, single_flight):
    steps = []
    for i in range(n):
        steps += get(0.0 + i * 0.001, 0.08, chr(97 + i), "hot", "hot@v0")
    calls = [call(1, "hot", "a", 0.001, 0.07)]
    if not single_flight:
        calls += [call(i + 2, "hot", chr(98 + i), 0.002 + i * 0.001, 0.07) for i in range(n - 1)]
    return build(sorted(steps, key=lambda s: s[0])), calls


def test_one_computation_for_a_herd_is_valid():
    h, calls = herd(4, True)
    assert check_stampede(h, calls).ok
    assert judge(h, calls).ok


def test_every_caller_computing_is_a_stampede_naming_their_gets():
    h, calls = herd(4, False)
    v = check_stampede(h, calls)
    assert v.kinds() == ["stampede"]
    assert v.anomalies[0].data["calls"] == 4
    assert v.anomalies[0].events                  # the gets are outlined


def test_computations_one_after_the_other_are_no_stampede():
    h = build(get(0.0, 0.2, "a", "k", "k@v0"))
    calls = [call(1, "k", "a", 0.0, 0.06), call(2, "k", "b", 0.061, 0.12)]
    assert check_stampede(h, calls).ok


def test_calls_that_found_the_origin_down_are_not_computations():
    h = build(get(0.0, 0.2, "a", "k", "k@v0"))
    calls = [call(1, "k", "a", 0.0, 0.06, ok=False), call(2, "k", "b", 0.0, 0.06, ok=False),
             call(3, "k", "a", 0.1, 0.16)]
    assert check_stampede(h, calls).ok


def test_keys_refreshed_in_one_instant_are_an_expiry_wave():
    h = build(get(0.0, 0.1, "a", "k0", "k0@v0"))
    keys = [f"k{i}" for i in range(6)]
    fills = [call(10 + i, k, "a", 0.0, 0.06 + i * 0.005) for i, k in enumerate(keys)]
    together = fills + [call(i, k, "a", 0.66 + i * 0.005, 0.72) for i, k in enumerate(keys)]
    spread = fills + [call(i, k, "a", 0.55 + i * 0.03, 0.61 + i * 0.03)
                      for i, k in enumerate(keys)]
    assert check_expiry_wave(h, together, keys, after=0.1).kinds() == ["expiry-wave"]
    assert check_expiry_wave(h, spread, keys, after=0.1).ok
    assert check_expiry_wave(h, together, keys, after=0.8).ok   # nothing after the fill


def timed_refreshes(lates, life=0.6):
    """Six keys, one per client, filled at once; each value lives ``life`` (from 0.06 s), and
    each reader notices its key's expiry ``lates[i]`` late: its get before that one, 10 ms
    before the expiry, still found the key."""
    keys = [f"k{i}" for i in range(len(lates))]
    steps, calls = [], []
    for i, (k, late) in enumerate(zip(keys, lates)):
        c = chr(97 + i)
        calls.append(call(10 + i, k, c, 0.0, 0.06))
        steps += get(0.0, 0.061, c, k, f"{k}@v0")
        gone = 0.06 + (life if isinstance(life, float) else life[i])
        steps += get(gone - 0.01, gone - 0.009, c, k, f"{k}@v0")
        steps += get(gone + late - 0.001, gone + late + 0.07, c, k, f"{k}@v0")
        calls.append(call(20 + i, k, c, gone + late, gone + late + 0.06))
    return build(sorted(steps, key=lambda s: s[0])), calls, keys


def test_keys_that_expired_together_are_a_wave_however_late_their_readers_noticed():
    h, calls, keys = timed_refreshes([0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    v = check_expiry_wave(h, calls, keys, after=0.1)
    assert v.kinds() == ["expiry-wave"]             # refreshes 50 ms apart, lifetimes one value
    assert v.stats["widest_lifetime_bounds_ms"] > 50


def test_keys_spread_by_jitter_are_no_wave_when_their_readers_were_prompt():
    h, calls, keys = timed_refreshes([0.0] * 6, life=[0.48 + 0.024 * i for i in range(6)])
    assert check_expiry_wave(h, calls, keys, after=0.1).ok


def test_a_value_that_surely_lived_past_its_ttl_is_stale():
    h, calls, keys = timed_refreshes([0.0] * 6, life=[0.5, 0.52, 0.55, 0.58, 0.6, 0.7])
    v = check_expiry_wave(h, calls, keys, after=0.1)
    assert v.kinds() == ["stale-forever"] and v.anomalies[0].data["key"] == "k5"
    assert 0.68 < v.anomalies[0].data["lived_s"] <= 0.7     # a bound: at least this long


def lockstep(n, delay, rounds):
    return {chr(97 + i): [0.001 * i + k * delay for k in range(rounds)] for i in range(n)}


def test_retries_in_lockstep_are_a_storm_and_spread_ones_are_not():
    h = build([])
    storm = check_retry_storm(h, lockstep(6, 0.04, 10), (0.0, 0.7))
    assert storm.kinds() == ["retry-storm"] and storm.stats["waves"] >= 9
    spread = {chr(97 + i): [0.0, 0.013 * (i + 1), 0.1 + 0.031 * i, 0.3 + 0.05 * i]
              for i in range(6)}
    assert check_retry_storm(h, spread, (0.0, 0.7)).ok


def test_lockstep_is_judged_from_each_clients_own_first_try():
    h = build([])
    skewed = {chr(97 + i): [0.03 * i + k * 0.04 for k in range(8)] for i in range(6)}
    assert check_retry_storm(h, skewed, (0.0, 0.7)).kinds() == ["retry-storm"]
    doubling = {chr(97 + i): [0.01 * i + t for t in (0.0, 0.04, 0.12, 0.28)] for i in range(6)}
    assert check_retry_storm(h, doubling, (0.0, 0.7)).kinds() == ["retry-storm"]


def test_one_retry_in_step_is_allowed_two_are_not():
    h = build([])
    assert check_retry_storm(h, lockstep(6, 0.2, 2), (0.0, 0.7)).ok
    assert not check_retry_storm(h, lockstep(6, 0.15, 3), (0.0, 0.7)).ok


def test_too_many_tries_in_an_outage_is_a_storm():
    h = build([])
    b = Bounds()
    busy = {"a": [i * 0.005 for i in range(100)]}
    v = check_retry_storm(h, busy, (0.0, 0.7))
    assert v.kinds() == ["retry-storm"] and v.anomalies[0].data["bound"] == b.max_attempts(0.7)


def test_attempts_outside_the_window_do_not_count():
    h = build([])
    assert check_retry_storm(h, lockstep(6, 0.04, 30), (1.3, 2.0)).ok


def test_origin_attempts_are_the_calls_that_found_it_down():
    calls = [call(1, "k", "a", 0.0, 0.001, ok=False), call(2, "k", "a", 0.05, 0.11)]
    assert origin_attempts(calls) == {"a": [0.0]}


def bumped(served, at):
    return build([(0.0, "grader", "invoke", "bump", {"key": "k"}),
                  (0.001, "grader", "ok", "bump", {"key": "k", "version": 1}),
                  *get(at, at + 0.001, "a", "k", served)])


def test_a_value_older_than_a_ttl_after_the_change_is_stale():
    calls = [call(1, "k", "a", -1.0, -0.9, version=0), call(2, "k", "a", 0.5, 0.56, version=1)]
    late = Bounds().stale_s + 0.1
    assert check_stale(bumped("k@v0", late), calls).kinds() == ["stale-forever"]
    assert check_stale(bumped("k@v0", 0.3), calls).ok             # within the TTL: fine
    assert check_stale(bumped("k@v1", late), calls).ok


def test_a_value_the_origin_never_produced_is_stale():
    h = build(get(0.0, 0.01, "a", "k", "k@v7"))
    assert check_stale(h, [call(1, "k", "a", 0.0, 0.06)]).kinds() == ["stale-forever"]


def test_a_slow_get_while_nothing_is_down_is_a_slow_caller():
    b = Bounds()
    assert check_latency(build(get(0.0, b.latency_s - 0.1, "a", "k", "k@v0"))).ok
    assert check_latency(build(get(0.0, b.latency_s + 0.1, "a", "k", "k@v0"))).kinds() == \
        ["slow-caller"]
    never = build([(0.0, "a", "invoke", "get", call_value(["k"]))])
    assert check_latency(never).kinds() == ["slow-caller"]
    failed = build(get(0.0, 0.1, "a", "k", {"error": "ConnectionError"}, "fail"))
    assert check_latency(failed).kinds() == ["slow-caller"]


def test_a_get_caught_in_an_outage_may_fail_and_finish_after_it():
    b = Bounds()
    steps = fault(0.1, 1.0, "origin-down", "origin") + \
        get(0.2, 1.0 + b.recover_s - 0.1, "a", "k", {"error": "ConnectionError"}, "fail")
    assert check_latency(build(steps)).ok
    steps = fault(0.1, 1.0, "origin-down", "origin") + \
        get(0.2, 1.0 + b.recover_s + 0.1, "a", "k", "k@v0")
    assert check_latency(build(steps)).kinds() == ["slow-caller"]


def test_a_condition_excuses_nothing_and_a_killed_callers_get_is_not_judged():
    b = Bounds()
    steps = fault(0.0, 5.0, "concurrency", None) + get(0.1, b.latency_s + 0.3, "a", "k", "k@v0")
    assert not check_latency(build(steps)).ok
    steps = [(0.0, "a", "invoke", "get", call_value(["k"])),
             (0.05, "nemesis", "info", "kill", {"phase": "start", "target": "a"}),
             (0.05, "nemesis", "info", "kill", {"phase": "end", "target": "a"})]
    assert check_latency(build(steps)).ok


def test_a_key_recomputed_on_every_read_is_a_stampede_one_after_the_other():
    h = build(get(0.0, 1.6, "a", "k", "k@v0"))
    busy = [call(i, "k", "a", i * 0.07, i * 0.07 + 0.06) for i in range(20)]
    v = check_stampede(h, busy)
    assert v.kinds() == ["stampede"] and v.anomalies[0].data["allowed"] < 20
    per_ttl = [call(i, "k", "a", i * 0.45, i * 0.45 + 0.06) for i in range(4)]
    assert check_stampede(h, per_ttl).ok


def hot_reads(held, refreshes=2):
    """A hot key filled by a (0 to 0.06 s) and recomputed by a every 0.5 s, while b and c read
    it; ``held``: b's and c's reads during the first ``held`` recomputations wait for their end."""
    steps = get(0.0, 0.061, "a", "hot", "hot@v0")
    calls = [call(1, "hot", "a", 0.0, 0.06)]
    for p in "bc":
        steps += get(0.01, 0.062, p, "hot", "hot@v0")                  # waited for the fill
    for i in range(refreshes):
        t = 0.5 * (i + 1)
        steps += get(t, t + 0.061, "a", "hot", "hot@v0")
        calls.append(call(i + 2, "hot", "a", t, t + 0.06))
        for p in "bc":
            steps += get(t + 0.005, t + (0.062 if i < held else 0.006), p, "hot", "hot@v0")
    return build(sorted(steps, key=lambda s: s[0])), calls


def test_readers_waiting_through_refreshes_of_a_hot_key_is_a_key_expired_under_load():
    h, calls = hot_reads(held=2)
    v = check_hot_expiry(h, calls, ["hot"])
    assert v.kinds() == ["hot-key-expired"] and v.anomalies[0].data["waiting"] == ["b", "c"]
    assert check_hot_expiry(h, calls, ["other"]).ok
    assert judge(h, calls, hot=["hot"]).kinds() == ["hot-key-expired"]


def test_readers_served_the_old_value_during_a_refresh_and_waiting_for_the_fill_are_fine():
    h, calls = hot_reads(held=0)
    assert check_hot_expiry(h, calls, ["hot"]).ok
    h, calls = hot_reads(held=1)                 # one stall of every reader is not an expiry
    assert check_hot_expiry(h, calls, ["hot"]).ok


def handover(tries, gap):
    steps = fault(0.0, 2.0, "origin-down", "origin") + \
        get(0.0, 0.5, "a", "k", {"error": "ConnectionError"}, "fail") + \
        get(0.01, 2.1, "b", "k", "k@v0")
    last = 0.45
    calls = [call(i, "k", "a", last - (tries - 1 - i) * 0.05, last - (tries - 1 - i) * 0.05 + 0.001,
                  ok=False) for i in range(tries)]
    calls.append(call(tries, "k", "b", last + gap, last + gap + 0.001, ok=False))
    calls.append(call(tries + 1, "k", "b", 2.0, 2.06))
    return build(sorted(steps, key=lambda s: s[0])), calls


def test_a_caller_that_gives_up_after_its_budget_and_hands_over_at_once_is_valid():
    h, calls = handover(6, 0.012)
    assert check_handover(h, calls, "a", "k", 6).ok
    assert judge(h, calls, handover=("a", "k", 6)).ok


def test_a_caller_giving_up_before_or_after_its_budget_breaks_the_retry_budget():
    for tries in (5, 7):
        h, calls = handover(tries, 0.012)
        v = check_handover(h, calls, "a", "k", 6)
        assert v.kinds() == ["retry-budget"] and v.anomalies[0].data["tries"] == tries


def test_waiters_held_until_the_lease_of_a_caller_that_gave_up_runs_out_are_slow_callers():
    h, calls = handover(6, Bounds().lease_s - 0.01)
    assert check_handover(h, calls, "a", "k", 6).kinds() == ["slow-caller"]


def test_a_caller_failing_on_a_key_it_had_cached_is_a_slow_caller():
    steps = fault(0.0, 2.0, "origin-down", "origin") + get(0.1, 0.101, "d", "hot", "hot@v0") + \
        get(0.2, 0.9, "d", "hot", {"error": "ConnectionError"}, "fail") + \
        get(0.2, 0.9, "a", "cold", {"error": "ConnectionError"}, "fail")
    h = build(sorted(steps, key=lambda s: s[0]))
    assert check_served_while_down(h, "d", "hot").kinds() == ["slow-caller"]
    assert check_served_while_down(h, "a", "hot").ok
    assert check_served_while_down(h, "d", "cold").ok
