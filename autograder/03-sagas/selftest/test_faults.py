"""Lab 03's faults go through the nemesis: the rig's own (decline, lost-reply, unavailable, armed on
the participants server) and the kit's it uses (kill at a participant's call, restart, duplicate
bookings). Each is recorded in the history, from when it was armed to when it was over."""
from __future__ import annotations

import pytest

from rig.saga import ParticipantClient
from rig.saga_rig import Bookings, rig_fixture  # noqa: F401  (the `rig` fixture)
from rig.saga_server import Participants
from splitbrain.faults import Nemesis
from splitbrain.faults.registry import FAULTS, FaultError
from splitbrain.history import History


def windows(history, names=None):
    return [(w.name, w.target, w.params.get("op"), w.params.get("saga_id"), w.end is not None)
            for w in history.fault_windows(names)]


def test_the_rigs_faults_are_registered_with_a_kind_and_a_description():
    for name in ("decline", "lost-reply", "unavailable"):
        cls = FAULTS[name]
        assert cls.__module__ == "rig.faults"
        assert cls.kind == "service" and cls.description and "participants" in cls.needs


class _Stub:
    """What the faults check on their target, without a server."""
    check_fault = staticmethod(Participants.check_fault)

    def arm(self, *a, **kw):
        return None

    def disarm(self, armed=None):
        pass


@pytest.mark.parametrize("name, params, message", [
    ("lost-reply", {}, "name the operation"),
    ("lost-reply", {"op": "payment.steal"}, "unknown operation"),
    ("unavailable", {"op": "payment.refund", "times": 0}, "times is how many calls"),
    ("decline", {"op": "payment.refund"}, "is a compensation"),
    ("decline", {"op": "payment.charge", "saga_id": 7}, "saga_id is a saga's id"),
])
def test_a_fault_the_participants_cannot_take_is_refused_before_anything_is_recorded(
        name, params, message):
    h = History()
    with pytest.raises(FaultError, match=message):
        Nemesis(h).inject(name, _Stub(), **params)
    with pytest.raises(FaultError, match="needs a target with arm"):
        Nemesis(h).inject(name, object(), op="payment.charge")
    assert len(h) == 0


def test_bookings_take_the_kits_duplicate_fault_and_nothing_else():
    h = History()
    nemesis = Nemesis(h)
    b = Bookings("orchestrator")
    assert b.copies() == 1
    with nemesis.fault("duplicate", b, p=1.0):
        assert [b.copies() for _ in range(3)] == [2, 2, 2]
    assert b.copies() == 1
    assert [(w.name, w.target, w.params, w.end is not None) for w in h.fault_windows()] == [
        ("duplicate", "orchestrator", {"p": 1.0}, True)]
    with pytest.raises(ValueError, match="not reordered"):
        nemesis.inject("reorder", b, p=0.5)


def test_participant_faults_through_the_nemesis_are_recorded_until_they_are_over(ns):
    h = History()
    nemesis = Nemesis(h)
    with Participants(ns.pg_admin_url, history=h) as parts:
        parts.accounts({"alice": 100})
        client = ParticipantClient(parts.url, timeout_s=0.3)
        lost = nemesis.inject("lost-reply", parts, op="payment.charge", saga_id="s1", hold_s=0.1)
        declined = nemesis.inject("decline", parts, op="payment.charge", saga_id="s2")
        assert windows(h) == [("lost-reply", "participants", "payment.charge", "s1", False),
                              ("decline", "participants", "payment.charge", "s2", False)]
        with pytest.raises(Exception, match="outcome unknown"):
            client.charge(key="c1", saga_id="s1", account="alice", amount=30)
        for _ in range(2):
            with pytest.raises(Exception, match="declined"):
                client.charge(key="c2", saga_id="s2", account="alice", amount=30)
        assert _eventually(lambda: not lost.active)       # spent: it healed itself
        assert declined.active                             # a decline holds until healed
        declined.heal()
        client.charge(key="c3", saga_id="s2", account="alice", amount=30)
    assert windows(h) == [("lost-reply", "participants", "payment.charge", "s1", True),
                          ("decline", "participants", "payment.charge", "s2", True)]
    assert parts.balances()["accounts"]["alice"] == 40


def _eventually(cond, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_rig_kills_and_restarts_the_orchestrator_through_the_nemesis(rig, nemesis, history):
    rig.crash("payment.charge", "after", "s1")
    assert rig.book("s1", rig.order()) is None
    rig.restart_and_recover()
    with nemesis.fault("duplicate", rig.bookings, p=1.0):
        rig.book("s2", rig.order())
    lost = rig.lose_reply("shipping.schedule", "s3")
    rig.book("s3", rig.order())
    assert _eventually(lambda: not lost.active)   # over once the participant hung up
    assert windows(history) == [
        ("kill", "orchestrator", "payment.charge", "s1", True),
        ("restart", "orchestrator", None, None, True),
        ("duplicate", "orchestrator", None, None, True),
        ("lost-reply", "shipping", "shipping.schedule", "s3", True)]
    kill = history.fault_windows(["kill"])[0]
    assert kill.params["when"] == "after"
    books = [op for op in history.operations() if op.f == "book" and op.arg(0) == "s2"]
    assert len(books) == 2                                  # the same booking, delivered twice
