"""Clock and crash points: the learner-facing surface and what each does."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import splitbrain
from splitbrain import Clock, crash_point
from splitbrain.faults import crash


def test_public_surface_is_exactly_clock_and_crash_point():
    assert splitbrain.__all__ == ["Clock", "crash_point"]
    for name in splitbrain.__all__:
        assert getattr(splitbrain, name) is not None


def test_fresh_clock_is_the_machines_clock():
    c = Clock()
    assert abs(c.now() - time.time()) < 0.5
    assert abs(c.monotonic() - time.monotonic()) < 0.5
    assert c.state() == {"offset": 0.0, "monotonic_offset": 0.0, "rate": 1.0}


def test_offset_and_jump_move_the_wall_clock_only():
    c = Clock()
    m0 = c.monotonic()
    c.set_offset(30)
    assert 29 < c.now() - time.time() < 31
    c.jump(-60)
    assert -31 < c.now() - time.time() < -29
    assert c.offset == -30
    assert c.monotonic() - m0 < 5          # the monotonic clock did not jump


def test_monotonic_jump_moves_both_clocks():
    c = Clock()
    m0 = c.monotonic()
    c.jump(100, monotonic=True)
    assert c.monotonic() - m0 >= 100
    assert c.now() - time.time() > 99
    c.reset()
    assert abs(c.now() - time.time()) < 0.5


def test_rate_makes_the_clock_run_fast():
    c = Clock(rate=3.0)
    real0, v0 = time.monotonic(), c.monotonic()
    deadline = real0 + 0.2
    while time.monotonic() < deadline:
        time.sleep(0.01)
    real, virtual = time.monotonic() - real0, c.monotonic() - v0
    assert virtual > 2 * real                  # ran faster than real time
    assert c.now() - time.time() > 0.2         # and the wall clock drifted ahead


@pytest.mark.parametrize("bad", ["5", None, True])
def test_bad_clock_input_is_named(bad):
    with pytest.raises(TypeError, match="number of seconds"):
        Clock().set_offset(bad)


def test_bad_rate_and_sleep_are_named():
    with pytest.raises(ValueError, match="rate > 0"):
        Clock().set_rate(0)
    with pytest.raises(ValueError, match="non-negative"):
        Clock().sleep(-1)


def test_unarmed_crash_point_counts_and_returns():
    name = f"p_{uuid.uuid4().hex[:8]}"
    crash_point(name)
    crash_point(name)
    assert crash.hits(name) == 2


def test_parse_spec_and_bad_names():
    assert crash.parse_spec("a, b:2,") == {"a": 0, "b": 2}
    with pytest.raises(ValueError, match="NAME:COUNT"):
        crash.parse_spec("a:x")
    with pytest.raises(ValueError, match="identifiers"):
        crash.arm("has space")
    with pytest.raises(ValueError, match=">= 0"):
        crash.arm("ok", after=-1)


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_armed_point_kills_the_process_after_n_hits(tmp_path):
    report = tmp_path / "crash.txt"
    proc = _run("""
        from splitbrain import crash_point
        for i in range(5):
            print("step", i, flush=True)
            crash_point("loop")
        print("finished", flush=True)
    """, {"SPLITBRAIN_CRASH_POINTS": "loop:2", "SPLITBRAIN_CRASH_REPORT": str(report)})
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split("\n")[:3] == ["step 0", "step 1", "step 2"]
    assert "finished" not in proc.stdout and "step 3" not in proc.stdout
    assert report.read_text().split()[0] == "loop"


def test_arm_in_process_then_disarm_all(tmp_path):
    proc = _run("""
        from splitbrain.faults import crash
        crash.arm("x")
        crash.disarm_all()
        crash.crash_point("x")
        crash.arm("y", after=1)
        crash.crash_point("y")
        print("alive", flush=True)
        crash.crash_point("y")
        print("not reached", flush=True)
    """, {})
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout == "alive\n"


def test_crash_after_commit_leaves_the_row_and_skips_the_next_step(services):
    psycopg = pytest.importorskip("psycopg")
    url = services.postgres_url
    table = f"crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (step text primary key)")
    try:
        proc = _run(f"""
            import psycopg
            from splitbrain import crash_point
            conn = psycopg.connect({url!r})
            with conn.transaction():
                conn.execute("INSERT INTO {table} VALUES ('committed')")
            crash_point("after_commit")
            with conn.transaction():
                conn.execute("INSERT INTO {table} VALUES ('published')")
        """, {"SPLITBRAIN_CRASH_POINTS": "after_commit"})
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        with psycopg.connect(url, autocommit=True) as conn:
            rows = [r[0] for r in conn.execute(f"SELECT step FROM {table}")]
        assert rows == ["committed"]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
