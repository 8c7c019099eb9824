"""Grader side of lab 09 (replica lag), shared by the hidden tests, the public tests and the
notebook.

* :class:`Cluster` is a private Postgres primary with two streaming standbys (``a`` and ``b``),
  each a fault target under its own name (``replay-pause``, ``standby-lag``, ``promote``). The
  application logs in as ``app``, a role that may read and write the lab's tables and nothing
  more: it cannot resume a paused standby.
* :func:`make_table` creates one test's fresh table on the primary (``key``, ``value``,
  ``version``: a trigger gives every write a larger version).
* :class:`App` is one worker process running the learner's ``SessionStore`` with connections to
  the primary and the standbys built by :func:`connect` (a trusted helper, ``Ref("rig.world:connect",
  url=...)``). :meth:`App.put` / :meth:`App.get` are recorded RPCs.
* :func:`other_write` is another user's write, made by the grader on the primary and recorded in
  the history as a ``put`` of session ``other``.
* :func:`snapshot` reads what every standby really holds (the grader's own view), and
  :func:`caught_up` waits until every running standby has replayed all the primary wrote.
* :meth:`Standby.cut_stream` freezes a standby's WAL receiver once it has received all the primary
  wrote (the lab's ``stream-cut`` fault, ``rig.faults``): it keeps, and replays, what it has, and
  receives nothing written after the cut. :func:`replayed_received` waits until it has replayed
  all it received; :func:`asked_since` tells whether the application has asked a standby
  anything since a moment (:func:`standby_now`), so a test can act once a read is waiting.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from splitbrain.faults import process
from splitbrain.history import call_value

APP_ROLE = "app"
COMPONENT_CLASS = "SessionStore"


def connect(resources: dict, url: str) -> psycopg.Connection:
    """Sandbox helper: an autocommit connection to one server (``Ref("rig.world:connect",
    url=...)``), with short timeouts so a dead server fails fast."""
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@dataclass
class Standby:
    """One streaming standby: a fault target named ``name``."""

    name: str
    server: Any
    promoted: bool = False
    _receiver: int | None = None        # the frozen WAL receiver's pid (cut_stream)
    cut_at: str | None = None           # a position it had received when the stream was cut

    @property
    def admin_url(self) -> str:
        return self.server.url

    def app_url(self, password: str) -> str:
        return self.server.url_for(user=APP_ROLE, password=password)

    def pause_replay(self) -> None:
        self.server.pause_replay()

    def resume_replay(self) -> None:
        if not self.promoted:
            self.server.resume_replay()

    def set_apply_delay(self, ms: int) -> None:
        if not self.promoted:
            self.server.set_apply_delay(ms)

    def promote(self) -> None:
        self.promoted = True
        self.server.promote()

    def restart(self) -> None:
        """Stop the server and start it again (the ``restart`` fault): every connection to it
        breaks; a promoted standby comes back as a primary of its own, with no replay position."""
        self.server.restart()

    def cut_stream(self, timeout: float = 20.0) -> None:
        """Once this standby has received all the primary has written, freeze its WAL receiver
        (SIGSTOP): it receives nothing written after this, and replays what it has."""
        if self._receiver is not None:
            return
        head = _head(self.server.primary.url)
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as c:
            _wait(lambda: c.execute("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn",
                                    (head,)).fetchone()[0], timeout,
                  f"{self.name} did not receive the primary's WAL")
            (pid,) = c.execute("SELECT pid FROM pg_stat_wal_receiver").fetchone()
        process.pause(pid)
        self._receiver, self.cut_at = pid, head

    def restore_stream(self) -> None:
        """The WAL receiver runs again: the standby receives what it missed."""
        pid, self._receiver = self._receiver, None
        if pid is not None and process.alive(pid):     # else gone with its server
            process.resume(pid)

    def replay_lsn(self) -> str | None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as c:
            return c.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0]

    def close(self) -> None:
        self.restore_stream()
        self.server.close()


@dataclass
class Cluster:
    """A private primary and its standbys ``a`` and ``b`` (and any ``extra`` one a test adds)."""

    primary: Any = None
    standbys: list[Standby] = field(default_factory=list)
    password: str = field(default_factory=lambda: secrets.token_hex(12))

    def start(self, n: int = 2) -> Cluster:
        """Start the primary, then its ``n`` standbys side by side (each a base backup and a
        server start: most of a second)."""
        from concurrent.futures import ThreadPoolExecutor

        from splitbrain.services.private import spawn_postgres
        self.primary = spawn_postgres()
        with psycopg.connect(self.primary.url, autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(self.password)))
        names = "ab"[:n]
        with ThreadPoolExecutor(max_workers=max(1, n)) as pool:
            servers = list(pool.map(lambda _: self.primary.standby(), names))
        self.standbys += [Standby(f"standby-{name}", s) for name, s in zip(names, servers)]
        return self

    def add(self, name: str) -> Standby:
        sb = Standby(f"standby-{name}", self.primary.standby())
        self.standbys.append(sb)
        return sb

    def drop(self, sb: Standby) -> None:
        self.standbys.remove(sb)
        sb.close()

    @property
    def app_primary_url(self) -> str:
        return self.primary.url_for(user=APP_ROLE, password=self.password)

    def app_standby_urls(self, standbys: list[Standby] | None = None) -> list[str]:
        return [s.app_url(self.password) for s in (self.standbys if standbys is None else standbys)]

    def head(self) -> str:
        """A position every standby must replay to have all the primary wrote so far: the end of
        a small WAL record written now (right after a WAL segment switch the insert position
        lies past the next page's header, which no replay reaches until more WAL comes)."""
        return _head(self.primary.url)

    def heal(self) -> None:
        """Every running standby receives and replays again, without delay (between tests)."""
        for s in self.standbys:
            s.restore_stream()
            if not s.promoted:
                s.set_apply_delay(0)
                s.resume_replay()

    def close(self) -> None:
        for s in self.standbys:
            s.close()
        if self.primary is not None:
            self.primary.close()


_shared: Cluster | None = None


def shared_cluster() -> Cluster:
    """This process's one cluster, started on first use and stopped when the process exits: the
    tests of every module a grading process runs (hidden and public) share it, since starting a
    primary and two standbys takes seconds. A test makes its own table and leaves the cluster
    healed (:meth:`Cluster.heal`); a test that adds a standby drops it again. A cluster that
    cannot be healed (one of its servers died) is replaced by a fresh one."""
    global _shared
    if _shared is not None:
        try:
            _shared.heal()
            return _shared
        except (psycopg.Error, OSError):   # a server of it died: start a fresh one
            _shared.close()
            _shared = None
    import atexit
    c = Cluster()
    try:
        c.start()
    except BaseException:
        c.close()
        raise
    atexit.register(c.close)
    _shared = c
    return c


def _head(primary_url: str) -> str:
    with psycopg.connect(primary_url, autocommit=True) as c:
        return c.execute("SELECT pg_logical_emit_message(false, 'splitbrain', 'head')::text"
                         ).fetchone()[0]


def _wait(ok: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        time.sleep(0.002)


def replayed_received(standby: Standby, timeout: float = 20.0) -> None:
    """Wait until ``standby``, its stream cut, has replayed all the primary had written when
    the cut came (replay running)."""
    with psycopg.connect(standby.admin_url, autocommit=True, connect_timeout=5) as c:
        _wait(lambda: c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                (standby.cut_at,)).fetchone()[0], timeout,
              f"{standby.name} did not replay what it received")


def standby_now(standby: Standby) -> Any:
    """The standby's clock now (a moment to pass to :func:`asked_since`)."""
    with psycopg.connect(standby.admin_url, autocommit=True, connect_timeout=5) as c:
        return c.execute("SELECT clock_timestamp()").fetchone()[0]


def asked_since(standby: Standby, since: Any) -> bool:
    """Whether the application has asked ``standby`` something since ``since``: a query of the
    ``app`` role that began then or later and has finished."""
    with psycopg.connect(standby.admin_url, autocommit=True, connect_timeout=5) as c:
        return c.execute("SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = %s AND "
                         "state = 'idle' AND query_start >= %s", (APP_ROLE, since)).fetchone()[0]


def caught_up(cluster: Cluster, standbys: list[Standby] | None = None, timeout: float = 20.0) -> None:
    """Wait until each standby (default: every one not promoted) has replayed all the primary
    had written when the wait began."""
    head = cluster.head()
    for s in standbys if standbys is not None else [s for s in cluster.standbys if not s.promoted]:
        with psycopg.connect(s.admin_url, autocommit=True) as c:
            _wait(lambda: c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                    (head,)).fetchone()[0], timeout, f"{s.name} did not catch up")


def make_table(cluster: Cluster, table: str) -> str:
    """A fresh table on the primary the ``app`` role may read and write; every standby (not
    promoted) has it before this returns."""
    t = sql.Identifier(table)
    with psycopg.connect(cluster.primary.url, autocommit=True) as c:
        c.execute(sql.SQL(
            "CREATE SEQUENCE {seq};"
            "CREATE TABLE {t} (key text PRIMARY KEY, value text NOT NULL, version bigint NOT NULL);"
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "NEW.version := nextval({seqname}); RETURN NEW; END $$;"
            "CREATE TRIGGER versioned BEFORE INSERT OR UPDATE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION {fn}();"
            "GRANT SELECT, INSERT, UPDATE ON {t} TO {role};"
            "GRANT USAGE ON SEQUENCE {seq} TO {role};").format(
                t=t, seq=sql.Identifier(f"{table}_version"),
                seqname=sql.Literal(f"{table}_version"), fn=sql.Identifier(f"{table}_bump"),
                role=sql.Identifier(APP_ROLE)))
    caught_up(cluster)
    return table


def other_write(cluster: Cluster, history: Any, table: str, key: str, value: str) -> None:
    """Another user's write of ``key`` on the primary, recorded as session ``other``'s put."""
    inv = history.invoke("other", "put", call_value(["other", key, value]))
    with psycopg.connect(cluster.primary.url, autocommit=True) as c:
        c.execute(sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                          "SET value = excluded.value").format(sql.Identifier(table)), (key, value))
    history.complete(inv, "ok", None)


def snapshot(cluster: Cluster, table: str, standbys: list[Standby] | None = None) -> dict[str, dict]:
    """What each standby really holds now: ``{standby name: {key: value}}``."""
    out = {}
    for s in standbys if standbys is not None else cluster.standbys:
        with psycopg.connect(s.admin_url, autocommit=True) as c:
            rows = c.execute(sql.SQL("SELECT key, value FROM {}").format(sql.Identifier(table)))
            out[s.name] = dict(rows.fetchall())
    return out


@dataclass
class App:
    """One application server: a worker running the learner's ``SessionStore``."""

    name: str
    worker: Any
    store: Any

    def put(self, session: str, key: str, value: str) -> Any:
        return self.store.put(session, key, value)

    def get(self, session: str, key: str) -> Any:
        return self.store.get(session, key)

    def get_async(self, session: str, key: str) -> Any:
        """Send the get and return a Future at once (the test acts while the read runs)."""
        return self.store.get.async_(session, key)


def app(spawn: Any, cluster: Cluster, table: str, name: str = "app",
        standbys: list[Standby] | None = None, max_wait_ms: int = 50) -> App:
    """Start a worker whose ``SessionStore`` writes to the primary and may read from
    ``standbys`` (default: the cluster's)."""
    from splitbrain.sandbox import Ref
    w = spawn(name=name)
    store = w.new(COMPONENT_CLASS, Ref("rig.world:connect", url=cluster.app_primary_url),
                  [Ref("rig.world:connect", url=u) for u in cluster.app_standby_urls(standbys)],
                  table, max_wait_ms=max_wait_ms, clock=Ref("clock"))
    return App(name, w, store)


class Window:
    """A stretch of the run in which the grader knows what each standby holds (replay paused):
    ``with Window(history) as win: ...; win.close(snap)``. ``as_dict()`` is what
    :func:`rig.checkers.check_primary_reads` takes."""

    def __init__(self, history: Any) -> None:
        self.history = history
        self.start = history.now()
        self.end: float | None = None
        self.standbys: dict[str, dict] = {}

    def close(self, standbys: dict[str, dict]) -> dict:
        self.end = self.history.now()
        self.standbys = standbys
        return self.as_dict()

    def as_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "standbys": self.standbys}
