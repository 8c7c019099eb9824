"""The Postgres connections a receiver gets: ``Ref("rig.db:connector")`` in the worker gives a
``connect()`` callable; each connection's COMMIT passes the ``before_commit`` and ``after_commit``
crash points, so a test can kill the receiver right after its transaction committed and before
its HTTP reply left, whatever the receiver's design."""
from __future__ import annotations

from typing import Any, Callable

import psycopg
from psycopg import pq

from splitbrain.faults.crash import crash_point

__all__ = ["CrashPointConnection", "connect", "connector"]


class CrashPointCursor(psycopg.Cursor):
    def execute(self, query, params=None, **kwargs):  # type: ignore[override]
        commits = isinstance(query, str) and query.strip().rstrip(";").strip().upper() in (
            "COMMIT", "END", "COMMIT WORK", "COMMIT TRANSACTION")
        if commits:
            crash_point("before_commit")
        rv = super().execute(query, params, **kwargs)
        idle = self.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
        status = self.statusmessage or ""
        if idle and (commits or (self.connection.autocommit and status.split(" ", 1)[0] in
                                 ("INSERT", "UPDATE", "DELETE", "MERGE"))):
            crash_point("after_commit")
        return rv


class CrashPointConnection(psycopg.Connection):
    def _exec_command(self, command, result_format=pq.Format.TEXT):  # type: ignore[override]
        is_commit = command in (b"COMMIT", "COMMIT")
        if is_commit:
            crash_point("before_commit")
        result = yield from super()._exec_command(command, result_format)
        if is_commit and result is not None:
            crash_point("after_commit")
        return result


def connect(url: str, **kwargs: Any) -> CrashPointConnection:
    kwargs.setdefault("cursor_factory", CrashPointCursor)
    kwargs.setdefault("connect_timeout", 5)
    return CrashPointConnection.connect(url, **kwargs)


def connector(resources: dict, **kwargs: Any) -> Callable[[], CrashPointConnection]:
    """Sandbox helper: a ``connect()`` bound to the worker's ``pg_url``."""
    url = resources.get("pg_url")
    if not url:
        raise ValueError("this worker was spawned without resources['pg_url']")

    def connect_() -> CrashPointConnection:
        return connect(url, **kwargs)

    connect_.__doc__ = "Open a new Postgres connection (psycopg; commit crash points wired in)."
    return connect_
