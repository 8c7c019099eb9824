"""Every lab in labs/ proves itself: its shipped broken component fails with an anomaly its
chapter teaches, and its solution gets full marks (``splitbrain verify``, one test per lab)."""
import pytest

from splitbrain import paths
from splitbrain.grading.verify import verify_lab
from splitbrain.lab import discover_labs

LABS = discover_labs(paths.project_root())


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS, ids=[lab.slug for lab in LABS])
def test_lab_proves_itself(lab, grading_env, tmp_path):
    proof = verify_lab(lab, out_dir=tmp_path)
    assert proof.proves, f"{lab.slug}:\n  " + "\n  ".join(proof.problems)
    assert proof.shown, f"{lab.slug}: no taught anomaly shown"
