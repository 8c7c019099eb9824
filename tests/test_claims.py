"""What the book says about the servers and clients the labs use, checked against the real ones.

Every passage of the book (docs/, README.md) that states how Redis, redis-py, PostgreSQL,
librdkafka, the embedded Kafka-compatible broker (tansu) or Python behave names the test here that
shows it, in an HTML comment beside the passage:

    <!-- claim: tests/test_claims.py::test_set_nx_px_takes_a_lease_only_when_the_key_is_free -->

If a new server or client version stops behaving that way, the test fails and the passage must
change. The last tests check the links themselves: every comment names a test of this file, and
every test here is named by some passage.

Shared servers come from the ``services`` / ``ns`` fixtures (tests/conftest.py); a test that
restarts, kills, pauses or reconfigures a server uses a private one (``spawn_redis``,
``spawn_postgres``, ``spawn_kafka``). tansu's defects are shown on a private tansu, whatever the
session's backend is."""
from __future__ import annotations

import ast
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
import uuid
import zlib
from pathlib import Path

import psycopg
import pytest
import redis

from splitbrain.services import spawn_kafka, spawn_postgres, spawn_redis

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve()


def wait_until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    assert condition(), f"{what} did not happen within {timeout} s"


class Background:
    """Run ``fn`` in a thread; ``result()`` re-raises what it raised."""

    def __init__(self, fn) -> None:
        self.value, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn) -> None:
        try:
            self.value = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test by result()
            self.error = e

    def result(self, timeout: float = 15.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the background statement did not finish"
        if self.error is not None:
            raise self.error
        return self.value


# ============================================================================================
# Redis
# ============================================================================================
@pytest.fixture(scope="module")
def admin_redis():
    """A private Redis this module may pause, flush and add users to."""
    with spawn_redis() as server:
        yield server


@pytest.fixture
def r(ns):
    """A client of the shared Redis as the test's restricted user (keys under ns.prefix)."""
    c = redis.Redis.from_url(ns.redis_url, decode_responses=True, socket_timeout=10)
    yield c
    c.close()


def test_set_nx_px_takes_a_lease_only_when_the_key_is_free(r, ns):
    """`SET key value NX PX ms`: set only if nobody holds the key, and the key expires by itself
    after ms milliseconds, so the next SET NX succeeds."""
    key = ns.key("lock")
    assert r.set(key, "a", nx=True, px=300) is True
    assert r.set(key, "b", nx=True, px=300) is None           # held: refused, nothing changed
    assert r.get(key) == "a" and 0 < r.pttl(key) <= 300
    wait_until(lambda: not r.exists(key), what="the lease running out")
    assert r.set(key, "b", nx=True, px=300) is True


def test_a_plain_del_releases_whoever_holds_the_lock_and_an_owner_checked_one_does_not(r, ns):
    key = ns.key("lock")
    release = r.register_script(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0")
    r.set(key, "b", px=10_000)                                 # b holds the lock now
    assert release(keys=[key], args=["a"]) == 0 and r.get(key) == "b"   # a's late release
    assert r.delete(key) == 1 and r.get(key) is None           # a plain DEL: b's lock is gone


SPIN = """
local c0 = tonumber(redis.call('GET', KEYS[1]) or '0')
local x = 0
for i = 1, tonumber(ARGV[1]) do x = x + i end
local c1 = tonumber(redis.call('GET', KEYS[1]) or '0')
return {c0, c1}
"""


def test_a_lua_script_runs_with_no_other_command_in_between(admin_redis):
    """A writer INCRs a counter as fast as it can while a script reads the counter, loops for a
    while and reads it again: the two reads agree, though the writer never stopped."""
    c = admin_redis.client(decode_responses=True)
    stop = threading.Event()

    def writer() -> int:
        w = admin_redis.client()
        n = 0
        while not stop.is_set():
            w.incr("spin:counter")
            n += 1
        return n

    bg = Background(writer)
    try:
        wait_until(lambda: int(c.get("spin:counter") or 0) > 10, what="the writer starting")
        t0 = time.monotonic()
        c0, c1 = c.eval(SPIN, 1, "spin:counter", 20_000_000)
        took = time.monotonic() - t0
        wait_until(lambda: int(c.get("spin:counter")) > c1, what="the writer going on")
    finally:
        stop.set()
    assert bg.result() > 0
    assert took > 0.05, f"the script ran for {took:.3f} s only: loop longer"
    assert c1 == c0, f"{c1 - c0} INCR(s) of another client ran inside the script"


def test_incr_loses_no_update_where_get_then_set_does(r, ns):
    """Two gateways, interleaved step by step: GET, GET, SET, SET loses one increment; two INCRs
    never do."""
    other = redis.Redis.from_url(ns.redis_url, decode_responses=True)
    key = ns.key("count")
    seen_a = int(r.get(key) or 0)
    seen_b = int(other.get(key) or 0)
    r.set(key, seen_a + 1)
    other.set(key, seen_b + 1)
    assert r.get(key) == "1", "two admissions, one increment"
    r.delete(key)
    r.incr(key)
    other.incr(key)
    assert r.get(key) == "2"
    other.close()


def test_incr_then_expire_is_two_steps_and_multi_exec_applies_both_or_neither(ns):
    """A gateway that dies between INCR and EXPIRE leaves a counter that never expires; INCR and
    PEXPIRE queued in MULTI run together at EXEC, and a client that dies before EXEC applies
    neither."""
    from redis.connection import Connection
    key = ns.key("window")
    check = redis.Redis.from_url(ns.redis_url, decode_responses=True)
    pool = redis.Redis.from_url(ns.redis_url).connection_pool

    conn: Connection = pool.make_connection()
    conn.connect()
    conn.send_command("INCR", key)
    assert conn.read_response() == 1
    conn.disconnect()                                      # dies before its EXPIRE
    assert check.get(key) == "1" and check.ttl(key) == -1  # -1: a key with no expiry

    other = ns.key("window2")
    conn = pool.make_connection()
    conn.connect()
    for cmd in (("MULTI",), ("INCR", other), ("PEXPIRE", other, 2000)):
        conn.send_command(*cmd)
        conn.read_response()
    conn.disconnect()                                      # dies before EXEC
    assert check.exists(other) == 0

    p = check.pipeline(transaction=True)
    p.incr(other).pexpire(other, 2000)
    assert p.execute() == [1, True]
    assert 0 < check.pttl(other) <= 2000
    check.close()
    pool.disconnect()


def test_a_copy_by_get_and_set_nx_drops_the_ttl_and_brings_back_a_deleted_key(r, ns):
    """Moving keys from an old owner to a new one with GET then SET NX: a key with a time to live
    arrives without one, and a key deleted on its new owner during the move comes back. Carrying
    the remaining PTTL keeps the lifetime."""
    old, new = ns.key("old:"), ns.key("new:")
    r.set(old + "session:7", "v1", px=60_000)
    assert r.set(new + "session:7", r.get(old + "session:7"), nx=True)
    assert r.pttl(new + "session:7") == -1                 # -1: no expiry any more

    r.set(old + "session:8", "v1")
    r.delete(new + "session:8")                            # user 8 logs out: the delete goes to
    assert r.set(new + "session:8", r.get(old + "session:8"), nx=True)   # the new owner, then
    assert r.get(new + "session:8") == "v1"                # the copier brings the session back

    ttl = r.pttl(old + "session:7")
    assert r.set(new + "session:9", r.get(old + "session:7"), nx=True, px=ttl)
    assert 0 < r.pttl(new + "session:9") <= ttl


def test_exec_aborts_when_a_watched_key_changed(r, ns):
    key = ns.key("watched")
    r.set(key, 9)
    other = redis.Redis.from_url(ns.redis_url)
    with r.pipeline() as p:
        p.watch(key)
        count = int(p.get(key))
        other.set(key, 10)                                 # another gateway got there first
        p.multi()
        p.set(key, count + 1)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get(key) == "10"
    other.close()


def test_standalone_redis_lets_a_script_touch_undeclared_keys_and_acls_check_every_command(
        admin_redis):
    """Without ACLs a script may touch a key it did not pass in KEYS. A user limited to `p:*`
    is refused a script that declares a key outside its prefix, and a script whose undeclared
    key lies outside it fails at that command, keeping what it wrote before; an undeclared key
    inside the prefix passes."""
    admin = admin_redis.client(decode_responses=True)
    assert admin.eval("redis.call('SET', 'undeclared', 'x') return redis.call('GET', "
                      "'undeclared')", 0) == "x"
    admin.execute_command("ACL", "SETUSER", "claims", "reset", "on", ">pw", "~p:*", "+@all")
    try:
        user = redis.Redis(host="127.0.0.1", port=admin_redis.port, username="claims",
                           password="pw", decode_responses=True)
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.eval("return redis.call('SET', KEYS[1], 1)", 1, "elsewhere")
        with pytest.raises(redis.ResponseError, match=r"(?i)can't access|no permissions"):
            user.eval("redis.call('SET', 'p:first', 1) return redis.call('SET', 'elsewhere', 1)",
                      0)
        assert user.get("p:first") == "1"                  # the write before the error stays
        assert user.eval("return redis.call('SET', 'p:undeclared', 1)", 0) == "OK"
        user.close()
    finally:
        admin.execute_command("ACL", "DELUSER", "claims")


def test_script_flush_forgets_every_script_and_register_script_loads_it_again(admin_redis):
    c = admin_redis.client()
    script = c.register_script("return 7")
    assert script() == 7
    c.script_flush()
    with pytest.raises(redis.exceptions.NoScriptError):
        c.evalsha(script.sha, 0)
    assert script() == 7                                   # NOSCRIPT caught, loaded, run again


def test_a_redis_without_persistence_forgets_locks_counters_and_scripts_when_it_restarts():
    """The kit's Redis keeps nothing on disk: after a restart the lease, the counter and the
    script cache are gone, EVALSHA answers NOSCRIPT and register_script() recovers."""
    with spawn_redis() as server:
        c = server.client(decode_responses=True)
        assert c.config_get("save")["save"] == "" and c.config_get("appendonly")["appendonly"] \
            == "no"
        c.set("lock", "a", nx=True, px=60_000)
        for _ in range(5):
            c.incr("fence")
        script = c.register_script("return redis.call('INCR', KEYS[1])")
        assert script(keys=["fence"]) == 6
        server.restart()
        c = server.client(decode_responses=True)
        assert c.get("lock") is None and c.get("fence") is None
        with pytest.raises(redis.exceptions.NoScriptError):
            c.evalsha(script.sha, 1, "fence")
        script = c.register_script("return redis.call('INCR', KEYS[1])")
        assert script(keys=["fence"]) == 1                 # the fencing counter went backwards


def test_an_incr_the_primary_acknowledged_is_lost_when_a_replica_that_missed_it_is_promoted():
    """Replication is asynchronous: with the link to its replica cut, the primary still answers
    every INCR. Promote the replica and the counter is back where the link broke."""
    from splitbrain.faults.proxy import FaultProxy
    link = FaultProxy("claims-repl")
    try:
        with spawn_redis() as primary, spawn_redis() as replica:
            port = link.start(("127.0.0.1", primary.port))
            p, rc = primary.client(decode_responses=True), replica.client(decode_responses=True)
            p.set("fence", 33)
            rc.execute_command("REPLICAOF", "127.0.0.1", port)
            wait_until(lambda: rc.info("replication").get("master_link_status") == "up"
                       and rc.get("fence") == "33", what="the replica catching up")
            link.stop()                                    # the network between them breaks
            wait_until(lambda: rc.info("replication").get("master_link_status") == "down",
                       what="the replica noticing")
            assert [p.incr("fence") for _ in range(3)] == [34, 35, 36]   # all acknowledged
            primary.kill()
            rc.execute_command("REPLICAOF", "NO", "ONE")   # failover
            assert rc.get("fence") == "33"
            assert rc.incr("fence") == 34                  # token 34 is handed out twice
    finally:
        link.stop()


def test_a_script_that_reads_time_may_write_and_replicas_get_its_writes_not_the_script():
    """Effects replication: a script calls TIME, then writes; the replica applies the SET the
    script did (same value), never runs the script, and has not got it in its script cache."""
    with spawn_redis() as primary:
        replica = primary.replica()
        p, rc = primary.client(decode_responses=True), replica.client(decode_responses=True)
        stamp = p.register_script("local t = redis.call('TIME') "
                                  "redis.call('SET', KEYS[1], t[1] .. '.' .. t[2]) return 1")
        assert stamp(keys=["stamp"]) == 1
        assert p.execute_command("WAIT", 1, 5000) == 1
        assert rc.get("stamp") == p.get("stamp")
        stats = rc.info("commandstats")
        assert "cmdstat_set" in stats
        assert not {"cmdstat_eval", "cmdstat_evalsha"} & set(stats), stats
        assert rc.script_exists(stamp.sha) == [False]      # a promoted replica: NOSCRIPT


# -- redis-py --------------------------------------------------------------------------------
def test_redis_py_from_url_does_not_retry_and_the_keyword_client_does(admin_redis):
    """CLIENT PAUSE holds every command for 1.2 s. A client made by Redis.from_url (what the
    labs use) with a 0.25 s socket timeout fails at once with TimeoutError; redis.Redis(host=...)
    retries with backoff (redis-py 8: ten times) and answers once the pause is over. Without a
    socket timeout a client simply waits as long as the server does."""
    admin = admin_redis.client()
    url = f"redis://127.0.0.1:{admin_redis.port}/0"
    from_url = redis.Redis.from_url(url, socket_timeout=0.25)
    keyword = redis.Redis(host="127.0.0.1", port=admin_redis.port, socket_timeout=0.25)
    no_timeout = redis.Redis.from_url(url)
    assert from_url.get_retry() is None
    assert keyword.get_retry().get_retries() == 10
    for c in (from_url, keyword, no_timeout):
        c.ping()                                           # connected before the pause

    admin.execute_command("CLIENT", "PAUSE", 1200, "ALL")
    with pytest.raises(redis.TimeoutError):
        from_url.incr("from-url")
    admin.execute_command("CLIENT", "UNPAUSE")

    admin.execute_command("CLIENT", "PAUSE", 1200, "ALL")
    assert isinstance(keyword.incr("keyword"), int)        # after several timed-out attempts

    admin.execute_command("CLIENT", "PAUSE", 600, "ALL")
    t0 = time.monotonic()
    assert no_timeout.incr("no-timeout") == 1
    assert time.monotonic() - t0 >= 0.5, "the pause did not hold the command"
    for c in (from_url, keyword, no_timeout):
        c.close()


def test_the_book_describes_the_redis_py_the_kit_installs():
    """The book describes redis-py 8's defaults and says the kit accepts 5 to 8: both must match
    pyproject.toml and the installed client."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "redis>=5,<9" in deps, [d for d in deps if d.startswith("redis")]
    assert redis.__version__.split(".")[0] == "8", redis.__version__


# ============================================================================================
# PostgreSQL
# ============================================================================================
def connect(url: str, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)


def waiting_on_a_lock(url: str, pid: int) -> bool:
    with connect(url) as c:
        row = c.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                        (pid,)).fetchone()
    return bool(row) and row[0] == "Lock"


FENCE = """
INSERT INTO resource (key, value, token) VALUES (%s, %s, %s)
ON CONFLICT (key) DO UPDATE
    SET value = excluded.value, token = excluded.token
    WHERE resource.token <= excluded.token
RETURNING 1
"""


@pytest.fixture
def pg(ns):
    with connect(ns.pg_url) as c:
        c.execute("CREATE TABLE resource (key text PRIMARY KEY, value text NOT NULL, "
                  "token bigint NOT NULL DEFAULT 0)")
    return ns.pg_url


def test_the_fenced_upsert_refuses_an_older_token_and_returns_no_row(pg):
    with connect(pg) as c:
        assert c.execute(FENCE, ("report", "b-1", 34)).fetchone() == (1,)
        assert c.execute(FENCE, ("report", "a-1", 33)).fetchone() is None     # refused
        assert c.execute(FENCE, ("report", "b-2", 34)).fetchone() == (1,)     # same holder again
        assert c.execute("SELECT value, token FROM resource").fetchall() == [("b-2", 34)]


def test_a_concurrent_upsert_waits_for_the_row_lock_then_rechecks_the_committed_row(pg):
    """READ COMMITTED (Postgres's default): b inserts token 34 and has not committed; a's upsert
    with token 33 waits on b's row, then evaluates its WHERE against b's committed row and is
    refused."""
    with connect(pg, autocommit=False) as b, connect(pg) as a:
        assert b.execute(FENCE, ("report", "b-1", 34)).fetchone() == (1,)
        bg = Background(lambda: a.execute(FENCE, ("report", "a-1", 33)).fetchone())
        wait_until(lambda: waiting_on_a_lock(pg, a.info.backend_pid), what="a waiting on b's row")
        b.commit()
        assert bg.result() is None
        assert a.execute("SELECT value, token FROM resource").fetchall() == [("b-1", 34)]


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_concurrent_upsert_under_repeatable_read_raises_a_serialization_failure(pg, isolation):
    """The same race in a transaction at REPEATABLE READ or SERIALIZABLE: a's upsert does not
    re-check the newer row, it fails with a serialization error the caller must retry."""
    with connect(pg) as c:
        c.execute(FENCE, ("report", "old", 30))
    with connect(pg, autocommit=False) as b, connect(pg, autocommit=False) as a:
        a.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        a.execute("SELECT 1 FROM resource").fetchall()                    # a's snapshot
        assert b.execute(FENCE, ("report", "b-1", 34)).fetchone() == (1,)
        bg = Background(lambda: a.execute(FENCE, ("report", "a-1", 35)).fetchone())
        wait_until(lambda: waiting_on_a_lock(pg, a.info.backend_pid), what="a waiting on b's row")
        b.commit()
        with pytest.raises(psycopg.errors.SerializationFailure):
            bg.result()


OUTBOX = """
CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'placed');
CREATE TABLE outbox (id bigserial PRIMARY KEY, aggregate_id text NOT NULL, payload text NOT NULL,
                     published_at timestamptz);
"""

# the chapter's claim query (docs/chapters/02-transactional-outbox.md), word for word
HEAD_OF_EACH_AGGREGATE = """
SELECT o.id, o.aggregate_id, o.payload FROM outbox o
 WHERE o.published_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM outbox e
                    WHERE e.aggregate_id = o.aggregate_id
                      AND e.published_at IS NULL AND e.id < o.id)
 ORDER BY o.id LIMIT %s
   FOR UPDATE SKIP LOCKED
"""


@pytest.fixture
def outbox(ns):
    with connect(ns.pg_url) as c:
        c.execute(OUTBOX)
    return ns.pg_url


def _add(c, aggregate: str, payload: str) -> int:
    return c.execute("INSERT INTO outbox (aggregate_id, payload) VALUES (%s, %s) RETURNING id",
                     (aggregate, payload)).fetchone()[0]


def test_skip_locked_leaves_out_rows_another_transaction_locked_instead_of_waiting(outbox):
    with connect(outbox) as c:
        for i in range(4):
            _add(c, f"o{i}", "e")
    with connect(outbox, autocommit=False) as a, connect(outbox, autocommit=False) as b:
        mine = a.execute("SELECT id FROM outbox ORDER BY id LIMIT 2 FOR UPDATE").fetchall()
        b.execute("SET LOCAL lock_timeout = '2s'")        # a wait would fail, not pass
        theirs = b.execute("SELECT id FROM outbox ORDER BY id LIMIT 2 "
                           "FOR UPDATE SKIP LOCKED").fetchall()
        assert [i for (i,) in mine] == [1, 2] and [i for (i,) in theirs] == [3, 4]


def test_claiming_the_head_of_each_aggregate_never_hands_a_second_relay_a_later_event(outbox):
    """Order 7 has OrderPlaced (row 1) and OrderCancelled (row 3) pending. While relay A holds
    row 1, relay B's claim skips row 1 (locked) and leaves row 3 out (not the head of order 7);
    once A marked row 1 published, row 3 is eligible."""
    with connect(outbox) as c:
        _add(c, "7", "OrderPlaced")
        _add(c, "8", "OrderPlaced")
        _add(c, "7", "OrderCancelled")
        _add(c, "9", "OrderPlaced")
    with connect(outbox, autocommit=False) as a, connect(outbox, autocommit=False) as b:
        assert [r[0] for r in a.execute(HEAD_OF_EACH_AGGREGATE, (1,)).fetchall()] == [1]
        assert [r[0] for r in b.execute(HEAD_OF_EACH_AGGREGATE, (10,)).fetchall()] == [2, 4]
        b.rollback()
        a.execute("UPDATE outbox SET published_at = now() WHERE id = 1")
        a.commit()
        assert [r[0] for r in b.execute(HEAD_OF_EACH_AGGREGATE, (10,)).fetchall()] == [2, 3, 4]
        b.rollback()


def test_a_bigserial_id_is_drawn_at_insert_and_a_high_water_mark_skips_a_late_commit(outbox):
    with connect(outbox, autocommit=False) as t1, connect(outbox, autocommit=False) as t2, \
            connect(outbox) as relay:
        first = _add(t1, "7", "e41")
        second = _add(t2, "8", "e42")
        assert first < second
        t2.commit()
        assert relay.execute("SELECT id FROM outbox").fetchall() == [(second,)]
        high_water = second                               # "published everything up to 42"
        t1.commit()
        assert relay.execute("SELECT id FROM outbox WHERE id > %s", (high_water,)).fetchall() \
            == []                                         # row 41 is never published
        assert relay.execute("SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id"
                             ).fetchall() == [(first,), (second,)]


def test_one_orders_outbox_rows_commit_in_id_order_only_if_the_order_row_is_locked_first(outbox):
    """Insert first, lock later: the second event of order 7 commits first, and the claim query
    hands it out while the first is still in flight. Lock first: the second transaction waits
    before it draws its id, so ids follow commit order."""
    with connect(outbox) as c:
        c.execute("INSERT INTO orders (id) VALUES ('7'), ('8')")
    lock = "UPDATE orders SET status = %s WHERE id = %s"
    # the event's id is drawn before the order's row is locked
    with connect(outbox, autocommit=False) as t1, connect(outbox, autocommit=False) as t2, \
            connect(outbox, autocommit=False) as relay:
        e1 = _add(t1, "7", "OrderPlaced")
        e2 = _add(t2, "7", "OrderCancelled")
        t2.execute(lock, ("cancelled", "7"))
        t2.commit()
        assert [r[0] for r in relay.execute(HEAD_OF_EACH_AGGREGATE, (10,)).fetchall()] == [e2]
        relay.rollback()
        t1.execute(lock, ("placed", "7"))
        t1.commit()
        assert e1 < e2
    # the order's row is locked before the event's id is drawn
    with connect(outbox, autocommit=False) as t1, connect(outbox, autocommit=False) as t2:
        t1.execute(lock, ("placed", "8"))
        e1 = _add(t1, "8", "OrderPlaced")
        def cancel() -> int:
            t2.execute(lock, ("cancelled", "8"))
            return _add(t2, "8", "OrderCancelled")

        bg = Background(cancel)
        wait_until(lambda: waiting_on_a_lock(outbox, t2.info.backend_pid), what="t2 waiting")
        t1.commit()
        e2 = bg.result()
        t2.commit()
        assert e1 < e2


def test_pg_try_advisory_xact_lock_admits_one_transaction_and_frees_at_its_end(ns):
    with connect(ns.pg_url, autocommit=False) as a, connect(ns.pg_url, autocommit=False) as b:
        assert a.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (True,)
        assert b.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (False,)
        b.rollback()
        a.commit()
        assert b.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (True,)
        b.rollback()


def test_a_session_advisory_lock_is_released_when_its_session_dies(ns):
    """The holder is killed with SIGKILL: Postgres sees its connection close and releases the
    lock, with nobody calling unlock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time, psycopg
            c = psycopg.connect(sys.argv[1], autocommit=True)
            c.execute("SELECT pg_advisory_lock(7)")
            print("locked", flush=True)
            time.sleep(600)
        """), ns.pg_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with connect(ns.pg_url) as c:
            assert c.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (False,)
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            wait_until(lambda: c.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (True,),
                       what="the lock being released")
    finally:
        holder.kill()
        holder.wait(10)


def test_a_session_advisory_lock_ends_when_the_server_ends_the_session_and_the_holder_learns_later(ns):
    """A session lock lasts as long as the server keeps the session, which is the server's call:
    here idle_session_timeout ends a holder that went quiet (a paused process). Another session
    takes the lock; the holder finds out only when it next talks to the server."""
    with connect(ns.pg_url) as holder, connect(ns.pg_url) as other:
        holder.execute("SET idle_session_timeout = '300ms'")
        holder.execute("SELECT pg_advisory_lock(9)")
        assert other.execute("SELECT pg_try_advisory_lock(9)").fetchone() == (False,)
        wait_until(lambda: other.execute("SELECT pg_try_advisory_lock(9)").fetchone() == (True,),
                   what="the server ending the idle holder's session")
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")                     # the holder learns it lost it


def test_a_prepared_transaction_outlives_its_session_and_keeps_its_locks(pg, ns):
    gid = f"{ns.name}-claims"
    with connect(pg) as c:
        c.execute("INSERT INTO resource (key, value) VALUES ('stock', '1')")
    try:
        with connect(pg, autocommit=False) as participant:
            participant.execute("UPDATE resource SET value = '0' WHERE key = 'stock'")
            participant.execute(f"PREPARE TRANSACTION '{gid}'")
        # the participant's session is gone; its prepared transaction is not
        with connect(pg) as other:
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("UPDATE resource SET value = '5' WHERE key = 'stock'")
            assert other.execute("SELECT count(*) FROM pg_prepared_xacts WHERE gid = %s",
                                 (gid,)).fetchone() == (1,)
            other.execute(f"COMMIT PREPARED '{gid}'")      # the coordinator's decision
            assert other.execute("SELECT value FROM resource").fetchone() == ("0",)
            other.execute("UPDATE resource SET value = '5' WHERE key = 'stock'")
    finally:
        with connect(pg) as c:
            if c.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,)).fetchone():
                c.execute(f"ROLLBACK PREPARED '{gid}'")


def test_a_sequence_with_cache_hands_out_numbers_out_of_order_across_sessions(ns):
    with connect(ns.pg_url) as c:
        c.execute("CREATE SEQUENCE tokens CACHE 20")
    with connect(ns.pg_url) as a, connect(ns.pg_url) as b:
        first = a.execute("SELECT nextval('tokens')").fetchone()[0]
        second = b.execute("SELECT nextval('tokens')").fetchone()[0]
        third = a.execute("SELECT nextval('tokens')").fetchone()[0]
    assert (first, second, third) == (1, 21, 2)           # a later call, a smaller number


def test_a_sequence_skips_ahead_after_a_crash_and_never_repeats_a_number():
    """On one server with synchronous_commit on (Postgres's default), values handed out before
    a SIGKILL of the server are never handed out again; some are skipped."""
    with spawn_postgres(settings={"synchronous_commit": "on"}) as server:
        with connect(server.url) as c:
            c.execute("CREATE SEQUENCE tokens")
            handed_out = [c.execute("SELECT nextval('tokens')").fetchone()[0] for _ in range(40)]
        server.kill()
        server.start()
        with connect(server.url) as c:
            after = c.execute("SELECT nextval('tokens')").fetchone()[0]
    assert handed_out == list(range(1, 41)) and after > 40


def test_the_kits_own_postgres_runs_without_fsync_or_synchronous_commit():
    from splitbrain.services.postgres import SETTINGS
    assert SETTINGS["fsync"] == "off" and SETTINGS["synchronous_commit"] == "off"
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    assert "fsync=off" in compose and "synchronous_commit=off" in compose


# ============================================================================================
# Kafka: librdkafka (confluent-kafka) and the embedded broker, tansu
# ============================================================================================
def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions,
                                           replication_factor=1)]).values():
        f.result(15)


def _read(bootstrap: str, topic: str, partitions: int, n: int, extra: dict | None = None,
          timeout: float = 15.0) -> list:
    """The first ``n`` records of ``topic`` (or what arrived before ``timeout``)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"claims-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, **(extra or {})})
    out = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        end = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < end:
            out += [m for m in c.consume(100, timeout=0.2) if not m.error()]
    finally:
        c.close()
    return out


def murmur2(data: bytes) -> int:
    """The Java client's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[4 * n4:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def test_librdkafka_partitions_keys_by_crc32_where_the_java_client_uses_murmur2(services, ns):
    """The default partitioner of librdkafka (confluent-kafka) is consistent_random: CRC32 of
    the key. The Java client's is murmur2 (librdkafka's murmur2_random matches it). On six
    partitions most keys land on different partitions under the two. Records of one key from
    one producer land on one partition, in the order produced."""
    from confluent_kafka import Producer
    topic, partitions = ns.topic("partitioned"), 6
    _create_topic(services.kafka_bootstrap, topic, partitions)
    keys = [f"order-{i}".encode() for i in range(60)]
    placed: dict[str, dict[bytes, int]] = {}
    for partitioner in (None, "murmur2_random"):
        conf = {"bootstrap.servers": services.kafka_bootstrap}
        if partitioner:
            conf["partitioner"] = partitioner
        p, got = Producer(conf), {}
        for key in keys:
            p.produce(topic, b"v", key=key,
                      on_delivery=lambda err, msg, key=key: got.__setitem__(key, msg.partition()))
        assert p.flush(15) == 0
        placed[partitioner or "default"] = got
    assert all(placed["default"][k] == zlib.crc32(k) % partitions for k in keys)
    assert all(placed["murmur2_random"][k] == (murmur2(k) & 0x7FFFFFFF) % partitions
               for k in keys)
    assert sum(placed["default"][k] != placed["murmur2_random"][k] for k in keys) > len(keys) // 2

    p = Producer({"bootstrap.servers": services.kafka_bootstrap})
    for i in range(20):
        p.produce(topic, str(i).encode(), key=b"order-7")
    assert p.flush(15) == 0
    mine = [m for m in _read(services.kafka_bootstrap, topic, partitions, 2 * len(keys) + 20)
            if m.key() == b"order-7" and m.value() != b"v"]
    assert {m.partition() for m in mine} == {placed["default"][b"order-7"]}
    assert [int(m.value()) for m in mine] == list(range(20))


def test_a_librdkafka_producer_is_not_idempotent_unless_asked(services, ns):
    """librdkafka's enable.idempotence is off by default: a default producer never starts the
    idempotent producer's state machine (no producer id is requested), one that asks does."""
    import logging
    from confluent_kafka import Producer
    topic = ns.topic("idempotence")
    _create_topic(services.kafka_bootstrap, topic, 1)

    def eos_log(**conf) -> list[str]:
        lines: list[str] = []
        logger = logging.getLogger(f"claims.rdkafka.{uuid.uuid4().hex}")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(type("Keep", (logging.Handler,), {
            "emit": lambda self, record: lines.append(record.getMessage())})())
        p = Producer({"bootstrap.servers": services.kafka_bootstrap, "debug": "eos",
                      "logger": logger, **conf})
        p.produce(topic, b"e")
        assert p.flush(15) == 0
        return lines

    assert not [line for line in eos_log() if "Idempotent producer" in line]
    assert [line for line in eos_log(**{"enable.idempotence": True})
            if "Idempotent producer state change" in line]


@pytest.fixture(scope="module")
def tansu():
    """A private tansu, the kit's embedded broker, whatever the session's backend is."""
    with spawn_kafka() as broker:
        yield broker.bootstrap


def test_a_produced_record_still_in_the_clients_queue_dies_with_the_process(tansu):
    """produce() only queues the record in librdkafka's memory; a process killed before the
    background thread sent it (here: linger.ms holds it 30 s) takes it along."""
    topic = f"claims-queue-{uuid.uuid4().hex[:8]}"
    _create_topic(tansu, topic, 1)
    app = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": sys.argv[1], "linger.ms": 30000})
        p.produce(sys.argv[2], b"OrderPlaced o-5512", partition=0)
        p.poll(0)
        print("produced", flush=True)
        time.sleep(600)
    """), tansu, topic], stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline().strip() == "produced"
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(10)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": tansu})
    p.produce(topic, b"marker", partition=0)                 # to know the end of the topic
    assert p.flush(15) == 0
    assert [m.value() for m in _read(tansu, topic, 1, 1)] == [b"marker"]


def test_tansu_reports_a_wrong_high_watermark_after_a_multi_record_batch(tansu):
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic = f"claims-wm-{uuid.uuid4().hex[:8]}"
    _create_topic(tansu, topic, 1)
    p = Producer({"bootstrap.servers": tansu, "linger.ms": 500})   # one batch of ten records
    for i in range(10):
        p.produce(topic, str(i).encode(), partition=0)
    assert p.flush(15) == 0
    c = Consumer({"bootstrap.servers": tansu, "group.id": f"claims-{uuid.uuid4().hex}"})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    records = _read(tansu, topic, 1, 10)
    assert [m.offset() for m in records] == list(range(10))
    assert high < 10, f"tansu's high watermark is right now ({low}, {high}): update the book"


def test_tansu_read_committed_returns_records_of_aborted_transactions(tansu):
    from confluent_kafka import Producer
    topic = f"claims-tx-{uuid.uuid4().hex[:8]}"
    _create_topic(tansu, topic, 1)
    p = Producer({"bootstrap.servers": tansu, "transactional.id": f"claims-{topic}"})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(topic, b"aborted", partition=0)
    p.flush(15)
    p.abort_transaction(15)
    p.begin_transaction()
    p.produce(topic, b"committed", partition=0)
    p.commit_transaction(15)
    seen = [m.value() for m in _read(tansu, topic, 1, 2, {"isolation.level": "read_committed"})]
    assert seen == [b"aborted", b"committed"]


def test_tansu_loses_every_topic_and_record_when_it_restarts():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    with spawn_kafka() as broker:
        topic = "claims-restart"
        _create_topic(broker.bootstrap, topic, 1)
        p = Producer({"bootstrap.servers": broker.bootstrap})
        p.produce(topic, b"kept?", partition=0)
        assert p.flush(15) == 0
        broker.restart()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        assert topic not in admin.list_topics(timeout=10).topics


class Member:
    """A consumer of ``group`` subscribed to ``topic``; ``assigned`` records when (seconds after
    subscribing) and how many partitions it was given."""

    def __init__(self, bootstrap: str, group: str, topic: str, **conf) -> None:
        from confluent_kafka import Consumer
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest", **conf})
        self.assigned: list[tuple[float, int]] = []
        t0 = time.monotonic()
        self.consumer.subscribe([topic], on_assign=lambda _c, parts: self.assigned.append(
            (time.monotonic() - t0, len(parts))))

    def close(self) -> None:
        self.consumer.close()


def _poll(members, until, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not until():
        for m in members:
            m.consumer.poll(0.05)


def _first_assignment_after(bootstrap: str, name: str, **conf) -> float:
    """Seconds from subscribing until a new group's only member is first assigned."""
    topic = f"claims-{name}-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic, 2)
    c = Member(bootstrap, f"claims-{topic}", topic, **conf)
    try:
        _poll([c], lambda: c.assigned, 30)
        assert c.assigned, "no assignment within 30 s"
        return c.assigned[0][0]
    finally:
        c.close()


def test_tansu_makes_every_joingroup_wait_half_the_session_timeout(tansu):
    """With session.timeout.ms=10000 the first assignment comes after about 5 s (Apache Kafka's
    wait for a new group is group.initial.rebalance.delay.ms, 3 s by default). The kit's
    consumers use 6000 ms."""
    from splitbrain.services.kafka import CONSUMER_DEFAULTS
    assert CONSUMER_DEFAULTS["session.timeout.ms"] == 6000
    assert _first_assignment_after(tansu, "join", **{"session.timeout.ms": 10_000}) >= 4.5


def test_tansu_makes_a_joingroup_wait_a_second_even_with_a_short_session(tansu):
    """Half of a 600 ms session would be 300 ms: the first assignment still comes after about a
    second (lab 10's consumers use a 1 s session, so a join takes about a second there)."""
    assert _first_assignment_after(tansu, "join-short", **{"session.timeout.ms": 600,
                                                           "heartbeat.interval.ms": 150}) >= 0.9


def test_tansu_never_assigns_partitions_to_a_kip848_consumer(tansu):
    """A consumer of the new group protocol (group.protocol=consumer) gets nothing, while a
    classic one started at the same moment is assigned within seconds; the first still has
    nothing after waiting that long again twice over."""
    topic = f"claims-848-{uuid.uuid4().hex[:8]}"
    _create_topic(tansu, topic, 2)
    classic = Member(tansu, f"claims-classic-{topic}", topic, **{"session.timeout.ms": 6000})
    new = Member(tansu, f"claims-848-{topic}", topic, **{"group.protocol": "consumer"})
    try:
        _poll([classic, new], lambda: classic.assigned, 30)
        assert classic.assigned, "the classic consumer was not assigned within 30 s"
        waited = classic.assigned[0][0]
        _poll([classic, new], lambda: new.assigned, 2 * waited)
        assert not new.assigned, "tansu now serves KIP-848 consumers: update the book"
    finally:
        classic.close()
        new.close()


def _leave_together_then_rejoin(tansu, attempt: int) -> tuple[bool, bool]:
    """Two members of a fresh group close at the same moment (a barrier releases both closes);
    then a new member of that group and a member of another fresh group join. Whether each was
    assigned partitions within 12 s, twice the session timeout."""
    topic = f"claims-wedge-{uuid.uuid4().hex[:8]}"
    _create_topic(tansu, topic, 4)
    group, conf = f"claims-wedge-{topic}-{attempt}", {"session.timeout.ms": 6000}
    a, b = Member(tansu, group, topic, **conf), Member(tansu, group, topic, **conf)
    try:
        _poll([a, b], lambda: a.assigned and b.assigned
              and a.assigned[-1][1] + b.assigned[-1][1] == 4, 30)
        assert a.assigned and b.assigned, "the group did not form"
    except BaseException:
        a.close()
        b.close()
        raise
    together = threading.Barrier(2)

    def leave(member):
        together.wait(10)
        member.close()

    leaving = [threading.Thread(target=leave, args=(c,)) for c in (a, b)]
    for t in leaving:
        t.start()
    for t in leaving:
        t.join(15)
    late = Member(tansu, group, topic, **conf)
    fresh = Member(tansu, f"{group}-fresh", topic, **conf)
    try:
        _poll([late, fresh], lambda: late.assigned, 12)
        return bool(late.assigned), bool(fresh.assigned)
    finally:
        late.close()
        fresh.close()


def test_tansu_wedges_a_group_whose_last_members_leave_together(tansu):
    """The book says a group *can* wedge when its last members leave together: whether it does
    depends on how the two LeaveGroups interleave in the broker, so the claim is checked as
    stated: of up to six groups whose two members leave at the same moment, at least one is
    wedged (a new member is never assigned, while a member of a fresh group joining at the same
    moment is). When none wedges, tansu has fixed it and the book must change."""
    for attempt in range(6):
        late, fresh = _leave_together_then_rejoin(tansu, attempt)
        assert fresh, "the broker assigns no group at all"
        if not late:
            return
    pytest.fail("tansu no longer wedges a group whose last members leave together (6 tries): "
                "update the book")


# ============================================================================================
# Python: str hashes are salted per process
# ============================================================================================
HASHES = "import sys; print(sys.flags.hash_randomization, [hash(f'session:{i}') for i in range(1000)])"


def _hashes(seed: str | None) -> tuple[int, list[int]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    if seed is not None:
        env["PYTHONHASHSEED"] = seed
    out = subprocess.run([sys.executable, "-c", HASHES], capture_output=True, text=True,
                         env=env, check=True).stdout.split(" ", 1)
    return int(out[0]), ast.literal_eval(out[1])


def test_str_hash_differs_between_separately_started_processes_unless_pythonhashseed_is_set():
    (flag_a, a), (flag_b, b) = _hashes(None), _hashes(None)
    assert flag_a == flag_b == 1                           # randomization is on by default
    assert a != b
    assert _hashes("1") == _hashes("1")


def test_two_salts_send_about_three_keys_in_four_to_another_of_four_shards():
    (_, a), (_, b) = _hashes("1"), _hashes("2")
    moved = sum(x % 4 != y % 4 for x, y in zip(a, b)) / len(a)
    assert 0.70 <= moved <= 0.80, moved


FORK_AND_SPAWN = """
import multiprocessing as mp, os, sys

def hashes(_=None):
    return [hash(f"session:{i}") for i in range(100)]

if __name__ == "__main__":
    mine = hashes()
    r, w = os.pipe()
    pid = os.fork()                      # what gunicorn does for each worker
    if pid == 0:
        os.write(w, repr(hashes()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    forked = eval(os.read(r, 1 << 20).decode())
    with mp.get_context("spawn").Pool(1) as pool:
        spawned = pool.apply(hashes)
    print(forked == mine, spawned == mine)
"""


def test_a_forked_process_shares_its_parents_salt_and_a_spawned_one_does_not(tmp_path):
    script = tmp_path / "fork_and_spawn.py"
    script.write_text(FORK_AND_SPAWN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         check=True, timeout=60).stdout.split()
    assert out == ["True", "False"], out


# ============================================================================================
# Arithmetic the book states (rate limiting)
# ============================================================================================
def test_the_sliding_window_counter_lets_twenty_requests_through_in_under_two_seconds():
    """Ten per two seconds, Cloudflare's estimate `previous * (1 - elapsed/window) + current`:
    ten requests at the very end of one window, then one request whenever the estimate allows,
    puts 20 admissions into 1.8 s, where an exact sliding window allows 10 and the token-bucket
    envelope (limit + rate * d) 19."""
    limit, window = 10, 2.0
    counts: dict[int, int] = {}

    def allow(t: float) -> bool:
        idx = math.floor(t / window)
        elapsed = (t - idx * window) / window
        if counts.get(idx - 1, 0) * (1 - elapsed) + counts.get(idx, 0) >= limit:
            return False
        counts[idx] = counts.get(idx, 0) + 1
        return True

    admitted = [1.999] * 10 if all(allow(1.999) for _ in range(10)) else []
    admitted += [t for t in (2 + i / 1000 for i in range(2000)) if allow(t)]
    burst = [t for t in admitted if t < admitted[0] + 1.81]
    assert len(burst) == 20
    span = burst[-1] - burst[0]
    assert span < 1.81 and len(burst) > limit + limit / window * span


# ============================================================================================
# The links from prose to proof
# ============================================================================================
CLAIM = re.compile(r"<!--\s*claim:\s*([^\s>]+)\s*-->")


def _book_pages() -> list[Path]:
    return sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]


def _tests_here() -> set[str]:
    tree = ast.parse(THIS.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)
            and n.name.startswith("test_")}


def _claims() -> list[tuple[Path, str]]:
    return [(page, m.group(1)) for page in _book_pages()
            for m in CLAIM.finditer(page.read_text(encoding="utf-8"))]


def test_every_claim_comment_in_the_book_names_a_test_of_this_file():
    claims = _claims()
    assert claims, "the book names no claim test"
    tests = _tests_here()
    wrong = [f"{page.relative_to(ROOT)}: {ref}" for page, ref in claims
             if not ref.startswith("tests/test_claims.py::")
             or ref.split("::", 1)[1] not in tests]
    assert not wrong, "claim comments that name no test of tests/test_claims.py:\n" + \
        "\n".join(wrong)


def test_every_claim_test_backs_a_passage_of_the_book():
    named = {ref.split("::", 1)[1] for _, ref in _claims() if "::" in ref}
    links = {"test_every_claim_comment_in_the_book_names_a_test_of_this_file",
             "test_every_claim_test_backs_a_passage_of_the_book"}
    orphans = sorted(_tests_here() - named - links)
    assert not orphans, f"tests no passage of the book names: {orphans}"
