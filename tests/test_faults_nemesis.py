"""Registry, seeded schedules, delivery faults and the Nemesis (unit level, no servers)."""
from __future__ import annotations

import threading
import time

import pytest

from splitbrain.faults import FAULTS, Delivery, Nemesis, Pace, Schedule
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


# -- a schedule followed on the workload's steps (Pace) ----------------------------------------
class FreezingWorker(FakeWorker):
    """A worker whose calls wait while it is paused, as a SIGSTOPped process's do."""

    def __init__(self, name):
        super().__init__(name)
        self.running = threading.Event()
        self.running.set()

    def pause(self, record=True):
        super().pause(record)
        self.running.clear()

    def resume(self, record=True):
        super().resume(record)
        self.running.set()

    def call(self):
        assert self.running.wait(10), "the paused worker was never resumed"
        return "ok"


def paced(events, step_s, workload_step, duration_s=None, **kw):
    """Follow ``events`` on a Pace while a thread runs ``workload_step(n)`` at every step."""
    pace = Pace(step_s, **kw)
    seen = []

    def workload():
        for n in pace:
            seen.append(n)
            workload_step(n)
    t = threading.Thread(target=workload, daemon=True)
    t.start()
    return pace, seen, t


def test_pace_maps_seconds_to_step_boundaries():
    pace = Pace(0.04)
    assert [pace.step_of(s) for s in (0.0, 0.01, 0.04, 0.07, 0.08, 0.081)] == [0, 1, 1, 2, 2, 3]
    assert pace.heal_step(FaultEvent(0.07, "pause", "a", {}, 0.44)) == 13     # ceil(0.51/0.04)
    assert pace.heal_step(FaultEvent(0.07, "pause", "a", {}, 0.001)) == 3     # at least a step
    assert pace.heal_step(FaultEvent(0.07, "pause", "a", {}, None)) == 2
    sched = Schedule((FaultEvent(0.07, "clock-skew", "c", {"offset": 5.0}, 0.3),), 1, 1.5)
    assert pace.last_step(sched) == 38
    text = sched.describe(pace=pace)
    assert "steps of 0.04 s (38 steps)" in text and "step   2" in text and "to step  10" in text
    frozen = Schedule((FaultEvent(0.07, "pause", "b", {}, 0.44),), 1, 1.5).describe(pace=pace)
    assert "for 0.44s of wall clock" in frozen
    assert "0.07s +0.44s" in Schedule((FaultEvent(0.07, "pause", "b", {}, 0.44),), 1).describe()
    with pytest.raises(FaultError, match="step_s"):
        Pace(0)


@pytest.mark.parametrize("slow_s", [0.0, 0.02])
def test_a_paced_schedule_lands_on_the_same_steps_however_fast_the_workload_runs(slow_s):
    c = Clock()
    events = [FaultEvent(0.05, "clock-skew", "clock", {"offset": 5.0}, 0.1),   # steps 5 to 15
              FaultEvent(0.2, "clock-skew", "clock", {"offset": -7.0}, None)]  # step 20, open
    h = History()
    n = Nemesis(h, targets={"clock": c})
    offsets = {}

    def step(i):
        offsets[i] = c.offset         # what the workload sees during step i
        if slow_s and i % 3 == 0:
            time.sleep(slow_s)        # a slow machine: the schedule's seconds pass in fewer steps
    pace, seen, t = paced(events, 0.01, step)
    n.run(Schedule(tuple(events), 1, 0.3), pace=pace)
    t.join(10)
    assert not t.is_alive() and seen == list(range(30))
    assert offsets == {i: (5.0 if 5 <= i < 15 else -7.0 if i >= 20 else 0.0) for i in range(30)}
    assert [e.value["phase"] for e in h.faults()] == ["start", "end", "start"]
    assert c.offset == -7.0          # an open-ended fault waits for heal_all, as on wall time
    n.heal_all()
    assert c.offset == 0.0


def test_a_frozen_target_is_healed_on_the_wall_clock_while_the_workload_waits_on_it():
    w = FreezingWorker("b")
    c = Clock()
    events = [FaultEvent(0.02, "pause", "b", {}, 0.05),           # step 2, healed 50 ms later
              FaultEvent(0.03, "clock-skew", "clock", {"offset": 1.0}, 0.02)]
    n = Nemesis(History(), targets={"b": w, "clock": c})
    answers = {}

    def step(i):
        answers[i] = (w.call(), c.offset)   # blocks in step 2 until the pause is healed
    pace, seen, t = paced(events, 0.01, step)
    n.run(Schedule(tuple(events), 1, 0.1), pace=pace)
    t.join(10)
    assert seen == list(range(10))
    assert answers == {i: ("ok", 1.0 if 3 <= i < 5 else 0.0) for i in range(10)}
    assert w.calls == [("pause", False), ("resume", False)]


def test_heal_all_stops_a_paced_run_and_a_workload_that_never_comes_is_named():
    w = FakeWorker("a")
    n = Nemesis(History(), targets={"a": w})
    pace = Pace(0.01)
    events = [FaultEvent(0.0, "pause", "a", {}, None)]
    n.start(events, pace=pace)
    assert pace.step() == 0 and w.calls == [("pause", False)]
    n.heal_all()                      # another thread stops it: the workload is told to stop
    assert pace.step() is None and pace.closed
    assert w.calls[-1] == ("resume", False)

    lazy = Nemesis(History(), targets={"a": FakeWorker("a")})
    with pytest.raises(FaultError, match="did not reach step 0"):
        lazy.run([FaultEvent(0.0, "pause", "a", {}, 0.1)], pace=Pace(0.01, timeout_s=0.05))
    assert lazy.errors and "did not reach step 0" in lazy.errors[0]
