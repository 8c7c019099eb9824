"""Service-level faults through the registry, on private servers from splitbrain.services.

Each fault is applied by name through the Nemesis, the way an autograder test would, and each test
shows the fault doing what it says on the real server: a Redis replica failover loses nothing the
replica had and makes it writable; a Postgres standby with replay paused serves a frozen past; a
restarted Kafka broker takes new records.
"""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest
import redis

from splitbrain.faults.schedule import Nemesis
from splitbrain.history import History

pytestmark = pytest.mark.slow


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.02)


def test_redis_replica_failover_kills_the_primary_and_promotes_the_replica():
    from splitbrain.services.private import spawn_redis
    with spawn_redis() as primary:
        replica = primary.replica()
        p, r = redis.Redis.from_url(primary.url), redis.Redis.from_url(replica.url)
        p.set("k", "v1")
        _wait_for(lambda: r.get("k") == b"v1", 10, "the replica did not receive the write")
        with pytest.raises(redis.ReadOnlyError):
            r.set("k", "v2")
        h = History()
        Nemesis(h, targets={"replica": replica}).inject("replica-failover", "replica",
                                                        primary=primary)
        assert r.set("k", "v2") and r.get("k") == b"v2"
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(primary.url, socket_connect_timeout=1, retry=None).ping()
        assert h.faults()[0].value["primary"]


def test_postgres_replay_pause_freezes_the_standby_until_healed():
    from splitbrain.services.private import spawn_postgres
    table = f"t_{uuid.uuid4().hex[:8]}"
    # synchronous commit: a committed row's WAL is written before COMMIT returns, so "caught up"
    # (replayed up to the primary's WAL position) includes it
    with spawn_postgres(settings={"synchronous_commit": "on"}) as pg, pg.standby() as sb:
        with psycopg.connect(pg.url, autocommit=True) as c:
            c.execute(f"CREATE TABLE {table} (n int)")
            c.execute(f"INSERT INTO {table} VALUES (1)")
        assert sb.wait_caught_up(30)
        h = History()
        n = Nemesis(h, targets={"standby": sb})
        with n.fault("replay-pause", "standby"):
            with psycopg.connect(pg.url, autocommit=True) as c:
                c.execute(f"INSERT INTO {table} VALUES (2)")
            with psycopg.connect(sb.url, autocommit=True) as c:
                assert [r[0] for r in c.execute(f"SELECT n FROM {table} ORDER BY n")] == [1]
            assert sb.lag_bytes() > 0
        assert sb.wait_caught_up(30)
        with psycopg.connect(sb.url, autocommit=True) as c:
            assert [r[0] for r in c.execute(f"SELECT n FROM {table} ORDER BY n")] == [1, 2]
        assert [(e.f, e.value["phase"]) for e in h.faults()] == [
            ("replay-pause", "start"), ("replay-pause", "end")]


def test_kafka_broker_restart_through_the_registry():
    from confluent_kafka import Consumer, Producer
    from splitbrain.services.private import spawn_kafka
    topic = f"t-{uuid.uuid4().hex[:8]}"
    with spawn_kafka() as broker:
        old_pid = broker.pid
        h = History()
        Nemesis(h, targets={"broker": broker}).inject("broker-restart", "broker")
        assert broker.pid != old_pid
        prod = Producer({"bootstrap.servers": broker.bootstrap})
        prod.produce(topic, key=b"k", value=b"after-restart")
        assert prod.flush(30) == 0
        cons = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
        try:
            cons.subscribe([topic])
            got = None
            deadline = time.monotonic() + 30
            while got is None and time.monotonic() < deadline:
                msg = cons.poll(0.5)
                if msg is not None and not msg.error():
                    got = msg.value()
            assert got == b"after-restart"
        finally:
            cons.close()


def test_postgres_standby_lag_hides_fresh_commits_until_healed():
    from splitbrain.services.private import spawn_postgres
    table = f"t_{uuid.uuid4().hex[:8]}"
    with spawn_postgres(settings={"synchronous_commit": "on"}) as pg, pg.standby() as sb:
        with psycopg.connect(pg.url, autocommit=True) as c:
            c.execute(f"CREATE TABLE {table} (n int)")
        assert sb.wait_caught_up(30)
        n = Nemesis(History(), targets={"standby": sb})
        fault = n.inject("standby-lag", "standby", ms=60_000)
        with psycopg.connect(pg.url, autocommit=True) as c:
            c.execute(f"INSERT INTO {table} VALUES (1)")
        with psycopg.connect(sb.url, autocommit=True) as c:
            assert c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0   # a minute late
        n.heal(fault)
        assert sb.wait_caught_up(30)
        with psycopg.connect(sb.url, autocommit=True) as c:
            assert c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1
