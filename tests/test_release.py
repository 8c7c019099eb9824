"""`splitbrain release`: the learner's repository holds the labs, the book and the kit, and no
hidden test or solution (grepped here independently of the release's own scan); `check` in a
release runs the public tests and says where the grade comes from."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain import release

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout


def _committed() -> dict[str, str]:
    files = [f for f in _git("ls-tree", "-r", "--name-only", "HEAD").splitlines()
             if not f.endswith((".png", ".svg", ".jsonl", ".min.js"))]
    return {f: _git("show", f"HEAD:{f}") for f in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "class"
    rel = release.build(out, ROOT)
    return out, rel


def test_the_release_holds_the_labs_book_and_kit_and_a_marker(built):
    out, rel = built
    for lab in rel.labs:
        assert (out / "labs" / lab / "lab.toml").is_file()
        assert (out / "labs" / lab / "rig").is_dir()
        assert list((out / "labs" / lab).glob("test_*.py")), f"{lab}: no public tests"
    assert rel.labs and (out / "mkdocs.yml").is_file() and (out / "docs" / "index.md").is_file()
    assert (out / "splitbrain" / "cli" / "__init__.py").is_file()
    assert (out / "pyproject.toml").is_file()
    for gone in ("solutions", "autograder", "tests", "bench", ".git", "CONTRIBUTING.md"):
        assert not (out / gone).exists(), gone
    marker = json.loads((out / release.MARKER).read_text())
    assert marker["source_commit"] == _git("rev-parse", "HEAD").strip()
    assert release.info(out) == marker and release.info(ROOT) is None
    assert "hidden tests" in (out / "README.md").read_text()


def test_no_hidden_test_name_and_no_solution_line_is_in_the_release(built):
    out, _ = built
    files = _committed()
    hidden = {n for f, t in files.items() if f.startswith("autograder/") and f.endswith(".py")
              for n in re.findall(r"def (test_\w+)", t)}
    public = "\n".join(t for f, t in files.items() if f.startswith(("labs/", "splitbrain/")))
    secret = {s for f, t in files.items() if f.startswith("solutions/")
              for s in (l.strip() for l in t.splitlines())
              if len(s) > 25 and not s.startswith(("#", '"""', "from ", "import ", "def ",
                                                   "class ", "return ", "@", "raise "))
              and s not in public}
    assert hidden and secret
    released = {str(p.relative_to(out)): p.read_text(errors="replace")
                for p in out.rglob("*") if p.is_file()}
    hidden -= set(re.findall(r"def (test_\w+)", public))   # a public test may share a name
    any_name = re.compile(r"\b(" + "|".join(sorted(hidden)) + r")\b")
    names = [(f, n) for f, t in released.items() for n in set(any_name.findall(t))]
    assert not names, f"hidden test names in the release: {names[:10]}"
    lines = [(f, s) for f, t in released.items() for s in secret if s in t]
    outside_book = [(f, s) for f, s in lines if not f.startswith("docs/chapters/")]
    assert not outside_book, f"solution lines in the release: {outside_book[:10]}"
    # a chapter may print the core of the pattern it teaches, never the solution itself
    for chapter in {f for f, _ in lines}:
        slug = Path(chapter).stem
        theirs = {s for f, t in files.items() if f.startswith(f"solutions/{slug}/")
                  for s in (l.strip() for l in t.splitlines())} & secret
        shown = {s for f, s in lines if f == chapter}
        assert len(shown) * 5 <= len(theirs), f"{chapter} prints {len(shown)} of the " \
                                              f"{len(theirs)} lines of its solution"
    for f in released:
        assert not f.startswith(("solutions/", "autograder/"))
        assert "SOLUTION" not in f or f.startswith("splitbrain/templates/"), f


def test_a_non_empty_folder_is_refused_without_force(tmp_path, capsys):
    from splitbrain.cli import main
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["release", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert main(["release", str(tmp_path), "--force"]) == 0
    said = capsys.readouterr().out
    assert "left out" in said and "solutions/" in said and "autograder/" in said
    assert not (tmp_path / "notes.txt").exists() and (tmp_path / release.MARKER).is_file()


def test_a_leak_removes_the_release_and_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(release, "RULES", (("autograder/", True, "leaked on purpose"),
                                          *release.RULES))
    with pytest.raises(release.ReleaseError, match="names the hidden test"):
        release.build(tmp_path / "bad", ROOT)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_check_in_a_release_runs_the_public_tests_and_says_where_the_grade_comes_from(
        built, grading_env, tmp_path):
    """Lab 01 with the solution over the handout: the public tests pass and check says the
    grade comes from the instructor's hidden tests."""
    out, _ = built
    learner = tmp_path / "learner"
    shutil.copytree(out, learner)
    lab = next((learner / "labs").glob("01-*"))
    component = next(p for p in (ROOT / "solutions" / lab.name).glob("*.py"))
    (lab / component.name).write_text(_git("show", f"HEAD:solutions/{lab.name}/{component.name}"))
    env = {**os.environ, "SPLITBRAIN_ROOT": str(learner),
           "SPLITBRAIN_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "splitbrain", "check", "01", "--json"],
                          cwd=learner, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["edition"] == "learner"
    assert "instructor's hidden tests" in result["grade_note"]
    assert result["tests"] and all(t["status"] == "passed" for t in result["tests"])
    assert all(not t["hidden"] for t in result["tests"])
    assert not result["progress"].get("done")
    proc = subprocess.run([sys.executable, "-m", "splitbrain", "check", "01"], cwd=learner,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "hidden tests" in proc.stdout, proc.stdout + proc.stderr
