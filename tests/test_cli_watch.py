"""`splitbrain check --watch`: the learner's loop grades again every time the file is saved."""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from splitbrain.lab import discover_labs

FIXTURE = Path(__file__).parent / "fixtures" / "project"


def _wait_for(lines: list[str], text: str, deadline_s: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if any(text in line for line in list(lines)):
            return
        assert proc.poll() is None, f"check --watch exited early:\n{''.join(lines)}"
        time.sleep(0.05)
    raise AssertionError(f"{text!r} did not appear within {deadline_s} s:\n{''.join(lines)}")


@pytest.mark.slow
def test_watch_grades_again_on_save_and_stops_on_ctrl_c(services, monkeypatch, tmp_path):
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", services.redis_url)
    monkeypatch.setenv("SPLITBRAIN_POSTGRES_URL", services.postgres_url)
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(FIXTURE))
    monkeypatch.setenv("SPLITBRAIN_HOME", str(tmp_path / "home"))
    (lab,) = discover_labs(FIXTURE)
    mine = tmp_path / "counter.py"
    shutil.copy(lab.component_path, mine)           # the broken handout first

    proc = subprocess.Popen([sys.executable, "-m", "splitbrain", "check", "00-counter",
                             "--submission", str(mine), "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        _wait_for(lines, "watching", 120, proc)
        assert any("score 10/30" in line for line in lines), "".join(lines)
        shutil.copy(lab.solution_path, mine)         # the learner saves the fix
        later = time.time() + 5
        os.utime(mine, (later, later))               # a new mtime, whatever the clock's grain
        _wait_for(lines, "changed: grading again", 30, proc)
        _wait_for(lines, "passes every test", 120, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
        reader.join(timeout=5)
    assert "stopped watching" in "".join(lines)
    assert rc == 0                                  # the last grading gave full marks
