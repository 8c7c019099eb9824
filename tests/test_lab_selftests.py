"""Each lab's own unit tests (``autograder/NN-slug/selftest/``: its rig's checkers on hand-written
histories, its world's helpers against real servers) pass. They run in a pytest process per lab,
under the grading plugin, so that each lab's ``rig`` is the only one loaded."""
import subprocess
import sys

import pytest

from splitbrain import paths
from splitbrain.lab import discover_labs

LABS = [lab for lab in discover_labs(paths.project_root()) if lab.selftest_dir.is_dir()]


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS, ids=[lab.slug for lab in LABS])
def test_lab_selftests_pass(lab, grading_env, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "splitbrain.grading.plugin", "--rootdir", str(lab.selftest_dir),
         "--sb-artifacts", str(tmp_path / "artifacts"), str(lab.selftest_dir)],
        capture_output=True, text=True, timeout=900, cwd=lab.root)
    assert proc.returncode == 0, f"{lab.slug} selftests:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
