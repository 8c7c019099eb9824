"""Lab 04's checks (rig.checkers) on hand-written histories and placements, and the picture
focus of rig.partitioning."""
from __future__ import annotations

import pytest

from rig.checkers import check_balance, check_movement, check_placement, check_reads, moved_keys
from splitbrain.history import History, call_value


def put(h: History, p: str, key: str, value: str, outcome: str = "ok") -> None:
    inv = h.invoke(p, "put", call_value([key, value]))
    if outcome:
        h.complete(inv, outcome, None)


def get(h: History, p: str, key: str, result) -> None:
    inv = h.invoke(p, "get", call_value([key]))
    h.complete(inv, "ok", result)


def test_reads_of_the_latest_acknowledged_write_are_valid():
    h = History()
    put(h, "a", "k", "1")
    put(h, "a", "k", "2")
    get(h, "b", "k", "2")
    get(h, "b", "never-written", None)
    v = check_reads(h)
    assert v.valid is True, v.explain()
    assert v.stats["reads"] == 2


def test_a_stale_read_with_the_value_on_another_shard_is_misrouted():
    h = History()
    put(h, "a", "k", "1")
    get(h, "b", "k", None)
    v = check_reads(h, placement={"k": {"s0": None, "s2": "1"}})
    assert v.kinds() == ["misrouted-read"]
    assert v.anomalies[0].data["found_on"] == ["s2"]
    assert "s2" in v.anomalies[0].message


def test_a_stale_read_with_the_value_nowhere_is_a_lost_write():
    h = History()
    put(h, "a", "k", "1")
    put(h, "a", "k", "2")
    get(h, "b", "k", "1")
    v = check_reads(h, placement={"k": {"s1": "1"}})
    assert v.kinds() == ["lost-write"]
    assert v.anomalies[0].data["expected"] == ["2"]


def test_a_write_concurrent_with_the_read_may_or_may_not_be_seen():
    h = History()
    put(h, "a", "k", "1")
    w = h.invoke("a", "put", call_value(["k", "2"]))
    r = h.invoke("b", "get", call_value(["k"]))
    h.complete(w, "ok")
    h.complete(r, "ok", "1")
    r2 = h.invoke("c", "get", call_value(["k"]))
    h.complete(r2, "ok", "1")  # after the write completed: stale
    v = check_reads(h)
    assert [a.data["reader"] for a in v.anomalies] == ["c"]


def test_writes_of_unknown_outcome_and_failed_writes():
    h = History()
    put(h, "a", "k", "1")
    put(h, "a", "k", "2", outcome="info")   # may have happened
    put(h, "a", "k", "3", outcome="fail")   # did not happen
    get(h, "b", "k", "2")
    get(h, "b", "k", "1")
    get(h, "b", "k", "3")
    v = check_reads(h)
    assert [a.data["got"] for a in v.anomalies] == ["3"]


def test_arguments_by_position_or_by_keyword_are_understood():
    h = History()
    inv = h.invoke("a", "put", call_value(["k"], {"value": "v"}))
    h.complete(inv, "ok")
    inv = h.invoke("a", "put", call_value([], {"key": "j", "value": "w"}))
    h.complete(inv, "ok")
    inv = h.invoke("b", "get", call_value([], {"key": "k"}))
    h.complete(inv, "ok", None)
    inv = h.invoke("b", "get", call_value(["j"]))
    h.complete(inv, "ok", None)
    v = check_reads(h, {"k": {"s1": "v"}, "j": {"s0": "w"}})
    assert [a.kind for a in v.anomalies] == ["misrouted-read", "misrouted-read"]
    assert [(a.data["key"], a.data["expected"]) for a in v.anomalies] == [("k", ["v"]),
                                                                          ("j", ["w"])]
    inv = h.invoke("a", "put", call_value(["no-value"]))   # not a write the checker can judge
    h.complete(inv, "ok")
    assert check_reads(h).stats["keys_written"] == 2


def test_movement_of_one_in_n_is_fine_and_most_keys_is_not():
    before = {f"k{i}": {f"s{i % 4}": "x"} for i in range(100)}
    # consistent: only keys 0..19 move, to the new shard
    after_ok = {k: ({"s4": "x"} if i < 20 else where)
                for i, (k, where) in enumerate(before.items())}
    v = check_movement(before, after_ok, ["s0", "s1", "s2", "s3"], ["s0", "s1", "s2", "s3", "s4"])
    assert v.valid is True, v.explain()
    assert v.stats["fraction"] == 0.2
    # modulo: i % 5 instead of i % 4
    after_mod = {f"k{i}": {f"s{i % 5}": "x"} for i in range(100)}
    v = check_movement(before, after_mod, ["s0", "s1", "s2", "s3"],
                       ["s0", "s1", "s2", "s3", "s4"])
    assert v.kinds() == ["moved-too-many"]
    assert v.anomalies[0].data["moved"] == len(moved_keys(before, after_mod)) == 80


def test_a_copy_left_behind_does_not_hide_a_move():
    before = {"k": {"s0": "x"}}
    after = {"k": {"s0": "x", "s1": "x"}}
    assert moved_keys(before, after) == ["k"]


def test_movement_refuses_empty_input():
    with pytest.raises(ValueError, match="keys placed before"):
        check_movement({}, {}, ["s0"], ["s0", "s1"])
    with pytest.raises(ValueError, match="non-empty shard set"):
        check_movement({"k": {"s0": "x"}}, {}, [], ["s0"])


def test_balance():
    even = {f"k{i}": {f"s{i % 4}": "x"} for i in range(400)}
    assert check_balance(even, ["s0", "s1", "s2", "s3"]).valid is True
    skewed = {f"k{i}": {("s0" if i < 250 else f"s{i % 4}"): "x"} for i in range(400)}
    v = check_balance(skewed, ["s0", "s1", "s2", "s3"])
    assert v.kinds() == ["imbalanced"]
    assert "s0" in v.anomalies[0].message
    # a shard that holds nothing still counts towards the mean
    assert check_balance({"k": {"s0": "x"}}, ["s0", "s1"]).kinds() == ["imbalanced"]
    # a new shard that was never given its share: 4 x 25 % and 0 % is 1.25x at most, but 0x
    unused = {f"k{i}": {f"s{i % 4}": "x"} for i in range(400)}
    v = check_balance(unused, ["s0", "s1", "s2", "s3", "s4"])
    assert v.kinds() == ["imbalanced"]
    assert [a.data["shard"] for a in v.anomalies] == ["s4"]
    assert "at least 0.60x" in v.anomalies[0].message


def test_placement_finds_keys_kept_off_the_shards():
    placement = {"a": {"s0": "1"}, "b": {"s1": "old"}}
    v = check_placement({"a": "1", "b": "2", "c": "3"}, placement)
    assert sorted(a.data["key"] for a in v.anomalies) == ["b", "c"]
    assert v.kinds() == ["unplaced-key"]


def test_focus_keeps_every_anomaly_and_draws_only_a_few_keys():
    from rig.partitioning import focus
    h = History()
    for i in range(10):
        put(h, "a", f"k{i}", "1")
    h.fault("add-shard", "s4")
    for i in range(10):
        get(h, "b", f"k{i}", None)
    v = check_reads(h, {f"k{i}": {"s1": "1"} for i in range(10)})
    assert len(v.anomalies) == 10
    fv, sub = focus(v, h, keys_shown=2)
    assert len(fv.anomalies) == 10 and fv.kinds() == v.kinds()
    assert len(sub) == 2 * 4 + 1                    # two keys: put and get, invoke and ok; a fault
    drawn = [a for a in fv.anomalies if a.events]
    assert [a.data["key"] for a in drawn] == ["k0", "k1"]
    for a in drawn:
        assert {sub.events[i].process for i in a.events} == {"b"}        # the stale read ...
        assert {sub.events[i].process for i in a.data["context"]} == {"a"}   # ... the write
        assert all(sub.events[i].value["args"][0] == a.data["key"]
                   for i in (*a.events, *a.data["context"]) if sub.events[i].type == "invoke")
    assert all(not a.events and not a.data["context"] for a in fv.anomalies if a not in drawn)


# -- the guarantees' checkers (lab.toml [[guarantees]]) --------------------------------------------
def test_a_stale_read_names_only_the_read_and_keeps_the_missed_write_as_context():
    from rig.checkers import check_routing
    h = History()
    put(h, "a", "k", "1")
    get(h, "b", "k", None)
    v = check_routing(h, placement={"k": {"s2": "1"}})
    assert v.kinds() == ["misrouted-read"]
    a = v.anomalies[0]
    assert [h.events[i].process for i in a.events] == ["b", "b"]
    assert [h.events[i].process for i in a.data["context"]] == ["a", "a"]


def test_routing_and_lost_writes_split_the_stale_reads():
    from rig.checkers import check_lost_writes, check_routing
    h = History()
    put(h, "a", "k", "1")
    put(h, "a", "j", "1")
    get(h, "b", "k", None)            # the value is on s2: misrouted
    get(h, "b", "j", None)            # the value is nowhere: lost
    placement = {"k": {"s2": "1"}, "j": {}}
    assert check_routing(h, placement).kinds() == ["misrouted-read"]
    assert check_lost_writes(h, placement).kinds() == ["lost-write"]


def test_a_write_lost_after_its_last_read_is_found_from_the_shards():
    from rig.checkers import check_lost_writes
    h = History()
    put(h, "a", "k", "1")
    get(h, "b", "k", "1")
    put(h, "a", "k", "2")             # acknowledged, never read, then overwritten by a copy
    v = check_lost_writes(h, placement={"k": {"s4": "1"}})
    assert v.kinds() == ["lost-write"]
    assert v.anomalies[0].data["expected"] == ["2"]
    assert {h.events[i].process for i in v.anomalies[0].events} == {"a"}
    assert check_lost_writes(h, placement={"k": {"s4": "2", "s1": "1"}}).valid is True


def test_available_judges_failed_calls_but_not_those_of_a_killed_process():
    from rig.checkers import check_available
    h = History()
    put(h, "a", "k", "1")
    inv = h.invoke("a", "get", call_value(["k"]))
    h.complete(inv, "fail", {"error": "ConnectionError", "message": "refused"})
    v = check_available(h)
    assert v.kinds() == ["unavailable"]
    h2 = History()
    inv = h2.invoke("m", "put", call_value(["k", "1"]))
    h2.fault("kill", "m")
    h2.complete(inv, "info", None)
    assert check_available(h2).valid is True


def test_move_counts_copies_and_wants_the_new_shard_set():
    from rig.checkers import check_move
    h = History()
    b = h.invoke("m", "begin_rebalance", call_value([{"s0": "u0"}]))
    h.complete(b, "ok", None)
    m1 = h.invoke("m", "migrate", call_value([5]))
    h.complete(m1, "ok", 3)
    m2 = h.invoke("m", "migrate", call_value([5]))
    h.complete(m2, "ok", 0)
    f = h.invoke("m", "finish_rebalance", call_value([]))
    h.complete(f, "ok", None)
    s = h.invoke("m", "shards", call_value([]))
    h.complete(s, "ok", ["s0", "s1"])
    assert check_move(h, ["s0", "s1"], {m1.index: 3, m2.index: 0, f.index: 0}).valid is True
    assert check_move(h, ["s0", "s1"], {m1.index: 2}).kinds() == ["miscounted-copies"]
    assert check_move(h, ["s0", "s1"], {f.index: 4}).kinds() == ["miscounted-copies"]
    assert check_move(h, ["s0", "s1", "s2"]).kinds() == ["unfinished-move"]
