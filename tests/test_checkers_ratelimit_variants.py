"""Lab 05's hidden tests judge behaviour, not one design: three other correct limiters (token
bucket, GCRA, Cloudflare's sliding-window counter) get full marks, and four subtly wrong ones lose
exactly the tests that teach their mistake. Each is graded by the real grader on real Redis."""
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
VARIANTS = ROOT / "tests" / "labs" / "05"
SLUG = "05-rate-limiting"

# variant -> (tests to run, tests that must fail with their anomaly kinds); None = all tests pass
CASES = {
    "ok_token_bucket.py": (None, {}),
    "ok_gcra.py": (None, {}),
    "ok_sliding_counter.py": (None, {}),
    "wrong_fixed_window_incr.py": ("test_03", {"test_03": "over-limit"}),
    "wrong_client_clock.py": ("test_04", {"test_04": "over-limit"}),
    "wrong_no_timeout.py": ("test_07", {"test_07": "hung-decision"}),
    "wrong_evalsha_cached.py": ("test_08", {"test_08": "starved"}),
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
