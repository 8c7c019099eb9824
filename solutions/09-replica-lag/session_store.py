"""A data-access layer that writes to the Postgres primary and reads from its streaming standbys,
with session consistency: each session carries a token, the WAL position (LSN) of the newest
state it has written or read, and a standby serves its read only once it has replayed that far.

Interface (the grader and the notebook call exactly this):

    SessionStore(primary, standbys, table, max_wait_ms=50, clock=None)
        primary   an autocommit psycopg connection to the primary (writes go here)
        standbys  a list of autocommit psycopg connections to hot standbys
        table     the table: (key text PRIMARY KEY, value text NOT NULL, version bigint NOT NULL)
        max_wait_ms  how long a read may wait for a standby to catch up before it asks the primary
        clock     has monotonic() and sleep(seconds)

    put(session, key, value) -> None
    get(session, key) -> str | None
"""
import itertools
import time

import psycopg
from psycopg import sql

POLL_S = 0.005


class _Clock:
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


def _lsn(text):
    """'16/B374D848' -> an int that orders as the WAL does (None: nothing replayed)."""
    if text is None:
        return -1
    hi, _, lo = str(text).partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class SessionStore:
    def __init__(self, primary, standbys, table, max_wait_ms=50, clock=None):
        self.primary = primary
        self.standbys = list(standbys)
        self.table = sql.Identifier(table)
        self.max_wait_ms = max_wait_ms
        self.clock = clock or _Clock()
        self._turn = itertools.count()
        self._tokens = {}          # session -> LSN of the newest state it wrote or read

    def _need(self, session):
        return self._tokens.get(session, 0)

    def _saw(self, session, lsn):
        self._tokens[session] = max(self._need(session), lsn)

    def put(self, session, key, value):
        self.primary.execute(
            sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value").format(self.table),
            (key, value))
        # after the COMMIT: the position of the commit record, or later
        (lsn,) = self.primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        self._saw(session, _lsn(lsn))

    def get(self, session, key):
        need = self._need(session)
        first = next(self._turn)
        order = [self.standbys[(first + i) % len(self.standbys)]
                 for i in range(len(self.standbys))]
        deadline = self.clock.monotonic() + self.max_wait_ms / 1000
        while order:
            for conn in list(order):
                try:
                    (replayed,) = conn.execute(
                        "SELECT pg_last_wal_replay_lsn()::text").fetchone()
                    if _lsn(replayed) < need:
                        continue
                    # the read's snapshot is taken before the function runs: the LSN it returns
                    # bounds what the read saw, for the session's next reads
                    value, seen = conn.execute(
                        sql.SQL("SELECT (SELECT value FROM {} WHERE key = %s), "
                                "pg_last_wal_replay_lsn()::text").format(self.table),
                        (key,)).fetchone()
                except psycopg.OperationalError:
                    order.remove(conn)         # unreachable: let the others (or the primary) serve
                    continue
                self._saw(session, _lsn(seen))
                return value
            if self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(POLL_S)
        value, seen = self.primary.execute(
            sql.SQL("SELECT (SELECT value FROM {} WHERE key = %s), "
                    "pg_current_wal_insert_lsn()::text").format(self.table), (key,)).fetchone()
        self._saw(session, _lsn(seen))
        return value
