"""Lab 05's judge of a whole history (``rig.ratelimit.judge_history``) on hand-written histories:
which decisions the faults excuse, which they police, how a restart starts the count afresh."""
from __future__ import annotations

from rig.ratelimit import Config, judge_history
from splitbrain.history import Event, History, call_value

CFG = Config(limit=10, window_s=2.0, timeout_s=0.5)   # rate 5/s, bound 1.5 s


class Recorder:
    """A history written by hand: ``allow(process, client, start, result, took)``, faults by
    ``fault(name, target, start, end, **params)``."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def allow(self, process: str, client: str, t: float, result=True, took: float = 0.002) -> None:
        self.events.append(Event(process, "invoke", "allow", call_value([client]), t, 0))
        if took is None:
            self.events.append(Event(process, "info", "allow",
                                     {"error": "CallTimeout", "message": "hung"}, t + 3.0, 0))
        else:
            self.events.append(Event(process, "ok", "allow", result, t + took, 0))

    def burst(self, process: str, client: str, t: float, n: int, result=True, **kw) -> None:
        for i in range(n):
            self.allow(process, client, t + 0.003 * i, result, **kw)

    def fault(self, name: str, target: str, start: float, end: float | None, **params) -> None:
        self.events.append(Event("nemesis", "info", name,
                                 {"phase": "start", "target": target, **params}, start, 0, True))
        if end is not None:
            self.events.append(Event("nemesis", "info", name, {"phase": "end", "target": target},
                                     end, 0, True))

    def history(self) -> History:
        h = History()
        for i, e in enumerate(sorted(self.events, key=lambda e: e.time)):
            h.events.append(Event(e.process, e.type, e.f, e.value, e.time, i, e.fault))
        return h


def kinds(v) -> list[str]:
    return sorted({a.kind for a in v.anomalies})


def test_a_clean_history_holds_every_guarantee():
    r = Recorder()
    r.burst("g1", "c", 0.0, 10)
    r.burst("g2", "c", 0.05, 5, False)
    v = judge_history(r.history(), CFG, "open", ttls={"p:c": 2001})
    assert v.valid is True, v.explain()


def test_fail_open_admissions_while_a_link_is_cut_are_not_counted():
    r = Recorder()
    r.burst("g1", "c", 0.0, 10)                        # the limit, spent
    r.fault("partition", "p1", 0.1, 0.9)
    r.allow("g1", "c", 0.2, True, took=0.5)            # g1 cannot reach Redis: open admits
    r.allow("g1", "c", 0.3, True, took=0.5)
    r.burst("g2", "c", 0.2, 3, False)                  # g2 can, and is refused
    v = judge_history(r.history(), CFG, "open", links={"p1": ["g1"]})
    assert v.valid is True, v.explain()


def test_the_policy_is_judged_only_on_the_cut_link():
    r = Recorder()
    r.fault("partition", "p1", 0.0, 1.0)
    r.allow("g1", "c", 0.1, False, took=0.5)           # closed, but "open" was declared
    r.burst("g2", "c", 0.1, 3, True)                   # g2's link works: these are Redis's
    v = judge_history(r.history(), CFG, "open", links={"p1": ["g1"]})
    assert kinds(v) == ["policy-broken"]
    assert [a.data["process"] for a in v.anomalies] == ["g1"]


def test_a_fault_on_a_target_without_a_link_reaches_every_gateway():
    r = Recorder()
    r.fault("restart", "redis", 0.0, 1.0, down=True)
    r.allow("g1", "c", 0.1, False)
    r.allow("g2", "c", 0.2, False)
    v = judge_history(r.history(), CFG, "open")
    assert kinds(v) == ["policy-broken"] and len(v.anomalies) == 2


def test_a_slow_redis_is_a_failure_only_when_it_is_slower_than_the_timeout():
    slow = Recorder()
    slow.fault("latency", "redis", 0.0, 2.0, ms=2500)
    slow.allow("g1", "c", 0.1, False, took=0.5)
    assert kinds(judge_history(slow.history(), CFG, "open")) == ["policy-broken"]
    # 30 ms is no excuse: the decisions are Redis's and the envelope holds them
    busy = Recorder()
    busy.fault("latency", "redis", 0.0, 2.0, ms=30)
    busy.burst("g1", "c", 0.1, 14, took=0.06)
    assert kinds(judge_history(busy.history(), CFG, "open")) == ["over-limit"]


def test_decisions_overlapping_a_stall_are_excused_unless_no_stall_fails():
    r = Recorder()
    r.burst("g1", "c", 0.0, 8)
    r.fault("stall", "p1", 0.1, 0.2)
    r.burst("g1", "c", 0.12, 4, took=0.05)             # 12 admitted in 0.3 s
    h = r.history()
    assert judge_history(h, CFG, "open", links={"p1": ["g1"]}).valid is True
    assert kinds(judge_history(h, CFG, "open", links={"p1": ["g1"]}, failing=())) == [
        "over-limit"]


def test_a_restarted_redis_owes_every_client_a_fresh_limit():
    r = Recorder()
    r.burst("g1", "c", 0.0, 10)
    r.fault("restart", "redis", 0.2, 0.5, down=True)
    r.allow("g1", "c", 0.3, True)                      # down: open admits
    r.burst("g1", "c", 0.6, 10)                        # back, and forgot: a fresh limit
    r.burst("g1", "c", 0.7, 3, False)
    assert judge_history(r.history(), CFG, "open").valid is True
    # ... so refusing everyone after the restart starves them
    r = Recorder()
    r.burst("g1", "c", 0.0, 10)
    r.fault("restart", "redis", 0.2, 0.5, down=True)
    r.burst("g1", "c", 0.6, 10, False)
    v = judge_history(r.history(), CFG, "closed")
    assert kinds(v) == ["starved"]
    assert any(a.data["rule"] == "quiet-burst" for a in v.anomalies)


def test_without_a_restart_the_same_admissions_are_over_the_limit():
    r = Recorder()
    r.burst("g1", "c", 0.0, 10)
    r.burst("g1", "c", 0.6, 10)
    assert kinds(judge_history(r.history(), CFG, "open")) == ["over-limit"]


def test_hung_calls_and_keys_without_expiry_are_reported():
    r = Recorder()
    r.allow("g1", "c", 0.0, True, took=None)
    r.allow("g2", "c", 0.1, True, took=1.9)
    v = judge_history(r.history(), CFG, "open", ttls={"p:c": -1, "p:d": 5000})
    assert kinds(v) == ["hung-decision", "unbounded-keys"]
    assert len([a for a in v.anomalies if a.kind == "hung-decision"]) == 2


def test_the_config_sets_the_bound_and_the_longest_expiry():
    assert Config(timeout_s=1.2).bound_s == 2.2
    assert Config(window_s=0.5).max_ttl_ms == 20_000
    assert Config(window_s=5.0).max_ttl_ms == 50_000
    assert Config(window_s=0.5, limit=10).rate == 20.0


def test_under_a_schedule_the_policy_is_judged_only_while_a_fault_surely_held():
    from splitbrain.history import FaultWindow
    r = Recorder()
    r.fault("partition", "p1", 0.50, 0.90)
    r.allow("g1", "c", 0.505, False)                   # answered before the toxic was in place
    r.allow("g1", "c", 0.60, False, took=0.25)         # surely cut off: closed, but open declared
    r.allow("g1", "c", 0.88, False, took=0.015)        # answered as the heal went through
    h = r.history()
    held = [FaultWindow("partition", "p1", 0.52, 0.87, {}, ())]
    v = judge_history(h, CFG, "open", links={"p1": ["g1"]}, in_effect=held)
    assert kinds(v) == ["policy-broken"] and len(v.anomalies) == 1
    # judged on the recorded window instead, all three would count
    assert len(judge_history(h, CFG, "open", links={"p1": ["g1"]}).anomalies) == 3


def test_a_storm_records_when_each_fault_surely_held():
    from rig.ratelimit import Storm
    from splitbrain.faults import Nemesis, Schedule
    from splitbrain.faults.schedule import FaultEvent
    h = History()
    nemesis = Nemesis(h)
    sched = Schedule((FaultEvent(0.0, "concurrency", None, {}, 0.05),
                      FaultEvent(0.08, "concurrency", None, {}, 0.05)), 1, 0.2)
    run = Storm(nemesis, h, sched).start()
    run.wait(10)
    assert [w.name for w in run.windows] == ["concurrency", "concurrency"]
    recorded = h.fault_windows()
    for held, rec in zip(run.windows, recorded):
        assert rec.start <= held.start <= held.end <= rec.end
    assert not nemesis.active
