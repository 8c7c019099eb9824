"""The embedded backend: shared servers that outlive the caller, found again, stopped exactly."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

from splitbrain.services import current, down, ensure_up, status, using
from splitbrain.services import procs, state


def test_up_starts_three_healthy_services_and_reuses_them(isolated_home):
    ep = ensure_up()
    assert ep.backend == "embedded" and ep.started == ("postgres", "redis", "kafka")
    st = status()["services"]
    assert set(st) == {"postgres", "redis", "kafka"}
    assert all(s["healthy"] and s["backend"] == "embedded" for s in st.values())
    again = ensure_up()
    assert again.started == () and again.postgres_url == ep.postgres_url
    assert current().redis_url == ep.redis_url
    recs = state.read()
    assert down() == ["postgres", "redis", "kafka"]
    assert not any(procs.alive(r["pid"]) for r in recs.values())
    assert current() is None


def test_warm_start_keeps_postgres_data(isolated_home):
    ep = ensure_up(["postgres"])
    with psycopg.connect(ep.postgres_url, autocommit=True) as c:
        c.execute("create table kept(x int)")
        c.execute("insert into kept values (42)")
    down()
    ep2 = ensure_up(["postgres"])
    assert ep2.started == ("postgres",)
    with psycopg.connect(ep2.postgres_url) as c:
        assert c.execute("select x from kept").fetchone() == (42,)


def test_parallel_callers_share_one_set_of_servers(isolated_home):
    code = ("import json; from splitbrain.services import ensure_up; ep = ensure_up(); "
            "print(json.dumps([ep.postgres_url, ep.redis_url, ep.kafka_bootstrap]))")
    ps = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
          for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in ps]
    assert all(p.returncode == 0 for p in ps)
    assert len({o.strip() for o in outs}) == 1, outs
    assert all(s["healthy"] for s in status()["services"].values())


def test_stale_state_is_cleaned_and_a_foreign_process_is_never_signalled(isolated_home):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # a crashed run left a record whose pid now belongs to another program
        state.write({"redis": {"backend": "embedded", "url": "redis://127.0.0.1:1/0",
                               "pid": stranger.pid, "started": "not-its-start-time",
                               "port": 1, "log": "x", "data_dir": "x", "password": None}})
        assert down(["redis"]) == ["redis"]
        assert stranger.poll() is None
        state.write({"redis": {"backend": "embedded", "url": "redis://127.0.0.1:1/0",
                               "pid": stranger.pid, "started": "not-its-start-time",
                               "port": 1, "log": "x", "data_dir": "x", "password": None}})
        ep = ensure_up(["redis"])
        assert stranger.poll() is None
        assert ep.started == ("redis",)
        assert any("stale" in n and "no longer running" in n for n in ep.notes)
        assert status()["services"]["redis"]["healthy"]
    finally:
        stranger.kill()
        stranger.wait()


def test_damaged_state_file_is_moved_aside(isolated_home):
    state.state_path().write_text("{not json")
    assert state.read() == {}
    assert list(isolated_home.glob("services.damaged-*"))


def test_using_stops_only_what_it_started(isolated_home):
    outer = ensure_up(["redis"])
    with using(["redis", "kafka"]) as ep:
        assert ep.started == ("kafka",)
    left = status()["services"]
    assert set(left) == {"redis"} and left["redis"]["url"] == outer.redis_url


def test_using_leaves_services_another_live_process_holds(isolated_home):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from splitbrain.services import using\n"
         "with using(['kafka']):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with using(["kafka"]) as ep:
            assert ep.started == ("kafka",)
            assert holder.stdout.readline().strip() == "held"
        assert status()["services"]["kafka"]["healthy"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_state_file_is_private(isolated_home):
    ensure_up(["kafka"])
    assert os.stat(state.state_path()).st_mode & 0o077 == 0
    assert json.loads(state.state_path().read_text())["version"] == state.VERSION


def test_a_record_naming_another_program_is_not_ours(isolated_home):
    from splitbrain.services import embedded
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        assert procs.wait_until(lambda: "sleep" in procs.cmdline(stranger.pid), 10)  # exec'd
        rec = {"pid": stranger.pid, "started": procs.start_time(stranger.pid), "cmd": "postgres"}
        assert not embedded.is_ours(rec)                 # right pid and start, wrong program
        assert embedded.is_ours({**rec, "cmd": "sleep"})
        assert not embedded.stop("postgres", rec) and stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
