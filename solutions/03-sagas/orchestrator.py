"""Book an order across three services: a durable saga orchestrator (the solution of lab 03).

The saga is a small state machine kept in Postgres, one row per saga::

    forward(k)   steps before k are done; step k may or may not have happened
    backward(k)  steps before k are done and are being undone, last first
    done | compensated

The row is written *before* each step is sent, so a process that dies anywhere leaves a row that
says exactly what may have happened. Every call carries an idempotency key made of the saga id and
the step (``"<saga>/charge"``, ``"<saga>/refund"``), so repeating a call, after a lost answer
or after a restart, can never do the work twice: the participant answers with the first outcome.
An answer that never came (timeout, dropped connection, 503) is "maybe": the orchestrator asks
again with the same key until it gets a definite ok or no. Compensations are retried until they
succeed. ``recover()`` drives every unfinished row to its end; ``book()`` on a known saga id does
the same for that saga instead of starting it again.

Interface: see ``labs/03-sagas/orchestrator.py``.
"""
from __future__ import annotations

import json
import time

import psycopg
from psycopg import errors

from rig.saga import Declined, OutcomeUnknown, ParticipantClient

STEPS = ("reserve", "charge", "schedule")
UNDO = {"reserve": "release", "charge": "refund", "schedule": "cancel"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS saga (
    id text PRIMARY KEY,
    order_json jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('forward', 'backward', 'done', 'compensated')),
    step integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


class Orchestrator:
    def __init__(self, pg_url: str, participants: ParticipantClient,
                 step_timeout_s: float = 1.0, retry_for_s: float = 8.0) -> None:
        self.p = participants
        self.step_timeout_s = step_timeout_s
        self.retry_for_s = retry_for_s
        self.db = psycopg.connect(pg_url, autocommit=True)
        try:
            self.db.execute(SCHEMA)
        except (errors.UniqueViolation, errors.DuplicateTable):
            pass  # another orchestrator created it at the same moment

    # -- the interface -----------------------------------------------------------------------------
    def book(self, saga_id: str, order: dict) -> str:
        missing = {"sku", "qty", "account", "amount", "address"} - set(order)
        if missing:
            raise ValueError(f"order of saga {saga_id} lacks {sorted(missing)}")
        self.db.execute("INSERT INTO saga (id, order_json, state, step) "
                        "VALUES (%s, %s, 'forward', 0) ON CONFLICT (id) DO NOTHING",
                        (saga_id, json.dumps(order)))
        return self._drive(saga_id)

    def recover(self) -> dict[str, str]:
        rows = self.db.execute("SELECT id FROM saga WHERE state IN ('forward', 'backward') "
                               "ORDER BY created_at").fetchall()
        return {sid: self._drive(sid) for (sid,) in rows}

    # -- the state machine -------------------------------------------------------------------------
    def _drive(self, saga_id: str) -> str:
        # One driver per saga at a time: a session lock, released if this process dies.
        self.db.execute("SELECT pg_advisory_lock(hashtext(%s))", (saga_id,))
        try:
            while True:
                order, state, k = self.db.execute(
                    "SELECT order_json, state, step FROM saga WHERE id = %s",
                    (saga_id,)).fetchone()
                if state in ("done", "compensated"):
                    return state
                if state == "forward":
                    if k == len(STEPS):
                        self._set(saga_id, "done", k)
                        continue
                    try:
                        self._call(STEPS[k], saga_id, order)
                        self._set(saga_id, "forward", k + 1)
                    except Declined:
                        self._set(saga_id, "backward", k)     # step k did not happen
                else:  # backward: undo steps k-1 .. 0
                    if k == 0:
                        self._set(saga_id, "compensated", 0)
                        continue
                    self._call(UNDO[STEPS[k - 1]], saga_id, order, undo=True)
                    self._set(saga_id, "backward", k - 1)
        finally:
            self.db.execute("SELECT pg_advisory_unlock(hashtext(%s))", (saga_id,))

    def _set(self, saga_id: str, state: str, step: int) -> None:
        self.db.execute("UPDATE saga SET state = %s, step = %s WHERE id = %s",
                        (state, step, saga_id))

    def _call(self, op: str, saga_id: str, order: dict, undo: bool = False) -> dict:
        """Call until the answer is definite. Same key every time: a repeat is a question
        ("did it happen?"), never a second operation. Declined propagates (forward steps only)."""
        key = f"{saga_id}/{op}"
        args = {"reserve": ("sku", "qty"), "release": ("sku", "qty"),
                "charge": ("account", "amount"), "refund": ("account", "amount"),
                "schedule": ("address",), "cancel": ("address",)}[op]
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.02
        while True:
            try:
                return getattr(self.p, op)(key=key, saga_id=saga_id,
                                           timeout_s=self.step_timeout_s,
                                           **{a: order[a] for a in args})
            except OutcomeUnknown:
                if time.monotonic() > deadline:
                    raise   # the row still says where we are; recover() carries on later
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except Declined:
                if undo:
                    raise RuntimeError(f"{op} of saga {saga_id} was refused; a compensation "
                                       f"must always be possible") from None
                raise
