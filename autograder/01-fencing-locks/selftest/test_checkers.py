"""The lab-01 checkers (``rig.checkers``) on hand-written histories: each guarantee, valid and
broken, and the order of leases they all rest on."""
import pytest
from rig.checkers import (GRACE_S, OVERRUN_S, busy_wait, check_answers, check_counter, check_fenced_writes,
                          check_lock, check_mutual_exclusion, check_progress, check_tokens,
                          check_waits, counter_value, leases, precedes, wait_over, writes)

from splitbrain.history import Event, History, call_value

TTL = {"a": 0.3, "b": 10.0, "c": 10.0}


def build(steps):
    """steps: (time, process, type, f, value) -> History; process "nemesis" steps are faults
    (value: {"phase": ..., "target": ..., **params})."""
    return History.from_events(Event(p, t, f, v, time, fault=p == "nemesis")
                               for time, p, t, f, v in steps)


def acq(t0, t1, p, result, wait_s=0.0):
    return [(t0, p, "invoke", "acquire", call_value([wait_s])), (t1, p, "ok", "acquire", result)]


def wr(t0, t1, p, value, token, result=True):
    return [(t0, p, "invoke", "write", call_value(["k", value, token])),
            (t1, p, "ok", "write", result)]


def rel(t0, t1, p, result=True):
    return [(t0, p, "invoke", "release", call_value()), (t1, p, "ok", "release", result)]


def fault(t0, t1, name, target, **params):
    return [(t0, "nemesis", "info", name, {"phase": "start", "target": target, **params}),
            (t1, "nemesis", "info", name, {"phase": "end", "target": target})]


def gc_pause_history(b_token=2, b_result=True, a_result=False):
    """a takes the lock (0.3 s lease) and stalls past it; b takes it and writes; a wakes, writes."""
    return build([*acq(0.00, 0.01, "a", 1), *acq(0.02, 0.40, "b", b_token, 5.0),
                  *wr(1.00, 1.01, "b", "b1", b_token, b_result),
                  *wr(1.20, 1.21, "a", "a1", 1, a_result)])


def split_set_incr_history(a_token=4, b_token=3):
    """a's acquire spans b's whole acquire (a stalled between its SET and its INCR, its lease
    ran out, b took the lock); a comes back with a_token; both write, a last."""
    return build([*acq(0.00, 0.10, "a", a_token),
                  *fault(0.03, 0.031, "server-clock-jump", "lock-server", step=3600),
                  *acq(0.04, 0.05, "b", b_token), *wr(0.06, 0.07, "b", "b1", b_token),
                  *wr(0.11, 0.12, "a", "a1", a_token, a_token > b_token),
                  *rel(0.13, 0.14, "a", False), *rel(0.15, 0.16, "b", True)])


# -- the order of leases ---------------------------------------------------------------------------
def test_leases_and_writes_are_paired():
    h = gc_pause_history()
    ls = leases(h, TTL)
    assert [(le.holder, le.token, le.generation) for le in ls] == [("a", 1, 0), ("b", 2, 1)]
    assert precedes(ls[0], ls[1]) and not precedes(ls[1], ls[0])
    ws = {w.value: w for w in writes(h, TTL)}
    assert ws["a1"].lease.token == 1 and ws["b1"].lease.token == 2


def test_write_arguments_by_position_or_by_keyword():
    h = build([(0.0, "a", "invoke", "RedisLock.acquire", call_value()),
               (0.1, "a", "ok", "RedisLock.acquire", 7),
               (0.2, "a", "invoke", "FencedStore.write", call_value(["k", "v"], {"token": 7})),
               (0.3, "a", "ok", "FencedStore.write", True)])
    (w,) = writes(h)
    assert (w.key, w.value, w.token, w.lease.token) == ("k", "v", 7, 7)
    h2 = build(wr(0.0, 0.1, "a", "v", 7))
    assert writes(h2)[0].value == "v" and writes(h2)[0].lease is None
    h3 = build([(0.0, "a", "invoke", "write", call_value([], {"key": "k", "value": "v", "token": 3})),
                (0.1, "a", "ok", "write", True)])
    assert (writes(h3)[0].key, writes(h3)[0].value, writes(h3)[0].token) == ("k", "v", 3)


def test_a_delayed_reply_puts_the_lease_first():
    """a's acquire completed after b's, but while b's 10 s lease certainly ran: a's lease was
    granted first (the grader only saw its reply late)."""
    ls = leases(split_set_incr_history(), TTL)
    a, b = ls[1], ls[0]                      # in the order their grants were seen: b, then a
    assert (a.holder, b.holder) == ("a", "b")
    assert precedes(a, b) and not precedes(b, a)


def test_a_server_clock_jump_ends_the_leases_it_finds():
    h = build([*acq(0.0, 0.01, "b", 1), *fault(0.5, 0.51, "server-clock-jump", "lock-server",
                                                step=3600)])
    (le,) = leases(h, TTL)
    assert le.ends_after == pytest.approx(0.5) and le.ends_by == pytest.approx(0.51)
    short = build([*acq(0.0, 0.01, "b", 1), *fault(0.5, 0.51, "server-clock-jump", "lock-server",
                                                   step=2)])
    assert leases(short, TTL)[0].ends_after == pytest.approx(10.0 - 0.02 - 2)


# -- mutual exclusion --------------------------------------------------------------------------
def lock_steal_history(release_ok=True):
    """a's lease runs out, b takes the lock, a releases late, c takes it at once."""
    return build([*acq(0.00, 0.01, "a", 1), *acq(0.02, 0.40, "b", 2),
                  *rel(0.41, 0.42, "a", release_ok), *acq(0.43, 0.44, "c", 3)])


def test_overlapping_holders_after_a_foreign_release():
    v = check_mutual_exclusion(lock_steal_history(), TTL)
    assert v.kinds() == ["overlapping-holders"]
    assert v.anomalies[0].data["holders"] == ["b", "c"]


def test_expiry_or_release_then_new_holder_is_fine():
    h = build([*acq(0.00, 0.01, "a", 1), *acq(0.02, 0.40, "b", 2)])
    assert check_mutual_exclusion(h, 0.3).valid is True
    h = build([*acq(0.00, 0.01, "a", 1), *rel(0.02, 0.03, "a"), *acq(0.04, 0.05, "b", 2)])
    assert check_mutual_exclusion(h, 10).valid is True


def test_a_reply_delayed_past_the_next_grant_is_not_an_overlap():
    assert check_mutual_exclusion(split_set_incr_history(a_token=2, b_token=3), TTL).valid is True


def test_not_granted_is_not_a_lease():
    h = build([*acq(0.00, 0.01, "a", 1), *acq(0.02, 0.03, "b", None)])
    assert check_mutual_exclusion(h, 10).valid is True and len(leases(h)) == 1


# -- tokens ----------------------------------------------------------------------------------------
def test_tokens_of_a_split_set_and_incr_are_out_of_order():
    v = check_tokens(split_set_incr_history(a_token=4, b_token=3), TTL)
    assert v.kinds() == ["token-order"]
    assert v.anomalies[0].data["holders"] == ["a", "b"]


def test_tokens_in_lease_order_are_fine_whatever_the_replies_order():
    assert check_tokens(split_set_incr_history(a_token=2, b_token=3), TTL).valid is True


def test_timestamp_tokens_from_a_clock_behind_are_out_of_order():
    v = check_tokens(gc_pause_history(b_token=0), TTL)
    assert v.kinds() == ["token-order"]
    assert check_tokens(build([*acq(0, 0.1, "a", 5), *acq(0.2, 0.3, "b", 5)]), TTL).kinds() \
        == ["token-order"]                   # strictly larger: the same token is not enough


# -- fenced writes ---------------------------------------------------------------------------------
def test_stale_write_in_storage_order():
    v = check_fenced_writes(gc_pause_history(a_result=True), applied=["b1", "a1"], ttl_s=TTL)
    assert v.valid is False and v.kinds() == ["stale-write"]
    assert "a (lease #1" in v.anomalies[0].message


def test_fenced_store_rejects_the_stale_write():
    assert check_fenced_writes(gc_pause_history(), applied=["b1"], ttl_s=TTL).valid is True


def test_without_ttls_only_real_time_orders_leases():
    assert check_fenced_writes(gc_pause_history(a_result=True), ["b1", "a1"]).kinds() \
        == ["stale-write"]
    # a's acquire overlaps b's in real time: without ttls nothing says which lease came first
    assert check_fenced_writes(split_set_incr_history(), ["b1", "a1"]).valid is True


def test_a_split_set_and_incr_lands_a_stale_write():
    v = check_fenced_writes(split_set_incr_history(), ["b1", "a1"], TTL)
    assert v.kinds() == ["stale-write"]


def test_phantom_value():
    assert check_fenced_writes(gc_pause_history(), ["b1", "zzz"], TTL).kinds() == ["phantom-write"]


# -- honest answers --------------------------------------------------------------------------------
def test_write_answers_must_match_the_storage():
    assert check_answers(gc_pause_history(), ["b1"], TTL).valid is True
    v = check_answers(gc_pause_history(a_result=True), ["b1"], TTL)     # said stored, was not
    assert v.kinds() == ["misreported-write"] and v.anomalies[0].data["value"] == "a1"
    v = check_answers(gc_pause_history(b_result=None), ["b1"], TTL)     # stored, said nothing
    assert v.kinds() == ["misreported-write"]


def test_release_answers_where_the_history_leaves_no_doubt():
    assert check_answers(lock_steal_history(release_ok=False), [], TTL).valid is True
    v = check_answers(lock_steal_history(release_ok=True), [], TTL)     # a's lease was b's
    assert v.kinds() == ["misreported-release"] and v.anomalies[0].data["holder"] == "a"
    own = build([*acq(0.0, 0.01, "b", 1), *rel(0.02, 0.03, "b", False)])
    assert check_answers(own, [], TTL).kinds() == ["misreported-release"]
    twice = build([*acq(0.0, 0.01, "b", 1), *rel(0.02, 0.03, "b"), *rel(0.04, 0.05, "b")])
    assert check_answers(twice, [], TTL).kinds() == ["misreported-release"]
    never = build(rel(0.0, 0.01, "c", True))
    assert check_answers(never, [], TTL).kinds() == ["misreported-release"]


def test_a_release_whose_lease_may_have_gone_meanwhile_is_not_judged():
    # b's 10 s lease, a server clock jump during b's release: either answer can be right
    h = build([*acq(0.0, 0.01, "b", 1), (0.02, "b", "invoke", "release", call_value()),
               *fault(0.03, 0.031, "server-clock-jump", "lock-server", step=3600),
               (0.05, "b", "ok", "release", False)])
    assert check_answers(h, [], TTL).valid is True
    # another worker released meanwhile (a broken release may have deleted b's key)
    h = build([*acq(0.0, 0.01, "b", 1), *rel(0.02, 0.03, "c", True), *rel(0.04, 0.05, "b", False)])
    assert check_answers(h, [], TTL).kinds() == ["misreported-release"]   # c's, not b's


# -- progress --------------------------------------------------------------------------------------
def test_a_store_that_drops_everything_is_caught():
    v = check_progress(gc_pause_history(), applied=[], ttl_s=TTL)
    assert v.kinds() == ["rejected-write"]
    assert "b (lease #2" in v.anomalies[0].message


def test_newer_write_refused_and_older_stored_is_rejected():
    v = check_progress(gc_pause_history(b_token=0, b_result=False, a_result=True), ["a1"], TTL)
    assert v.kinds() == ["rejected-write"]


def test_superseded_holder_may_be_refused():
    h = build([*acq(0.0, 0.1, "a", 1), *acq(0.2, 0.3, "b", 2), *wr(0.35, 0.38, "b", "b1", 2),
               *wr(0.4, 0.5, "a", "a1", 1, False)])
    assert check_progress(h, ["b1"], 0.01).valid is True
    # ... but a fence refuses only below a token it stored: with nothing stored, a's write was due
    h = build([*acq(0.0, 0.1, "a", 1), *acq(0.2, 0.3, "b", 2), *wr(0.4, 0.5, "a", "a1", 1, False)])
    assert check_progress(h, [], 0.01).kinds() == ["rejected-write"]


def test_a_holder_writing_twice_under_one_lease_must_land_both():
    h = build([*acq(0.0, 0.01, "b", 1), *wr(0.02, 0.03, "b", "b1", 1),
               *wr(0.04, 0.05, "b", "b2", 1, False)])
    v = check_progress(h, ["b1"], TTL)
    assert v.kinds() == ["rejected-write"] and v.anomalies[0].data["value"] == "b2"
    assert check_progress(h, ["b1", "b2"], TTL).valid is True


def test_nothing_stored_at_all_is_rejected_even_among_overlapping_leases():
    h = build([*acq(0.0, 0.01, "a", 1), *acq(0.02, 0.03, "b", 2),
               *wr(0.04, 0.05, "b", "b1", 2), *wr(0.06, 0.07, "a", "a1", 1)])
    assert check_progress(h, [], TTL).kinds() == ["rejected-write"]


def test_a_waiter_that_gives_up_on_a_free_lock_is_stuck():
    free = build(acq(0.0, 0.01, "c", None))                  # nobody held it
    assert check_progress(free, [], TTL).kinds() == ["stuck-lock"]
    held = build([*acq(0.0, 0.01, "b", 1), *acq(0.02, 1.02, "c", None, 1.0)])
    assert check_progress(held, [], TTL).valid is True
    # b released at 0.1; c gave up at 0.05 although its wait ran to 1.02: it should have waited
    early = build([*acq(0.0, 0.01, "b", 1), *acq(0.02, 0.05, "c", None, 1.0),
                   *rel(0.08, 0.1, "b")])
    v = check_progress(early, [], TTL)
    assert v.kinds() == ["stuck-lock"] and v.anomalies[0].data["free"][0] == pytest.approx(0.1)


def test_a_lease_that_should_have_expired_leaves_the_waiter_stuck():
    # a's 0.3 s lease was certainly over by 0.33; c waited until 1.0 and never got the lock
    h = build([*acq(0.0, 0.01, "a", 1), *acq(0.02, 1.0, "c", None, 0.98)])
    assert check_progress(h, [], TTL).kinds() == ["stuck-lock"]
    # c got it at 0.35: within the grace after the lease's end
    ok = build([*acq(0.0, 0.01, "a", 1), *acq(0.02, 0.35, "c", 2, 0.98)])
    assert check_progress(ok, [], TTL).valid is True


def test_a_lock_free_only_while_a_fault_held_the_waiter_up_is_not_judged():
    h = build([*acq(0.0, 0.01, "b", 1), *rel(0.02, 0.03, "b"),
               *fault(0.0, 2.0, "pause", "c"), *acq(0.01, 2.01, "c", None, 1.0)])
    assert check_progress(h, [], TTL).valid is True


def test_the_wait_is_measured_on_the_waiters_own_clock():
    # c's monotonic clock jumped an hour ahead at 0.05: its wait was over then; the lock freed at
    # 0.2 is no longer its business
    h = build([*acq(0.0, 0.01, "b", 1), *acq(0.02, 0.06, "c", None, 1.0),
               *fault(0.05, 5.0, "clock-jump", "c", step=3600, monotonic=True),
               *rel(0.18, 0.2, "b")])
    assert check_progress(h, [], TTL).valid is True
    # a wall-clock jump changes nothing
    h = build([*acq(0.0, 0.01, "b", 1), *acq(0.02, 0.06, "c", None, 1.0),
               *fault(0.05, 5.0, "clock-jump", "c", step=3600), *rel(0.18, 0.2, "b")])
    assert check_progress(h, [], TTL).kinds() == ["stuck-lock"]


# -- waits -----------------------------------------------------------------------------------------
def test_wait_over_follows_drift_and_monotonic_jumps():
    assert wait_over(build([]), "c", 1.0, 2.0) == pytest.approx(3.0)
    fast = build(fault(0.0, 9.0, "clock-drift", "c", rate=4.0))
    assert wait_over(fast, "c", 1.0, 2.0) == pytest.approx(1.5)
    jump = build(fault(1.5, 9.0, "clock-jump", "c", step=3600, monotonic=True))
    assert wait_over(jump, "c", 1.0, 2.0) == pytest.approx(1.5)
    back = build(fault(1.5, 9.0, "clock-jump", "c", step=-1.0, monotonic=True))
    assert wait_over(back, "c", 1.0, 2.0) == pytest.approx(4.0)
    other = build(fault(1.5, 9.0, "clock-jump", "b", step=3600, monotonic=True))
    assert wait_over(other, "c", 1.0, 2.0) == pytest.approx(3.0)


def test_an_acquire_that_waits_past_its_clock_overruns():
    h = build([*acq(0.0, 0.01, "b", 1), *fault(0.05, 5.0, "clock-jump", "c", step=3600,
                                                monotonic=True),
               *acq(0.02, 2.02, "c", None, 2.0)])
    v = check_waits(h)
    assert v.kinds() == ["wait-overrun"] and v.anomalies[0].data["over"] == pytest.approx(0.05)
    on_time = build([*acq(0.0, 0.01, "b", 1), *acq(0.02, 2.1, "c", None, 2.0)])
    assert check_waits(on_time).valid is True


def test_time_held_up_by_a_fault_extends_the_wait():
    h = build([*fault(0.1, 2.0, "stall", "redis", after=1), *acq(0.0, 2.2, "c", None, 0.5)])
    assert check_waits(h).valid is True


def test_busy_wait():
    assert busy_wait("a", 10, 0.3, 110).valid is True
    v = busy_wait("a", 111, 0.3, 110)
    assert v.kinds() == ["busy-wait"] and "a sent more than 110" in v.anomalies[0].message
    assert check_waits(build([]), busy=[("a", 111, 0.3, 110)]).kinds() == ["busy-wait"]
    assert check_waits(build([]), busy=[("a", 30, 0.3, 110)]).valid is True


# -- the counter, and all of them --------------------------------------------------------------------
def test_counter():
    assert check_counter(["1", "2", "3"]).valid is True
    assert check_counter(["1:w0:0", "2:w1:0", "3:w0:1"]).valid is True
    v = check_counter(["1:w0:0", "2:w1:0", "2:s:0", "3:w0:1"])
    assert v.kinds() == ["lost-update"] and v.anomalies[0].data["expected"] == 3
    assert check_counter([]).valid is True
    assert check_counter(["x"]).kinds() == ["lost-update"]
    assert counter_value("12:w0:3") == 12 and counter_value(0) == 0


def test_check_lock_joins_every_guarantee():
    assert check_lock(gc_pause_history(), ["b1"], TTL).valid is True
    v = check_lock(split_set_incr_history(), ["b1", "a1"], TTL, busy=[("a", 200, 0.3, 110)])
    assert v.kinds() == ["busy-wait", "stale-write", "token-order"]
    assert v.checker == "lock"


def test_the_allowances_leave_the_fixed_tests_room():
    # test_03: a waits 3 s for b; after b releases, a's wait has more than 2 s to run
    assert GRACE_S <= 1.0 and OVERRUN_S < 2.0   # test_03: a 2 s wait that ignores its clock
