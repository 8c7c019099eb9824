"""End to end: a paused lock holder's lease expires and its fenced write is rejected by Postgres.

A real Redis holds the lease (SET NX PX) and hands out fencing tokens (INCR); a real Postgres stores
the value and refuses a write whose token is lower than the one it already has. The holder is a
real process that the nemesis SIGSTOPs: while it is stopped its lease runs out, another client takes
the lock and writes; when the holder resumes it writes with its old token. Fenced storage rejects
that write; unfenced storage accepts it, and the checker names the stale write.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import redis

from splitbrain.checkers.mutex import check_fencing
from splitbrain.faults import process
from splitbrain.faults.schedule import Nemesis
from splitbrain.history import History

psycopg = pytest.importorskip("psycopg")

HOLDER = textwrap.dedent("""
    import sys, psycopg, redis
    redis_url, pg_url, table, lock, fenced = sys.argv[1:6]
    r = redis.Redis.from_url(redis_url)
    token = r.incr(lock + ":token")
    assert r.set(lock, token, nx=True, px=300)
    print("acquired", token, flush=True)
    sys.stdin.readline()                        # the grader says: write now
    with psycopg.connect(pg_url, autocommit=True) as c:
        guard = " AND token <= %s" if fenced == "1" else " AND %s IS NOT NULL"
        cur = c.execute("UPDATE " + table + " SET value = 'from-holder', token = %s WHERE id = 1"
                        + guard, (token, token))
        if cur.rowcount:
            c.execute("INSERT INTO " + table + "_log (token, who) VALUES (%s, 'holder')", (token,))
    print("accepted" if cur.rowcount else "rejected", flush=True)
""")


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.01)


@pytest.fixture
def world(services):
    pg_url, redis_url = services.postgres_url, services.redis_url
    table = f"fenced_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (id int primary key, value text, token bigint)")
        c.execute(f"INSERT INTO {table} VALUES (1, 'initial', 0)")
        c.execute(f"CREATE TABLE {table}_log (seq serial primary key, token bigint, who text)")
    lock = f"lock:{uuid.uuid4().hex}"
    yield pg_url, redis_url, table, lock
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {table}, {table}_log")
    redis.Redis.from_url(redis_url).delete(lock, lock + ":token")


def _scenario(world, fenced: bool) -> tuple[str, list[dict], History]:
    pg_url, redis_url, table, lock = world
    h = History()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, pg_url, table, lock,
                               "1" if fenced else "0"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        inv = h.invoke("holder", "acquire")
        line = holder.stdout.readline().split()
        assert line[0] == "acquired", line
        h.complete(inv, "ok", int(line[1]))
        n = Nemesis(h, targets={"holder": holder.pid})
        r = redis.Redis.from_url(redis_url)
        with n.fault("pause", "holder"):
            _wait_for(lambda: not r.exists(lock), 10, "the paused holder's lease did not expire")
            inv = h.invoke("other", "acquire")
            token = r.incr(lock + ":token")
            assert r.set(lock, token, nx=True, px=10_000)
            h.complete(inv, "ok", token)
            with psycopg.connect(pg_url, autocommit=True) as c:
                inv = h.invoke("other", "write", {"token": token})
                c.execute(f"UPDATE {table} SET value = 'from-other', token = %s WHERE id = 1",
                          (token,))
                c.execute(f"INSERT INTO {table}_log (token, who) VALUES (%s, 'other')", (token,))
                h.complete(inv, "ok", True)
            inv = h.invoke("holder", "write", {"token": int(line[1])})
            holder.stdin.write("write\n")
            holder.stdin.flush()
            assert process.state(holder.pid) == "T"    # stopped: it cannot act on the order
            with psycopg.connect(pg_url, autocommit=True) as c:
                assert c.execute(f"SELECT value FROM {table}").fetchone()[0] == "from-other"
        outcome = holder.stdout.readline().strip()
        h.complete(inv, "ok", outcome == "accepted")
        holder.wait(10)
        with psycopg.connect(pg_url, autocommit=True) as c:
            log = [{"token": t, "process": who, "accepted": True}
                   for t, who in c.execute(f"SELECT token, who FROM {table}_log ORDER BY seq")]
        return outcome, log, h
    finally:
        if holder.poll() is None:
            holder.kill()


def test_paused_holder_write_is_rejected_by_fenced_postgres(world):
    outcome, log, h = _scenario(world, fenced=True)
    assert outcome == "rejected"
    assert [e["process"] for e in log] == ["other"]
    assert check_fencing(log).valid is True
    assert [(e.f, e.value["phase"]) for e in h.faults()] == [("pause", "start"), ("pause", "end")]


def test_paused_holder_write_lands_without_fencing_and_the_checker_says_so(world):
    outcome, log, h = _scenario(world, fenced=False)
    assert outcome == "accepted"
    v = check_fencing(log)
    assert v.kinds() == ["stale-write"]
    assert "holder wrote with token 1 after other had written with token 2" in v.anomalies[0].message
