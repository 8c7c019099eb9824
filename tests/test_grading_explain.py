"""expect_valid on hand-written histories: the failure text names each anomaly, the faults around
it, the seed and the hint; the anomaly kinds are recorded for verify; the picture is drawn."""
import pytest

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.grading import expect_valid
from splitbrain.grading.context import TestContext, set_current
from splitbrain.grading.explain import faults_around
from splitbrain.history import History


def history() -> History:
    h = History()
    a = h.invoke("a", "write", 1)
    h.complete(a, "ok", True)
    h.fault("pause", "a", phase="start")
    b = h.invoke("b", "write", 2)
    h.complete(b, "ok", True)
    h.fault("pause", "a", phase="end")
    h.fault("partition", "redis")  # never healed
    return h


def test_faults_around_an_anomaly_name_the_fault_active_then():
    h = history()
    assert faults_around(Anomaly("x", "m", (3, 4)), h)[0].startswith("pause(a)")


def test_valid_verdict_passes_and_records_nothing(tmp_path):
    props: list = []
    set_current(TestContext(nodeid="t::ok", artifacts=tmp_path, user_properties=props))
    v = verdict("writes", [])
    assert expect_valid(v, history()) is v and props == []


def test_invalid_verdict_explains_itself(tmp_path):
    props: list = []
    set_current(TestContext(nodeid="x.py::test_07_pause", seed=42, artifacts=tmp_path,
                            user_properties=props))
    v = verdict("fencing", [Anomaly("stale-write", "a wrote with token 3 after b wrote with 4",
                                    (3, 4))])
    with pytest.raises(AssertionError) as e:
        expect_valid(v, history(), hint="check the token in the store")
    msg = str(e.value)
    assert "fencing: 1 anomaly" in msg
    assert "[stale-write] a wrote with token 3 after b wrote with 4" in msg
    assert "faults active: pause(a)" in msg and "partition" not in msg  # it began later
    assert "replay with --seed 42" in msg and "hint: check the token in the store" in msg
    assert ("anomalies", ["stale-write"]) in props
    pictures = [v for k, v in props if k == "picture"]
    assert pictures and pictures[0].endswith("test_07_pause.svg")
    assert f"picture: {pictures[0]}" in msg


def test_unknown_is_never_valid(tmp_path):
    props: list = []
    set_current(TestContext(nodeid="t::u", artifacts=tmp_path, user_properties=props))
    with pytest.raises(AssertionError, match="unknown never counts as valid"):
        expect_valid(Verdict("unknown", (), "big"))
    assert ("anomalies", ["unknown"]) in props
