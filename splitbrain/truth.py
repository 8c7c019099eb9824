"""The grader's own reads of the services, and how long it waits for a moment to come.

A checker judges what Postgres really holds, never what a component reports. Two rules make that
read honest on a busy machine (CONTRIBUTING.md, "Judge a state that existed"):

* :func:`snapshot`: every table a verdict needs is read in one ``REPEATABLE READ READ ONLY``
  transaction. Read one by one, a component's COMMIT falling between two reads shows a state that
  never existed (a shipment beside the order version it does not belong to, a later saga step
  without the earlier one), and a correct component fails.
* :func:`writing`: settling counts a passing verdict only while no transaction that has written
  is open in the lab's database: a pass taken just before a late write lands is not a pass.

``MOMENT_S`` is how long a test waits for a moment it builds its scenario on (a call reaching a
stall, an event being applied): generous, because only a component that never gets there waits
it out, and a test that goes on early no longer builds the scenario it exists for::

    with snapshot(conn) as c:
        orders = c.execute("SELECT ...").fetchall()
        ships = c.execute("SELECT ...").fetchall()
    busy = writing(conn)
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["MOMENT_S", "snapshot", "writing"]

MOMENT_S = 10.0


@contextmanager
def snapshot(conn: Any) -> Iterator[Any]:
    """A read-only ``REPEATABLE READ`` transaction on ``conn`` (a psycopg connection): every
    query inside sees the same committed state."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn


def writing(conn: Any) -> bool:
    """True while another session of ``conn``'s database holds a transaction that has written
    (or locked rows): a component in the middle of applying something, its COMMIT still to
    come. ``conn`` needs a role that sees other roles' sessions (the namespace's admin), and
    must not be inside a transaction: Postgres keeps one copy of ``pg_stat_activity`` per
    transaction, so a second look inside the same one sees the first."""
    (n,) = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL").fetchone()
    return bool(n)
