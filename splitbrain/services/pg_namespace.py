"""The Postgres side of namespaces: one database per test, owned by its own LOGIN role that
cannot connect anywhere else.

CREATE DATABASE costs 10-30 ms (it checkpoints), so a small pool of ready databases is kept and
a namespace claims one with a rename; a dropped namespace is made unreachable at once (its role
may no longer log in, its database is renamed sbtrash_*) and the DROPs run in a background
thread. Namespaces record their owning process, so the leftovers of a process that died are
swept on the embedded backend."""
from __future__ import annotations

import os
import secrets
import threading
from urllib.parse import quote, urlsplit, urlunsplit

TEMPLATE_DB = "splitbrain_template"
POOL_SIZE = 4

_lock = threading.Lock()
_admin_pg: dict[str, object] = {}
_templates_ready: set[str] = set()
_maintaining: set[str] = set()
_pending: set[str] = set()
_local_servers: set[str] = set()   # admin URLs of embedded servers (their pids are ours to judge)


def _with_credentials(url: str, user: str, password: str, db: str | None = None) -> str:
    p = urlsplit(url)
    host = p.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if p.port:
        netloc += f":{p.port}"
    path = f"/{db}" if db is not None else p.path
    return urlunsplit(p._replace(netloc=netloc, path=path))


def _with_db(url: str, db: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def _pg_admin(url: str):
    import psycopg
    conn = _admin_pg.get(url)
    if conn is None or conn.closed or conn.broken:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        if conn.info.server_version >= 160000:
            conn.execute("SET scram_iterations = 64")   # cheap logins for throwaway roles
        _admin_pg[url] = conn
    return conn


def _ensure_template(conn, url: str) -> None:
    if url in _templates_ready:
        return
    from psycopg import errors
    if conn.execute("select 1 from pg_database where datname = %s", (TEMPLATE_DB,)).fetchone() is None:
        try:
            conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}" IS_TEMPLATE true')
        except (errors.DuplicateDatabase, errors.UniqueViolation):
            pass  # another process made it first
    conn.execute(f'REVOKE CONNECT ON DATABASE "{TEMPLATE_DB}" FROM PUBLIC')
    _templates_ready.add(url)


def drop_db(admin_url: str, name: str) -> None:
    import psycopg
    for attempt in (1, 2):
        try:
            with _lock:
                conn = _pg_admin(admin_url)
                _discard(conn, admin_url, name)
            break
        except psycopg.OperationalError:
            with _lock:
                _admin_pg.pop(admin_url, None)
            if attempt == 2 and not _answers(admin_url):
                return  # the server is gone, and the namespace with it
            if attempt == 2:
                raise
    _maintain_soon(admin_url)


def _answers(admin_url: str) -> bool:
    import psycopg
    try:
        psycopg.connect(admin_url, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def _rollback_prepared(conn, admin_url: str, db: str) -> None:
    """Prepared transactions keep a database alive (DROP refuses); roll back this one's."""
    gids = [r[0] for r in conn.execute(
        "select gid from pg_prepared_xacts where database = %s", (db,)).fetchall()]
    if not gids:
        return
    import psycopg
    with psycopg.connect(_with_db(admin_url, db), autocommit=True, connect_timeout=10) as c:
        from psycopg import sql
        for gid in gids:
            c.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))


def open_db(ns, admin_url: str) -> None:
    """Give ``ns`` its database and role: sets ``pg_url`` and ``pg_admin_url``."""
    import psycopg
    try:
        _open_pg_once(ns, admin_url)
    except psycopg.OperationalError:
        with _lock:                     # the server restarted since: a new admin connection
            _admin_pg.pop(admin_url, None)
        _open_pg_once(ns, admin_url)


def _open_pg_once(ns, admin_url: str) -> None:
    password = secrets.token_urlsafe(12)
    role = (f'CREATE ROLE "{ns.name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
            f"PASSWORD '{password}'")
    with _lock:
        conn = _pg_admin(admin_url)
        _ensure_template(conn, admin_url)
        ns._server_pg_url = admin_url
        if not _claim_pooled(conn, ns.name, role):
            conn.execute(role)
            conn.execute(f'CREATE DATABASE "{ns.name}" TEMPLATE "{TEMPLATE_DB}" OWNER "{ns.name}" '
                         f'STRATEGY FILE_COPY')
            conn.execute(f'REVOKE CONNECT ON DATABASE "{ns.name}" FROM PUBLIC; {_owner_sql(ns.name)}')
    _maintain_soon(admin_url)
    ns.pg_url = _with_credentials(admin_url, ns.name, password, ns.name)
    ns.pg_admin_url = _with_db(admin_url, ns.name)


def _owner_sql(name: str) -> str:
    """Records which process owns the namespace, so a dead owner's leftovers can be swept."""
    from . import procs
    return (f"COMMENT ON DATABASE \"{name}\" IS "
            f"'splitbrain-owner {os.getpid()} {procs.start_time(os.getpid())}'")


def _sweep_dead_owners(c, admin_url: str) -> None:
    """Discard namespaces whose owning process died before dropping them (SIGKILL, a crash).
    Only for servers on this machine's embedded backend, where a pid means something."""
    from . import procs
    rows = c.execute("select d.datname, s.description from pg_database d "
                     "join pg_shdescription s on s.objoid = d.oid "
                     "where d.datname like 'sb\\_%%' "
                     "and s.description like 'splitbrain-owner %%'").fetchall()
    for db, desc in rows:
        _, pid, started = desc.split(" ", 2)
        if not procs.is_same_process(int(pid), None if started == "None" else started):
            _discard(c, admin_url, db)


def _claim_pooled(conn, name: str, role_sql: str) -> bool:
    """Take a database made ahead of time (CREATE DATABASE costs 10-30 ms; this is one round
    trip: role, rename, owner, connect rights in one implicit transaction). Another process may
    claim the same database first: then the whole batch rolls back and the next one is tried.
    The claim takes CONNECT from PUBLIC itself: the pool makes a database and revokes it in two
    statements (CREATE DATABASE cannot share a transaction), and a claim between the two would
    otherwise leave a namespace's database open to every other namespace's role."""
    from psycopg import errors
    rows = conn.execute("select datname from pg_database where datname like 'sbpool\\_%%' "
                        "order by random() limit 4").fetchall()
    for (db,) in rows:
        try:
            conn.execute(f'{role_sql}; ALTER DATABASE "{db}" RENAME TO "{name}"; '
                         f'ALTER DATABASE "{name}" OWNER TO "{name}"; '
                         f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC; {_owner_sql(name)}')
        except (errors.InvalidCatalogName, errors.ObjectInUse):
            continue
        return True
    return False


def _discard(conn, admin_url: str, name: str) -> None:
    """Make the namespace unreachable now — forbid its role to log in, end its sessions,
    rename its database to sbtrash_<name> — and leave the slow DROPs to the background.
    Prepared transactions pin a database (a RENAME or DROP waits 5 s for them, then refuses):
    roll them back first."""
    from psycopg import errors
    try:
        conn.execute(f'ALTER ROLE "{name}" NOLOGIN; '
                     f"SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                     f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
        _rollback_prepared(conn, admin_url, name)
        conn.execute(f'ALTER DATABASE "{name}" RENAME TO "sbtrash_{name}"')
        return
    except errors.InvalidCatalogName:
        pass
    except errors.ObjectInUse:
        _rollback_prepared(conn, admin_url, name)
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _maintain_once(c, admin_url: str, sweep: bool) -> None:
    import psycopg
    if sweep:
        _sweep_dead_owners(c, admin_url)
    for (db,) in c.execute("select datname from pg_database "
                           "where datname like 'sbtrash\\_%%'").fetchall():
        try:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            c.execute(f'DROP ROLE IF EXISTS "{db[len("sbtrash_"):]}"')
        except psycopg.Error:
            pass  # another process is dropping it
    while c.execute("select count(*) from pg_database where datname like 'sbpool\\_%%'"
                    ).fetchone()[0] < POOL_SIZE:
        db = f"sbpool_{secrets.token_hex(5)}"
        c.execute(f'CREATE DATABASE "{db}" TEMPLATE "{TEMPLATE_DB}" STRATEGY FILE_COPY')
        c.execute(f'REVOKE CONNECT ON DATABASE "{db}" FROM PUBLIC')


def _maintain(admin_url: str) -> None:
    """Drop discarded databases, then top the pool of ready databases up; again while more
    work was asked for meanwhile."""
    import psycopg
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as c:
            while True:
                with _lock:
                    if admin_url not in _pending:
                        _maintaining.discard(admin_url)
                        return
                    _pending.discard(admin_url)
                _maintain_once(c, admin_url, admin_url in _local_servers)
    except Exception:
        pass  # an optimisation only: open_namespace can create databases itself
    with _lock:
        _maintaining.discard(admin_url)
        _pending.discard(admin_url)


def _maintain_soon(admin_url: str) -> None:
    """Run ``_maintain`` in the background, while the test runs (one thread per server)."""
    with _lock:
        _pending.add(admin_url)
        if admin_url in _maintaining:
            return
        _maintaining.add(admin_url)
    threading.Thread(target=_maintain, args=(admin_url,), daemon=True,
                     name="splitbrain-db-pool").start()
