"""Private instances: killed, paused, restarted, replicated — and cleaned up."""
from __future__ import annotations

import psycopg
import pytest

from splitbrain.services import procs, spawn_kafka, spawn_postgres, spawn_redis


def _count(conn_url: str, table: str = "t") -> int:
    with psycopg.connect(conn_url, connect_timeout=5) as c:
        return c.execute(f"select count(*) from {table}").fetchone()[0]


@pytest.mark.slow
def test_postgres_kill_takes_every_backend_and_restart_recovers():
    with spawn_postgres() as pg:
        with pg.connect() as c:
            c.execute("create table t(x int)")
            c.execute("set synchronous_commit = on")
            c.execute("insert into t values (1)")
        open_conn = pg.connect()        # a backend process that must die with the server
        pid = pg.pid
        assert len(procs.tree(pid)) > 2
        pg.kill()
        assert procs.tree(pid) == []
        assert not pg.running()
        pg.restart()
        assert pg.pid != pid
        assert _count(pg.url) == 1
        with pytest.raises(psycopg.OperationalError):
            open_conn.execute("select 1")
        data = pg.data_dir
    assert not data.exists()


@pytest.mark.slow
def test_postgres_standby_delay_pause_resume_promote():
    with spawn_postgres() as pg:
        with pg.connect() as c:
            c.execute("create table t(x int)")
        sb = pg.standby()
        assert sb.wait_caught_up(30)
        assert _count(sb.url) == 0
        sb.pause_replay()
        with pg.connect() as c:
            c.execute("set synchronous_commit = on")
            c.execute("insert into t values (1)")
        assert procs.wait_until(lambda: sb.lag_bytes() > 0, 10)
        assert _count(sb.url) == 0            # frozen in the past while paused
        assert sb.lag() > 0
        sb.resume_replay()
        assert sb.wait_caught_up(30)
        assert _count(sb.url) == 1 and sb.lag() == 0.0
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            with sb.connect() as c:
                c.execute("insert into t values (2)")
        sb.promote()
        with sb.connect() as c:
            c.execute("insert into t values (2)")
        assert _count(sb.url) == 2 and _count(pg.url) == 1
        sb_dir = sb.data_dir
    assert not sb_dir.exists()


@pytest.mark.slow
def test_postgres_standby_apply_delay_holds_commits_back():
    with spawn_postgres() as pg, pg.standby(apply_delay_ms=60_000) as sb:
        with pg.connect() as c:
            c.execute("set synchronous_commit = on")
            c.execute("create table t(x int)")
        # the WAL arrives, but a one-minute apply delay keeps the commit from being applied
        assert procs.wait_until(lambda: sb._one(
            "select pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())") > 0, 10)
        with sb.connect() as c:
            assert c.execute("select to_regclass('t')").fetchone() == (None,)
        sb.set_apply_delay(0)
        assert sb.wait_caught_up(30)
        with sb.connect() as c:
            assert c.execute("select to_regclass('t')::text").fetchone() == ("t",)


def test_redis_replica_follows_and_promotes():
    with spawn_redis() as r:
        rep = r.replica()
        c, rc = r.client(), rep.client()
        c.set("k", "v1")
        assert procs.wait_until(lambda: rc.get("k") == b"v1", 10)
        rep.promote()
        rc.set("k", "v2")
        assert c.get("k") == b"v1" and rc.get("k") == b"v2"
        c.close()
        rc.close()
    assert not rep.running() and not r.running()


def test_redis_pause_resume_and_restart_starts_empty():
    with spawn_redis() as r:
        c = r.client(socket_timeout=0.3)
        c.set("k", 1)
        r.pause()
        with pytest.raises(Exception):
            c.get("k")                     # a stalled server: the call times out
        r.resume()
        assert r.client().get("k") == b"1"
        r.restart()
        assert r.client().get("k") is None  # no persistence


def test_kafka_broker_round_trip_and_advertised_port():
    from confluent_kafka import Consumer, Producer, TopicPartition
    with spawn_kafka() as k:
        p = Producer({"bootstrap.servers": k.bootstrap})
        p.produce("t1", key=b"a", value=b"hello", partition=0)
        assert p.flush(10) == 0
        c = Consumer({"bootstrap.servers": k.bootstrap, "group.id": "g-private-rt",
                      "enable.auto.commit": False})
        c.assign([TopicPartition("t1", 0, 0)])
        msg = None
        for _ in range(50):
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                break
        assert msg is not None and msg.value() == b"hello"
        c.close()
        pid = k.pid
        k.kill()
        assert not procs.alive(pid)
    with spawn_kafka(advertise_port=1) as k:
        from confluent_kafka.admin import AdminClient
        md = AdminClient({"bootstrap.servers": k.bootstrap}).list_topics(timeout=10)
        assert [b.port for b in md.brokers.values()] == [1]


def test_servers_of_a_killed_owner_are_swept_by_the_next_spawn():
    import subprocess
    import sys
    owner = subprocess.Popen(
        [sys.executable, "-c", "from splitbrain.services import spawn_redis; r = spawn_redis(); "
         "print(r.pid, r._dir, flush=True); import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid, data = owner.stdout.readline().split()
    owner.kill()                        # no atexit, no close(): the server is orphaned
    owner.wait()
    assert procs.alive(int(pid))
    with spawn_redis():
        pass                            # any spawn sweeps what dead owners left
    assert not procs.alive(int(pid))
    from pathlib import Path
    assert not Path(data).exists()


def test_a_paused_server_still_stops_promptly():
    with spawn_postgres() as pg:
        pid = pg.pid
        pg.pause()
        pg.stop(timeout=10)
        assert procs.tree(pid) == []
