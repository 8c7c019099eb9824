"""Lab 02's hidden tests tell subtly wrong components from a different correct one.

The variants in tests/labs/02/ are each one mistake away from a correct component; each must fail
the hidden test that names its mistake, for the anomaly that test is about. A correct component of
a different design (one active relay behind an advisory lock, plain id-order batches, a lookup
before the effect) must get full marks: the grader tests guarantees, not the solution's queries.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "tests" / "labs" / "02"
SLUG = "02-transactional-outbox"


def grade(submission: Path, select: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "autograder" / SLUG), "-q",
           "-p", "splitbrain.grading.plugin", "-p", "no:cacheprovider", "--lab", SLUG,
           "--submission", str(submission)]
    if select:
        cmd += ["-k", select]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_different_correct_design_gets_full_marks():
    out = grade(VARIANTS / "ok_advisory_lock_relay.py")
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("variant, test, anomaly", [
    ("wrong_skip_locked_reorders", "test_04", "[out-of-order]"),
    ("wrong_mark_before_ack", "test_03", "[lost-event]"),
    ("wrong_fresh_event_id", "test_02", "[duplicate-event]"),
    ("wrong_publish_first", "test_01", "[phantom-event]"),
    ("wrong_no_dedupe", "test_06", "[duplicate-effect]"),
])
def test_a_subtly_wrong_component_fails_for_its_mistake(variant, test, anomaly):
    out = grade(VARIANTS / f"{variant}.py", select=test)
    assert out.returncode == 1, out.stdout[-3000:]
    assert "1 failed" in out.stdout and anomaly in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_a_component_that_does_nothing_fails_every_test():
    out = grade(VARIANTS / "does_nothing.py")
    assert "6 failed" in out.stdout and "passed" not in out.stdout, out.stdout[-3000:]
