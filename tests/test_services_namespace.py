"""Per-test namespaces: each test's database, keys and topics are its own, even in parallel."""
from __future__ import annotations

import threading

import psycopg
import pytest
import redis

from splitbrain.services import open_namespace, procs


def test_namespace_role_owns_its_database_and_nothing_else(services, ns):
    with psycopg.connect(ns.pg_url, autocommit=True) as c:
        assert c.execute("select current_user, current_database()").fetchone() == (ns.name, ns.name)
        c.execute("create table t(x int)")
        c.execute("begin")
        c.execute("insert into t values (1)")
        c.execute(f"prepare transaction '{ns.name}-1'")   # labs use two-phase commit
        c.execute(f"commit prepared '{ns.name}-1'")
        assert c.execute("select count(*) from t").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("create database other")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("create role intruder")
    other = open_namespace(services)
    try:
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(ns.pg_url.rsplit("/", 1)[0] + "/" + other.name, connect_timeout=5)
    finally:
        other.drop()



def test_a_database_claimed_from_the_pool_before_it_was_closed_is_closed_to_others(services, ns):
    """The pool makes a database, then takes CONNECT from PUBLIC in a second statement: a
    namespace that claims it in between must still be closed to every other namespace's role."""
    from splitbrain.services import pg_namespace
    admin = ns._server_pg_url
    with pg_namespace._lock:          # no top-up of this process's pool meanwhile
        pg_namespace._maintaining.add(admin)
    try:
        with psycopg.connect(admin, autocommit=True) as c:
            for (db,) in c.execute("select datname from pg_database "
                                   "where datname like 'sbpool\\_%'").fetchall():
                c.execute(f'GRANT CONNECT ON DATABASE "{db}" TO PUBLIC')   # not closed yet
        claimed = open_namespace(services)
    finally:
        with pg_namespace._lock:
            pg_namespace._maintaining.discard(admin)
    try:
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(ns.pg_url.rsplit("/", 1)[0] + "/" + claimed.name, connect_timeout=5)
        with psycopg.connect(claimed.pg_url) as c:   # its own role still gets in
            assert c.execute("select current_database()").fetchone() == (claimed.name,)
    finally:
        claimed.drop()

def test_a_labs_schema_is_applied_as_the_admin_and_granted_to_the_learner(ns):
    assert ns.pg_role == ns.name
    schema = ("CREATE TABLE IF NOT EXISTS t (id bigserial PRIMARY KEY, x int);"
              "CREATE TABLE IF NOT EXISTS secret (x int);")
    ns.apply_schema(schema)
    ns.apply_schema(schema)                               # idempotent, as labs apply it per test
    with psycopg.connect(ns.pg_url, autocommit=True) as c:
        assert c.execute("insert into t (x) values (1) returning id").fetchone() == (1,)
        assert c.execute("select count(*) from secret").fetchone() == (0,)
    ns.apply_schema("CREATE TABLE narrow (x int);", grant_all=False)
    with psycopg.connect(ns.pg_url, autocommit=True) as c, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("select * from narrow")


def test_redis_acl_user_can_do_what_labs_need(ns):
    assert ns.redis_acl, ns.redis_acl_reason
    r = redis.Redis.from_url(ns.redis_url)
    k = ns.key("lock")
    assert r.set(k, "token", nx=True, px=500)
    assert r.incr(ns.key("fence")) == 1
    assert r.time()[0] > 0
    assert r.eval("return redis.call('INCR', KEYS[1])", 1, ns.key("fence")) == 2
    sha = r.script_load("return redis.call('GET', KEYS[1])")
    assert r.evalsha(sha, 1, k) == b"token"
    p = r.pipeline(transaction=True)
    p.incr(ns.key("fence"))
    p.get(k)
    assert p.execute() == [3, b"token"]
    assert r.publish(ns.key("events"), "x") == 0
    r.close()


@pytest.mark.parametrize("call", [
    lambda r: r.set("someone-else:key", 1),
    lambda r: r.flushall(),
    lambda r: r.config_set("maxmemory", "1mb"),
    lambda r: r.keys("*"),
    lambda r: r.publish("someone-else:events", "x"),
    lambda r: r.execute_command("ACL", "SETUSER", "me", "on", "~*"),
])
def test_redis_acl_user_cannot_reach_outside_its_prefix(ns, call):
    r = redis.Redis.from_url(ns.redis_url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        call(r)
    r.close()


def test_drop_removes_database_role_keys_user_and_prepared_transactions(services):
    ns = open_namespace(services)
    with psycopg.connect(ns.pg_url, autocommit=True) as c:
        c.execute("create table t(x int)")
        c.execute("begin")
        c.execute("insert into t values (1)")
        c.execute(f"prepare transaction '{ns.name}-left-open'")
    r = redis.Redis.from_url(ns.redis_url)
    r.set(ns.key("a"), 1)
    r.close()
    ns.drop()
    admin = redis.Redis.from_url(services.redis_url)
    assert admin.exists(ns.key("a")) == 0
    assert ns.name.encode() not in admin.acl_users() and ns.name not in admin.acl_users()
    admin.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(ns.pg_url, connect_timeout=5)        # unreachable at once
    with psycopg.connect(services.postgres_url, autocommit=True) as c:
        assert c.execute("select count(*) from pg_database where datname = %s",
                         (ns.name,)).fetchone() == (0,)

        def gone() -> bool:   # the DROPs themselves run in the background
            return c.execute("select count(*) from pg_roles where rolname = %s union all "
                             "select count(*) from pg_database where datname = %s",
                             (ns.name, f"sbtrash_{ns.name}")).fetchall() == [(0,), (0,)]
        assert procs.wait_until(gone, 30)
    ns.drop()  # idempotent


def test_parallel_namespaces_never_see_each_other(services):
    errors, names = [], []

    def worker(i: int) -> None:
        try:
            ns = open_namespace(services)
            names.append(ns.name)
            with psycopg.connect(ns.pg_url, autocommit=True) as c:
                c.execute("create table mine(v int)")
                c.execute("insert into mine values (%s)", (i,))
                assert c.execute("select array_agg(v) from mine").fetchone() == ([i],)
            r = redis.Redis.from_url(ns.redis_url)
            r.set(ns.key("v"), i)
            assert r.get(ns.key("v")) == str(i).encode()
            r.close()
            ns.drop()
        except Exception as e:  # collected, asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(set(names)) == 8


def test_topic_and_group_names_are_unique_per_namespace(services, ns):
    other = open_namespace(services)
    try:
        assert ns.topic("orders") != other.topic("orders")
        assert ns.group("relay") != other.group("relay")
        assert ns.topic("orders").endswith("orders") and ns.key("x") == ns.prefix + "x"
    finally:
        other.drop()


def test_parallel_processes_claim_distinct_namespaces(services, tmp_path):
    import json
    import subprocess
    import sys
    code = ("import json, sys, psycopg\n"
            "from splitbrain.services import Endpoints, open_namespace\n"
            "ep = Endpoints(postgres_url=sys.argv[1], redis_url=sys.argv[2])\n"
            "names = []\n"
            "for i in range(6):\n"
            "    ns = open_namespace(ep)\n"
            "    with psycopg.connect(ns.pg_url, autocommit=True) as c:\n"
            "        c.execute('create table mine(x int)')\n"
            "    names.append(ns.name); ns.drop()\n"
            "print(json.dumps(names))\n")
    ps = [subprocess.Popen([sys.executable, "-c", code, services.postgres_url, services.redis_url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for _ in range(4)]
    results = [p.communicate(timeout=120) for p in ps]
    assert all(p.returncode == 0 for p in ps), [err for _, err in results]
    names = [n for out, _ in results for n in json.loads(out)]
    assert len(names) == len(set(names)) == 24


def test_namespaces_of_a_dead_owner_are_swept(services):
    import subprocess
    import sys
    code = ("import sys, psycopg\n"
            "from splitbrain.services import Endpoints, open_namespace\n"
            "ep = Endpoints(postgres_url=sys.argv[1], backends={'postgres': 'embedded'})\n"
            "ns = open_namespace(ep)\n"
            "with psycopg.connect(ns.pg_url, autocommit=True) as c:\n"
            "    c.execute('create table t(x int)')\n"
            "print(ns.name, flush=True)\n"
            "import os; os._exit(0)\n")           # dies without dropping its namespace
    out = subprocess.run([sys.executable, "-c", code, services.postgres_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    leaked = out.stdout.strip()
    if services.backends.get("postgres") != "embedded":
        return  # pids of another machine's server mean nothing here: never swept
    open_namespace(services).drop()       # any namespace traffic runs the sweep
    with psycopg.connect(services.postgres_url, autocommit=True) as c:
        def gone() -> bool:
            return c.execute("select count(*) from pg_database where datname in (%s, %s)",
                             (leaked, f"sbtrash_{leaked}")).fetchone() == (0,)
        assert procs.wait_until(gone, 30)
