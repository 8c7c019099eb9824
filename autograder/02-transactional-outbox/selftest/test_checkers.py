"""Lab 02's checkers (rig.checkers) on hand-written topics and read models."""
from __future__ import annotations

from rig.checkers import OrderTruth, check_outbox, check_projection, expected_events


def ev(oid, typ="OrderPlaced", eid=None, customer="c1", amount=10):
    return {"event_id": eid or f"{oid}-{typ}", "type": typ, "order_id": oid,
            "customer": customer, "amount": amount}


def rec(p, off, value, key=None):
    return {"partition": p, "offset": off, "key": key if key is not None else value["order_id"],
            "value": value, "raw": "", "error": ""}


ORDERS = {"o1": OrderTruth("c1", 10, "placed"), "o2": OrderTruth("c1", 10, "cancelled")}
GOOD = [rec(0, 0, ev("o1")), rec(1, 0, ev("o2")), rec(1, 1, ev("o2", "OrderCancelled"))]


def test_a_complete_ordered_topic_is_valid():
    v = check_outbox(GOOD, ORDERS, allow_duplicates=False)
    assert v.valid is True, v.explain()
    assert expected_events(ORDERS) == {"o1": ["OrderPlaced"],
                                       "o2": ["OrderPlaced", "OrderCancelled"]}


def test_a_committed_order_without_event_is_lost():
    v = check_outbox(GOOD[1:], ORDERS)
    assert v.kinds() == ["lost-event"]
    assert "o1" in v.anomalies[0].message


def test_a_committed_cancellation_without_event_is_lost():
    v = check_outbox(GOOD[:2], ORDERS)
    assert v.kinds() == ["lost-event"] and "OrderCancelled" in v.anomalies[0].message


def test_an_event_for_a_rolled_back_order_is_a_phantom():
    v = check_outbox(GOOD + [rec(2, 0, ev("o9"))], ORDERS, attempted=["o1", "o2", "o9"])
    assert v.kinds() == ["phantom-event"]
    assert "rolled back" in v.anomalies[0].message


def test_a_cancellation_that_did_not_commit_is_a_phantom():
    v = check_outbox(GOOD + [rec(0, 1, ev("o1", "OrderCancelled"))], ORDERS)
    assert v.kinds() == ["phantom-event"]


def test_an_event_whose_content_differs_from_the_row_is_a_phantom():
    v = check_outbox([rec(0, 0, ev("o1", amount=99))] + GOOD[1:], ORDERS)
    assert v.kinds() == ["phantom-event"]


def test_cancel_before_place_is_out_of_order():
    bad = [GOOD[0], rec(1, 0, ev("o2", "OrderCancelled")), rec(1, 1, ev("o2"))]
    assert check_outbox(bad, ORDERS).kinds() == ["out-of-order"]


def test_one_orders_events_on_two_partitions_are_out_of_order():
    bad = [GOOD[0], GOOD[1], rec(2, 0, ev("o2", "OrderCancelled"))]
    assert check_outbox(bad, ORDERS).kinds() == ["out-of-order"]


def test_a_duplicate_copy_is_allowed_after_faults_but_not_in_a_clean_run():
    dup = GOOD + [rec(0, 1, ev("o1"))]
    assert check_outbox(dup, ORDERS, allow_duplicates=True).valid is True
    assert check_outbox(dup, ORDERS, allow_duplicates=False).kinds() == ["duplicate-event"]


def test_a_redelivered_placed_after_the_cancel_keeps_first_seen_order():
    dup = GOOD + [rec(1, 2, ev("o2"))]
    assert check_outbox(dup, ORDERS).valid is True


def test_one_change_under_two_event_ids_is_a_duplicate_even_after_faults():
    dup = GOOD + [rec(0, 1, ev("o1", eid="fresh-id"))]
    assert check_outbox(dup, ORDERS, allow_duplicates=True).kinds() == ["duplicate-event"]


def test_wrong_key_and_malformed_records_are_reported():
    bad = [rec(0, 0, ev("o1"), key="c1"), GOOD[1], GOOD[2],
           {"partition": 0, "offset": 1, "key": None, "value": None, "raw": "xx",
            "error": "not JSON"},
           rec(0, 2, {"event_id": "e", "type": "OrderPlaced"}, key="k")]
    assert check_outbox(bad, ORDERS).kinds() == ["malformed-event", "wrong-key"]


def test_an_incomplete_read_is_unknown_not_valid_and_not_lost():
    v = check_outbox(GOOD[1:], ORDERS, complete=False)
    assert v.valid == "unknown"
    assert check_outbox(GOOD + [rec(2, 0, ev("o9"))], ORDERS, complete=False).valid is False


VIEW = {"o1": {"customer": "c1", "amount": 10, "status": "placed"},
        "o2": {"customer": "c1", "amount": 10, "status": "cancelled"}}


def test_a_correct_read_model_is_valid():
    v = check_projection(VIEW, {"c1": {"placed": 2, "cancelled": 1, "spent": 10}}, ORDERS)
    assert v.valid is True, v.explain()


def test_an_event_applied_twice_is_a_duplicate_effect():
    v = check_projection(VIEW, {"c1": {"placed": 3, "cancelled": 1, "spent": 20}}, ORDERS)
    assert v.kinds() == ["duplicate-effect"]


def test_a_missing_or_wrong_view_row_is_reported():
    view = {"o2": {"customer": "c1", "amount": 10, "status": "placed"}}
    v = check_projection(view, {"c1": {"placed": 2, "cancelled": 0, "spent": 20}}, ORDERS)
    assert v.kinds() == ["missing-effect", "wrong-state"]
