"""The lab-09 checkers (``rig.checkers``) on hand-written histories: each guarantee, held and
broken."""
from rig.checkers import (
    check_monotonic_reads,
    check_primary_reads,
    check_read_your_writes,
    check_sessions,
    versions,
)

from splitbrain.history import Event, History, call_value


def build(steps):
    """steps: (t0, t1, process, f, args, result) operations, in any order."""
    events = []
    for t0, t1, p, f, args, result in steps:
        events.append((t0, p, "invoke", f, call_value(args)))
        events.append((t1, p, "ok", f, result))
    events.sort(key=lambda e: e[0])
    return History.from_events(Event(p, t, f, v, time) for time, p, t, f, v in events)


def put(t0, session, key, value, p="app"):
    return (t0, t0 + 0.01, p, "put", [session, key, value], None)


def get(t0, session, key, result, p="app"):
    return (t0, t0 + 0.01, p, "get", [session, key], result)


def test_versions_follow_the_order_the_puts_completed():
    h = build([put(0.0, "s", "k", "a"), put(0.1, "other", "k", "b"), put(0.2, "s", "j", "c")])
    assert versions(h) == {"k": {None: 0, "a": 1, "b": 2}, "j": {None: 0, "c": 1}}


def test_reading_your_own_write_holds():
    h = build([put(0.0, "s", "k", "a"), get(0.1, "s", "k", "a"), get(0.2, "t", "k", None)])
    assert check_read_your_writes(h).ok
    assert check_sessions(h).ok


def test_a_read_older_than_the_sessions_write_is_stale():
    h = build([put(0.0, "s", "k", "a"), put(0.1, "s", "k", "b"), get(0.2, "s", "k", "a")])
    v = check_read_your_writes(h)
    assert v.kinds() == ["stale-read"]
    a = v.anomalies[0]
    assert a.data["read"] == "a" and a.data["needed"] == 2
    assert a.events and a.data["context"]


def test_a_missing_key_after_the_sessions_write_is_stale():
    h = build([put(0.0, "s", "k", "a"), get(0.1, "s", "k", None)])
    assert check_read_your_writes(h).kinds() == ["stale-read"]


def test_another_sessions_write_is_not_owed():
    h = build([put(0.0, "other", "k", "a"), put(0.1, "other", "k", "b"), get(0.2, "s", "k", "a")])
    assert check_read_your_writes(h).ok
    assert check_monotonic_reads(h).ok


def test_a_read_overlapping_the_write_is_not_owed_it():
    h = build([(0.0, 0.5, "app", "put", ["s", "k", "a"], None), get(0.1, "s", "k", None)])
    assert check_read_your_writes(h).ok


def test_reads_that_go_back_are_non_monotonic():
    h = build([put(0.0, "o", "k", "a"), put(0.1, "o", "k", "b"),
               get(0.2, "s", "k", "b"), get(0.3, "s", "k", "a"), get(0.4, "t", "k", "a")])
    v = check_monotonic_reads(h)
    assert v.kinds() == ["non-monotonic-read"]
    assert len(v.anomalies) == 1 and v.anomalies[0].data["session"] == "s"
    assert check_read_your_writes(h).ok


def test_reads_that_move_forward_are_monotonic():
    h = build([put(0.0, "o", "k", "a"), get(0.1, "s", "k", "a"), put(0.2, "o", "k", "b"),
               get(0.3, "s", "k", "b"), get(0.4, "s", "k", "b")])
    assert check_monotonic_reads(h).ok


def window(h, held, start=0.15, end=1.0):
    return {"start": start, "end": end, "standbys": held}


def cost_history(results):
    """s wrote k=a (the standbys have it); other wrote k=b (only the primary has it)."""
    steps = [put(0.0, "s", "k", "a"), put(0.2, "other", "k", "b")]
    steps += [get(0.3 + 0.05 * i, "s", "k", r) for i, r in enumerate(results)]
    return build(steps)


def test_reads_the_standbys_serve_are_within_the_bound():
    h = cost_history(["a"] * 5)
    v = check_primary_reads(h, [window(h, {"standby-a": {"k": "a"}, "standby-b": {"k": "a"}})])
    assert v.ok and v.stats == {"eligible": 5, "standby": 5}


def test_a_needless_primary_read_breaks_the_bound():
    h = cost_history(["b"] * 5)          # the first read went to the primary, the rest had to
    v = check_primary_reads(h, [window(h, {"standby-a": {"k": "a"}})])
    assert v.kinds() == ["needless-primary-read"]
    assert v.anomalies[0].data == {"eligible": 1, "standby": 0, "primary": 1}


def test_one_primary_read_in_many_is_tolerated():
    steps = [put(0.0, f"s{i}", f"k{i}", "a") for i in range(5)]
    steps += [put(0.2, "other", f"k{i}", "b") for i in range(5)]
    steps += [get(0.3 + 0.01 * i, f"s{i}", f"k{i}", "b" if i == 0 else "a") for i in range(5)]
    h = build(steps)
    held = {"standby-a": {f"k{i}": "a" for i in range(5)}}
    assert check_primary_reads(h, [window(h, held)]).ok


def test_reads_no_standby_could_serve_are_not_counted():
    h = build([put(0.0, "s", "k", "a"), put(0.2, "s", "k", "b"), get(0.3, "s", "k", "b")])
    v = check_primary_reads(h, [window(h, {"standby-a": {"k": "a"}})])
    assert v.ok and v.stats["eligible"] == 0


def test_reads_outside_the_window_are_not_counted():
    h = cost_history(["b"] * 3)
    assert check_primary_reads(h, [window(h, {"standby-a": {"k": "a"}}, start=5.0, end=6.0)]).ok


def test_check_sessions_judges_the_bound_only_with_windows():
    h = cost_history(["b"] * 3)
    assert check_sessions(h).ok
    assert check_sessions(h, [window(h, {"standby-a": {"k": "a"}})]).kinds() == \
        ["needless-primary-read"]
