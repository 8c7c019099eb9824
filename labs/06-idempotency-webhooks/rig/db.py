"""The Postgres connections a receiver gets: ``Ref("rig.db:connector")`` in the worker gives a
``connect()`` callable whose connections carry the lab's crash points, whatever the receiver's
design:

* every COMMIT passes ``before_commit`` and ``after_commit`` (a test can kill the receiver right
  after its transaction committed and before its HTTP reply left);
* the COMMIT of a transaction that wrote a delivery's webhook-id (an INSERT, UPDATE, MERGE or
  COPY carrying the provider's id ``evt_...`` in its text or its parameters: the delivery being
  recorded, wherever the receiver records it) also passes ``before_record.<id>`` and
  ``after_record.<id>``; so does such a statement run on its own in autocommit. A test arms
  ``before_record.evt_ord_1_2`` to kill the receiver exactly between handling that delivery and
  recording it, however many other commits (the applier's idle polls) come first.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import pq, sql

from splitbrain.faults.crash import crash_point

__all__ = ["RECORD_POINTS", "CrashPointConnection", "connect", "connector", "webhook_ids"]

RECORD_POINTS = ("before_record", "after_record")
_WEBHOOK_ID = re.compile(r"\bevt_[A-Za-z0-9_]+")   # the ids rig.sender's provider gives events
_WRITES = ("INSERT", "UPDATE", "MERGE", "COPY")
_WRITING = re.compile(r"(WITH\b.*\b)?(INSERT|UPDATE|MERGE|COPY)\b")
_COMMITS = ("COMMIT", "END", "COMMIT WORK", "COMMIT TRANSACTION")
_ROLLBACKS = ("ROLLBACK", "ABORT", "ROLLBACK WORK", "ROLLBACK TRANSACTION")


def _strings(x: Any) -> Iterator[str]:
    if isinstance(x, str):
        yield x
    elif isinstance(x, (bytes, bytearray, memoryview)):
        yield bytes(x).decode("utf-8", "replace")
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(x, (list, tuple, set, frozenset)):
        for v in x:
            yield from _strings(v)
    elif hasattr(x, "obj"):                      # psycopg's Json / Jsonb wrappers
        yield from _strings(x.obj)


def webhook_ids(query: Any, params: Any = None, conn: Any = None) -> set[str]:
    """The provider's webhook-ids a statement carries, in its text or its parameters."""
    texts = list(_strings(params))
    if isinstance(query, (str, bytes)):
        texts += list(_strings(query))
    elif isinstance(query, sql.Composable) and conn is not None:
        try:
            texts.append(query.as_string(conn))
        except Exception:  # noqa: BLE001  (a query psycopg cannot render is run as it is)
            pass
    return {m for t in texts for m in _WEBHOOK_ID.findall(t)}


def _verb(query: Any) -> str:
    text = query.decode("ascii", "replace") if isinstance(query, bytes) else \
        query if isinstance(query, str) else ""
    return " ".join(text.strip().rstrip(";").split()).upper()


def _record_points(when: str, ids: set[str]) -> None:
    for i in sorted(ids):
        crash_point(f"{when}_record.{i}")


class CrashPointCursor(psycopg.Cursor):
    def execute(self, query, params=None, **kwargs):  # type: ignore[override]
        conn = self.connection
        verb = _verb(query)
        commits, rollbacks = verb in _COMMITS, verb in _ROLLBACKS
        ids: set[str] = set()
        alone = False
        if commits:
            crash_point("before_commit")
            _record_points("before", conn.recorded)
        elif not rollbacks:
            ids = webhook_ids(query, params, conn)
            alone = conn.autocommit and \
                conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
            if ids and alone and _WRITING.match(verb):
                _record_points("before", ids)
        rv = super().execute(query, params, **kwargs)
        idle = conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        status = (self.statusmessage or "").split(" ", 1)[0]
        wrote = status in ("INSERT", "UPDATE", "DELETE", "MERGE")
        if ids and status in _WRITES:
            if alone and idle:
                _record_points("after", ids)
            elif not idle:
                conn.recorded |= ids
        if idle and (commits or (conn.autocommit and wrote)):
            crash_point("after_commit")
        if commits:
            _record_points("after", conn.recorded)
        if (commits or rollbacks) and idle:
            conn.recorded = set()
        return rv


class CrashPointConnection(psycopg.Connection):
    recorded: set[str] = frozenset()  # type: ignore[assignment]  # ids the open transaction wrote

    def _exec_command(self, command, result_format=pq.Format.TEXT):  # type: ignore[override]
        verb = _verb(command)
        is_commit = verb == "COMMIT"
        if is_commit:
            crash_point("before_commit")
            _record_points("before", self.recorded)
        result = yield from super()._exec_command(command, result_format)
        if is_commit and result is not None:
            crash_point("after_commit")
            _record_points("after", self.recorded)
        if verb in ("COMMIT", "ROLLBACK"):
            self.recorded = set()
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
