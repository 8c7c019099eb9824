"""Lab 05's rate-limit checks (``rig.checkers``) on hand-written decisions and histories."""
from __future__ import annotations

import pytest

from rig.checkers import (
    Decision, check_bounded, check_decision_types, check_decisions, check_envelope,
    check_key_expiry, check_policy, check_rate_limit, check_starvation, decisions_from_history,
    during, outside)
from splitbrain.history import Event, History, call_value

LIMIT, WINDOW = 10, 2.0   # rate 5/s


def d(t: float, result=True, client="c", process="a", width=0.002, ok=True) -> Decision:
    return Decision(process, client, t, None if width is None else t + width, result, ok)


def burst(t: float, n: int, result=True, **kw) -> list[Decision]:
    return [d(t + 0.003 * i, result, **kw) for i in range(n)]


# -- the envelope ------------------------------------------------------------------------------

def test_a_full_burst_then_denials_is_within_the_envelope():
    v = check_envelope(burst(0.0, LIMIT) + burst(0.1, 20, False), LIMIT, WINDOW)
    assert v.valid is True, v.explain()


def test_the_fixed_window_boundary_double_burst_is_over_limit():
    # 10 just before a boundary at t=1.0, 10 just after: 20 admitted within ~0.1 s.
    ds = burst(0.95, LIMIT) + burst(1.01, LIMIT)
    v = check_envelope(ds, LIMIT, WINDOW)
    assert v.valid is False
    [a] = v.anomalies
    assert a.kind == "over-limit" and a.data["admitted"] == 20 and a.data["client"] == "c"
    assert "20 requests admitted" in a.message


def test_a_token_bucket_refill_at_the_rate_is_within_the_envelope():
    # A full bucket of 10, then one admission every 1/rate = 0.2 s for 4 s: exactly the envelope.
    ds = burst(0.0, LIMIT) + [d(0.2 * k) for k in range(1, 21)]
    v = check_envelope(ds, LIMIT, WINDOW)
    assert v.valid is True, v.explain()


def test_a_sliding_log_is_within_the_envelope():
    # 10 at t=0, 10 more exactly one window later, 10 more one window after that.
    ds = burst(0.0, LIMIT) + burst(2.0, LIMIT) + burst(4.0, LIMIT)
    assert check_envelope(ds, LIMIT, WINDOW).valid is True


def test_admitting_at_twice_the_rate_is_over_limit_even_when_spread_out():
    ds = [d(0.1 * k) for k in range(60)]   # 10/s for 6 s against a rate of 5/s
    v = check_envelope(ds, LIMIT, WINDOW)
    assert v.valid is False and v.kinds() == ["over-limit"]


def test_wide_call_intervals_get_the_benefit_of_the_doubt():
    # 14 admissions whose calls each took 1 s: they may have been decided 1 s apart.
    ds = [d(0.0, width=1.0) for _ in range(14)]
    assert check_envelope(ds, LIMIT, WINDOW).valid is True
    # The same 14 answered within 10 ms cannot be excused.
    ds = [d(0.0, width=0.01) for _ in range(14)]
    assert check_envelope(ds, LIMIT, WINDOW).valid is False


def test_slack_absorbs_one_extra_admission_but_not_two():
    assert check_envelope(burst(0, LIMIT + 1), LIMIT, WINDOW).valid is True
    assert check_envelope(burst(0, LIMIT + 2), LIMIT, WINDOW).valid is False


def test_the_sliding_counters_rounding_is_within_the_slack():
    # Cloudflare's counter with 10 at the end of one window, then the next: at 1 % into it the
    # estimate is 10 * 0.99 + 0 < 10, so one more is admitted: 11 within 20 ms.
    ds = burst(1.99, LIMIT) + [d(2.02)]
    assert check_envelope(ds, LIMIT, WINDOW).valid is True


def test_one_too_many_per_window_is_over_the_envelope_after_a_few_windows():
    # A sliding log with an off-by-one (11 per window), hammered: bursts of 11 every window.
    ds = burst(0.0, LIMIT + 1) + burst(2.0, LIMIT + 1) + burst(4.0, LIMIT + 1)
    v = check_envelope(ds, LIMIT, WINDOW)
    assert v.valid is False and v.kinds() == ["over-limit"]
    # The exact log is within it.
    ds = burst(0.0, LIMIT) + burst(2.0, LIMIT) + burst(4.0, LIMIT)
    assert check_envelope(ds, LIMIT, WINDOW).valid is True


def test_clients_are_limited_separately():
    ds = burst(0.0, LIMIT, client="x") + burst(0.0, LIMIT, client="y")
    assert check_envelope(ds, LIMIT, WINDOW).valid is True


def test_unanswered_and_denied_calls_are_not_admissions():
    ds = burst(0.0, LIMIT) + [d(0.05, True, width=None)] * 5 + burst(0.06, 10, False)
    assert check_envelope(ds, LIMIT, WINDOW).valid is True


def test_over_budget_is_unknown_never_valid():
    v = check_envelope([d(i * 10.0) for i in range(20)], LIMIT, WINDOW, budget=10)
    assert v.valid == "unknown"


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="window_s must be a positive number"):
        check_envelope([], LIMIT, 0)


# -- starvation ------------------------------------------------------------------------------

def test_a_limiter_that_denies_everything_starves_the_client():
    v = check_starvation(burst(0.0, 20, False), LIMIT, WINDOW)
    assert v.valid is False and set(v.kinds()) == {"starved"}
    rules = {a.data["rule"]: a for a in v.anomalies}
    assert set(rules) == {"quiet-burst", "rate"}
    assert rules["quiet-burst"].data["owed"] == LIMIT and rules["quiet-burst"].data["admitted"] == 0
    assert rules["rate"].data["admitted"] == 0 and rules["rate"].data["needed"] == 5


def test_a_limiter_that_admits_the_limit_does_not_starve():
    assert check_starvation(burst(0.0, LIMIT) + burst(0.1, 20, False), LIMIT, WINDOW).valid


def test_entitlement_grows_with_time():
    # 8 s of saturating demand: entitled to 10 + 5*8 = 50; a limiter admitting only the first
    # burst of 10 starves the client.
    ds = burst(0.0, LIMIT) + [d(0.1 * k, False) for k in range(1, 81)]
    assert check_starvation(ds, LIMIT, WINDOW).valid is False
    # A sliding log admits 10 every window: 50 over 8 s.
    ds = [d(0.1 * k, (k % 20) < 10) for k in range(0, 81)]
    assert check_starvation(ds, LIMIT, WINDOW).valid is True


def test_a_light_client_is_entitled_to_everything_it_asked_for():
    ds = [d(k * 0.5) for k in range(4)]
    assert check_starvation(ds, LIMIT, WINDOW).valid is True
    ds = [d(k * 0.5, k == 0) for k in range(4)]
    assert check_starvation(ds, LIMIT, WINDOW).valid is False


# the quiet burst: a quiet client may spend its whole limit at once

def test_a_quiet_client_gets_its_whole_limit_at_once():
    assert check_starvation(burst(0.0, LIMIT) + burst(0.05, 10, False), LIMIT, WINDOW).valid
    # one short (a limiter that counts one request too many) is starved ...
    v = check_starvation(burst(0.0, LIMIT - 1) + burst(0.05, 10, False), LIMIT, WINDOW)
    assert v.valid is False
    [a] = [a for a in v.anomalies if a.data["rule"] == "quiet-burst"]
    assert (a.data["owed"], a.data["admitted"]) == (LIMIT, LIMIT - 1)
    assert "quiet client may spend its whole limit" in a.message


def test_each_quiet_gap_of_two_windows_owes_the_limit_again():
    # 10 at once, quiet for two windows, 10 at once again: both bursts are owed in full.
    ok = burst(0.0, LIMIT) + burst(0.1, 3, False) + burst(4.2, LIMIT)
    assert check_starvation(ok, LIMIT, WINDOW).valid is True
    short = burst(0.0, LIMIT) + burst(0.1, 3, False) + burst(4.2, LIMIT - 2) + burst(4.3, 3, False)
    v = check_starvation(short, LIMIT, WINDOW)
    assert [a.data["rule"] for a in v.anomalies] == ["quiet-burst"]
    # a gap of less than two windows is not quiet (the sliding-window counter still remembers)
    assert check_starvation(burst(0.0, LIMIT) + burst(3.5, LIMIT - 2) + burst(3.6, 3, False),
                            LIMIT, WINDOW).valid is True


def test_requests_taken_while_redis_failed_may_have_spent_the_limit():
    # 8 admitted, 2 decided while Redis failed (they may have counted), then 3 refused: owed 8.
    judged = burst(0.0, 8) + burst(0.2, 3, False)
    faulted = [d(0.1, True, process="b"), d(0.11, False, process="b")]
    assert check_starvation(judged, LIMIT, WINDOW, faulted=faulted).valid is True
    # without them, the 3 refusals would be owed admissions
    assert check_starvation(judged, LIMIT, WINDOW).valid is False


# the steady client: below the rate, never refused

def steady(n: int, every: float, refused: set[int] = frozenset(), client="s") -> list[Decision]:
    return [d(k * every, k not in refused, client=client) for k in range(n)]


def test_a_client_steadily_below_the_rate_is_never_refused():
    # one request every 0.45 s: 2.2/s against a rate of 5/s
    assert check_starvation(steady(30, 0.45), LIMIT, WINDOW).valid is True
    v = check_starvation(steady(30, 0.45, {17}), LIMIT, WINDOW)
    assert v.valid is False
    [a] = v.anomalies
    assert a.data["rule"] == "steady" and a.data["rejected"] == 1
    assert "steadily at half the rate" in a.message


def test_a_client_above_half_the_rate_may_be_refused_now_and_then():
    # 4/s is within the limit, but above what every correct design admits without fail
    assert check_starvation(steady(30, 0.25, {17}), LIMIT, WINDOW).valid is True


def test_steadiness_is_judged_on_the_worst_case_timing():
    # pairs of calls 50 ms apart, a pair every 0.9 s: steady when each call answers at once ...
    def pairs(width: float) -> list[Decision]:
        return [d(0.9 * (k // 2) + 0.05 * (k % 2), k != 17, client="s", width=width)
                for k in range(30)]
    assert [a.data["rule"] for a in check_starvation(pairs(0.002), LIMIT, WINDOW).anomalies] == [
        "steady"]
    # ... but when each took half a second, two pairs may have been decided 0.45 s apart: four
    # requests in 0.45 s is more than a quarter of the limit plus half the rate allows, so a
    # refusal among them is no anomaly
    assert check_starvation(pairs(0.5), LIMIT, WINDOW).valid is True


# about the rate, over a long run

def test_a_limiter_that_counts_its_refusals_starves_a_busy_client():
    # a client asking every 20 ms for 4 s gets its first 10 and nothing after
    ds = [d(0.02 * k, k < LIMIT) for k in range(200)]
    v = check_starvation(ds, LIMIT, WINDOW)
    assert "rate" in [a.data["rule"] for a in v.anomalies]
    # a sliding log gives it 10 every window
    ds = [d(0.02 * k, (k % 100) < LIMIT) for k in range(200)]
    assert check_starvation(ds, LIMIT, WINDOW).valid is True


# -- bound, types, policy, keys ----------------------------------------------------------------

def test_hung_and_slow_decisions_are_reported():
    ds = [d(0.0, width=0.2), d(1.0, width=2.5), d(2.0, width=None)]
    v = check_bounded(ds, 1.0)
    assert [a.kind for a in v.anomalies] == ["hung-decision", "hung-decision"]
    assert "took 2.50s" in v.anomalies[0].message
    assert "never answered" in v.anomalies[1].message


def test_decisions_must_be_booleans():
    ds = [d(0.0, True), d(0.1, 1), d(0.2, "RemoteError: ConnectionError", ok=False)]
    v = check_decision_types(ds)
    assert [a.data["result"] for a in v.anomalies] == ["1", "'RemoteError: ConnectionError'"]


@pytest.mark.parametrize("policy,result,valid", [
    ("open", True, True), ("open", False, False), ("closed", False, True), ("closed", True, False)])
def test_policy_is_kept_during_the_fault(policy, result, valid):
    assert check_policy([d(0.0, result), d(0.5, result)], policy).valid is valid


def test_an_error_is_not_a_policy_and_nor_is_an_undeclared_one():
    v = check_policy([d(0.0, "ConnectionError", ok=False)], "closed")
    assert v.kinds() == ["policy-broken"] and "raised" in v.anomalies[0].message
    v = check_policy([d(0.0, True)], None)
    assert v.kinds() == ["policy-broken"] and "FAILURE_POLICY" in v.anomalies[0].message


def test_keys_must_expire():
    assert check_key_expiry({"p:a": 1500, "p:b": -2}, 20_000).valid is True
    v = check_key_expiry({"p:a": -1, "p:b": 10**9}, 20_000)
    assert [a.data["key"] for a in v.anomalies] == ["p:a", "p:b"]
    assert v.kinds() == ["unbounded-keys"]


def test_decisions_must_be_booleans_in_time():
    ds = [d(0.0, True), d(0.1, 1), d(1.0, width=2.5), d(2.0, width=None)]
    v = check_decisions(ds, 1.0)
    assert sorted(a.kind for a in v.anomalies) == ["bad-decision", "hung-decision",
                                                   "hung-decision"]
    assert check_decisions([d(0.0, True), d(0.1, False)], 1.0).valid is True


def test_combined_check_is_invalid_when_any_part_is():
    v = check_rate_limit(burst(0.0, 30), LIMIT, WINDOW, bound_s=1.0)
    assert v.valid is False and v.kinds() == ["over-limit"]
    v = check_rate_limit(burst(0.0, LIMIT) + burst(0.1, 5, False), LIMIT, WINDOW, bound_s=1.0)
    assert v.valid is True, v.explain()


# -- from a history ------------------------------------------------------------------------------

def _history() -> History:
    h = History()
    h.events.extend([
        Event("a", "invoke", "allow", call_value([], {"client": "c"}), 0.00, 0),
        Event("a", "ok", "allow", True, 0.01, 1),
        Event("nemesis", "info", "partition", {"phase": "start", "target": "redis"}, 0.02, 2, True),
        Event("b", "invoke", "allow", call_value(["c"]), 0.03, 3),
        Event("b", "ok", "allow", False, 0.20, 4),
        Event("a", "invoke", "allow", call_value(["c"]), 0.05, 5),
        Event("a", "info", "allow", {"error": "CallTimeout", "message": "a.allow()"}, 3.05, 6),
        Event("nemesis", "info", "partition", {"phase": "end", "target": "redis"}, 3.10, 7, True),
        Event("b", "invoke", "allow", call_value(["c"]), 3.20, 8),
        Event("b", "fail", "allow", {"error": "ValueError", "message": "boom"}, 3.30, 9),
        Event("a", "invoke", "get", call_value(["x"]), 3.40, 10),
        Event("b", "invoke", "allow", call_value(["c"]), 3.50, 11),
        Event("b", "info", "allow", {"error": "ConnectionError", "message": "refused"}, 3.51, 12),
    ])
    return h


def test_decisions_are_read_from_a_history_by_position_or_keyword():
    ds = decisions_from_history(_history())
    assert [(x.process, x.client, x.result, x.ok, x.index) for x in ds] == [
        ("a", "c", True, True, 1), ("b", "c", False, True, 4),
        ("a", "c", "CallTimeout: a.allow()", False, 6), ("b", "c", "ValueError: boom", False, 9),
        ("b", "c", "ConnectionError: refused", False, 12)]
    assert ds[2].end is None and ds[2].latency is None
    assert ds[4].end == 3.51   # an error is an answer, not a hang


def test_a_call_without_a_client_counts_for_the_empty_client():
    h = History()
    inv = h.invoke("a", "allow", call_value())
    h.complete(inv, "ok", True)
    assert [x.client for x in decisions_from_history(h)] == [""]


def test_fault_windows_split_decisions_into_during_and_outside():
    h = _history()
    ws = h.fault_windows()
    assert [(w.name, w.start, w.end) for w in ws] == [("partition", 0.02, 3.10)]
    ds = decisions_from_history(h)
    assert [x.index for x in outside(ds, ws)] == [1, 9, 12]
    assert [x.index for x in during(ds, ws)] == [4]
    # A fault never healed lasts for ever: the call that never answered falls inside it too.
    h.events.pop(7)
    ws = h.fault_windows()
    assert [(w.start, w.end) for w in ws] == [(0.02, None)]
    ds = decisions_from_history(h)
    assert [x.index for x in outside(ds, ws)] == [1]
    assert [x.index for x in during(ds, ws)] == [4, 6, 9, 12]
    assert h.fault_windows(names=["latency"]) == []
