"""Lab 05's grader-side helpers that need no services: the declared policy read from source, the
window arithmetic, and the admissions picture."""
from __future__ import annotations

from matplotlib.figure import Figure

from splitbrain import paths
from splitbrain.checkers.ratelimit_lab import Decision
from splitbrain.labsupport.ratelimit import declared_policy, next_boundary
from splitbrain.labsupport.ratelimit_nb import plot_admissions

LAB = paths.project_root() / "labs" / "05-rate-limiting" / "limiter.py"
SOLUTION = paths.project_root() / "solutions" / "05-rate-limiting" / "limiter.py"


def test_the_shipped_components_declare_a_policy():
    assert declared_policy(LAB) == "closed"
    assert declared_policy(SOLUTION) == "open"


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
