"""The pictures render to real image files, headless, from hand-written histories."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from splitbrain import viz
from splitbrain.checkers.mutex import check_fencing
from splitbrain.history import Event, History

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def lock_history() -> History:
    rows = [(0.0, "a", "invoke", "acquire", None), (0.05, "a", "ok", "acquire", {"token": 1}),
            (0.1, "a", "invoke", "write", {"token": 1}),
            (0.2, "nemesis", "info", "pause", {"phase": "start", "target": "a"}),
            (1.1, "b", "invoke", "acquire", None), (1.15, "b", "ok", "acquire", 2),
            (1.2, "b", "invoke", "write", {"token": 2}), (1.25, "b", "ok", "write", True),
            (1.6, "nemesis", "info", "pause", {"phase": "end", "target": "a"}),
            (1.65, "a", "ok", "write", True),
            (1.7, "nemesis", "info", "partition", {"phase": "start", "target": "redis"}),
            (1.8, "c", "invoke", "acquire", None)]
    return History.from_events(Event(p, t, f, v, time, 0, p == "nemesis")
                               for time, p, t, f, v in rows)


def _is_image(path) -> None:
    data = path.read_bytes()
    assert len(data) > 2000
    if path.suffix == ".png":
        assert data.startswith(PNG_MAGIC)
    else:
        assert b"<svg" in data[:2000]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_spacetime_renders_with_the_anomaly(tmp_path, suffix):
    h = lock_history()
    v = check_fencing([{"token": 2, "accepted": True, "process": "b", "event": 7},
                       {"token": 1, "accepted": True, "process": "a", "event": 9}])
    assert v.kinds() == ["stale-write"]
    fig = viz.spacetime(h, v)
    assert isinstance(fig, Figure)
    path = viz.save(fig, tmp_path / f"st{suffix}")
    _is_image(path)
    if suffix == ".svg":
        assert "stale-write" in path.read_text()


def test_spacetime_as_the_grade_report_calls_it(tmp_path):
    out = viz.spacetime(lock_history(), path=tmp_path / "r.png", highlight=[9], title="fencing")
    assert out == tmp_path / "r.png"
    _is_image(out)


def test_spacetime_of_an_empty_history(tmp_path):
    _is_image(viz.spacetime(History(), path=tmp_path / "empty.png"))


def test_lease_timeline_renders(tmp_path):
    out = viz.lease_timeline(lock_history(), ttl_s=1.0, highlight=[9], path=tmp_path / "l.svg")
    _is_image(out)
    assert "token 1" in out.read_text()


def test_saga_graph_renders_counts(tmp_path):
    fx = [{"saga": "s1", "step": s, "action": "do"} for s in ("reserve", "charge")]
    out = viz.saga_graph(["reserve", "charge", "ship"], fx, path=tmp_path / "s.svg")
    _is_image(out)
    assert "dangling" in out.read_text()
    with pytest.raises(ValueError, match="forward steps"):
        viz.saga_graph([])


def test_partition_ring_renders_and_owner_rule(tmp_path):
    from splitbrain.viz.ring import ring_owner
    ring = {"s0": [0.1, 0.6], "s1": 0.3}
    assert ring_owner(ring, 0.05) == "s0"
    assert ring_owner(ring, 0.2) == "s1"
    assert ring_owner(ring, 0.9) == "s0"          # wraps around
    keys = {f"k{i}": i / 20 for i in range(20)}
    _is_image(viz.partition_ring(ring, keys, moved=["k3"], path=tmp_path / "ring.png"))


def test_save_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        viz.save(viz.spacetime(History()), tmp_path / "x.gif")
