"""`splitbrain release --gradescope`: the zip's run_autograder, in a simulated /autograder layout
against real services, writes a results.json of Gradescope's shape: full marks for the solution,
less for the broken handout with each failing test saying why, a clear message for garbage, and
an infrastructure failure that charges nothing. What is not tested here: Gradescope's own
servers and image build (setup.sh's apt and pip steps)."""
from __future__ import annotations

import io
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
                          text=True, timeout=900, check=False)
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


def test_an_ambiguous_submission_is_not_graded_and_says_what_to_hand_in(zipped, tmp_path):
    """Found before any service is needed: the results say no test ran and what to submit."""
    out, made = zipped
    lab, component = made["lab"], made["component"]
    solution = _git_show(f"solutions/{lab}/{component}")
    two = {"a.py": solution, "b.py": solution + "\n# my other try\n"}
    for name, files, says in (
            ("two", two, "2 possible components, a.py and b.py"),
            ("none", {"notes.txt": "done!"},
             "nothing to grade: no .py or .ipynb file (it holds notes.txt); the lab grades "
             + component),
            ("rar", {"work.rar": "Rar!"}, "a .rar file, which the grader does not unpack")):
        d = _run(_autograder(tmp_path / name, out, files))
        assert d["score"] == 0 and d["tests"] == [] and d["extra_data"] == {"not_graded": True}
        assert says in d["output"] and "this 0 says nothing about your code" in d["output"], d
        assert str(tmp_path) not in d["output"] and "grade again" not in d["output"]


def _write(folder: Path, files: dict) -> Path:
    for f, data in files.items():
        (folder / f).parent.mkdir(parents=True, exist_ok=True)
        (folder / f).write_bytes(data if isinstance(data, bytes) else data.encode())
    return folder


def test_the_component_is_found_under_another_name_in_a_notebook_or_in_a_zip(tmp_path):
    from splitbrain.lab import discover_labs
    from splitbrain.release_gradescope import _component
    fixture = ROOT / "tests" / "fixtures" / "project"
    (lab,) = discover_labs(fixture)
    solution = (fixture / "solutions" / "00-counter" / "counter.py").read_text()
    handout = (fixture / "labs" / "00-counter" / "counter.py").read_text()
    nb = json.dumps({"cells": [{"cell_type": "code", "source": solution, "metadata": {}}],
                     "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("work/counter.py", solution)
    assert "syntax error" in _component(_write(tmp_path / "bad", {"counter.py": "def (:\n"}), lab,
                                        tmp_path / "bad-tmp")["output"]
    for name, files, found, note in (
            ("renamed", {"my_counter.py": solution, "helpers.py": "X = 1\n"}, "my_counter.py",
             "grading my_counter.py (left out: helpers.py)"),
            ("notebook", {"counter.py": handout, "lab.ipynb": nb}, "lab.ipynb",
             "counter.py is the handout unchanged"),
            ("zipped", {"work.zip": buf.getvalue()}, "counter.py", None)):
        got = _component(_write(tmp_path / name / "submission", files), lab,
                         tmp_path / name / "tmp")
        assert not isinstance(got, dict), got
        assert got[0].name == found and (note is None or note in got[1]), got


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

    handout = _git_show(f"labs/{lab}/{component}")   # renamed, in a folder: found all the same
    d = _run(_autograder(tmp_path / "handout", out, {f"my-work/my_{component}": handout}))
    top = sum(t["max_score"] for t in d["tests"])
    assert d["tests"] and d["score"] < top, d
    failed = [t for t in d["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"].strip() and t["score"] == 0 for t in failed)

    d = _run(_autograder(tmp_path / "garbage", out, {component: "def (:\n  nonsense\n"}))
    assert d["score"] == 0 and d["tests"] == [] and "syntax error" in d["output"]


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
