"""Every shipped lab's graded variants get exactly their expected grade: a different correct
design full marks, a subtle mistake the loss of exactly the tests that teach it, for the anomaly
its chapter names (``autograder/NN-slug/variants/``, format in ``splitbrain.grading.variants``).

The gradings of every selected variant start together, SPLITBRAIN_VARIANT_JOBS (2) at a time,
the longest first; each test waits for its own.
"""
from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from splitbrain import paths
from splitbrain.grading.variants import Variant, VariantError, build, judge, load_variants
from splitbrain.lab import LabInfo, discover_labs
from splitbrain.testing import require_binary

LABS = discover_labs(paths.project_root())
JOBS = max(1, int(os.environ.get("SPLITBRAIN_VARIANT_JOBS", "2")))
SEED = 1


def _cases() -> list[tuple[LabInfo, Variant | str]]:
    """(lab, variant) for every variant; (lab, why) for a lab whose variants.toml cannot be read,
    so that only that lab's test fails, with the reason."""
    out: list[tuple[LabInfo, Variant | str]] = []
    for lab in LABS:
        try:
            out += [(lab, v) for v in load_variants(lab)]
        except VariantError as e:
            out.append((lab, str(e)))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def gradings(request, grading_env, tmp_path_factory):
    from splitbrain.grading.runner import grade_submission
    wanted = [item.callspec.params["case"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")
              and "case" in item.callspec.params]
    built = tmp_path_factory.mktemp("built")
    futures: dict[str, Future] = {}
    runnable = [c for c in wanted
                if not isinstance(c[1], str) and all(shutil.which(b) for b in c[1].binaries)]
    with ThreadPoolExecutor(JOBS) as pool:
        for lab, v in sorted(runnable, key=lambda c: c[1].select is not None):
            key = f"{lab.slug}:{v.name}"
            try:
                src = build(v, lab, built / lab.slug)
            except Exception as e:  # noqa: BLE001 - only this variant's test fails, with why
                futures[key] = Future()
                futures[key].set_exception(e)
                continue
            futures[key] = pool.submit(grade_submission, lab, src, SEED,
                                       tmp_path_factory.mktemp(v.name), 1 if v.select else 2,
                                       select=v.select)
        yield futures
        for f in futures.values():
            f.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[
    f"{lab.slug[:2]}-{v.name if not isinstance(v, str) else 'variants.toml'}" for lab, v in CASES])
def test_variant_is_graded_for_the_right_reason(case, gradings):
    lab, variant = case
    if isinstance(variant, str):
        pytest.fail(variant, pytrace=False)
    for binary in variant.binaries:
        require_binary(binary)
    problems = judge(variant, gradings[f"{lab.slug}:{variant.name}"].result(), lab.slug)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lab", LABS, ids=[lab.slug for lab in LABS])
def test_every_lab_has_a_correct_variant_and_mistakes(lab):
    """A lab whose only correct component is its own solution has not shown that the grader
    judges behaviour rather than one design."""
    try:
        vs = load_variants(lab)
    except VariantError as e:
        pytest.fail(str(e), pytrace=False)
    assert any(v.correct for v in vs), f"{lab.slug}: no different correct design among variants"
    assert any(not v.correct for v in vs), f"{lab.slug}: no subtle mistake among variants"
