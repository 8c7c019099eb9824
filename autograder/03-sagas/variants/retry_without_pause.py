"""The JSON-log design, retrying a call with no answer at once, again and again, without a pause:
a participant that is down for a second gets hundreds of calls from every saga waiting on it."""
import psycopg
from psycopg.types.json import Jsonb
from rig.saga import Declined, OutcomeUnknown

FWD = [("reserve", "release", ("sku", "qty")), ("charge", "refund", ("account", "amount")),
       ("schedule", "cancel", ("address",))]


class Orchestrator:
    def __init__(self, pg_url, participants, step_timeout_s=1.0):
        self.p, self.t = participants, step_timeout_s
        self.db = psycopg.connect(pg_url, autocommit=True)
        self.db.execute("CREATE TABLE IF NOT EXISTS journal (id text primary key, body jsonb not null,"
                        " log jsonb not null default '[]', outcome text)")

    def _log(self, sid, entry):
        self.db.execute("UPDATE journal SET log = log || %s WHERE id = %s", (Jsonb([entry]), sid))

    def _ask(self, op, sid, body, args, undo=False):
        while True:
            try:
                return getattr(self.p, op)(key=f"{sid}:{op}", saga_id=sid, timeout_s=self.t,
                                           **{a: body[a] for a in args})
            except OutcomeUnknown:
                continue        # ask again at once

    def _locked(self, sid, drive):
        self.db.execute("SELECT pg_advisory_lock(hashtext(%s))", (sid,))
        try:
            return drive(sid)
        finally:
            self.db.execute("SELECT pg_advisory_unlock(hashtext(%s))", (sid,))

    def book(self, saga_id, order):
        self.db.execute("INSERT INTO journal (id, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (saga_id, Jsonb(order)))
        return self._locked(saga_id, self._forward)

    def _forward(self, saga_id):
        body, log, outcome = self.db.execute("SELECT body, log, outcome FROM journal WHERE id=%s",
                                             (saga_id,)).fetchone()
        if outcome:
            return outcome
        if log:
            return self._backward(saga_id)
        for fwd, _, args in FWD:
            self._log(saga_id, {"started": fwd})
            try:
                self._ask(fwd, saga_id, body, args)
            except Declined:
                self._log(saga_id, {"declined": fwd})
                return self._backward(saga_id)
        self.db.execute("UPDATE journal SET outcome='done' WHERE id=%s", (saga_id,))
        return "done"

    def _backward(self, sid):
        body, log, outcome = self.db.execute("SELECT body, log, outcome FROM journal WHERE id=%s",
                                             (sid,)).fetchone()
        if outcome:             # finished while this process waited for the lock
            return outcome
        started = [e["started"] for e in log if "started" in e]
        for fwd, undo, args in reversed(FWD):
            if fwd not in started:
                continue
            try:
                self._ask(fwd, sid, body, args)     # resolve "maybe": same key replays the outcome
            except Declined:
                continue
            self._ask(undo, sid, body, args)
        self.db.execute("UPDATE journal SET outcome='compensated' WHERE id=%s", (sid,))
        return "compensated"

    def recover(self):
        ids = [r[0] for r in self.db.execute("SELECT id FROM journal WHERE outcome IS NULL")]
        return {i: self._locked(i, self._backward) for i in ids}
