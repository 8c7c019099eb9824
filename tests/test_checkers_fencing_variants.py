"""Lab 01's hidden tests judge behaviour, not one design: another correct lock gets full marks, and
subtly wrong ones lose the tests that teach their mistake, for the reason the chapter gives. Each is
graded by the real grader on real Redis and Postgres."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain import paths

ROOT = paths.project_root()
VARIANTS = ROOT / "tests" / "labs" / "01"
SLUG = "01-fencing-locks"

# variant -> (tests to run, {test: anomaly kind it must fail with}); an empty dict: all pass
CASES = {
    "ok_multi_exec_row_lock.py": (None, {}),
    "wrong_timestamp_tokens.py": ("test_03", {"test_03": "stale-write"}),
    "wrong_client_check.py": ("test_07", {"test_07": "stale-write"}),
    "wrong_plain_del.py": ("test_05", {"test_05": "overlapping-holders"}),
    "does_nothing.py": ("test_01 or test_06", {"test_01": "rejected-write",
                                               "test_06": "lost-update"}),
}


def grade(variant: Path, tmp_path: Path, select: str | None) -> dict[str, dict]:
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "autograder" / SLUG), "-q",
           "-p", "splitbrain.grading.plugin", "-p", "no:cacheprovider", "--lab", SLUG,
           "--submission", str(variant), "--sb-results", str(out),
           "--sb-artifacts", str(tmp_path / "artifacts")]
    if select:
        cmd += ["-k", select]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "SPLITBRAIN_ROOT": str(ROOT)})
    assert out.is_file(), f"no results:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return {t["name"][:7]: t for t in json.loads(out.read_text())["tests"]}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(CASES))
def test_variant_is_graded_for_the_right_reason(variant, services, tmp_path):
    select, must_fail = CASES[variant]
    results = grade(VARIANTS / variant, tmp_path, select)
    assert results, f"{variant}: no test ran"
    for name, r in sorted(results.items()):
        if name in must_fail:
            assert r["status"] == "failed", (variant, name, r["status"])
            assert must_fail[name] in r["anomalies"], (variant, name, r["anomalies"],
                                                       r["message"][:2000])
        else:
            assert r["status"] == "passed", (variant, name, r["status"], r["message"][:2000])
