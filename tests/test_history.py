"""The one history format: a call's arguments always have one shape, faults pair into windows."""
import json

from splitbrain.history import History, call_value


def test_a_call_record_always_has_args_and_kwargs():
    h = History()
    inv = h.invoke("a", "write", call_value(["k", "v"], {"token": 3}))
    h.complete(inv, "ok", True)
    (op,) = h.operations()
    assert op.args == ["k", "v"] and op.kwargs == {"token": 3}
    assert op.arg(0, "key") == "k" and op.arg(2, "token") == 3 and op.arg(5, "nope", 9) == 9
    assert op.events == (0, 1) and op.result is True
    assert call_value() == {"args": [], "kwargs": {}}


def test_fault_windows_pair_start_and_end_and_keep_params():
    h = History()
    h.fault("pause", "a", phase="start")
    h.fault("latency", "redis", phase="start", ms=50)
    h.fault("pause", "a", phase="end")
    h.fault("kill", "b", phase="end")                 # an end without its start: an instant
    ws = h.fault_windows()
    assert [(w.name, w.target) for w in ws] == [("pause", "a"), ("latency", "redis"),
                                                ("kill", "b")]
    pause, latency, kill = ws
    assert pause.end is not None and pause.events == (0, 2)
    assert latency.end is None and latency.params == {"ms": 50}
    assert latency.covers(pause.end) and not pause.covers(pause.end + 1)
    assert kill.start == kill.end
    assert [w.name for w in h.fault_windows(["latency"])] == ["latency"]


def test_history_round_trips_through_json_lines(tmp_path):
    h = History()
    h.complete(h.invoke("a", "get", call_value(["k"])), "ok", {"v": 1})
    h.fault("partition", "redis")
    back = History.from_jsonl(h.to_jsonl(tmp_path / "h.jsonl"))
    assert [e.to_dict() for e in back] == [json.loads(json.dumps(e.to_dict())) for e in h]
