"""The generic checkers on hand-written histories: each proven on valid AND invalid cases."""
from __future__ import annotations

import pytest

from splitbrain.checkers.delivery import check_delivery, check_order, ids_from_history
from splitbrain.checkers.linearizable import check_register
from splitbrain.checkers.mutex import check_fencing, check_mutual_exclusion
from splitbrain.checkers.ratelimit import check_rate, decisions_from_history
from splitbrain.checkers.saga import check_sagas
from splitbrain.checkers.sessions import check_sessions
from splitbrain.history import Event, History, call_value


def _call(v):
    """An invoke's value as the call it records: None = no arguments, a dict = keyword
    arguments, a list = positional arguments, anything else = the one positional argument."""
    if v is None:
        return call_value()
    if isinstance(v, dict):
        return call_value(kwargs=v)
    return call_value(v if isinstance(v, list) else [v])


def hist(*rows) -> History:
    """rows: (process, type, f, value) in order; time = position."""
    return History.from_events(Event(p, t, f, _call(v) if t == "invoke" else v, float(i))
                               for i, (p, t, f, v) in enumerate(rows))


# -- fencing / mutual exclusion --------------------------------------------------------------------
def test_fencing_valid_and_stale_write():
    ok = [{"token": 1, "accepted": True}, {"token": 2, "accepted": True},
          {"token": 1, "accepted": False}, {"token": 3, "accepted": True}]
    assert check_fencing(ok).valid is True
    bad = [{"token": 1, "accepted": True, "process": "a", "event": 3},
           {"token": 2, "accepted": True, "process": "b", "event": 7},
           {"token": 1, "accepted": True, "process": "a", "event": 9}]
    v = check_fencing(bad)
    assert v.valid is False and v.kinds() == ["stale-write"]
    assert v.anomalies[0].events == (9,) and v.anomalies[0].data["context"] == [7]
    assert "token 1 after b had written with token 2" in v.anomalies[0].message
    with pytest.raises(ValueError, match="token"):
        check_fencing([{"accepted": True}])


def test_mutual_exclusion_valid_sequence():
    h = hist(("a", "invoke", "acquire", None), ("a", "ok", "acquire", 1),
             ("a", "invoke", "release", None), ("a", "ok", "release", True),
             ("b", "invoke", "acquire", None), ("b", "ok", "acquire", 2))
    assert check_mutual_exclusion(h).valid is True


def test_mutual_exclusion_overlap_and_ttl_expiry():
    h = hist(("a", "invoke", "acquire", None), ("a", "ok", "acquire", 1),
             ("b", "invoke", "acquire", None), ("b", "ok", "acquire", 2))
    v = check_mutual_exclusion(h)
    assert v.kinds() == ["overlapping-holders"] and v.anomalies[0].events == (2, 3)
    assert v.anomalies[0].data["context"] == [0, 1]
    # with a 1.5 s lease, a's lease (invoked at t=0) ended before b asked at t=2: no overlap
    assert check_mutual_exclusion(h, ttl_s=1.5).valid is True
    assert check_mutual_exclusion(h, ttl_s=5).valid is False
    failed = hist(("a", "invoke", "acquire", None), ("a", "ok", "acquire", 1),
                  ("b", "invoke", "acquire", None), ("b", "ok", "acquire", None))
    assert check_mutual_exclusion(failed).valid is True


# -- delivery and order ----------------------------------------------------------------------------
def test_delivery_valid_with_duplicates_under_at_least_once():
    v = check_delivery(["e1", "e2"], ["e1", "e2", "e2"], maybe=["e3"])
    assert v.valid is True and v.stats["duplicates"] == 1


def test_delivery_lost_phantom_duplicate():
    v = check_delivery(["e1", "e2"], ["e2", "e9", "e2"], exactly_once=True,
                       events={"e1": [4]})
    assert v.kinds() == ["duplicate-event", "lost-event", "phantom-event"]
    lost = next(a for a in v.anomalies if a.kind == "lost-event")
    assert lost.events == (4,) and "'e1'" in lost.message


def test_ids_from_history_classifies_outcomes():
    h = hist(("p", "invoke", "send", "e1"), ("p", "ok", "send", None),
             ("p", "invoke", "send", {"id": "e2"}), ("p", "info", "send", "timeout"),
             ("p", "invoke", "send", "e3"), ("p", "fail", "send", None))
    committed, maybe, events = ids_from_history(h)
    assert committed == ["e1"] and maybe == ["e2"] and events["e3"] == (4, 5)
    assert check_delivery(committed, ["e1", "e2"], maybe).valid is True
    assert check_delivery(committed, ["e1", "e3"], maybe).kinds() == ["phantom-event"]


def test_order_valid_with_redelivery_and_out_of_order():
    good = [{"key": "o1", "seq": 1}, {"key": "o2", "seq": 1}, {"key": "o1", "seq": 2},
            {"key": "o1", "seq": 1}, {"key": "o1", "seq": 3}]
    assert check_order(good).valid is True
    bad = [{"key": "o1", "seq": 2, "event": 5}, {"key": "o1", "seq": 1, "event": 8}]
    v = check_order(bad)
    assert v.kinds() == ["out-of-order"] and v.anomalies[0].events == (8,)
    assert check_order([("k", 2), ("k", 1)], key=lambda r: r[0], seq=lambda r: r[1]).valid is False


# -- rate limits -----------------------------------------------------------------------------------
def _decisions(times_allowed, client="c"):
    return [{"client": client, "time": t, "allowed": a} for t, a in times_allowed]


def test_rate_valid_sliding_log():
    ds = _decisions([(0.0, True), (0.1, True), (0.2, False), (1.0, True), (1.1, True)])
    assert check_rate(ds, limit=2, window_s=1.0).valid is True


def test_rate_over_limit_across_a_fixed_window_boundary():
    # a fixed window [0,1) allowed 2 at 0.9 and 0.95, the next window 2 more at 1.0 and 1.05
    ds = _decisions([(0.9, True), (0.95, True), (1.0, True), (1.05, True)])
    v = check_rate(ds, limit=2, window_s=1.0)
    assert v.kinds() == ["over-limit"] and len(v.anomalies) == 1
    assert v.anomalies[0].data["count"] == 4
    assert check_rate(_decisions([(0.0, True), (0.1, True), (0.95, True)]), 2, 1.0,
                      slack_s=0.1).valid is True


def test_rate_starved_and_bad_input():
    v = check_rate(_decisions([(0.0, True), (0.5, False)]), limit=2, window_s=1.0)
    assert v.kinds() == ["starved"]
    with pytest.raises(ValueError, match="limit"):
        check_rate([], limit=0, window_s=1)
    with pytest.raises(ValueError, match="slack_s"):
        check_rate([], limit=1, window_s=1, slack_s=1)


def test_rate_decisions_from_history():
    h = hist(("g1", "invoke", "allow", {"client": "alice"}), ("g1", "ok", "allow", True),
             ("g2", "invoke", "allow", {"client": "alice"}), ("g2", "ok", "allow", {"allowed": True}),
             ("g1", "invoke", "allow", {"client": "alice"}), ("g1", "ok", "allow", False))
    ds = decisions_from_history(h)
    assert [d["allowed"] for d in ds] == [True, True, False]
    assert check_rate(ds, limit=1, window_s=10).kinds() == ["over-limit"]


# -- sagas -----------------------------------------------------------------------------------------
STEPS = ["reserve", "charge", "ship"]


def _fx(saga, *pairs):
    return [{"saga": saga, "step": s, "action": a} for s, a in pairs]


def test_sagas_done_and_compensated_are_valid():
    fx = _fx("s1", ("reserve", "do"), ("charge", "do"), ("ship", "do")) + \
        _fx("s2", ("reserve", "do"), ("charge", "do"), ("charge", "undo"), ("reserve", "undo"))
    v = check_sagas(fx, STEPS, {"alice": 10, "shop": 0}, {"alice": 5, "shop": 5}, sagas=["s3"])
    assert v.valid is True and v.stats == {"sagas": 3, "done": 1, "compensated": 2, "dangling": 0}


def test_sagas_dangling_double_charge_double_refund_not_conserved():
    fx = _fx("s1", ("reserve", "do"), ("charge", "do")) + \
        _fx("s2", ("reserve", "do"), ("charge", "do"), ("charge", "do"), ("ship", "do")) + \
        _fx("s3", ("reserve", "do"), ("reserve", "undo"), ("reserve", "undo"))
    v = check_sagas(fx, STEPS, {"a": 10}, {"a": 7})
    assert v.kinds() == ["dangling-saga", "double-charge", "double-refund", "not-conserved"]
    dangling = next(a for a in v.anomalies if a.kind == "dangling-saga")
    assert dangling.data["saga"] == "s1" and dangling.data["did"] == ["reserve", "charge"]
    with pytest.raises(ValueError, match="not in steps"):
        check_sagas(_fx("s", ("teleport", "do")), STEPS)


# -- sessions --------------------------------------------------------------------------------------
def test_sessions_valid():
    h = hist(("s1", "invoke", "write", {"key": "k", "version": 1}), ("s1", "ok", "write", None),
             ("s1", "invoke", "read", {"key": "k"}), ("s1", "ok", "read", 1),
             ("s2", "invoke", "read", {"key": "k"}), ("s2", "ok", "read", None),
             ("s1", "invoke", "read", {"key": "k"}), ("s1", "ok", "read", {"version": 2}))
    assert check_sessions(h).valid is True


def test_sessions_stale_and_non_monotonic_reads():
    h = hist(("s1", "invoke", "write", {"key": "k", "version": 3}), ("s1", "ok", "write", None),
             ("s1", "invoke", "read", {"key": "k"}), ("s1", "ok", "read", 2),
             ("s2", "invoke", "read", {"key": "k"}), ("s2", "ok", "read", 3),
             ("s2", "invoke", "read", {"key": "k"}), ("s2", "ok", "read", None))
    v = check_sessions(h)
    assert v.kinds() == ["non-monotonic-read", "stale-read"]
    stale = next(a for a in v.anomalies if a.kind == "stale-read")
    assert stale.events == (0, 1, 2, 3)
    # a write with unknown outcome promises nothing
    h2 = hist(("s1", "invoke", "write", {"key": "k", "version": 3}), ("s1", "info", "write", None),
              ("s1", "invoke", "read", {"key": "k"}), ("s1", "ok", "read", 2))
    assert check_sessions(h2).valid is True


# -- linearizable register -------------------------------------------------------------------------
def test_register_valid_with_concurrency_and_unknown_write():
    h = hist(("a", "invoke", "write", 1), ("b", "invoke", "read", None),
             ("b", "ok", "read", 1), ("a", "ok", "write", None),
             ("c", "invoke", "write", 2), ("c", "info", "write", None),
             ("b", "invoke", "read", None), ("b", "ok", "read", 2),
             ("a", "invoke", "cas", [2, 3]), ("a", "ok", "cas", True),
             ("b", "invoke", "cas", [2, 4]), ("b", "ok", "cas", False),
             ("b", "invoke", "read", None), ("b", "ok", "read", 3))
    assert check_register(h).valid is True


def test_register_stale_read_is_not_linearizable():
    h = hist(("a", "invoke", "write", 1), ("a", "ok", "write", None),
             ("a", "invoke", "write", 2), ("a", "ok", "write", None),
             ("b", "invoke", "read", None), ("b", "ok", "read", 1))
    v = check_register(h)
    assert v.valid is False and v.kinds() == ["not-linearizable"]
    assert 4 in v.anomalies[0].events and "b:read(1)" in v.anomalies[0].message


def test_register_failed_write_never_happened():
    h = hist(("a", "invoke", "write", 5), ("a", "fail", "write", None),
             ("b", "invoke", "read", None), ("b", "ok", "read", 5))
    assert check_register(h, initial=0).valid is False
    h2 = hist(("a", "invoke", "write", 5), ("a", "info", "write", None),
              ("b", "invoke", "read", None), ("b", "ok", "read", 5))
    assert check_register(h2, initial=0).valid is True


def test_register_out_of_budget_is_unknown_never_valid():
    rows = [(f"p{i}", "invoke", "write", i) for i in range(12)]
    rows += [(f"p{i}", "ok", "write", None) for i in range(12)]
    rows += [("r", "invoke", "read", None), ("r", "ok", "read", 99)]
    v = check_register(hist(*rows), max_states=50)
    assert v.valid == "unknown" and not v.ok


def test_register_per_key():
    h = hist(("a", "invoke", "write", {"key": "x", "value": 1}), ("a", "ok", "write", None),
             ("a", "invoke", "write", {"key": "y", "value": 2}), ("a", "ok", "write", None),
             ("b", "invoke", "read", {"key": "x"}), ("b", "ok", "read", 1))
    assert check_register(h, key="x").valid is True
    assert check_register(h, key="y").valid is True
    bad = hist(("a", "invoke", "write", {"key": "x", "value": 1}), ("a", "ok", "write", None),
               ("b", "invoke", "read", {"key": "x"}), ("b", "ok", "read", 2))
    assert check_register(bad, key="x").valid is False
