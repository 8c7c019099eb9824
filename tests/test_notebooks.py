"""Every lab's notebook runs top to bottom against real services, with the solution in place.

For each lab found in labs/: copy the lab folder to a temporary directory, copy the solution's
component over the handout's, and execute the notebook there (cwd = the copied lab folder) with the
venv's python3 kernel. Any error in any cell fails the test. The committed notebook must carry no
outputs and no execution counts.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from splitbrain.lab import discover_labs

LABS = discover_labs()
CELL_TIMEOUT_S = 300


def _ids(labs):
    return [lab.slug for lab in labs]


@pytest.mark.parametrize("lab", LABS, ids=_ids(LABS))
def test_committed_notebook_has_no_outputs(lab):
    assert lab.notebook_path.is_file(), f"{lab.slug}: notebook {lab.notebook} is missing"
    nb = nbformat.read(lab.notebook_path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{lab.notebook_path}: code cells {dirty} carry outputs or execution "
                       f"counts; clear them before committing (e.g. `jupyter nbconvert "
                       f"--clear-output --inplace {lab.notebook_path}`)")


@pytest.mark.parametrize("lab", LABS, ids=_ids(LABS))
def test_notebook_commands_do_not_rely_on_the_venv_being_on_path(lab):
    """Under a Jupyter the kit did not start, the venv's scripts are not on PATH: `!splitbrain`
    and `!pytest` fail there, `!{sys.executable} -m splitbrain` works."""
    import re
    nb = nbformat.read(lab.notebook_path, as_version=4)
    bare = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and re.search(r"^\s*!\s*(splitbrain|pytest|jupyter)\b", c.source, re.M)]
    assert not bare, (f"{lab.notebook_path}: code cells {bare} run a venv script by name; "
                      f"write `!{{sys.executable}} -m splitbrain ...` (after `import sys`)")


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS, ids=_ids(LABS))
def test_notebook_runs_with_the_solution(lab, services, tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    assert lab.solution_path.is_file(), f"{lab.slug}: no solution at {lab.solution_path}"
    work = tmp_path / lab.slug
    shutil.copytree(lab.lab_dir, work, ignore=shutil.ignore_patterns(
        "__pycache__", ".ipynb_checkpoints", ".pytest_cache"))
    shutil.copy2(lab.solution_path, work / lab.component)
    # the kernel inherits this environment: the project found from the temporary folder, the
    # session's services reused. The venv's scripts are not put on PATH: a Jupyter the kit did not
    # start has no `splitbrain` there, so a notebook calls `!{sys.executable} -m splitbrain`.
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(lab.root))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(work / lab.notebook, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    try:
        client.execute()
    except CellExecutionError as e:
        pytest.fail(f"{lab.slug}: {lab.notebook} failed with the solution in place:\n{e}",
                    pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{lab.slug}: error outputs: {[e.get('ename') for e in errors]}"
