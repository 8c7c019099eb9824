"""Lab 03's hidden tests tell subtly wrong orchestrators from a different correct one.

The variants in tests/labs/03/ are each one mistake away from the solution; each must fail the
hidden test that names its mistake, for the anomaly that test is about. A correct orchestrator of a
different design (one JSON log per saga, recovery always backward) must get full marks: the grader
tests guarantees, not the solution's table layout or key format.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "tests" / "labs" / "03"


def grade(submission: Path, select: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "autograder" / "03-sagas"), "-q",
           "-p", "splitbrain.grading.plugin", "-p", "no:cacheprovider", "--lab", "03-sagas",
           "--submission", str(submission)]
    if select:
        cmd += ["-k", select]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_different_correct_design_gets_full_marks():
    out = grade(VARIANTS / "alt_json_log_backward.py")
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("variant, test, anomaly", [
    ("unknown_is_declined", "test_05", "[dangling-saga]"),
    ("fresh_key_per_attempt", "test_06", "[double-refund]"),
    ("persist_after_first_step", "test_03", "[dangling-saga]"),
    ("compensation_gives_up", "test_07", "[dangling-saga]"),
])
def test_a_subtly_wrong_orchestrator_fails_for_its_mistake(variant, test, anomaly):
    out = grade(VARIANTS / f"{variant}.py", select=test)
    assert out.returncode == 1, out.stdout[-3000:]
    assert "1 failed" in out.stdout and anomaly in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_an_orchestrator_that_does_nothing_fails_every_test():
    out = grade(VARIANTS / "does_nothing.py")
    assert "9 failed" in out.stdout and "passed" not in out.stdout, out.stdout[-3000:]
