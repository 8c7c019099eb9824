"""Lab 05's grader-side helpers that need no services (``rig.ratelimit``, ``rig.scenario``,
``rig.faults``): the declared policy read from source, the window arithmetic, the admissions
picture, and the lab's own fault."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from rig.checkers import Decision
from rig.ratelimit import WALL_CLOCK, declared_policy, next_boundary
from rig.scenario import plot_admissions
from splitbrain.faults import Nemesis
from splitbrain.faults.registry import FAULTS, FaultError, lab_faults
from splitbrain.history import History


def test_the_shipped_components_declare_a_policy(lab):
    assert declared_policy(lab.component_path) == "closed"
    assert declared_policy(lab.solution_path) == "open"


def test_policy_is_read_from_the_class_body_only(tmp_path):
    src = tmp_path / "limiter.py"
    cases = {
        'class RateLimiter:\n    FAILURE_POLICY = "closed"\n': "closed",
        'class RateLimiter:\n    FAILURE_POLICY: str = "open"\n': "open",
        'FAILURE_POLICY = "open"\nclass RateLimiter:\n    pass\n': None,
        'P = "open"\nclass RateLimiter:\n    FAILURE_POLICY = P\n': None,
        'class Other:\n    FAILURE_POLICY = "open"\n': None,
        'class RateLimiter(:\n': None,
    }
    for text, expect in cases.items():
        src.write_text(text)
        assert declared_policy(src) == expect, text
    assert declared_policy(tmp_path / "missing.py") is None


def test_next_boundary_is_the_next_multiple_of_the_window():
    assert next_boundary(2.0, now=101.3) == 102.0
    assert next_boundary(2.0, now=102.0) == 104.0


def test_admissions_picture_draws_and_survives_no_data():
    ds = [Decision("g1" if i % 2 else "g2", "c", i * 0.01, i * 0.01 + 0.002, i < 12)
          for i in range(20)]
    assert isinstance(plot_admissions(ds), Figure)
    assert isinstance(plot_admissions([]), Figure)


def test_the_window_boundary_is_a_recorded_condition_of_the_wall_clock():
    assert set(lab_faults()) == {"window-boundary"}
    cls = FAULTS["window-boundary"]
    assert cls.kind == "condition"
    assert cls.description == "requests timed to straddle the boundary of a fixed time window"
    h = History()
    nemesis = Nemesis(h)
    with nemesis.fault("window-boundary", WALL_CLOCK, at_wall=102.0):
        pass
    [w] = h.fault_windows()
    assert (w.name, w.target, w.params, w.end is not None) == (
        "window-boundary", "clock", {"at_wall": 102.0}, True)
    with pytest.raises(FaultError, match="at_wall"):
        nemesis.inject("window-boundary", WALL_CLOCK)
