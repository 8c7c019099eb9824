"""Every boundary between two round trips of a saga, on both links of the orchestrator.

An orchestrator talks over two links: to its own Postgres (its state writes and reads) and to the
participants (the saga's calls). Between any two of those round trips the process can stall (a GC
pause, a slow disk, a deploy that freezes it) or die. The tests go through *every* such boundary
instead of a few chosen moments:

``walk(rig, a, links, saga_id, order)``
    books one saga on replica ``a``, whose links both run through fault proxies, and holds each
    message in turn with the kit's ``stall`` (Postgres requests; participant requests and
    replies): at each boundary it takes a snapshot of what a recovery would find (the saga's
    rows in the participants' ledgers, a digest of the orchestrator's own tables, the advisory
    locks held), then lets that one message through. Returns the :class:`Boundary` list, in
    order, with where each one is on its link (``after``: messages of that link and direction
    before it), so that a fresh saga of the same shape can be stopped at exactly that point.
``race(rig, a, b, links, boundary, saga_id, order)``
    books a fresh saga on ``a`` and holds it at ``boundary``; meanwhile replica ``b`` (direct
    links) runs ``recover()``, the chapter's "a recovery starts while a slow original is still
    running"; once ``b`` has returned or waits on a lock, the stall is healed.
``kill_at(rig, a, links, boundary, saga_id, order)``
    books a fresh saga on ``a``, holds it at ``boundary`` (a Postgres request) and kills ``a``
    there: the request never reaches the database (the proxy drops what the dead process had
    in flight). The caller recovers.

A boundary is found again in a fresh saga by counting messages, so the orchestrator's traffic
must be the same from saga to saga: run a few sagas of the same shape first (a client library's
first runs of a statement may differ, e.g. psycopg prepares a statement on its fifth run).

``novel_kills`` and ``distinct`` pick the boundaries worth a kill or a race: a kill only where the
durable state (ledgers + tables) is one that a kill at a participant's call cannot reach (between
two state writes), a race wherever the state (with the locks) changed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from splitbrain.truth import MOMENT_S

__all__ = ["Boundary", "Links", "walk", "race", "kill_at", "novel_kills", "distinct", "Snapshots"]

PARTICIPANT_SCHEMAS = ("inventory", "payment", "shipping")
_STREAMS = (("postgres", "upstream"), ("participants", "upstream"),
            ("participants", "downstream"))


@dataclass(frozen=True)
class Boundary:
    """One point between two round trips of a saga, and what a recovery would find there.

    link: "postgres" or "participants"; stream: "upstream" (the next request is held: the
    orchestrator sent it, nothing has received it) or "downstream" (the participant did the work;
    its answer is held); after: how many messages of that link and stream passed before it since
    the saga began. ledger: the saga's ledger rows so far, ((service.op, status), ...); tables: a
    digest of the orchestrator's own tables; locks: advisory locks held in its database."""

    link: str
    stream: str
    after: int
    ledger: tuple[tuple[str, str], ...]
    tables: str
    locks: tuple[int, ...]

    @property
    def durable(self) -> tuple:
        """What outlives the process: the participants' ledgers and the orchestrator's tables."""
        return (self.ledger, self.tables)

    def describe(self) -> str:
        n = self.after + 1
        if self.link == "postgres":
            return f"before its Postgres request {n} of the saga"
        if self.stream == "upstream":
            return f"before the participants received its call {n} of the saga"
        return f"after the participants did its call {n}, before the answer arrived"


@dataclass
class Links:
    """The fault proxies in front of one replica: ``postgres`` (the kit's ``proxy`` fixture
    handle) and ``participants`` (``SagaRig.participants_proxy()``)."""

    postgres: Any
    participants: Any

    def of(self, link: str) -> Any:
        return self.postgres if link == "postgres" else self.participants


class Snapshots:
    """What a recovery would find, read by the grader (admin connection)."""

    def __init__(self, admin_url: str) -> None:
        self.conn = psycopg.connect(admin_url, autocommit=True)
        self.conn.execute("SET lock_timeout = '300ms'")
        self.conn.execute("SET statement_timeout = '2s'")

    def close(self) -> None:
        self.conn.close()

    def take(self, saga_id: str) -> tuple[tuple, str, tuple]:
        c = self.conn
        ledger = tuple(c.execute(
            " UNION ALL ".join(f"(SELECT '{s}.' || op, status, at FROM {s}.ledger "
                               f"WHERE saga_id = %s AND status <> 'pending')"
                               for s in PARTICIPANT_SCHEMAS) + " ORDER BY 3",
            (saga_id,) * len(PARTICIPANT_SCHEMAS)).fetchall())
        ledger = tuple((op, st) for op, st, _ in ledger)
        tables = [r[0] for r in c.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'inventory', 'payment', "
            "'shipping') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1").fetchall()]
        digest = []
        for t in tables:
            try:
                digest.append(c.execute(f"SELECT md5(coalesce(string_agg(x::text, '|' "
                                        f"ORDER BY x::text), '')) FROM {t} x").fetchone()[0])
            except psycopg.Error as e:  # locked by an open transaction of the orchestrator
                digest.append(f"{t}:{type(e).__name__}")
        locks = tuple(r[0] for r in c.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
            "database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY 1").fetchall())
        return ledger, "/".join(digest), locks

    def waiting(self) -> bool:
        """Whether some session of this database waits on a lock (a replica queued behind
        another's per-saga lock)."""
        return bool(self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'").fetchone()[0])


def _stall(rig: Any, links: Links, link: str, stream: str, after: int = 0) -> Any:
    return rig.nemesis.inject("stall", links.of(link), after=after, stream=stream)


def _wait(held: dict, fut: Any, timeout: float) -> Any:
    """The key of the first stall that engaged, or None once ``fut`` is done (or on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key, f in held.items():
            if f.handle.held():
                return key
        if fut.done():
            return None
        time.sleep(0.002)
    return None


def walk(rig: Any, a: Any, links: Links, saga_id: str, order: dict, snaps: Snapshots,
         timeout: float = 10.0) -> list[Boundary]:
    """Book ``saga_id`` on ``a`` and stop it at every boundary in turn (see the module doc)."""
    counts = {k: 0 for k in _STREAMS}
    armed = {k: _stall(rig, links, *k) for k in _STREAMS}
    out: list[Boundary] = []
    try:
        fut = a.book_async(saga_id, order)
        while True:
            key = _wait(armed, fut, timeout)
            if key is None:
                break
            ledger, tables, locks = snaps.take(saga_id)
            out.append(Boundary(key[0], key[1], counts[key], ledger, tables, locks))
            counts[key] += 1
            nxt = _stall(rig, links, *key)     # armed before the held message goes
            armed[key].heal()
            armed[key] = nxt
    finally:
        for f in armed.values():
            f.heal()
    fut.result(timeout)
    return out


def distinct(boundaries: list[Boundary]) -> list[Boundary]:
    """The first boundary of each state a recovery could meet (ledgers, tables and locks), once
    the saga has left a trace."""
    seen, out = set(), []
    start = boundaries[0] if boundaries else None
    for b in boundaries:
        key = (b.ledger, b.tables, b.locks)
        if key in seen or (start is not None and b.durable == start.durable
                           and b.locks == start.locks):
            continue
        seen.add(key)
        out.append(b)
    return out


def novel_kills(boundaries: list[Boundary]) -> list[Boundary]:
    """Postgres boundaries whose durable state no kill at a participant's call reaches: neither
    the state before a call was received nor the one right after it was done, nor the start of
    the saga. For an orchestrator that writes once between two calls there are few (after its
    last writes); one that writes a transition in two statements has one between them. When
    there is none, one boundary all the same (so every walk kills once)."""
    if not boundaries:
        return []
    start = boundaries[0].durable
    covered = {b.durable for b in boundaries if b.link == "participants"} | {start}
    seen: set = set()
    out = []
    for b in boundaries:
        if b.link != "postgres" or b.durable in covered or b.durable in seen:
            continue
        seen.add(b.durable)
        out.append(b)
    if not out:   # the last Postgres boundary that left a trace; with none (nothing written to
        # its database), the first moment the saga did something
        out = ([b for b in boundaries if b.link == "postgres" and b.durable != start][-1:]
               or [b for b in boundaries if b.durable != start][:1])
    return out


def _reach(rig: Any, a: Any, links: Links, b: Boundary, saga_id: str, order: dict,
           timeout: float) -> tuple[Any, Any, bool]:
    stall = _stall(rig, links, b.link, b.stream, b.after)
    fut = a.book_async(saga_id, order)
    reached = _wait({"b": stall}, fut, timeout) is not None
    return stall, fut, reached


def race(rig: Any, a: Any, b_replica: Any, links: Links, b: Boundary, saga_id: str,
         order: dict, snaps: Snapshots, patience: float = MOMENT_S, timeout: float = 10.0) -> bool:
    """Hold a fresh saga of ``a`` at ``b`` while ``b_replica`` runs ``recover()``; then let
    both finish. False when the saga never reached that boundary (its traffic changed).

    ``patience`` is how long the stall waits for the recovery to return or to wait on a lock,
    the moment the race is built on. Generous: on a loaded machine a recovery can take seconds
    to get there, and a stall healed before it did lets the original finish first, so a
    recovery that turns back a saga it should leave alone (no per-saga lock) would pass. Only a
    recovery that neither returns nor waits on a lock waits it out."""
    stall, fut, reached = _reach(rig, a, links, b, saga_id, order, timeout)
    try:
        if reached:
            rec = b_replica.recover_async()
            deadline = time.monotonic() + patience
            while not rec.done() and time.monotonic() < deadline and not snaps.waiting():
                time.sleep(0.002)
    finally:
        stall.heal()
    fut.result(timeout)
    if reached:
        rec.result(timeout)
    return reached


def kill_at(rig: Any, a: Any, links: Links, b: Boundary, saga_id: str, order: dict,
            timeout: float = 10.0) -> bool:
    """Kill ``a`` at Postgres boundary ``b`` of a fresh saga; what it had in flight on that link
    is dropped (its connections are closed, as a dead process's are). False when the saga never
    reached that boundary. ``a`` stays dead: restart it or let another replica recover."""
    stall, fut, reached = _reach(rig, a, links, b, saga_id, order, timeout)
    try:
        if reached:
            a.kill(boundary=b.describe(), saga_id=saga_id)
            rig.nemesis.inject("refuse", links.of(b.link)).heal()
    finally:
        stall.heal()
    fut.result(timeout)
    return reached
