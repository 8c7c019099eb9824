"""A different correct design: the session token holds, per key, the row version the session has
written or read (the table's `version` column grows with every write), instead of one WAL
position. A standby serves a read when its row is at least that version; else the session waits
briefly for a standby, then reads the primary. Tokens grow with the keys a session touches, the
price of not asking the standbys where their replay stands."""
import itertools
import time

import psycopg
from psycopg import sql


class _Clock:
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


class SessionStore:
    def __init__(self, primary, standbys, table, max_wait_ms=50, clock=None):
        self.primary = primary
        self.standbys = list(standbys)
        self.table = sql.Identifier(table)
        self.max_wait_ms = max_wait_ms
        self.clock = clock or _Clock()
        self._rr = itertools.count()
        self._seen = {}          # (session, key) -> the newest row version the session knows

    def _read(self, conn, key):
        row = conn.execute(sql.SQL("SELECT value, version FROM {} WHERE key = %s")
                           .format(self.table), (key,)).fetchone()
        return (row[0], row[1]) if row else (None, 0)

    def put(self, session, key, value):
        (version,) = self.primary.execute(
            sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                    "SET value = excluded.value RETURNING version").format(self.table),
            (key, value)).fetchone()
        self._seen[(session, key)] = max(self._seen.get((session, key), 0), version)

    def get(self, session, key):
        need = self._seen.get((session, key), 0)
        start = next(self._rr)
        deadline = self.clock.monotonic() + self.max_wait_ms / 1000
        while True:
            for i in range(len(self.standbys)):
                conn = self.standbys[(start + i) % len(self.standbys)]
                try:
                    value, version = self._read(conn, key)
                except psycopg.OperationalError:
                    continue
                if version >= need:
                    self._seen[(session, key)] = version
                    return value
            if self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(0.005)
        value, version = self._read(self.primary, key)
        self._seen[(session, key)] = max(need, version)
        return value
