"""One settings object for every SPLITBRAIN_* variable: each name the kit, its docs or its compose
file mention is a documented field, only the settings module reads them, values follow the
environment, and importing the learner-facing package stays cheap."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain.settings import COMPOSE, Settings, markdown_table, settings

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bSPLITBRAIN_[A-Z0-9_]*[A-Z0-9]\b")
BEGIN, END = "<!-- settings-table", "<!-- end settings-table -->"


def _texts() -> dict[Path, str]:
    files = [p for p in (ROOT / "splitbrain").rglob("*") if p.is_file()
             and p.suffix in (".py", ".toml", ".md", ".txt", ".json", ".sql", ".lua")]
    files += [ROOT / "docker" / "compose.yaml", ROOT / "docker" / "hub" / "jupyterhub_config.py",
              ROOT / "README.md", ROOT / "CONTRIBUTING.md",
              *(ROOT / "docs").rglob("*.md")]
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in files if p.is_file()}


def test_every_splitbrain_name_the_kit_mentions_is_a_setting():
    known = Settings.names()
    unknown = {f"{name} ({path.relative_to(ROOT)})"
               for path, text in _texts().items() for name in NAME.findall(text)
               if name not in known}
    assert not unknown, f"add these to splitbrain/settings.py (or fix the name): {sorted(unknown)}"


def test_only_the_settings_module_reads_them():
    reads = re.compile(r"""(environ\.get|getenv|environ\[)\(?\s*f?["']SPLITBRAIN_""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "splitbrain").rglob("*.py")
                 if p.name != "settings.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if reads.search(line)]
    assert not offenders, f"read these through splitbrain.settings: {offenders}"


def test_every_field_is_documented_once_and_named_after_its_variable():
    fields = Settings.fields()
    assert len({v.env for v in fields}) == len(fields)
    for v in fields:
        assert v.env == "SPLITBRAIN_" + v.attr.upper(), v
        assert v.doc.strip().endswith("."), f"{v.env}: say what it sets, as a sentence"
        assert v.default_text, v
        assert Settings.var(v.attr) is v
    with pytest.raises(KeyError, match="no setting 'nope'"):
        Settings.var("nope")


def test_values_follow_the_environment_as_it_is_now(monkeypatch, tmp_path):
    monkeypatch.delenv("SPLITBRAIN_ROOT", raising=False)
    monkeypatch.delenv("SPLITBRAIN_SERVICE_USER", raising=False)
    assert settings.root is None
    assert settings.service_user == "nobody"
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    monkeypatch.setenv("SPLITBRAIN_SERVICE_USER", "grader")
    assert settings.root == tmp_path and isinstance(settings.root, Path)
    assert settings.service_user == "grader"
    monkeypatch.setenv("SPLITBRAIN_SERVICE_USER", "")       # empty counts as unset
    assert settings.service_user == "nobody"
    child = Settings({"SPLITBRAIN_CRASH_POINTS": "after_commit:2"})
    assert child.crash_points == "after_commit:2" and child.root is None
    assert Settings({}).crash_points == ""
    assert "SPLITBRAIN_ROOT" in repr(settings)


def test_the_kit_follows_the_environment_too(monkeypatch, tmp_path):
    from splitbrain.paths import project_root, state_dir
    from splitbrain.services import external
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    monkeypatch.setenv("SPLITBRAIN_HOME", str(tmp_path / "home"))
    assert project_root() == tmp_path.resolve()
    assert state_dir() == tmp_path / "home"
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", "redis://127.0.0.1:1/0")
    assert external.configured_url("redis") == "redis://127.0.0.1:1/0"
    assert external.ENV == {"postgres": "SPLITBRAIN_POSTGRES_URL",
                            "redis": "SPLITBRAIN_REDIS_URL",
                            "kafka": "SPLITBRAIN_KAFKA_BOOTSTRAP"}


def test_settings_are_read_only():
    with pytest.raises(AttributeError, match="set SPLITBRAIN_ROOT instead"):
        settings.root = Path("/")  # type: ignore[misc]


def test_compose_defaults_are_the_documented_ones():
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    found = dict(re.findall(r"\$\{(SPLITBRAIN_[A-Z0-9_]+):-([^}]*)\}", compose))
    documented = {v.env: v.default for v in Settings.fields() if v.reader == COMPOSE}
    assert found == documented


def test_contributing_carries_the_generated_table():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    assert BEGIN in text and END in text, "CONTRIBUTING.md lost its table of variables"
    block = text.split(BEGIN, 1)[1].split("-->", 1)[1].split(END, 1)[0]
    assert block.strip() == markdown_table().strip(), (
        "CONTRIBUTING.md's table of variables is out of date; paste the output of\n"
        "python -c 'from splitbrain.settings import markdown_table; print(markdown_table())'")


def test_learner_code_and_the_worker_import_neither_pydantic_nor_psutil():
    code = ("import sys, splitbrain, splitbrain.faults.crash, splitbrain.sandbox.worker, "
            "splitbrain.faults.registry\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'pydantic_settings', 'psutil'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
