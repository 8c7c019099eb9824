"""The lab-01 checkers (``rig.checkers``) on hand-written histories."""
from rig.checkers import check_counter, check_fenced_writes, check_mutual_exclusion, leases, writes

from splitbrain.history import Event, History, call_value


def build(steps):
    """steps: (time, process, type, f, value) -> History."""
    return History.from_events(Event(p, t, f, v, time) for time, p, t, f, v in steps)


def gc_pause_history(b_token=2):
    """a takes the lock, stalls past its lease; b takes it and writes; a wakes up and writes."""
    return build([
        (0.00, "a", "invoke", "acquire", call_value([0])),
        (0.01, "a", "ok", "acquire", 1),
        (0.02, "b", "invoke", "acquire", call_value([5])),
        (1.10, "b", "ok", "acquire", b_token),
        (1.11, "b", "invoke", "write", call_value(["k", "b1", b_token])),
        (1.12, "b", "ok", "write", True),
        (1.20, "a", "invoke", "write", call_value(["k", "a1", 1])),
        (1.21, "a", "ok", "write", True),
    ])


def test_leases_and_writes_are_paired():
    h = gc_pause_history()
    ls = leases(h)
    assert [(l.holder, l.token, l.generation) for l in ls] == [("a", 1, 0), ("b", 2, 1)]
    ws = {w.value: w for w in writes(h)}
    assert ws["a1"].lease.generation == 0 and ws["b1"].lease.generation == 1


def test_write_arguments_by_position_or_by_keyword():
    h = build([
        (0.0, "a", "invoke", "RedisLock.acquire", call_value()),
        (0.1, "a", "ok", "RedisLock.acquire", 7),
        (0.2, "a", "invoke", "FencedStore.write", call_value(["k", "v"], {"token": 7})),
        (0.3, "a", "ok", "FencedStore.write", True),
    ])
    (w,) = writes(h)
    assert (w.key, w.value, w.token, w.lease.token) == ("k", "v", 7, 7)
    h2 = build([(0.0, "a", "invoke", "write", call_value(["k", "v", 7])),
                (0.1, "a", "ok", "write", True)])
    assert writes(h2)[0].value == "v" and writes(h2)[0].lease is None
    h3 = build([(0.0, "a", "invoke", "write",
                 call_value([], {"key": "k", "value": "v", "token": 3})),
                (0.1, "a", "ok", "write", True)])
    assert (writes(h3)[0].key, writes(h3)[0].value, writes(h3)[0].token) == ("k", "v", 3)


def test_stale_write_in_storage_order():
    v = check_fenced_writes(gc_pause_history(), applied=["b1", "a1"])
    assert v.valid is False and v.kinds() == ["stale-write"]
    assert "a (lease #1" in v.anomalies[0].message


def test_fenced_store_rejects_the_stale_write():
    h = build([*[(e.time, e.process, e.type, e.f, e.value) for e in gc_pause_history()][:7],
               (1.21, "a", "ok", "write", False)])
    assert check_fenced_writes(h, applied=["b1"]).valid is True


def test_newer_write_refused_and_older_stored_is_stale_and_rejected():
    # timestamp tokens: b's clock is behind, so b's token is smaller and the fence turns b away.
    v = check_fenced_writes(gc_pause_history(b_token=0), applied=["a1"])
    assert v.kinds() == ["rejected-write", "stale-write"]


def test_a_store_that_drops_everything_is_caught():
    v = check_fenced_writes(gc_pause_history(), applied=[])
    assert v.kinds() == ["rejected-write"]
    assert "b (lease #2" in v.anomalies[0].message


def test_superseded_holder_may_be_refused():
    h = build([
        (0.0, "a", "invoke", "acquire", call_value()), (0.1, "a", "ok", "acquire", 1),
        (0.2, "b", "invoke", "acquire", call_value()), (0.3, "b", "ok", "acquire", 2),
        (0.4, "a", "invoke", "write", call_value(["k", "a1", 1])),
        (0.5, "a", "ok", "write", False),
    ])
    assert check_fenced_writes(h, applied=[]).valid is True


def test_phantom_value():
    assert check_fenced_writes(gc_pause_history(), ["b1", "zzz"]).kinds() == ["phantom-write"]


def lock_steal_history(release_ok=True):
    """a's lease runs out, b takes the lock, a releases late, c takes it at once."""
    return build([
        (0.00, "a", "invoke", "acquire", call_value()), (0.01, "a", "ok", "acquire", 1),
        (0.02, "b", "invoke", "acquire", call_value()), (0.40, "b", "ok", "acquire", 2),
        (0.41, "a", "invoke", "release", call_value()), (0.42, "a", "ok", "release", release_ok),
        (0.43, "c", "invoke", "acquire", call_value()), (0.44, "c", "ok", "acquire", 3),
    ])


def test_overlapping_holders_after_a_foreign_release():
    v = check_mutual_exclusion(lock_steal_history(), ttl_s={"a": 0.3, "b": 10, "c": 10})
    assert v.kinds() == ["overlapping-holders"]
    assert v.anomalies[0].data["holders"] == ["b", "c"]


def test_expiry_then_new_holder_is_fine():
    h = build([
        (0.00, "a", "invoke", "acquire", call_value()), (0.01, "a", "ok", "acquire", 1),
        (0.02, "b", "invoke", "acquire", call_value()), (0.40, "b", "ok", "acquire", 2),
    ])
    assert check_mutual_exclusion(h, 0.3).valid is True


def test_release_then_new_holder_is_fine():
    h = build([
        (0.00, "a", "invoke", "acquire", call_value()), (0.01, "a", "ok", "acquire", 1),
        (0.02, "a", "invoke", "release", call_value()), (0.03, "a", "ok", "release", True),
        (0.04, "b", "invoke", "acquire", call_value()), (0.05, "b", "ok", "acquire", 2),
    ])
    assert check_mutual_exclusion(h, 10).valid is True


def test_not_granted_is_not_a_lease():
    h = build([
        (0.00, "a", "invoke", "acquire", call_value()), (0.01, "a", "ok", "acquire", 1),
        (0.02, "b", "invoke", "acquire", call_value()), (0.03, "b", "ok", "acquire", None),
    ])
    assert check_mutual_exclusion(h, 10).valid is True and len(leases(h)) == 1


def test_counter():
    assert check_counter(["1", "2", "3"]).valid is True
    v = check_counter(["1", "2", "2", "3"])
    assert v.kinds() == ["lost-update"] and v.anomalies[0].data["expected"] == 3
    assert check_counter([]).valid is True
    assert check_counter(["x"]).kinds() == ["lost-update"]
