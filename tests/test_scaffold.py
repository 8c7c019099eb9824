"""`splitbrain new-lab` writes a lab that verify lists as incomplete item by item, the book
takes in, and deleting its four paths removes without a trace."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain import book
from splitbrain.grading.labcheck import missing
from splitbrain.lab import discover_labs, find_lab
from splitbrain.scaffold import ScaffoldError, lab_paths, new_lab

FIXTURE = Path(__file__).parent / "fixtures" / "project"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".splitbrain"))
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return root


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_new_lab_is_listed_as_what_is_left_to_write(project):
    before = _tree(project)
    made = new_lab(project, "99-example")
    lab = find_lab("99", project)
    assert (lab.slug, lab.component, lab.requires) == ("99-example", "example.py", ("Example",))
    left = [i.what for i in missing(lab)]
    for item in ("lab.toml filled in", "the chapter", "a notebook that shows the anomaly",
                 "the broken handout", "the solution", "hidden tests", "a seeded exploring test",
                 "the chapter's guarantees in lab.toml", "graded variants"):
        assert item in left, (item, left)
    for path in made.created:
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")
    pages = {p.path for p in book.render(project, project / "docs", draw=False)}
    assert "labs/99-example.md" in pages
    for p in made.remove:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert _tree(project) == before and [l.slug for l in discover_labs(project)] == ["00-counter"]


def test_verify_says_what_a_new_lab_lacks_without_grading(project):
    new_lab(project, "99-example")
    out = subprocess.run([sys.executable, "-m", "splitbrain", "verify", "99-example"],
                         capture_output=True, text=True, timeout=120,
                         env={"SPLITBRAIN_ROOT": str(project), "PATH": "/usr/bin:/bin",
                              "HOME": str(project)})
    assert out.returncode == 1, out.stderr
    assert "99-example: not complete" in out.stdout and "[ ] the chapter" in out.stdout
    assert "1 lab(s) are not complete yet: 99-example" in out.stderr


@pytest.mark.parametrize("slug, says", [("9-x", "not a lab name"), ("00-other", "taken by 00-counter"),
                                        ("99-Example", "not a lab name")])
def test_new_lab_refuses_a_bad_or_taken_name(project, slug, says):
    with pytest.raises(ScaffoldError, match=says):
        new_lab(project, slug)


def test_new_lab_never_overwrites(project):
    (project / "docs" / "chapters" / "98-taken.md").write_text("# mine\n")
    with pytest.raises(ScaffoldError, match="already exist"):
        new_lab(project, "98-taken")
    assert (project / "docs" / "chapters" / "98-taken.md").read_text() == "# mine\n"
    assert not any(p.exists() for p in lab_paths(project, "98-taken")[:3])
