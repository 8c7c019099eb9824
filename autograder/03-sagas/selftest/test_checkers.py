"""Lab 03's saga-atomicity checker (rig.checkers) on hand-written ledgers (no services)."""
from __future__ import annotations

import pytest

from rig.checkers import check_order, check_progress, check_saga_ledger, summarize
from splitbrain.history import History, call_value

ORDER = {"sku": "widget", "qty": 2, "account": "alice", "amount": 30, "address": "Main St 1"}


def row(op, key, saga="s1", status="ok", **args):
    svc = {"reserve": "inventory", "release": "inventory", "charge": "payment",
           "refund": "payment", "schedule": "shipping", "cancel": "shipping"}[op]
    base = {"reserve": {"sku": "widget", "qty": 2}, "release": {"sku": "widget", "qty": 2},
            "charge": {"account": "alice", "amount": 30}, "refund": {"account": "alice", "amount": 30},
            "schedule": {"address": "Main St 1"}, "cancel": {"address": "Main St 1"}}[op]
    return {"service": svc, "op": op, "key": key, "saga_id": saga, "args": {**base, **args},
            "status": status}


DONE = [row("reserve", "r"), row("charge", "c"), row("schedule", "s")]
COMPENSATED = [row("reserve", "r"), row("charge", "c"), row("schedule", "s", status="declined"),
               row("refund", "c-undo"), row("release", "r-undo")]


def kinds(v):
    return v.kinds()


def test_done_saga_is_valid():
    v = check_saga_ledger(DONE, {"s1": ORDER}, {"s1": "done"}, {"s1": "done"})
    assert v.valid is True, v.explain()
    assert v.stats["done"] == 1 and v.stats["money_taken"] == 30


def test_compensated_saga_is_valid_and_declined_rows_count_for_nothing():
    v = check_saga_ledger(COMPENSATED, {"s1": ORDER}, {"s1": "compensated"})
    assert v.valid is True, v.explain()
    assert v.stats["compensated"] == 1


def test_untouched_saga_counts_as_compensated():
    v = check_saga_ledger([row("reserve", "r", status="declined")], {"s1": ORDER},
                          {"s1": "compensated"})
    assert v.valid is True, v.explain()


def test_a_step_called_before_the_one_before_it_succeeded_is_out_of_order():
    v = check_order([row("charge", "c", status="declined")], {"s1": ORDER})
    assert kinds(v) == ["wrong-order"]


def test_compensations_run_last_step_first():
    rows = [row("reserve", "r"), row("charge", "c"), row("schedule", "s", status="declined"),
            row("release", "r-undo"), row("refund", "c-undo")]
    v = check_order(rows, {"s1": ORDER})
    assert "wrong-order" in kinds(v)
    assert "refund before release" in v.anomalies[0].message
    assert check_order(COMPENSATED, {"s1": ORDER}).valid is True


def test_a_planned_fault_whose_call_never_came_is_a_skipped_step():
    v = check_order(DONE, {"s1": ORDER},
                    skipped=[{"op": "payment.refund", "saga_id": "s1", "kind": "lost-reply"}])
    assert kinds(v) == ["skipped-step"]


def test_a_book_that_answered_nothing_has_no_outcome_unless_its_process_was_killed():
    ok = {"call": "book", "saga_id": "s1", "replica": "a", "answer": "done", "error": None,
          "died": False}
    killed = {**ok, "answer": None, "died": True}
    hung = {**ok, "answer": None, "error": "no answer within the call limit"}
    odd = {**ok, "answer": "forward"}
    assert check_progress([ok, killed]).valid is True
    v = check_progress([hung, odd, {"call": "recover", "replica": "b", "error": "boom"}])
    assert [a.kind for a in v.anomalies] == ["no-outcome"] * 3


def test_charged_and_reserved_with_nothing_shipped_is_dangling():
    rows = [row("reserve", "r"), row("charge", "c"), row("release", "r-undo")]
    v = check_saga_ledger(rows, {"s1": ORDER})
    assert v.valid is False
    assert "dangling-saga" in kinds(v)
    assert "alice charged 30" in v.anomalies[0].message
    assert "money-not-conserved" in kinds(v)


def test_refund_twice_is_a_double_refund():
    rows = [row("reserve", "r"), row("charge", "c"), row("refund", "u1"), row("refund", "u2"),
            row("release", "r-undo")]
    v = check_saga_ledger(rows, {"s1": ORDER})
    assert "double-refund" in kinds(v)
    assert "dangling-saga" in kinds(v)   # alice got 30 more than she paid


def test_refund_of_a_charge_that_never_happened_is_a_double_refund():
    rows = [row("reserve", "r"), row("charge", "c", status="declined"), row("refund", "u"),
            row("release", "r-undo")]
    assert "double-refund" in kinds(check_saga_ledger(rows, {"s1": ORDER}))


def test_charging_twice_then_refunding_twice_still_shows_the_double_charge():
    rows = [row("reserve", "r"), row("charge", "c1"), row("charge", "c2"), row("refund", "u1"),
            row("refund", "u2"), row("release", "r-undo")]
    v = check_saga_ledger(rows, {"s1": ORDER}, {"s1": "either"})
    assert kinds(v) == ["double-charge"]


def test_booked_twice_is_a_double_charge_and_double_reservation():
    rows = DONE + [row("reserve", "r2"), row("charge", "c2"), row("schedule", "s2")]
    v = check_saga_ledger(rows, {"s1": ORDER})
    assert {"double-charge", "double-reservation", "double-shipment", "dangling-saga"} <= set(kinds(v))


def test_double_release_and_double_cancel():
    rows = [row("reserve", "r"), row("release", "a"), row("release", "b"),
            row("schedule", "s"), row("cancel", "x"), row("cancel", "y")]
    assert {"double-release", "double-cancel"} <= set(kinds(check_saga_ledger(rows, {"s1": ORDER})))


def test_compensating_a_saga_that_could_complete_is_abandoned():
    v = check_saga_ledger([], {"s1": ORDER}, {"s1": "done"}, {"s1": "compensated"})
    assert kinds(v) == ["abandoned-saga"]


def test_reporting_done_without_doing_anything_is_a_wrong_outcome():
    v = check_saga_ledger([], {"s1": ORDER}, {"s1": "either"}, {"s1": "done"})
    assert kinds(v) == ["wrong-outcome"]


def test_done_when_it_had_to_be_compensated_is_a_wrong_outcome():
    v = check_saga_ledger(DONE, {"s1": ORDER}, {"s1": "compensated"})
    assert kinds(v) == ["wrong-outcome"]


def test_wrong_amount_is_not_done():
    rows = [row("reserve", "r"), row("charge", "c", amount=3), row("schedule", "s")]
    assert "dangling-saga" in kinds(check_saga_ledger(rows, {"s1": ORDER}))


def test_effects_under_an_unbooked_saga_id_are_reported():
    v = check_saga_ledger(DONE + [row("charge", "z", saga="ghost")], {"s1": ORDER})
    assert "unknown-saga" in kinds(v)


def test_evidence_points_at_the_participant_events_with_the_keys():
    h = History()
    h.invoke("payment", "refund", call_value((), {"saga_id": "s1", "key": "u1"}))
    h.invoke("payment", "refund", call_value((), {"saga_id": "s1", "key": "u2"}))
    h.fault("lost-reply", target="payment", op="payment.refund", saga_id="s1")
    h.invoke("orchestrator", "book", call_value(["u1", {}]))  # a saga id is not a key
    rows = [row("reserve", "r"), row("charge", "c"), row("refund", "u1"), row("refund", "u2"),
            row("release", "r-undo")]
    v = check_saga_ledger(rows, {"s1": ORDER}, history=h)
    a = next(a for a in v.anomalies if a.kind == "double-refund")
    assert a.events == (0, 1)


def test_summarize_ignores_declined_rows():
    s = summarize(COMPENSATED)["s1"]
    assert s.counts["schedule"] == 0 and s.counts["refund"] == 1


def test_bad_expected_outcome_is_a_clear_error():
    with pytest.raises(ValueError, match="must be one of"):
        check_saga_ledger([], {"s1": ORDER}, {"s1": "finished"})
    with pytest.raises(ValueError, match="not in orders"):
        check_saga_ledger([], {"s1": ORDER}, {"s2": "done"})


def test_effects_feed_the_generic_saga_checker_and_agree_on_the_state():
    from splitbrain.checkers.saga import check_sagas
    from rig.checkers import STEPS, effects
    assert check_sagas(effects(DONE), STEPS).valid is True
    assert check_sagas(effects(COMPENSATED), STEPS).valid is True
    rows = [row("reserve", "r"), row("charge", "c"), row("release", "r-undo")]
    assert "dangling-saga" in check_sagas(effects(rows), STEPS).kinds()
    rows = [row("reserve", "r"), row("charge", "c"), row("refund", "u1"), row("refund", "u2"),
            row("release", "x")]
    assert "double-refund" in check_sagas(effects(rows), STEPS).kinds()
