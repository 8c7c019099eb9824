"""The generic rate checker (``splitbrain.checkers.ratelimit``) on hand-written decisions and
histories. (Lab 05's own checks, the envelope and the rest, are tested with its rig, in
autograder/05-rate-limiting/selftest/.)"""
from __future__ import annotations

from dataclasses import dataclass

from splitbrain.checkers.ratelimit import check_rate, decisions_from_history
from splitbrain.history import History, call_value


def _history(*calls) -> History:
    """calls: (process, args, kwargs, completion type, result), one after the other."""
    h = History()
    for process, args, kwargs, type_, result in calls:
        inv = h.invoke(process, "allow", call_value(args, kwargs))
        if type_ is not None:
            h.complete(inv, type_, result)
    return h


def test_the_client_is_the_first_argument_or_the_client_keyword_else_the_process():
    h = _history(("g1", ["alice"], {}, "ok", True), ("g2", [], {"client": "bob"}, "ok", True),
                 ("g3", [], {}, "ok", False))
    assert [(d["client"], d["allowed"]) for d in decisions_from_history(h)] == [
        ("alice", True), ("bob", True), ("g3", False)]


def test_only_answered_calls_are_decisions_and_they_point_at_their_completion():
    h = _history(("g1", ["c"], {}, "ok", True),
                 ("g1", ["c"], {}, "fail", {"error": "ValueError", "message": "boom"}),
                 ("g2", ["c"], {}, "info", {"error": "CallTimeout", "message": "hung"}),
                 ("g2", ["c"], {}, None, None))
    ds = decisions_from_history(h)
    assert [(d["event"], d["time"]) for d in ds] == [(1, h.events[1].time)]
    assert [d["event"] for d in decisions_from_history(h, f="acquire")] == []


def test_each_client_has_its_own_limit():
    ds = [{"client": c, "time": t, "allowed": True} for c in ("x", "y") for t in (0.0, 0.1)]
    v = check_rate(ds, limit=2, window_s=1.0)
    assert v.valid is True and v.stats["clients"] == 2 and v.stats["admitted"] == 4


def test_records_may_be_objects_and_an_over_limit_names_its_events():
    @dataclass
    class Rec:
        time: float
        allowed: bool
        event: int
        client: str = "c"

    ds = [Rec(0.0, True, 1), Rec(0.2, True, 3), Rec(0.4, True, 5), Rec(5.0, True, 7)]
    v = check_rate(ds, limit=2, window_s=1.0)
    [a] = v.anomalies
    assert a.kind == "over-limit" and a.events == (1, 3, 5) and a.data["count"] == 3


def test_two_separate_bursts_are_two_anomalies():
    ds = [{"client": "c", "time": t, "allowed": True} for t in (0.0, 0.1, 0.2, 3.0, 3.1, 3.2)]
    v = check_rate(ds, limit=2, window_s=1.0)
    assert [a.data["start"] for a in v.anomalies] == [0.0, 3.0]
