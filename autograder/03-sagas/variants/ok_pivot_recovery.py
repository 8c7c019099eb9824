"""A different correct design: a call log (one row per call, written before the call is sent, its
answer after), a per-saga advisory lock, capped exponential backoff with full jitter, and a
recovery that turns at the pivot: a saga that died before its charge was confirmed is undone, one
that died after it goes forward (the chapter's "pivot")."""
import random
import time

import psycopg
from psycopg.types.json import Jsonb

from rig.saga import Declined, OutcomeUnknown

STEPS = [("reserve", "release", ("sku", "qty")), ("charge", "refund", ("account", "amount")),
         ("schedule", "cancel", ("address",))]
PIVOT = "charge"   # once the charge is confirmed, a recovery only goes forward


class Orchestrator:
    def __init__(self, pg_url, participants, step_timeout_s=1.0):
        self.p, self.t = participants, step_timeout_s
        self.db = psycopg.connect(pg_url, autocommit=True)
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(703)")    # one creator at a time
            self.db.execute("CREATE TABLE IF NOT EXISTS sagas (id text PRIMARY KEY, "
                            "body jsonb NOT NULL, outcome text)")
            self.db.execute("CREATE TABLE IF NOT EXISTS calls (saga_id text, op text, "
                            "answer text, PRIMARY KEY (saga_id, op))")

    # -- the interface ---------------------------------------------------------------------------
    def book(self, saga_id, order):
        self.db.execute("INSERT INTO sagas (id, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (saga_id, Jsonb(order)))
        return self._locked(saga_id, recovering=False)

    def recover(self):
        ids = [r[0] for r in self.db.execute(
            "SELECT id FROM sagas WHERE outcome IS NULL ORDER BY id").fetchall()]
        return {sid: self._locked(sid, recovering=True) for sid in ids}

    # -- driving ---------------------------------------------------------------------------------
    def _locked(self, sid, recovering):
        self.db.execute("SELECT pg_advisory_lock(hashtext('saga:' || %s))", (sid,))
        try:
            return self._run(sid, recovering)
        finally:
            self.db.execute("SELECT pg_advisory_unlock(hashtext('saga:' || %s))", (sid,))

    def _calls(self, sid):
        return dict(self.db.execute("SELECT op, answer FROM calls WHERE saga_id = %s",
                                    (sid,)).fetchall())

    def _run(self, sid, recovering):
        body, outcome = self.db.execute("SELECT body, outcome FROM sagas WHERE id = %s",
                                        (sid,)).fetchone()
        if outcome:
            return outcome
        calls = self._calls(sid)
        turned = "declined" in calls.values() or any(undo in calls for _, undo, _ in STEPS)
        if turned or (recovering and calls and calls.get(PIVOT) != "ok"):
            return self._undo(sid, body)
        for op, _, args in STEPS:
            if calls.get(op) == "ok":
                continue
            if self._ask(sid, op, body, args) == "declined":
                return self._undo(sid, body)
        self.db.execute("UPDATE sagas SET outcome = 'done' WHERE id = %s", (sid,))
        return "done"

    def _undo(self, sid, body):
        calls = self._calls(sid)
        for op, undo, args in reversed(STEPS):
            if op not in calls or calls[op] == "declined":
                continue
            if calls[op] is None and self._ask(sid, op, body, args) == "declined":
                continue        # it was a "maybe": the same key says it did not happen
            self._ask(sid, undo, body, args)
        self.db.execute("UPDATE sagas SET outcome = 'compensated' WHERE id = %s", (sid,))
        return "compensated"

    def _ask(self, sid, op, body, args):
        """Log the call, send it until the answer is definite, log the answer."""
        self.db.execute("INSERT INTO calls (saga_id, op) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (sid, op))
        cap = 0.01
        while True:
            try:
                getattr(self.p, op)(key=f"{sid}.{op}", saga_id=sid, timeout_s=self.t,
                                    **{a: body[a] for a in args})
                answer = "ok"
            except Declined:
                answer = "declined"
            except OutcomeUnknown:
                time.sleep(random.uniform(0, cap))
                cap = min(cap * 2, 0.2)
                continue
            self.db.execute("UPDATE calls SET answer = %s WHERE saga_id = %s AND op = %s",
                            (answer, sid, op))
            return answer
