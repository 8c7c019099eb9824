"""Lab 02's guarantees (lab.toml ``[[guarantees]]``), each checker on hand-written topics and
histories: the valid case and every anomaly it reports."""
from __future__ import annotations

import importlib

from rig.checkers import (OrderTruth, acknowledged, attempted, check_available, check_counts,
                          check_event_ids, check_no_lost_event, check_no_phantom_event,
                          check_order, check_prompt, check_relay_bound, duplicate_excuse,
                          judge_outbox, relay_runs)
from splitbrain.history import History, call_value
from splitbrain.lab import find_lab


def ev(oid, typ="OrderPlaced", eid=None, customer="c1", amount=10):
    return {"event_id": eid or f"{oid}-{typ}", "type": typ, "order_id": oid,
            "customer": customer, "amount": amount}


def rec(p, off, value, key=None):
    return {"partition": p, "offset": off, "key": key if key is not None else value["order_id"],
            "value": value, "raw": "", "error": ""}


ORDERS = {"o1": OrderTruth("c1", 10, "placed"), "o2": OrderTruth("c1", 10, "cancelled")}
GOOD = [rec(0, 0, ev("o1")), rec(1, 0, ev("o2")), rec(1, 1, ev("o2", "OrderCancelled"))]


def call(h, process, f, args, at, end, result=None, type_="ok"):
    h.append(process, "invoke", f, call_value(args), at=at)
    h.append(process, type_, f, result, at=end)


def fault(h, name, target, start, end):
    h.append("nemesis", "info", name, {"phase": "start", "target": target}, fault=True, at=start)
    h.append("nemesis", "info", name, {"phase": "end", "target": target}, fault=True, at=end)


# -- the lab's own list ------------------------------------------------------------------------
def test_every_guarantee_names_a_checker_of_the_rig_and_every_taught_anomaly_has_one():
    lab = find_lab("02-transactional-outbox")
    kinds = set()
    for g in lab.guarantees:
        module, fn = g.checker.split(":")
        assert callable(getattr(importlib.import_module(module), fn)), g.checker
        kinds.update(g.anomalies)
    assert set(lab.taught_anomalies) <= kinds
    assert {g.kind for g in lab.guarantees} == {"safety", "order", "liveness", "bound"}


# -- no-lost-event -----------------------------------------------------------------------------
def test_no_lost_event_holds_when_every_change_is_on_the_topic():
    assert check_no_lost_event(GOOD, ORDERS, acknowledged={"o1": "placed"}).valid is True


def test_a_committed_change_without_event_is_lost_and_an_incomplete_read_is_unknown():
    v = check_no_lost_event(GOOD[:2], ORDERS)
    assert v.kinds() == ["lost-event"] and "OrderCancelled" in v.anomalies[0].message
    assert check_no_lost_event(GOOD[:2], ORDERS, complete=False).valid == "unknown"


def test_an_acknowledged_change_the_database_lacks_is_a_lost_order():
    v = check_no_lost_event(GOOD, ORDERS, acknowledged={"o9": "placed", "o1": "cancelled"})
    assert v.kinds() == ["lost-order"] and len(v.anomalies) == 2


def test_acknowledged_and_attempted_come_from_the_history():
    h = History()
    call(h, "app", "place_order", ["o1", "c1", 10], 0.0, 0.1)
    call(h, "app", "place_order", ["o2", "c1", 0], 0.2, 0.3, {"error": "CheckViolation"}, "fail")
    call(h, "app", "cancel_order", ["o1"], 0.4, 0.5)
    call(h, "app", "place_order", ["o3", "c1", 5], 0.6, 0.7, {"error": "WorkerDied"}, "info")
    assert acknowledged(h) == {"o1": "cancelled"}
    assert attempted(h) == {"o1", "o2", "o3"}


# -- no-phantom-event --------------------------------------------------------------------------
def test_no_phantom_event_holds_for_committed_changes():
    assert check_no_phantom_event(GOOD, ORDERS).valid is True


def test_phantoms_malformed_records_and_events_that_differ_from_the_row():
    recs = GOOD + [rec(2, 0, ev("o9")), rec(0, 1, ev("o1", "OrderCancelled")),
                   {"partition": 0, "offset": 2, "key": None, "value": None, "raw": "x",
                    "error": "not JSON"}]
    v = check_no_phantom_event(recs, ORDERS, attempted=["o9"])
    assert v.kinds() == ["malformed-event", "phantom-event"]
    assert any("rolled back" in a.message for a in v.anomalies)
    v = check_no_phantom_event([rec(0, 0, ev("o1", amount=99))], ORDERS)
    assert v.kinds() == ["phantom-event"] and "amount=99" in v.anomalies[0].message


# -- per-order-order ---------------------------------------------------------------------------
def test_order_holds_for_keyed_events_in_commit_order():
    assert check_order(GOOD).valid is True


def test_cancel_before_place_two_partitions_and_a_wrong_key_break_the_order():
    assert check_order([rec(1, 0, ev("o2", "OrderCancelled")), rec(1, 1, ev("o2"))]).kinds() \
        == ["out-of-order"]
    assert check_order([rec(1, 0, ev("o2")), rec(2, 0, ev("o2", "OrderCancelled"))]).kinds() \
        == ["out-of-order"]
    assert check_order([rec(0, 0, ev("o1"), key="c1")]).kinds() == ["wrong-key"]


def test_a_late_copy_of_the_placement_keeps_the_first_seen_order():
    assert check_order(GOOD + [rec(1, 2, ev("o2"))]).valid is True


# -- stable-event-id ---------------------------------------------------------------------------
def test_copies_are_at_least_once_only_when_a_publish_attempt_failed():
    dup = GOOD + [rec(0, 1, ev("o1"))]
    assert check_event_ids(dup, excuse="relay died").valid is True
    v = check_event_ids(dup, excuse=None)
    assert v.kinds() == ["duplicate-event"] and "no publish attempt failed" in \
        v.anomalies[0].message


def test_one_change_under_two_ids_is_never_excused():
    v = check_event_ids(GOOD + [rec(0, 1, ev("o1", eid="fresh"))], excuse="relay died")
    assert v.kinds() == ["duplicate-event"] and "2 different event ids" in v.anomalies[0].message


def test_what_excuses_a_copy_is_read_from_the_relay_runs():
    quick = History()
    call(quick, "relay", "run_once", [500, 2.0], 0.0, 0.1, 3)
    assert duplicate_excuse(quick) is None
    died = History()
    call(died, "relay", "run_once", [500, 2.0], 0.0, 0.1, {"error": "WorkerDied"}, "info")
    assert "did not return normally" in duplicate_excuse(died)
    waited = History()
    call(waited, "relay", "run_once", [500, 1.0], 0.0, 1.0, 0)
    assert "whole timeout_s" in duplicate_excuse(waited)


def test_a_stall_of_the_relays_own_database_link_explains_no_copy():
    h = History()
    call(h, "relay-a", "run_once", [2, 5.0], 0.0, 6.0, 2)
    fault(h, "stall", "relay-a-pg", 0.01, 5.9)
    assert duplicate_excuse(h, {"relay-a": "relay-a-pg"}) is None
    assert duplicate_excuse(h) is not None          # without knowing its link: the time counts
    [run] = relay_runs(h, {"relay-a": "relay-a-pg"})
    assert run.net_s < 0.2


# -- relay-returns-in-time ---------------------------------------------------------------------
def test_runs_within_timeout_plus_slack_keep_the_bound():
    h = History()
    call(h, "relay", "run_once", [500, 1.0], 0.0, 1.2, 0)
    call(h, "relay", "run_once", [500, 1.0], 2.0, 5.9, 0)        # 3.9 s: inside 1 + 3
    assert check_relay_bound(h).valid is True


def test_a_run_that_waits_for_the_broker_without_a_timeout_is_slow():
    h = History()
    call(h, "relay", "run_once", [500, 1.0], 0.0, 4.6, {"error": "WorkerDied"}, "info")
    v = check_relay_bound(h)
    assert v.kinds() == ["slow-relay"] and "was still running" in v.anomalies[0].message


def test_waiting_behind_another_relays_lock_is_slow_but_its_own_stalled_link_is_not():
    h = History()
    fault(h, "stall", "relay-a-pg", 0.0, 8.0)
    call(h, "relay-a", "run_once", [2, 5.0], 0.1, 8.1, 2)        # held by its own link
    call(h, "relay-b", "run_once", [500, 2.0], 0.5, 7.9, 3)      # behind relay-a's locks
    fault(h, "pause", "relay-c", 0.0, 8.0)
    call(h, "relay-c", "run_once", [500, 1.0], 0.1, 8.2, 0)      # paused itself
    v = check_relay_bound(h, {"relay-a": "relay-a-pg", "relay-b": "relay-b-pg"})
    assert v.kinds() == ["slow-relay"] and [a.data["relay"] for a in v.anomalies] == ["relay-b"]


# -- relay-counts-truly -------------------------------------------------------------------------
def test_counts_that_the_topic_holds_are_true_and_a_run_that_gave_up_may_count_less():
    h = History()
    call(h, "relay-a", "run_once", [500, 1.0], 0.0, 0.2, 2)
    call(h, "relay-b", "run_once", [500, 1.0], 0.0, 0.2, 0)
    call(h, "relay-a", "run_once", [500, 1.0], 0.3, 1.4, 0)      # its wait ran out: a copy landed
    call(h, "relay-a", "run_once", [500, 1.0], 1.5, 1.6, {"error": "WorkerDied"}, "info")
    assert check_counts(GOOD, h).valid is True
    assert check_counts(GOOD[:2], h).valid is True


def test_a_count_that_is_not_an_int_or_that_the_topic_lacks_is_miscounted():
    for bad in (None, True, -1, "2", 2.0):
        h = History()
        call(h, "relay", "run_once", [500, 1.0], 0.0, 0.2, bad)
        v = check_counts(GOOD, h)
        assert v.kinds() == ["miscounted-run"] and repr(bad) in v.anomalies[0].message, bad
    h = History()
    call(h, "relay", "run_once", [500, 1.0], 0.0, 0.2, 3)
    call(h, "relay", "run_once", [500, 1.0], 0.3, 0.4, 1)        # nothing was waiting
    v = check_counts(GOOD, h)
    assert v.kinds() == ["miscounted-run"] and v.anomalies[0].data == {"counted": 4,
                                                                       "on_topic": 3}
    assert check_counts(GOOD, h, complete=False).valid is True   # an incomplete read: no sum


# -- relay-publishes-promptly ------------------------------------------------------------------
def test_events_still_missing_after_the_bounded_runs_are_late():
    assert check_prompt(GOOD, ORDERS, runs=3).valid is True
    v = check_prompt(GOOD[:1], ORDERS, runs=3)
    assert v.kinds() == ["late-event"] and len(v.anomalies) == 2
    assert v.checker == "relay-publishes-promptly"


# -- service-available -------------------------------------------------------------------------
def test_a_valid_request_that_failed_is_unavailable_a_later_invalid_repeat_is_not():
    h = History()
    call(h, "app", "place_order", ["o1", "c1", 10], 0.0, 0.1)
    call(h, "app", "place_order", ["o1", "c1", 10], 0.2, 0.3, {"error": "UniqueViolation"},
         "fail")
    call(h, "app", "cancel_order", ["o1"], 0.4, 0.5, {"error": "LookupError",
                                                      "message": "no such order"}, "fail")
    assert check_available(h, [("place_order", "o1")]).valid is True
    v = check_available(h, [("place_order", "o1"), ("cancel_order", "o1")])
    assert v.kinds() == ["unavailable"] and "cancel_order('o1')" in v.anomalies[0].message


# -- all of them over one run ------------------------------------------------------------------
def test_judge_outbox_reads_acknowledgements_excuses_and_bounds_from_the_history():
    h = History()
    call(h, "app", "place_order", ["o1", "c1", 10], 0.0, 0.1)
    call(h, "relay", "run_once", [500, 2.0], 0.2, 0.3, 1)
    dup = GOOD + [rec(0, 1, ev("o1"))]
    assert judge_outbox(dup, ORDERS, h).kinds() == ["duplicate-event"]
    call(h, "relay", "run_once", [500, 2.0], 0.4, 0.5, {"error": "WorkerDied"}, "info")
    assert judge_outbox(dup, ORDERS, h).valid is True
    call(h, "relay", "run_once", [500, 0.5], 1.0, 9.0, 0)
    assert judge_outbox(dup, {"o2": ORDERS["o2"]}, h).kinds() == \
        ["lost-order", "phantom-event", "slow-relay"]
