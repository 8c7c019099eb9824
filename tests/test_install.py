"""The kit installed the way its users install it, then used: `up`, `check`, a `grade` batch.

As root into a folder other users cannot enter (a container's root shell, a CI job, a grading
host): Postgres and the grading workers run as other users, so what they run is staged where they
can reach it (splitbrain.staging). As a learner without root, in a folder of their own. Each
installs a fresh clone of this repository's HEAD into a new venv, the README's way.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from splitbrain import paths

ROOT = paths.project_root()
LEARNER = "sblearner"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SPLITBRAIN_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 900, user: str | None = None):
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _clone(dest: Path) -> Path:
    repo = dest / "split-brain"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, timeout=120)
    return repo


def _use_the_kit(repo: Path, env: dict, user: str | None = None) -> None:
    sb = str(repo / ".venv" / "bin" / "splitbrain")
    lab = "01"
    solution = next((repo / "solutions").glob("01-*/*.py"))
    handout = next((repo / "labs").glob("01-*/" + solution.name))
    try:
        _run([sb, "up"], repo, env, user=user)
        _run([sb, "check", lab, "--submission", str(solution)], repo, env, user=user)
        subs = repo / "submissions"
        subs.mkdir()
        shutil.copy(solution, subs / "alice.py")
        shutil.copy(handout, subs / "bob.py")
        if user:
            shutil.chown(subs, user)
        out = _run([sb, "grade", lab, str(subs)], repo, env, user=user)
        said = out.stdout + out.stderr
        assert "2 submission(s)" in said and "1 full marks, 1 lost points" in said, said
    finally:
        subprocess.run((["runuser", "-u", user, "--"] if user else []) + [sb, "down", "--purge"],
                       cwd=repo, env=env, capture_output=True, timeout=120)


@pytest.mark.slow
def test_root_installs_into_a_folder_nobody_else_can_enter_and_grades(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the root case needs root")
    private = Path(tempfile.mkdtemp(prefix="sb-private-"))     # mode 0700, like mktemp -d
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        repo = _clone(private)
        env = _env()
        _run(["python3", "-m", "venv", ".venv"], repo, env)
        _run([".venv/bin/pip", "install", "-q", "-e", "."], repo, env)
        _use_the_kit(repo, env)
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.slow
def test_a_learner_without_root_installs_and_grades(tmp_path):
    env = _env()
    if os.geteuid() != 0:          # already a learner: install and use as this user
        repo = _clone(tmp_path)
        _run([sys.executable, "-m", "venv", ".venv"], repo, env)
        _run([".venv/bin/pip", "install", "-q", "-e", "."], repo, env)
        _use_the_kit(repo, env)
        return
    try:
        pwd.getpwnam(LEARNER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", LEARNER], check=True, timeout=60)
    home = Path(pwd.getpwnam(LEARNER).pw_dir)
    work = Path(tempfile.mkdtemp(prefix="sb-learner-", dir="/tmp"))
    try:
        repo = _clone(work)
        # the learner runs the system's Python; their pip gets the wheels from a folder root
        # fills with that same Python (so every wheel fits its version) from root's own cache
        python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or "python3"
        wheels, builder = work / "wheels", work / "builder"
        _run([python, "-m", "venv", str(builder)], repo, env)
        _run([str(builder / "bin" / "pip"), "wheel", "-q", "-w", str(wheels), ".", "setuptools",
              "wheel"], repo, env)
        shutil.rmtree(builder)
        subprocess.run(["chown", "-R", f"{LEARNER}:", str(work)], check=True)
        os.chmod(work, 0o755)
        lenv = {**env, "HOME": str(home), "USER": LEARNER, "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": str(wheels)}
        _run([python, "-m", "venv", ".venv"], repo, lenv, user=LEARNER)
        _run([".venv/bin/pip", "install", "-q", "-e", "."], repo, lenv, user=LEARNER)
        _use_the_kit(repo, lenv, user=LEARNER)
    finally:
        shutil.rmtree(work, ignore_errors=True)
