"""Lab 04's hidden tests judge behaviour, not one design: rendezvous hashing and jump consistent
hash get full marks, and six subtly wrong stores lose the tests that teach their mistake. Each is
graded by the real grader on real Redis shard servers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain import paths
from splitbrain.testing import require_binary

ROOT = paths.project_root()
VARIANTS = ROOT / "tests" / "labs" / "04"
SLUG = "04-partitioning"

# variant -> (tests to run, tests that must fail with their anomaly kinds); None = all tests pass
CASES = {
    "ok_rendezvous.py": (None, {}),
    "ok_jump_hash.py": (None, {}),
    "wrong_stable_modulo.py": ("test_01 or test_02 or test_05",
                               {"test_02": "moved-too-many", "test_05": "lost-write"}),
    "wrong_ring_copy_then_switch.py": ("test_05 or test_06",
                                       {"test_05": "lost-write", "test_06": "lost-write"}),
    "wrong_one_point_per_shard.py": ("test_04", {"test_04": "imbalanced"}),
    "wrong_copy_if_different.py": ("test_05", {"test_05": "lost-write"}),
    "wrong_no_fence.py": ("test_05", {"test_05": "lost-write"}),
    "wrong_noop_rebalance.py": ("test_02", {"test_02": "imbalanced"}),
}


def grade(variant: Path, tmp_path: Path, select: str | None) -> dict[str, dict]:
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "autograder" / SLUG), "-q",
           "-p", "splitbrain.grading.plugin", "-p", "no:cacheprovider", "--lab", SLUG,
           "--submission", str(variant), "--sb-results", str(out),
           "--sb-artifacts", str(tmp_path / "artifacts")]
    if select:
        cmd += ["-k", select]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPLITBRAIN_ROOT": str(ROOT)})
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {t["name"][:7]: t for t in json.loads(out.read_text())["tests"]}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(CASES))
def test_other_designs_pass_and_subtle_mistakes_fail(variant, tmp_path, services):
    require_binary("redis-server")
    select, must_fail = CASES[variant]
    results = grade(VARIANTS / variant, tmp_path, select)
    assert results, "no test ran"
    for name, t in sorted(results.items()):
        if name in must_fail:
            assert t["status"] == "failed", (name, t["status"], t["message"][:2000])
            assert must_fail[name] in t["anomalies"], (name, t["anomalies"])
        else:
            assert t["status"] == "passed", (variant, name, t["status"], t["message"][:2000])
