"""``splitbrain release --gradescope LAB OUT.zip``: a Gradescope autograder for one lab.

The zip holds ``setup.sh`` (run once when Gradescope builds the image: the system packages the
embedded backend needs, a venv with the kit), ``run_autograder`` (run for each submission), the
kit (``kit/``), the lab (``course/labs/LAB``: lab.toml, rig, handout) with its hidden tests
(``course/autograder/LAB`` without variants, selftests or mutants) and ``gradescope.json`` (lab,
seed, kit version, source commit). Everything comes from the checkout's committed tree.

``run_autograder`` grades ``ROOT/submission`` with the kit's own grader
(:func:`splitbrain.grading.runner.grade_submission`) and writes ``ROOT/results/results.json`` in
Gradescope's format: the score, one entry per hidden test (name, score, max_score, status
passed|failed, output, visibility ``after_published`` so a test's details show once grades are
published). The component is found as in a batch (:func:`splitbrain.grading.submissions.choose`):
named like the lab's component, else the one file or notebook that defines what the lab requires,
at any depth, archives unpacked; when that is ambiguous (two candidates, none, an archive it cannot
open) no test runs, and the results say so (``extra_data.not_graded``) and what to submit. A
grading that says nothing about the code (services down, the grader failing) is reported with
score 0, no tests and an ``output`` that says it is not the learner's fault. ROOT is
``SPLITBRAIN_GRADESCOPE_ROOT`` (default /autograder), so a test can lay it out anywhere.
"""
from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from splitbrain.release import ReleaseError, _git

SKIP_DIRS = ("variants/", "selftest/")
SKIP_FILES = ("mutants.toml",)

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 or 24.04).
# The embedded backend needs a Python >= 3.11 with venv, and a redis-server; Postgres and the
# Kafka-compatible broker come as wheels with the kit.
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"
ROOT="${SPLITBRAIN_GRADESCOPE_ROOT:-/autograder}"
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip redis-server \
    ca-certificates
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv
  fi
fi
PY=python3
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || PY=python3.11
"$PY" -m venv "$ROOT/venv"
"$ROOT/venv/bin/pip" install --quiet --upgrade pip
"$ROOT/venv/bin/pip" install --quiet "$SRC/kit"
# Build the Postgres template now, into the image, instead of during the first submission.
SPLITBRAIN_ROOT="$SRC/course" "$ROOT/venv/bin/python" -m splitbrain.release_gradescope warm \
  || echo "setup: the services did not start here; run_autograder will try again"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission: grade ROOT/submission with the hidden tests, write
# ROOT/results/results.json. Whatever happens, a results.json is written.
ROOT="${SPLITBRAIN_GRADESCOPE_ROOT:-/autograder}"
PY="${SPLITBRAIN_GRADESCOPE_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
if [ -x "$PY" ] || command -v "$PY" >/dev/null 2>&1; then
  "$PY" -m splitbrain.release_gradescope run "$ROOT"
fi
if [ ! -s "$ROOT/results/results.json" ]; then
  cat > "$ROOT/results/results.json" <<'JSON'
{"score": 0, "tests": [], "stdout_visibility": "hidden",
 "output": "This submission was not graded: the autograder could not start (its Python or the kit is missing). This is not your fault, and the 0 is not a grade: your instructor will regrade it.",
 "extra_data": {"infra_error": true}}
JSON
fi
exit 0
"""


def build_zip(lab_name: str, out: str | Path, root: str | Path | None = None, ref: str = "HEAD",
              seed: int = 1, force: bool = False) -> dict:
    """Write the Gradescope autograder zip of lab ``lab_name``; returns what is in it."""
    from splitbrain import __version__, paths
    from splitbrain.lab import LabError, find_lab
    root = Path(root) if root is not None else paths.project_root()
    out = Path(out).resolve()
    if out.suffix != ".zip":
        raise ReleaseError(f"{out.name}: name the autograder file OUT.zip")
    if out.exists() and not force:
        raise ReleaseError(f"{out} exists; name another file, or pass --force to replace it")
    try:
        lab = find_lab(lab_name, root)
    except LabError as e:
        raise ReleaseError(str(e)) from None
    commit = _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    data = _git(root, "archive", "--format=tar", commit, binary=True)
    lab_pre, hid_pre = f"labs/{lab.slug}/", f"autograder/{lab.slug}/"
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            n = m.name
            if n.startswith("splitbrain/") or n in ("pyproject.toml", "README.md"):
                dest = f"kit/{n}"
            elif n.startswith(lab_pre) and not n.startswith(lab_pre + "figures/"):
                dest = f"course/{n}"
            elif n.startswith(hid_pre):
                rest = n[len(hid_pre):]
                if rest.startswith(SKIP_DIRS) or rest in SKIP_FILES or rest.startswith("bench"):
                    continue
                dest = f"course/{n}"
            else:
                continue
            files[dest] = tar.extractfile(m).read()  # type: ignore[union-attr]
            modes[dest] = 0o755 if m.mode & 0o111 else 0o644
    hidden = sorted(f for f in files if f.startswith(f"course/{hid_pre}test_"))
    if not hidden:
        raise ReleaseError(f"{lab.slug} has no hidden tests at {commit[:12]} (autograder/"
                           f"{lab.slug}/test_*.py); commit them first")
    if f"course/{lab_pre}lab.toml" not in files:
        raise ReleaseError(f"labs/{lab.slug}/lab.toml is not committed at {commit[:12]}")
    meta = {"lab": lab.slug, "component": lab.component, "seed": seed, "kit_version": __version__,
            "source_commit": commit}
    files["gradescope.json"] = (json.dumps(meta, indent=1) + "\n").encode()
    files["course/pyproject.toml"] = b"# the lab's root for the grader (labs/, autograder/)\n"
    files["setup.sh"], files["run_autograder"] = SETUP_SH.encode(), RUN_AUTOGRADER.encode()
    modes.update({"setup.sh": 0o755, "run_autograder": 0o755, "gradescope.json": 0o644,
                  "course/pyproject.toml": 0o644})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o100000 | modes[name]) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, files[name])
    os.replace(tmp, out)
    return {**meta, "zip": str(out), "files": len(files),
            "hidden_tests": [Path(h).name for h in hidden]}


# -- inside Gradescope's image ------------------------------------------------------------------

NOT_YOUR_FAULT = ("This submission was not graded: {why}\nThis is not your fault, and the 0 is "
                  "not a grade: your instructor will regrade it (nothing was counted).")


class _Learner(Exception):
    """The submission cannot be graded as handed in; the message tells the learner what to do."""


def infra_results(why: str, seconds: float = 0.0) -> dict:
    return {"score": 0, "execution_time": round(seconds), "tests": [],
            "output": NOT_YOUR_FAULT.format(why=why.strip()), "stdout_visibility": "hidden",
            "extra_data": {"infra_error": True}}


def find_component(folder: Path, lab, unpack_dir: Path) -> tuple[Path, str | None]:
    """The learner's component in Gradescope's submission folder, and a note on what was left
    out: the file named like the component, else the one file (or notebook) that defines what the
    lab requires, at any depth, archives unpacked into ``unpack_dir``. Anything ambiguous is a
    message for the learner (:func:`splitbrain.grading.submissions.choose`)."""
    from splitbrain.grading import submissions as s
    if not folder.is_dir():
        raise _Learner(f"no submission folder ({folder}); hand in {lab.component}")
    n = iter(range(1, 10**6))
    try:
        files = s.learner_files(folder, lambda a: s.unpack(a, unpack_dir / f"{next(n):04d}"))
    except s.SubmissionError as e:
        raise _Learner(str(e).replace(f"{folder}/", "")) from None
    pick, problem, note = s.choose(files, lab, "the submission", again="submit again")
    if pick is None:
        raise _Learner(problem)
    return pick[0], note


def to_results(result, lab) -> dict:
    """Gradescope's results.json of a real verdict (every test graded)."""
    d = result.to_gradescope_dict()
    for t, src in zip(d["tests"], result.tests):
        t["visibility"] = "after_published"   # the zip holds only hidden tests
        t["status"] = "passed" if src.status == "passed" else "failed"
        if t["status"] == "failed" and not (t.get("output") or "").strip():
            t["output"] = f"{src.status}: the test did not pass (no message)"
    passed = sum(t.status == "passed" for t in result.tests)
    d["output"] = (f"{lab.slug}: {result.score:g}/{result.max_score:g} ({passed} of "
                   f"{len(result.tests)} hidden tests pass, seed {result.seed}). Each test's "
                   f"details are shown when your instructor publishes the grades.")
    d["stdout_visibility"] = "hidden"
    d["score"] = result.score
    return d


def run(root: str | Path) -> int:
    """Grade ``root/submission``; write ``root/results/results.json``. Always writes it."""
    t0 = time.monotonic()
    root = Path(root).resolve()
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)

    def write(d: dict) -> int:
        from splitbrain.grading.runner import write_atomic
        write_atomic(results, json.dumps(d, indent=1))
        print(json.dumps({k: d[k] for k in ("score", "output")}, indent=1))
        return 0

    try:
        source = root / "source"
        meta = json.loads((source / "gradescope.json").read_text())
        course = source / "course"
        from splitbrain.settings import Settings
        os.environ[Settings.root.env] = str(course)  # this process and the graders it starts
        from splitbrain.grading.runner import grade_submission
        from splitbrain.lab import find_lab
        lab = find_lab(meta["lab"], course)
        with tempfile.TemporaryDirectory(prefix="splitbrain-gs-") as tmp:
            found = _component(root / "submission", lab, Path(tmp))
            if isinstance(found, dict):
                return write({**found, "execution_time": round(time.monotonic() - t0)})
            sub, note = found
            problem = _services(lab)
            if problem:
                return write(infra_results(problem, time.monotonic() - t0))
            result = grade_submission(lab, sub, int(meta.get("seed", 1)), Path(tmp) / "out",
                                      jobs=2)
        if result.error or not result.tests:
            print(result.error or "no tests", file=sys.stderr)
            return write(infra_results("the grader could not run the tests.",
                                       time.monotonic() - t0))
        if result.infra_errors:
            names = ", ".join(t.name for t in result.tests if t.status == "infra_error")
            return write(infra_results(f"the services the grading needs failed during "
                                       f"{result.infra_errors} test(s) ({names}).",
                                       time.monotonic() - t0))
        d = to_results(result, lab)
        if note:
            d["output"] = f"{note.removeprefix('the submission: ')}\n{d['output']}"
        return write(d)
    except Exception:  # noqa: BLE001 - the harness must always get a results.json
        traceback.print_exc()
        return write(infra_results("the autograder itself failed (its log is in the "
                                   "instructor's view).", time.monotonic() - t0))


def _component(folder: Path, lab, tmp: Path) -> tuple[Path, str | None] | dict:
    """(the component, a note) found in the submission folder and checked (it parses, it defines
    what the lab requires), else the results.json that says what to hand in."""
    from splitbrain.grading.submissions import SubmissionError, component_file

    def say(e: Exception) -> str:
        return (str(e).replace(f"{folder}/", "").replace(f"{tmp}/", "")
                .replace("run again", "submit again").replace("grade again", "submit again"))
    try:
        sub, note = find_component(folder, lab, tmp / "unpacked")
    except (_Learner, SubmissionError) as e:   # no test can run: not a grade of the code
        return {"score": 0, "tests": [], "stdout_visibility": "hidden",
                "output": f"{lab.slug}: your submission was not graded (no test ran, so this 0 "
                          f"says nothing about your code): {say(e)}",
                "extra_data": {"not_graded": True}}
    try:
        component_file(sub, lab, tmp / "check")
    except SubmissionError as e:   # the learner's code does not parse or lacks a name
        return {"score": 0, "tests": [], "stdout_visibility": "hidden",
                "output": f"{lab.slug}: your submission could not be graded: {say(e)}"}
    return sub, note


def _services(lab) -> str | None:
    from splitbrain.services import ServiceError, ensure_up
    if not lab.services:
        return None
    try:
        ensure_up(list(lab.services))
    except ServiceError as e:
        return f"the services the grading needs did not start ({e})."
    return None


def warm() -> int:
    """setup.sh: start the lab's services once (the Postgres template is built into the
    image), then stop them."""
    from splitbrain.lab import discover_labs
    from splitbrain.services import down, ensure_up
    names = sorted({s for lab in discover_labs() for s in lab.services})
    if names:
        ensure_up(names)
        down()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and len(argv) == 2:
        return run(argv[1])
    if argv == ["warm"]:
        return warm()
    print("usage: python -m splitbrain.release_gradescope run ROOT | warm", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
