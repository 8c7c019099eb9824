"""Registry, seeded schedules, delivery faults and the Nemesis (unit level, no servers)."""
from __future__ import annotations

import pytest

from splitbrain.faults import FAULTS, Delivery, Nemesis, Schedule
from splitbrain.faults.clock import Clock
from splitbrain.faults.registry import FaultError, make_fault
from splitbrain.faults.schedule import FaultEvent
from splitbrain.history import History


class FakeWorker:
    """A narrow seam: records calls the way a sandbox worker would receive them."""

    def __init__(self, name):
        self.name, self.calls = name, []

    def pause(self, record=True):
        self.calls.append(("pause", record))

    def resume(self, record=True):
        self.calls.append(("resume", record))

    def kill(self, record=True):
        self.calls.append(("kill", record))

    def restart(self, record=True):
        self.calls.append(("restart", record))

    def skew_clock(self, seconds, record=True):
        self.calls.append(("skew", seconds))

    def arm_crash(self, name, after=0):
        self.calls.append(("arm", name, after))


def test_same_seed_same_schedule_and_different_seed_differs():
    kw = dict(faults={"pause": {}, "latency": {"ms": (50, 300)}}, duration_s=20.0,
              targets={"pause": ["a", "b"], "latency": ["redis"]})
    a, b, c = Schedule.from_seed(7, **kw), Schedule.from_seed(7, **kw), Schedule.from_seed(8, **kw)
    assert a == b and a.to_json() == b.to_json()
    assert a != c
    assert len(a) >= 3
    for e in a:
        assert e.at + e.duration <= 20.0
        if e.fault == "latency":
            assert 50 <= e.params["ms"] <= 300 and e.target == "redis"
        else:
            assert e.target in ("a", "b")
    ends = [e.at + e.duration for e in a]
    assert all(nxt.at >= end for nxt, end in zip(list(a)[1:], ends))     # no overlap
    assert Schedule.from_json(a.to_json()) == a
    assert "seed=7" in a.describe()


@pytest.mark.parametrize("kwargs, message", [
    (dict(faults=["teleport"], duration_s=5, targets=["a"]), "unknown fault"),
    (dict(faults=["pause"], duration_s=5, targets={"kill": ["a"]}), "no targets"),
    (dict(faults=["pause"], duration_s=0, targets=["a"]), "duration_s"),
    (dict(faults=[], duration_s=5, targets=["a"]), "at least one"),
])
def test_bad_schedule_input_is_named(kwargs, message):
    with pytest.raises(FaultError, match=message):
        Schedule.from_seed(1, **kwargs)


def test_registry_names_and_bad_targets():
    for name in ("pause", "kill", "restart", "partition", "latency", "reset", "refuse",
                 "clock-skew", "clock-jump", "crash", "duplicate", "reorder", "delay",
                 "replay-pause", "standby-lag", "promote", "replica-failover", "broker-restart",
                 "member-kill"):
        assert name in FAULTS
    with pytest.raises(FaultError, match="unknown fault"):
        make_fault("meteor", 123)
    with pytest.raises(FaultError, match="blackhole"):
        make_fault("partition", object())
    with pytest.raises(FaultError, match="pause"):
        make_fault("pause", "not-a-pid")


def test_nemesis_records_start_and_end_and_tells_workers_not_to_record():
    h = History()
    w = FakeWorker("a")
    n = Nemesis(h, targets={"a": w})
    with n.fault("pause", "a"):
        assert w.calls == [("pause", False)]
    assert w.calls[-1] == ("resume", False)
    faults = h.faults()
    assert [(e.f, e.value["phase"], e.value["target"]) for e in faults] == [
        ("pause", "start", "a"), ("pause", "end", "a")]
    with pytest.raises(FaultError, match="unknown target"):
        n.inject("pause", "zz")


def test_nemesis_runs_a_schedule_in_order_and_heals_everything():
    h = History()
    c = Clock()
    w = FakeWorker("a")
    n = Nemesis(h, targets={"a": w, "clock": c})
    events = [FaultEvent(0.0, "clock-skew", "clock", {"offset": 5.0}, 0.05),
              FaultEvent(0.06, "pause", "a", {}, None),
              FaultEvent(0.07, "crash", "a", {"point": "after_commit"}, 0.01)]
    n.run(events)
    assert c.offset == 0.0
    assert w.calls == [("pause", False), ("arm", "after_commit", 0)]
    assert [e.value["phase"] for e in h.faults()] == ["start", "end", "start", "start", "end"]
    n.heal_all()                  # the open pause is healed and recorded once
    assert w.calls[-1] == ("resume", False)
    assert [e.value["phase"] for e in h.faults()][-1] == "end"
    n.heal_all()
    assert len(h.faults()) == 6


def test_failed_injection_is_recorded_and_raised():
    class Broken(FakeWorker):
        def pause(self, record=True):
            raise RuntimeError("worker is gone")
    h = History()
    n = Nemesis(h, targets={"b": Broken("b")})
    with pytest.raises(RuntimeError):
        n.inject("pause", "b")
    assert "worker is gone" in h.faults()[-1].value["error"]
    assert n.active == []


def test_clock_faults_on_a_clock():
    c = Clock()
    with make_fault("clock-jump", c, step=-30):
        assert -31 < c.offset < -29
    assert c.offset == 0
    with make_fault("clock-drift", c, rate=2.0):
        assert c.rate == 2.0
    assert c.rate == 1.0


def test_delivery_is_seeded_and_faithful():
    msgs = list(range(50))
    d = Delivery(seed=3, duplicate=0.3, reorder=0.3, window=3)
    plan = d.plan(msgs)
    assert plan == Delivery(seed=3, duplicate=0.3, reorder=0.3, window=3).plan(msgs)
    delivered = [m for m, _ in plan]
    assert sorted(set(delivered)) == msgs                      # nothing lost
    assert len(delivered) > len(msgs)                          # some duplicated
    assert delivered != sorted(delivered)                      # some reordered
    kinds = {k for _, k in plan}
    assert kinds == {"now", "late", "duplicate"}
    got = []
    real = Delivery(got.append, seed=3, duplicate=0.3, reorder=0.3, window=3)
    real.send_all(msgs)
    assert got == delivered


def test_delivery_without_faults_is_the_identity_and_heal_flushes():
    got = []
    d = Delivery(got.append, seed=1)
    fault = make_fault("reorder", d, p=1.0)
    fault.inject()
    d.send("a")
    d.send("b")
    assert len(got) <= 1
    fault.heal()                 # held messages are delivered on heal
    assert sorted(got) == ["a", "b"]
    d.send("c")
    assert got[-1] == "c"
    with pytest.raises(ValueError, match="probability"):
        Delivery(duplicate=2)


def test_nemesis_schedule_uses_its_seed_and_known_targets():
    n = Nemesis(History(), seed=11, targets={"a": FakeWorker("a"), "b": FakeWorker("b")})
    s = n.schedule(["pause"], 10.0)
    assert s == Schedule.from_seed(11, ["pause"], 10.0, ["a", "b"])
    assert {e.target for e in s} <= {"a", "b"}


def test_every_lazy_name_of_the_faults_package_resolves():
    import splitbrain.faults as faults
    for name in faults.__all__:
        assert getattr(faults, name) is not None, name
    with pytest.raises(AttributeError):
        faults.no_such_thing  # noqa: B018
