"""lab.toml -> LabInfo: fields, derived paths, discovery, errors that name the file and field."""
from pathlib import Path

import pytest

from splitbrain.lab import LabError, LabInfo, discover_labs, find_lab, load_lab

FIXTURE = Path(__file__).parent / "fixtures" / "project"
ROOT = Path(__file__).resolve().parents[1]

GOOD = """format_version = 1
title = "T"
chapter = "chapters/07-x.md"
component = "x.py"
requires = ["X"]
services = ["redis"]
"""


def write_lab(tmp_path: Path, text: str, slug: str = "07-x") -> Path:
    d = tmp_path / "labs" / slug
    d.mkdir(parents=True)
    (d / "lab.toml").write_text(text)
    return d


def test_fixture_lab_fields_and_paths():
    (lab,) = discover_labs(FIXTURE)
    assert isinstance(lab, LabInfo)
    assert (lab.slug, lab.number, lab.component, lab.module_name) == (
        "00-counter", 0, "counter.py", "counter")
    assert lab.requires == ("Counter",) and lab.services == ("redis", "postgres")
    assert lab.taught_anomalies == ("lost-update",) and len(lab.hints) == 2
    assert lab.test_timeout_s == 30 and lab.call_timeout_s == 5 and lab.memory_mb == 512
    assert lab.component_path == FIXTURE.resolve() / "labs/00-counter/counter.py"
    assert lab.solution_path == FIXTURE.resolve() / "solutions/00-counter/counter.py"
    assert lab.autograder_dir == FIXTURE.resolve() / "autograder/00-counter"
    assert lab.notebook_path.name == "lab.ipynb"
    assert lab.hidden_tests()[0].name == "test_counter.py"


def test_every_shipped_lab_parses():
    labs = discover_labs(ROOT)
    assert [l.slug for l in labs] == sorted(l.slug for l in labs)
    for lab in labs:
        assert lab.component_path.is_file(), lab.slug
        assert lab.title and lab.requires and lab.taught_anomalies, lab.slug


def test_find_lab_by_slug_number_and_suffix():
    assert find_lab("00-counter", FIXTURE).slug == "00-counter"
    assert find_lab("0", FIXTURE).slug == "00-counter"
    assert find_lab("counter", FIXTURE).slug == "00-counter"
    with pytest.raises(LabError, match="no lab named 'nope'; labs: 00-counter"):
        find_lab("nope", FIXTURE)


def test_defaults(tmp_path):
    lab = load_lab(write_lab(tmp_path, GOOD), tmp_path)
    assert lab.test_timeout_s == 60 and lab.memory_mb == 512 and lab.hints == ()
    assert lab.notebook == "lab.ipynb" and lab.root == tmp_path.resolve()


@pytest.mark.parametrize("text, field", [
    (GOOD.replace('title = "T"\n', ""), "`title`"),
    (GOOD.replace('requires = ["X"]', 'requires = "X"'), "`requires`: input should be a list"),
    (GOOD.replace("format_version = 1", "format_version = 2"), "`format_version`: input should "
                                                               "be 1, got 2"),
    (GOOD + "colour = 1\n", "unknown field(s) colour; known fields are call_timeout_s"),
    (GOOD.replace('"redis"', '"mysql"'), "`services[0]`: input should be 'postgres', 'redis' or "
                                         "'kafka', got 'mysql'"),
    (GOOD.replace('"x.py"', '"x.txt"'), "`component`: string should match pattern"),
    (GOOD + "test_timeout_s = true\n", "`test_timeout_s`: must be a number"),
    (GOOD + "memory_mb = 10\n", "`memory_mb`: input should be greater than or equal to 64"),
    (GOOD + "faults = [\"GC Pause\"]\n", "`faults[0]`: string should match pattern"),
    (GOOD + "slug = \"x\"\n", "unknown field(s) slug"),
    (GOOD + "[[figures]]\nname = \"f\"\n", "`figures[0].test`: missing"),
    ("title = ", "not valid TOML"),
])
def test_malformed_lab_toml_names_file_and_field(tmp_path, text, field):
    d = write_lab(tmp_path, text)
    with pytest.raises(LabError) as e:
        load_lab(d, tmp_path)
    assert str(d / "lab.toml") in str(e.value)
    assert field in str(e.value)


def test_bad_folder_name_and_missing_toml(tmp_path):
    d = tmp_path / "labs" / "7-x"
    d.mkdir(parents=True)
    with pytest.raises(LabError, match="NN-slug"):
        load_lab(d, tmp_path)
    d = tmp_path / "labs" / "08-y"
    d.mkdir()
    with pytest.raises(LabError, match="lab.toml: not found"):
        load_lab(d, tmp_path)
    assert discover_labs(tmp_path / "nowhere") == []
