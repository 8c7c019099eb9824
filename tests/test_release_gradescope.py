"""`splitbrain release --gradescope`: the zip's run_autograder, in a simulated /autograder layout
against real services, writes a results.json of Gradescope's shape: full marks for the solution,
less for the broken handout with each failing test saying why, a clear message for garbage, and
an infrastructure failure that charges nothing. What is not tested here: Gradescope's own
servers and image build (setup.sh's apt and pip steps)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from splitbrain.release_gradescope import build_zip

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def _valid(d: dict) -> None:
    """Gradescope's results.json (gradescope-autograders.readthedocs.io, specs)."""
    assert isinstance(d["score"], (int, float)) and isinstance(d.get("output", ""), str)
    assert isinstance(d["tests"], list)
    for t in d["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}, t
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"]
        assert t["status"] in ("passed", "failed") and t["visibility"] in VISIBILITY
    if d["tests"]:
        assert d["score"] == pytest.approx(sum(t["score"] for t in d["tests"]))
    assert d.get("stdout_visibility", "hidden") in VISIBILITY
    json.dumps(d)


@pytest.fixture(scope="module")
def zipped(tmp_path_factory):
    out = tmp_path_factory.mktemp("gs") / "lab01.zip"
    made = build_zip("01", out, ROOT)
    return out, made


def _autograder(tmp_path: Path, zipped: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zipped) as z:
        z.extractall(root / "source")
        for info in z.infolist():   # zipfile drops the modes; Gradescope keeps them
            mode = info.external_attr >> 16
            if mode:
                (root / "source" / info.filename).chmod(stat.S_IMODE(mode))
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for name, text in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_text(text)
    return root


def _run(root: Path, **env) -> dict:
    env = {**os.environ, "SPLITBRAIN_GRADESCOPE_ROOT": str(root),
           "SPLITBRAIN_GRADESCOPE_PYTHON": sys.executable, **env}
    env.pop("SPLITBRAIN_ROOT", None)
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = json.loads((root / "results" / "results.json").read_text())
    _valid(d)
    return d


def _git_show(path: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{path}"], capture_output=True,
                          text=True, check=True).stdout


def test_the_zip_holds_the_scripts_the_kit_and_only_the_graded_hidden_tests(zipped):
    out, made = zipped
    names = zipfile.ZipFile(out).namelist()
    assert {"setup.sh", "run_autograder", "gradescope.json", "kit/pyproject.toml"} <= set(names)
    lab = made["lab"]
    assert made["hidden_tests"] and all(f"course/autograder/{lab}/{t}" in names
                                        for t in made["hidden_tests"])
    assert not [n for n in names if "/variants/" in n or "/selftest/" in n
                or n.endswith("mutants.toml") or n.startswith("solutions/") or "/solutions/" in n]
    for script in ("setup.sh", "run_autograder"):
        info = zipfile.ZipFile(out).getinfo(script)
        assert (info.external_attr >> 16) & 0o111, f"{script} is not executable"
        subprocess.run(["bash", "-n", "-c", zipfile.ZipFile(out).read(script).decode()],
                       check=True)


def test_a_missing_python_is_reported_as_not_the_learners_fault(zipped, tmp_path):
    root = _autograder(tmp_path, zipped[0], {"lock.py": "x = 1\n"})
    d = _run(root, SPLITBRAIN_GRADESCOPE_PYTHON=str(tmp_path / "no-python"))
    assert d["score"] == 0 and d["tests"] == [] and "not your fault" in d["output"]


@pytest.mark.slow
def test_the_solution_gets_full_marks_the_handout_less_and_garbage_a_clear_message(
        zipped, grading_env, tmp_path):
    out, made = zipped
    lab, component = made["lab"], made["component"]
    solution = _git_show(f"solutions/{lab}/{component}")
    d = _run(_autograder(tmp_path / "solution", out, {component: solution}))
    assert d["tests"] and d["score"] == sum(t["max_score"] for t in d["tests"]) > 0, d
    assert all(t["status"] == "passed" for t in d["tests"])
    assert all(t["visibility"] == "after_published" for t in d["tests"])

    handout = _git_show(f"labs/{lab}/{component}")
    d = _run(_autograder(tmp_path / "handout", out, {f"my-work/{component}": handout}))
    top = sum(t["max_score"] for t in d["tests"])
    assert d["tests"] and d["score"] < top, d
    failed = [t for t in d["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"].strip() and t["score"] == 0 for t in failed)

    d = _run(_autograder(tmp_path / "garbage", out, {component: "def (:\n  nonsense\n"}))
    assert d["score"] == 0 and d["tests"] == [] and "syntax error" in d["output"]
    d = _run(_autograder(tmp_path / "renamed", out, {"my_lock.py": solution}))
    assert d["score"] == 0 and f"rename it to {component}" in d["output"]


@pytest.mark.slow
def test_services_down_is_an_infra_failure_not_failed_tests(zipped, tmp_path):
    out, made = zipped
    root = _autograder(tmp_path, out, {made["component"]: _git_show(
        f"solutions/{made['lab']}/{made['component']}")})
    d = _run(root, SPLITBRAIN_HOME=str(tmp_path / "home"),  # no record of healthy services
             SPLITBRAIN_BACKEND="external",
             SPLITBRAIN_POSTGRES_URL="postgresql://nobody:x@127.0.0.1:1/postgres",
             SPLITBRAIN_REDIS_URL="redis://127.0.0.1:1/0",
             SPLITBRAIN_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert d["score"] == 0 and d["tests"] == [] and "not your fault" in d["output"]
    assert d["extra_data"]["infra_error"] is True
