"""Grader side of lab 01 (locks and fencing tokens), shared by the hidden tests, the public tests
and the notebook.

* :func:`prepare` applies the lab's ``schema.sql`` (beside ``rig/``) to a namespace with the admin
  URL and lets the namespace's own role read and write the ``resource`` table (never the audit
  table).
* :func:`applied` reads, with the admin URL, the values the storage really accepted for a key, in
  the order it applied them: the ground truth the checkers compare against the history.
* :class:`Holder` is one worker process running the learner's ``lock.py``: a ``RedisLock`` and a
  ``FencedStore`` in the same process, the way one application server holds a lock and writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

RESOURCE_KEY = "report.txt"   # the key every lab-01 scenario writes (one row of `resource`)


def schema_path() -> Path:
    """The lab's ``schema.sql``: in the lab folder, beside this package (grader side only)."""
    return Path(__file__).resolve().parent.parent / "schema.sql"


def prepare(ns: Any, schema: str | Path | None = None) -> None:
    """Create ``resource`` and its audit trail in the namespace's database (idempotent)."""
    text = Path(schema or schema_path()).read_text()
    role = conninfo_to_dict(ns.pg_url).get("user")
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        conn.execute(text)
        if role and role != conninfo_to_dict(ns.pg_admin_url).get("user"):
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON resource TO {}")
                         .format(sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON resource_audit FROM {}")
                         .format(sql.Identifier(role)))


def applied(ns: Any, key: str = RESOURCE_KEY) -> list[str]:
    """The values the storage accepted for ``key``, in the order it applied them.

    Only the last change of each transaction counts: a design that inserts a placeholder row and
    updates it in the same transaction never exposed the placeholder to anyone.
    """
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT value FROM (SELECT DISTINCT ON (tx) seq, value FROM public.resource_audit "
            "WHERE key = %s ORDER BY tx, seq DESC) last_per_tx ORDER BY seq", (key,)).fetchall()
    return [r[0] for r in rows]


@dataclass
class Holder:
    """One worker with a lock and a store. Calls are RPCs into the sandboxed learner code and are
    recorded in the worker's history (``acquire``, ``write``, ``read``, ``release``)."""

    name: str
    worker: Any
    lock: Any
    store: Any
    ttl_ms: int

    def acquire(self, wait_s: float = 0.0) -> Any:
        return self.lock.acquire(wait_s)

    def write(self, value: str, token: Any, key: str = RESOURCE_KEY) -> Any:
        return self.store.write(key, value, token)

    def read(self, key: str = RESOURCE_KEY) -> Any:
        return self.store.read(key)

    def release(self) -> Any:
        return self.lock.release()


def holder(spawn: Callable[..., Any], ns: Any, name: str, ttl_ms: int,
           redis_url: str | None = None, pg_url: str | None = None,
           lock_name: str | None = None) -> Holder:
    """Spawn worker ``name`` and build its lock (lease ``ttl_ms``) and store.

    ``redis_url`` / ``pg_url`` replace the worker's service addresses (a fault proxy in front of
    the service); ``lock_name`` defaults to ``ns.key("lock")``.
    """
    from splitbrain.sandbox import Ref

    resources = {k: v for k, v in (("redis_url", redis_url), ("pg_url", pg_url)) if v} or None
    w = spawn(name=name, resources=resources) if resources else spawn(name=name)
    lock = w.new("RedisLock", Ref("redis"), lock_name or ns.key("lock"), ttl_ms,
                 clock=Ref("clock"))
    store = w.new("FencedStore", Ref("pg"))
    return Holder(name, w, lock, store, ttl_ms)
