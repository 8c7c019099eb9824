"""The README opens with the two commands, and CI runs the second one unchanged."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with a bash block holding the two commands"
    assert text.index(block.group(0)) < 40, "the two commands must come first in README.md"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("splitbrain start")
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in [line.strip() for line in ci]


def test_pyproject_declares_the_console_script():
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["splitbrain"] == "splitbrain.cli:main"


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
            for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_every_readme_command_runs_as_written_from_the_checkout():
    """Every command names the venv's own script (a fresh shell has no `splitbrain` on PATH), and
    every `splitbrain` command line is one the CLI accepts."""
    import shlex

    from splitbrain.cli import build_parser
    for line in _blocks():
        for part in (p.strip() for p in line.split("&&")):
            word = part.split()[0]
            if word in ("python3", "cd", "."):
                continue
            assert word.startswith(".venv/bin/"), f"README: `{part}` needs the venv: .venv/bin/{word}"
            if word == ".venv/bin/splitbrain":
                args = shlex.split(part)[1:]
                try:
                    build_parser().parse_args(args)
                except SystemExit as e:
                    raise AssertionError(f"README: `{part}` is not a valid command") from e
