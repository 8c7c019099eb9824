"""Lab 10's checkers on hand-written histories and ground truths."""
from rig.checkers import Produced, check_applied_once, check_steps, judge

from splitbrain.history import Event, History

RECORDS = [Produced(0, 0), Produced(0, 1), Produced(0, 2), Produced(1, 0)]


def test_every_record_applied_once_is_valid():
    effects = [(0, 0, "a"), (0, 1, "a"), (0, 2, "b"), (1, 0, "b")]
    assert check_applied_once(RECORDS, effects, {0: 3, 1: 1}).valid is True


def test_a_record_committed_past_and_never_applied_is_lost():
    v = check_applied_once(RECORDS, [(0, 0, "a"), (1, 0, "a")], {0: 3})
    assert v.valid is False
    assert [a.kind for a in v.anomalies] == ["lost-record", "lost-record"]
    assert {a.data["offset"] for a in v.anomalies} == {1, 2}


def test_a_record_never_applied_and_not_committed_is_a_stuck_partition():
    v = check_applied_once(RECORDS, [(0, 0, "a"), (0, 1, "a"), (0, 2, "a")], {0: 3})
    assert v.kinds() == ["stuck-partition"]
    assert v.anomalies[0].data == {"partition": 1, "offset": 0}


def test_a_record_applied_twice_is_a_duplicate_effect_naming_both_members():
    effects = [(0, 0, "a"), (0, 1, "a"), (0, 1, "b"), (0, 2, "b"), (1, 0, "b")]
    v = check_applied_once(RECORDS, effects, {})
    assert v.kinds() == ["duplicate-effect"]
    assert v.anomalies[0].data["members"] == ["a", "b"]


def test_effects_of_records_the_grader_did_not_produce_are_ignored():
    effects = [(0, 0, "a"), (0, 1, "a"), (0, 2, "a"), (1, 0, "a"), (1, 7, "a")]
    assert check_applied_once(RECORDS, effects).valid is True


def history(*steps) -> History:
    """``(time, process, type, f, value)`` lines; the nemesis's are faults."""
    return History.from_events(Event(p, t, f, v, time, fault=p == "nemesis")
                               for time, p, t, f, v in steps)


def step(member, start, end):
    return [(start, member, "invoke", "step", {"args": [], "kwargs": {}}),
            (end, member, "ok", "step", 3)]


def fault(name, target, start, end, **params):
    return [(start, "nemesis", "info", name, {"phase": "start", "target": target, **params}),
            (end, "nemesis", "info", name, {"phase": "end", "target": target, **params})]


def test_a_step_longer_than_max_poll_is_a_rebalance_storm():
    v = check_steps(history(*step("a", 0.0, 0.5), *step("b", 0.6, 3.1)), 2.0)
    assert v.kinds() == ["rebalance-storm"]
    assert v.anomalies[0].data["member"] == "b"


def test_a_step_held_by_a_pause_or_a_closed_gate_is_not_a_storm():
    h = history(*fault("pause", "a", 0.1, 2.9), *step("b", 0.0, 3.0),
                *fault("slow-record", "feed", 3.6, 5.0, partition=0), *step("a", 3.5, 6.0))
    assert check_steps(h, 2.0).valid is True


def test_a_long_step_outside_every_held_window_is_still_a_storm():
    h = history(*fault("pause", "a", 0.1, 0.2), *step("b", 0.5, 3.0))
    assert check_steps(h, 2.0).kinds() == ["rebalance-storm"]


def test_a_slow_record_with_a_cost_does_not_excuse_a_long_step():
    h = history(*fault("slow-record", "feed", 0.1, 0.1, partition=0, ms=250, count=10),
                *step("a", 0.0, 2.6))
    assert check_steps(h, 2.0).kinds() == ["rebalance-storm"]


def test_judge_merges_both_checkers():
    v = judge(RECORDS, [(0, 0, "a")], {0: 1}, history(*step("a", 0.0, 2.5)), 2.0)
    assert v.valid is False
    assert set(v.kinds()) == {"rebalance-storm", "stuck-partition"}
