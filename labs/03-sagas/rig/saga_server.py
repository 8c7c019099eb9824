"""The participants' side of lab 03: an HTTP server in the grader's process, with fault injection.

``Participants(admin_url)`` creates the ``inventory``, ``payment`` and ``shipping`` schemas in the
namespace database (with the admin URL: the learner's restricted role cannot read or write them),
serves the operations described in :mod:`rig.saga`, records every call in a
:class:`~splitbrain.history.History`, and lets the grader arm faults on the calls of one operation
for one saga (:meth:`Participants.arm`):

* ``"unavailable"``: answer 503 and do nothing (a participant restarting): for ``times`` calls, or
  for every call during ``for_s`` seconds from the first one it takes (an outage of that length);
* ``"lost-reply"``: do the work and commit, then never answer: hold the connection until the caller
  gives up (or ``hold_s`` passes) and close it (the answer lost on the way back). The call's
  completion in the history says which: ``caller_hung_up`` (the caller's timeout) or not (the
  participant had to drop a caller that would have waited for ever);
* ``"decline"``: refuse the step, every time it is asked while armed (a card that stays declined);
  recorded in the ledger as a refusal, exactly like one the participant's data causes;
* ``"crash-before"``: call ``on_fire`` (the grader kills the orchestrator) before doing anything;
* ``"crash-after"``: commit the work, then call ``on_fire`` before answering.

The server records no fault itself: tests inject the first three through the nemesis
(:mod:`rig.faults`), which records them, and the crash triggers' ``on_fire`` kills the
orchestrator through the nemesis too (the kit's ``kill``).

Truth for grading is :meth:`Participants.ledger`: the grader's own query of the three ledgers.
"""
from __future__ import annotations

import json
import queue
import select
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ClassVar

import psycopg
from psycopg.types.json import Jsonb

from rig.saga import COMPENSATION_OF, OPERATIONS
from splitbrain.history import History, call_value
from splitbrain.truth import snapshot

__all__ = ["Participants", "LedgerRow", "Armed", "FAULT_KINDS", "SCHEMA_SQL"]

#: faults that act on one call each (``times`` calls); "decline" holds while it is armed
FAULT_KINDS = ("unavailable", "lost-reply", "crash-before", "crash-after")
ARMABLE = (*FAULT_KINDS, "decline")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS inventory;
CREATE SCHEMA IF NOT EXISTS payment;
CREATE SCHEMA IF NOT EXISTS shipping;
REVOKE ALL ON SCHEMA inventory, payment, shipping FROM PUBLIC;
CREATE TABLE IF NOT EXISTS inventory.stock (
    sku text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0));
CREATE TABLE IF NOT EXISTS payment.accounts (
    account text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE IF NOT EXISTS shipping.blocked (address text PRIMARY KEY);
"""
LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS {svc}.ledger (
    seq bigserial, key text PRIMARY KEY, saga_id text NOT NULL, op text NOT NULL,
    args jsonb NOT NULL, status text NOT NULL, reason text,
    at timestamptz NOT NULL DEFAULT clock_timestamp(), done_at timestamptz);
"""


@dataclass(frozen=True)
class LedgerRow:
    """One call a participant answered: ``status`` is ``"ok"`` or ``"declined"``."""

    service: str
    op: str
    key: str
    saga_id: str
    args: dict
    status: str
    seq: int = 0
    at: float = 0.0       # when the call arrived (first time), seconds since the epoch (Postgres)
    done_at: float = 0.0  # when its effect (or refusal) was written, just before the commit

    def to_dict(self) -> dict:
        return {"service": self.service, "op": self.op, "key": self.key, "saga_id": self.saga_id,
                "args": self.args, "status": self.status, "seq": self.seq, "at": self.at,
                "done_at": self.done_at}


@dataclass(eq=False)
class Armed:
    """One fault armed on the participants: ``kind`` on the calls of ``op`` for ``saga_id`` (any
    saga when None). ``fired`` counts the calls it took; once ``times`` calls have been served it
    is spent, leaves the server and ``on_spent()`` is called (a decline is never spent). With
    ``for_s``, it takes every call during ``for_s`` seconds from the first one instead, and is
    spent when that time is up."""

    op: str
    kind: str
    saga_id: str | None
    times: int
    hold_s: float
    on_fire: Callable[[], Any] | None = None
    on_spent: Callable[[], Any] | None = None
    for_s: float | None = None
    fired: int = 0
    served: int = 0
    started: float | None = None     # monotonic time of the first call it took (with for_s)
    expired: bool = False


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Participants:
    """Inventory, payment and shipping behind one HTTP server; see the module docstring.

    admin_url: the namespace database, as a role that may create schemas (the grader's URL).
    history: where calls are recorded (a new one if not given).
    prepare: create the schemas now (False: call :meth:`prepare` before the first call; the rig
        starts the server first, so that orchestrators can be started while the schemas are made).
    """

    #: the label a fault on this server carries in a history (``target_name``)
    name: ClassVar[str] = "participants"

    admin_url: str
    history: History = field(default_factory=History)
    prepare_now: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._faults: dict[tuple[str, str | None], list[Armed]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.fired: list[dict] = []
        if self.prepare_now:
            self.prepare()

    def prepare(self) -> None:
        """Create the participants' schemas and ledgers (idempotent)."""
        with self._conn() as conn:
            conn.execute(SCHEMA_SQL)
            for svc in OPERATIONS:
                conn.execute(LEDGER_SQL.format(svc=svc))

    # -- set-up ----------------------------------------------------------------------------------
    def stock(self, items: dict[str, int]) -> None:
        """Set the stock of each sku (creates the sku if new)."""
        with self._conn() as conn:
            for sku, qty in items.items():
                conn.execute("INSERT INTO inventory.stock VALUES (%s, %s) ON CONFLICT (sku) "
                             "DO UPDATE SET qty = excluded.qty", (sku, int(qty)))

    def accounts(self, balances: dict[str, int]) -> None:
        """Set the balance of each account (creates the account if new)."""
        with self._conn() as conn:
            for acc, bal in balances.items():
                conn.execute("INSERT INTO payment.accounts VALUES (%s, %s) ON CONFLICT (account) "
                             "DO UPDATE SET balance = excluded.balance", (acc, int(bal)))

    def block(self, *addresses: str) -> None:
        """Addresses the carrier does not serve (``shipping.schedule`` is declined)."""
        with self._conn() as conn:
            for a in addresses:
                conn.execute("INSERT INTO shipping.blocked VALUES (%s) ON CONFLICT DO NOTHING",
                             (a,))

    # -- faults ----------------------------------------------------------------------------------
    @staticmethod
    def check_fault(op: str, kind: str) -> None:
        """Raise ValueError when ``kind`` cannot be armed on ``op`` (named service.op)."""
        service, _, name = op.partition(".") if isinstance(op, str) else ("", "", "")
        if service not in OPERATIONS or name not in OPERATIONS[service]:
            known = ", ".join(f"{s}.{o}" for s in OPERATIONS for o in OPERATIONS[s])
            raise ValueError(f"unknown operation {op!r}; use service.op, one of {known}")
        if kind not in ARMABLE:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(ARMABLE)}")
        if kind == "decline" and name not in COMPENSATION_OF:
            raise ValueError(f"{op} is a compensation, and a participant never refuses one in "
                             f"this lab; decline one of the steps "
                             f"({', '.join(sorted(COMPENSATION_OF))})")

    def arm(self, op: str, kind: str, saga_id: str | None = None, *, times: int = 1,
            hold_s: float = 2.0, on_fire: Callable[[], Any] | None = None,
            on_spent: Callable[[], Any] | None = None, for_s: float | None = None) -> Armed:
        """Make the next ``times`` calls of ``op`` (``"payment.charge"``) for ``saga_id`` (any saga
        when None) suffer ``kind`` (one of FAULT_KINDS, or ``"decline"``: every call until it is
        disarmed). Returns the armed fault, for :meth:`disarm`. ``on_spent()`` is called once the
        last of its calls has been served. ``for_s`` (unavailable only): every call during that
        many seconds from the first one, instead of ``times`` calls."""
        self.check_fault(op, kind)
        if kind.startswith("crash") and on_fire is None:
            raise ValueError(f"a {kind} fault needs on_fire (what to kill)")
        if for_s is not None and (kind != "unavailable" or not for_s > 0):
            raise ValueError(f"for_s (seconds, > 0) is an outage's length; {kind} takes times")
        armed = Armed(op, kind, saga_id, int(times), float(hold_s), on_fire, on_spent,
                      None if for_s is None else float(for_s))
        with self._lock:
            self._faults.setdefault((op, saga_id), []).append(armed)
        return armed

    def unfired(self) -> list[dict]:
        """Faults armed for one saga's call that never fired: the call they waited for never came.
        (A decline is a participant's answer, not a planned call: it is not counted.)"""
        with self._lock:
            return [{"op": op, "saga_id": saga, "kind": f.kind}
                    for (op, saga), fs in self._faults.items() for f in fs
                    if saga is not None and f.fired == 0 and f.kind in FAULT_KINDS]

    def disarm(self, armed: Armed | None = None) -> None:
        """Forget one armed fault (None: every fault)."""
        with self._lock:
            if armed is None:
                self._faults.clear()
                return
            faults = self._faults.get((armed.op, armed.saga_id), [])
            if armed in faults:
                faults.remove(armed)

    def _take_fault(self, op: str, saga_id: str) -> Armed | None:
        with self._lock:
            for k in ((op, saga_id), (op, None)):
                for f in self._faults.get(k, []):
                    if f.kind not in FAULT_KINDS or f.expired:
                        continue
                    if f.for_s is not None:
                        if f.started is None:
                            f.started = time.monotonic()
                            timer = threading.Timer(f.for_s, self._expire, (f,))
                            timer.daemon = True
                            timer.start()
                        f.fired += 1
                        return f
                    if f.fired < f.times:
                        f.fired += 1
                        return f
        return None

    def _expire(self, fault: Armed) -> None:
        """An outage of ``for_s`` seconds is over: the next call is served."""
        with self._lock:
            fault.expired = True
            faults = self._faults.get((fault.op, fault.saga_id), [])
            spent = fault in faults
            if spent:
                faults.remove(fault)
        if spent and fault.on_spent is not None:
            fault.on_spent()

    def _served(self, fault: Armed) -> None:
        """One call a fault took has been answered (or not): forget the fault once it is spent."""
        with self._lock:
            fault.served += 1
            spent = fault.for_s is None and fault.served >= fault.times
            faults = self._faults.get((fault.op, fault.saga_id), [])
            if spent and fault in faults:
                faults.remove(fault)
            else:
                spent = False
        if spent and fault.on_spent is not None:
            fault.on_spent()

    def _declined(self, op: str, saga_id: str, args: dict) -> str | None:
        """The refusal of an armed decline for this call, if any (the reason the participant's
        data would give)."""
        with self._lock:
            armed = next((f for k in ((op, saga_id), (op, None)) for f in self._faults.get(k, [])
                          if f.kind == "decline"), None)
            if armed is None:
                return None
            armed.fired += 1
        name = op.partition(".")[2]
        if name == "reserve":
            return f"not enough {args['sku']} in stock"
        if name == "charge":
            return f"card of {args['account']} declined"
        return f"no carrier serves {args['address']}"

    # -- server ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the participants are not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Participants":
        if self._server is None:
            handler = type("Handler", (_Handler,), {"parts": self})
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                            name="saga-participants", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> "Participants":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- truth -----------------------------------------------------------------------------------
    def ledger(self) -> list[LedgerRow]:
        """Every answered call, from the grader's own query of the three ledgers, in the order
        they were recorded. The three are read in one snapshot: read one by one, a call
        committed between two reads (an orchestrator still running) would show a later step in
        one ledger without the earlier one in another, an order that never happened."""
        rows: list[LedgerRow] = []
        with self._conn() as conn:
            with snapshot(conn):
                for svc in OPERATIONS:
                    for seq, key, saga, op, args, status, at, done_at in conn.execute(
                            f"SELECT seq, key, saga_id, op, args, status, "
                            f"extract(epoch FROM at)::float8, "
                            f"coalesce(extract(epoch FROM done_at)::float8, 0) FROM {svc}.ledger "
                            f"WHERE status <> 'pending' ORDER BY seq"):
                        rows.append(LedgerRow(svc, op, key, saga, args, status, seq, at, done_at))
        return sorted(rows, key=lambda r: r.at)

    def balances(self) -> dict[str, dict[str, int]]:
        """{"stock": {sku: qty}, "accounts": {account: balance}} as the participants hold them."""
        with self._conn() as conn:
            stock = dict(conn.execute("SELECT sku, qty FROM inventory.stock").fetchall())
            acc = dict(conn.execute("SELECT account, balance FROM payment.accounts").fetchall())
        return {"stock": stock, "accounts": acc}

    # -- the work --------------------------------------------------------------------------------
    def _conn(self):
        parts = self

        class _Lease:
            def __enter__(self):
                try:
                    self.c = parts._pool.get_nowait()
                except queue.Empty:
                    self.c = psycopg.connect(parts.admin_url, autocommit=True)
                return self.c

            def __exit__(self, et, ev, tb):
                if self.c.closed or self.c.info.transaction_status != 0:
                    self.c.close()
                else:
                    parts._pool.put(self.c)

        return _Lease()

    def do(self, service: str, op: str, req: dict) -> tuple[str, dict]:
        """Run one call in one transaction. Returns ("ok"|"declined", answer)."""
        names = OPERATIONS[service][op]
        missing = [n for n in ("key", "saga_id", *names) if n not in req]
        if missing:
            raise _Refused(400, f"{service}.{op} is missing {', '.join(missing)}")
        args = {n: req[n] for n in names}
        for n in ("qty", "amount"):
            if n in args and (not isinstance(args[n], int) or args[n] <= 0):
                raise _Refused(400, f"{service}.{op}: {n} must be a positive integer, "
                                    f"got {args[n]!r}")
        key, saga = str(req["key"]), str(req["saga_id"])
        with self._conn() as conn, conn.transaction():
            new = conn.execute(
                f"INSERT INTO {service}.ledger (key, saga_id, op, args, status) "
                f"VALUES (%s, %s, %s, %s, 'pending') ON CONFLICT (key) DO NOTHING RETURNING seq",
                (key, saga, op, Jsonb(args))).fetchone()
            if new is None:
                old_saga, old_op, old_args, status, reason = conn.execute(
                    f"SELECT saga_id, op, args, status, reason FROM {service}.ledger "
                    f"WHERE key = %s", (key,)).fetchone()
                if (old_saga, old_op, old_args) != (saga, op, args):
                    raise _Refused(422, f"idempotency key {key!r} was already used for "
                                        f"{service}.{old_op} {old_args} of saga {old_saga}; "
                                        f"use one key per operation")
                return status, {"status": status, "reason": reason, "key": key, "replayed": True}
            reason = self._declined(f"{service}.{op}", saga, args)
            if reason is None:
                reason = self._apply(conn, service, op, args)
            status = "declined" if reason else "ok"
            conn.execute(f"UPDATE {service}.ledger SET status = %s, reason = %s, "
                         f"done_at = clock_timestamp() WHERE key = %s", (status, reason, key))
        return status, {"status": status, "reason": reason, "key": key, "replayed": False}

    @staticmethod
    def _apply(conn, service: str, op: str, a: dict) -> str | None:
        """Apply the effect; return a refusal reason, or None when done."""
        if op == "reserve":
            row = conn.execute("UPDATE inventory.stock SET qty = qty - %s WHERE sku = %s "
                               "AND qty >= %s RETURNING qty", (a["qty"], a["sku"], a["qty"]))
            return None if row.fetchone() else f"not enough {a['sku']} in stock"
        if op == "release":
            row = conn.execute("UPDATE inventory.stock SET qty = qty + %s WHERE sku = %s "
                               "RETURNING qty", (a["qty"], a["sku"]))
            return None if row.fetchone() else f"unknown sku {a['sku']}"
        if op == "charge":
            row = conn.execute("UPDATE payment.accounts SET balance = balance - %s WHERE "
                               "account = %s AND balance >= %s RETURNING balance",
                               (a["amount"], a["account"], a["amount"]))
            return None if row.fetchone() else f"card of {a['account']} declined"
        if op == "refund":
            row = conn.execute("UPDATE payment.accounts SET balance = balance + %s WHERE "
                               "account = %s RETURNING balance", (a["amount"], a["account"]))
            return None if row.fetchone() else f"unknown account {a['account']}"
        if op == "schedule":
            blocked = conn.execute("SELECT 1 FROM shipping.blocked WHERE address = %s",
                                   (a["address"],)).fetchone()
            return f"no carrier serves {a['address']}" if blocked else None
        return None  # cancel: always possible


class _Handler(BaseHTTPRequestHandler):
    parts: Participants
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        """One write per answer (headers and body together), so that a stall on the link in
        front of the participants counts one message per reply."""
        data = json.dumps(body).encode()
        reason = self.responses.get(code, ("",))[0]
        head = (f"HTTP/1.1 {code} {reason}\r\nServer: saga-participants\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                f"Connection: close\r\n\r\n").encode("latin-1")
        self.log_request(code)
        self.wfile.write(head + data)
        self.close_connection = True

    def _hang_up(self, hold_s: float) -> bool:
        """Never answer: wait until the caller gives up (closes its end) or hold_s passes.
        True when the caller hung up first."""
        try:
            ready, _, _ = select.select([self.connection], [], [], hold_s)
        except (OSError, ValueError):
            ready = [True]
        self.close_connection = True
        return bool(ready)

    def do_POST(self) -> None:  # noqa: N802
        parts = self.parts
        _, service, op = (self.path.split("/") + ["", ""])[:3]
        if service not in OPERATIONS or op not in OPERATIONS[service]:
            return self._send(404, {"error": f"no operation at {self.path}"})
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return self._send(400, {"error": f"the body must be a JSON object: {e}"})
        name = f"{service}.{op}"
        saga = str(req.get("saga_id"))
        h = parts.history
        inv = h.invoke(service, op, call_value((), {
            "saga_id": saga, "key": req.get("key"),
            **{n: req.get(n) for n in OPERATIONS[service][op]}}))
        fault = parts._take_fault(name, saga)
        if fault:
            parts.fired.append({"op": name, "saga_id": saga, "kind": fault.kind})
        try:
            self._serve(service, op, req, inv, fault)
        finally:
            if fault:
                parts._served(fault)

    def _serve(self, service: str, op: str, req: dict, inv: Any, fault: Armed | None) -> None:
        parts, h = self.parts, self.parts.history
        try:
            if fault and fault.kind == "unavailable":
                h.complete(inv, "fail", {"error": "unavailable"})
                return self._send(503, {"error": f"{service} is unavailable, try again"})
            if fault and fault.kind == "crash-before":
                fault.on_fire()
                h.complete(inv, "info", {"error": "caller crashed before the work"})
                return self._hang_up(0)
            try:
                status, answer = parts.do(service, op, req)
            except _Refused as e:
                h.complete(inv, "fail", {"error": str(e)})
                return self._send(e.code, {"error": str(e)})
            outcome = "ok" if status == "ok" else "fail"
            if fault and fault.kind == "lost-reply":
                t0 = time.monotonic()
                hung_up = self._hang_up(fault.hold_s)
                h.complete(inv, outcome, {**answer, "lost": True, "caller_hung_up": hung_up,
                                          "held_s": round(time.monotonic() - t0, 3)})
                return None
            h.complete(inv, outcome, answer)
            if fault and fault.kind == "crash-after":
                fault.on_fire()
                return self._hang_up(0)
            return self._send(200 if status == "ok" else 409, answer)
        except Exception as e:  # a participant bug must not look like a learner's bug
            h.complete(inv, "info", {"error": repr(e)})
            return self._send(500, {"error": f"participant error: {e!r}"})
