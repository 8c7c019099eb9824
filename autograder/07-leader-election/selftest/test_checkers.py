"""The lab-07 checkers (``rig.checkers``) on hand-written histories and charge tables: each
guarantee, held and broken."""
from rig.checkers import (check_answers, check_election, check_fenced, check_liveness,
                          check_terms, check_ticks)

from splitbrain.history import Event, History, call_value

LEASE = {"a": 0.5, "b": 0.5, "c": 0.5}


def build(steps):
    return History.from_events(Event(p, t, f, v, time, fault=p == "nemesis")
                               for time, p, t, f, v in steps)


def camp(t0, t1, p, result, type_="ok"):
    return [(t0, p, "invoke", "campaign", call_value()), (t1, p, type_, "campaign", result)]


def lead(t0, t1, p, result):
    return [(t0, p, "invoke", "leading", call_value()), (t1, p, "ok", "leading", result)]


def tick(t0, t1, p, n, result):
    return [(t0, p, "invoke", "tick", call_value([n])), (t1, p, "ok", "tick", result)]


def fault(t0, t1, name, target, **params):
    return [(t0, "nemesis", "info", name, {"phase": "start", "target": target, **params}),
            (t1, "nemesis", "info", name, {"phase": "end", "target": target})]


def charge(seq, n, term, node):
    return {"seq": seq, "tick": n, "term": term, "node": node}


def frozen_leader(a_answers=True):
    """a leads (term 1), charges tick 1, starts tick 2 and freezes past its lease; b is elected
    (term 2) and charges tick 2; a's tick 2 completes after."""
    return build([*camp(0.00, 0.01, "a", 1), *camp(0.02, 0.03, "b", None),
                  *tick(0.04, 0.05, "a", 1, True),
                  *fault(0.06, 1.20, "pause", "a"),
                  (0.06, "a", "invoke", "tick", call_value([2])),
                  *camp(0.70, 0.71, "b", 2), *tick(0.72, 0.73, "b", 2, True),
                  (1.21, "a", "ok", "tick", a_answers)])


def test_a_frozen_leader_fenced_is_valid():
    h = frozen_leader(False)
    cs = [charge(1, 1, 1, "a"), charge(2, 2, 2, "b")]
    assert check_election(h, cs, LEASE).ok


def test_a_frozen_leaders_late_charge_is_a_duplicate_and_stale():
    h = frozen_leader(True)
    cs = [charge(1, 1, 1, "a"), charge(2, 2, 2, "b"), charge(3, 2, 1, "a")]
    assert check_ticks(h, cs).kinds() == ["duplicate-tick"]
    assert check_fenced(h, cs).kinds() == ["stale-leader-write"]
    v = check_election(h, cs, LEASE)
    assert set(v.kinds()) == {"duplicate-tick", "stale-leader-write"}


def test_a_stale_charge_of_another_tick_is_stale_not_duplicate():
    h = frozen_leader(True)
    cs = [charge(1, 1, 1, "a"), charge(2, 3, 2, "b"), charge(3, 2, 1, "a")]
    assert check_ticks(h, cs).ok
    assert check_fenced(h, cs).kinds() == ["stale-leader-write"]


def test_one_term_granted_twice_is_split_brain():
    h = build([*camp(0.0, 0.01, "a", 1), *camp(0.5, 0.51, "b", 1)])
    assert check_terms(h).kinds() == ["split-brain"]


def test_leading_after_a_later_term_is_split_brain_and_before_it_is_not():
    base = [*camp(0.0, 0.01, "a", 1), *lead(0.2, 0.21, "a", 1), *camp(0.6, 0.61, "b", 2)]
    assert check_terms(build(base)).ok
    assert check_terms(build([*base, *lead(0.7, 0.71, "a", 1)])).kinds() == ["split-brain"]
    assert check_terms(build([*base, *lead(0.7, 0.71, "a", None)])).ok
    assert check_terms(build([*base, *camp(0.7, 0.71, "a", 1)])).kinds() == ["split-brain"]


def test_two_nodes_charging_in_one_term_is_split_brain():
    h = build([*camp(0.0, 0.01, "a", 1)])
    assert check_terms(h, [charge(1, 1, 1, "a"), charge(2, 2, 1, "b")]).kinds() == ["split-brain"]


def test_a_fresh_leaders_lost_tick_is_no_leader():
    h = build([*camp(0.0, 0.01, "a", 1), *tick(0.02, 0.03, "a", 1, True)])
    assert check_liveness(h, [], LEASE).kinds() == ["no-leader"]
    assert check_liveness(h, [charge(1, 1, 1, "a")], LEASE).ok


def test_nobody_elected_once_every_lease_ran_out_is_no_leader():
    steps = [*camp(0.0, 0.01, "a", 1), *tick(0.02, 0.03, "a", 1, True),
             *camp(1.0, 1.01, "b", None), *camp(1.02, 1.03, "c", None),
             *tick(1.04, 1.05, "b", 2, False), *tick(1.06, 1.07, "c", 2, False)]
    cs = [charge(1, 1, 1, "a")]
    assert check_liveness(build(steps), cs, LEASE).kinds() == ["no-leader"]
    # while a's lease may still run, or while a fault is in force, nobody is owed a leader
    early = [*camp(0.0, 0.01, "a", 1), *tick(0.02, 0.03, "a", 1, True),
             *camp(0.3, 0.31, "b", None), *tick(0.32, 0.33, "b", 2, False)]
    assert check_liveness(build(early), cs, LEASE).ok
    held = steps + fault(0.9, 1.1, "partition", "b-redis")
    assert check_liveness(build(held), cs, LEASE).ok


def test_a_killed_leader_excuses_nothing_after_its_lease():
    steps = [*camp(0.0, 0.01, "a", 1), *tick(0.02, 0.03, "a", 1, True),
             (0.05, "nemesis", "info", "kill", {"phase": "start", "target": "a"}),
             (0.05, "nemesis", "info", "kill", {"phase": "end", "target": "a"}),
             *camp(1.0, 1.01, "b", None), *tick(1.04, 1.05, "b", 2, False)]
    assert check_liveness(build(steps), [charge(1, 1, 1, "a")], LEASE).kinds() == ["no-leader"]


def test_leading_after_the_lease_certainly_ran_out_is_split_brain():
    granted = [*camp(0.0, 0.01, "a", 1)]
    assert check_terms(build([*granted, *lead(0.5, 0.51, "a", 1)]), (), LEASE).ok
    late = build([*granted, *lead(0.6, 0.61, "a", 1)])   # 0.01 + 0.5 + margin < 0.6
    assert check_terms(late, (), LEASE).kinds() == ["split-brain"]
    assert check_terms(late).ok                           # no leases: nothing to time it by
    assert check_terms(build([*granted, *lead(0.6, 0.61, "a", None)]), (), LEASE).ok
    renewed = build([*granted, *camp(0.4, 0.41, "a", 1), *lead(0.6, 0.61, "a", 1)])
    assert check_terms(renewed, (), LEASE).ok
    # a renewal whose outcome the grader cannot know may have extended it
    unknown = build([*granted, *camp(0.4, 0.45, "a", None, type_="info"),
                     *lead(0.6, 0.61, "a", 1)])
    assert check_terms(unknown, (), LEASE).ok


def test_tick_answers_true_only_for_its_own_recorded_charge():
    steps = [*camp(0.0, 0.01, "a", 1), *camp(0.02, 0.03, "b", None),
             *tick(0.04, 0.05, "a", 1, True), *tick(0.06, 0.07, "b", 1, False)]
    cs = [charge(1, 1, 1, "a")]
    assert check_answers(build(steps), cs).ok
    lying = [*steps[:-2], *tick(0.06, 0.07, "b", 1, True)]   # b does not lead, says it charged
    assert check_answers(build(lying), cs).kinds() == ["phantom-charge"]
    again = [*steps, *tick(0.08, 0.09, "a", 1, True)]        # a finds tick 1 charged, says True
    assert check_answers(build(again), cs).kinds() == ["phantom-charge"]
    assert check_answers(build([*steps, *tick(0.08, 0.09, "a", 1, False)]), cs).ok
    silent = [*camp(0.0, 0.01, "a", 1), *tick(0.04, 0.05, "a", 1, False)]
    assert check_answers(build(silent), cs).kinds() == ["unreported-charge"]
    none = [*camp(0.0, 0.01, "a", 1), *tick(0.04, 0.05, "a", 1, None)]
    assert check_answers(build(none), cs).kinds() == ["unreported-charge"]
    failed = [*camp(0.0, 0.01, "a", 1), (0.04, "a", "invoke", "tick", call_value([1])),
              (0.05, "a", "info", "tick", {"error": "WorkerDied"})]
    assert check_answers(build(failed), cs).ok               # its outcome is unknown
