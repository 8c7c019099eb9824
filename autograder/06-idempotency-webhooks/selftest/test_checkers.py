"""The lab-06 checkers (``rig.checkers``) on hand-written histories and tables: each guarantee,
kept and broken."""
from rig.checkers import (check_authentic_only, check_every_event_acknowledged,
                          check_exactly_once_effects, check_newest_wins, check_no_lost_events,
                          check_webhooks)

from splitbrain.history import Event, History, call_value

STATUS = {1: ("order.created", "created"), 2: ("order.confirmed", "confirmed"),
          3: ("order.shipped", "shipped")}


def deliver(t, version, acked=True, order="ord_1", kind="genuine"):
    typ, status = STATUS.get(version, ("order.cancelled", "cancelled"))
    return [(t, "sender", "invoke", "deliver",
             call_value([f"evt_{order}_{version}"], {"type": typ, "order": order,
                                                     "version": version, "status": status,
                                                     "amount": 1000, "kind": kind})),
            (t + 0.01, "sender", "ok", "deliver",
             {"acked": acked, "codes": [204 if acked else 0], "acked_at": t + 0.01 if acked
              else None})]


def build(*groups):
    return History.from_events(Event(p, ty, f, v, t) for g in groups for t, p, ty, f, v in g)


ROW3 = {"ord_1": {"status": "shipped", "version": 3, "amount": 1000}}
ONE_CHARGE = [{"order": "ord_1", "amount": 1000}]


def test_every_event_once_in_order_is_valid():
    h = build(deliver(0.0, 1), deliver(0.1, 2), deliver(0.2, 3))
    assert check_webhooks(h, ROW3, ["ord_1"], ONE_CHARGE).ok


def test_two_shipments_and_two_charges():
    h = build(deliver(0.0, 1), deliver(0.1, 2), deliver(0.15, 2), deliver(0.2, 3))
    v = check_exactly_once_effects(h, ["ord_1", "ord_1"], ONE_CHARGE * 2)
    assert sorted(v.kinds()) == ["double-charge", "duplicate-effect"]


def test_an_older_version_acknowledged_later_is_a_stale_overwrite():
    h = build(deliver(0.0, 1), deliver(0.1, 3), deliver(0.2, 2))
    rows = {"ord_1": {"status": "confirmed", "version": 2, "amount": 1000}}
    assert check_newest_wins(h, rows).kinds() == ["stale-overwrite"]
    assert check_no_lost_events(h, rows, ["ord_1"], ONE_CHARGE).ok


def test_an_acknowledged_event_never_applied_is_lost():
    h = build(deliver(0.0, 1), deliver(0.1, 2), deliver(0.2, 3))
    rows = {"ord_1": {"status": "confirmed", "version": 2, "amount": 1000}}
    assert check_no_lost_events(h, rows, ["ord_1"], ONE_CHARGE).kinds() == ["lost-event"]
    assert check_no_lost_events(h, ROW3, [], ONE_CHARGE).kinds() == ["lost-event"]
    h = build(deliver(0.0, 1), deliver(0.1, 2), deliver(0.2, 3, acked=False))
    rows = {"ord_1": {"status": "confirmed", "version": 2, "amount": 1000}}
    assert check_no_lost_events(h, rows, ["ord_1"], ONE_CHARGE).ok     # never acknowledged


def test_a_forged_delivery_accepted_or_applied():
    h = build(deliver(0.0, 1), deliver(0.1, 90, acked=False, kind="forged"))
    rows = {"ord_1": {"status": "created", "version": 1, "amount": 1000}}
    assert check_authentic_only(h, rows).ok
    h = build(deliver(0.0, 1), deliver(0.1, 90, acked=True, kind="replayed"))
    assert check_authentic_only(h, rows).kinds() == ["forged-accepted"]
    h = build(deliver(0.0, 1), deliver(0.1, 90, acked=False, kind="forged"))
    rows = {"ord_1": {"status": "cancelled", "version": 90, "amount": 1000}}
    assert check_authentic_only(h, rows).kinds() == ["forged-accepted"]


def test_a_genuine_event_never_acknowledged():
    h = build(deliver(0.0, 1), deliver(0.1, 2), deliver(0.2, 3, acked=False))
    rows = {"ord_1": {"status": "confirmed", "version": 2, "amount": 1000}}
    assert check_every_event_acknowledged(h).kinds() == ["never-acknowledged"]
    assert check_webhooks(h, rows, ["ord_1"], ONE_CHARGE).kinds() == ["never-acknowledged"]
    # a receiver that refuses everything changes nothing, and is not safe for it
    h = build(deliver(0.0, 1, acked=False), deliver(0.1, 2, acked=False))
    v = check_webhooks(h, {}, [], [])
    assert [a.data["event"] for a in v.anomalies] == ["evt_ord_1_1", "evt_ord_1_2"]
    assert v.kinds() == ["never-acknowledged"]


def test_a_later_retry_acknowledged_counts():
    h = build(deliver(0.0, 1), deliver(0.1, 2, acked=False), deliver(0.2, 2), deliver(0.3, 3))
    assert check_every_event_acknowledged(h).ok
    assert check_webhooks(h, ROW3, ["ord_1"], ONE_CHARGE).ok


def test_refused_forged_and_replayed_deliveries_are_not_owed_an_answer():
    h = build(deliver(0.0, 1), deliver(0.1, 90, acked=False, kind="forged"),
              deliver(0.2, 90, acked=False, kind="replayed"))
    rows = {"ord_1": {"status": "created", "version": 1, "amount": 1000}}
    assert check_every_event_acknowledged(h).ok
    assert check_webhooks(h, rows, [], []).ok
