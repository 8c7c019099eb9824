"""The bank of lab 00: a small HTTP service over Postgres, in the grader's (or notebook's) process.

The learner's ``TransferClient`` talks to it over real HTTP, through a fault proxy. The bank is
trusted and literal: it keeps the accounts and every transfer in its own schema (``bank``) of the
namespace database, which the learner's database role cannot read, and those tables are the ground
truth the grader judges from.

API (JSON bodies; every answer is one write and closes the connection)::

    POST /transfers   {"from": "alice", "to": "bob", "amount": 30}
                      header Idempotency-Key (optional, 1..255 characters)
        200 {"status": "done", "id", "from", "to", "amount", "key", "replayed"}
        409 {"status": "declined", "reason": "insufficient funds", "id", ..., "replayed"}
        400 a malformed request, 404 an unknown account,
        422 a key already used for another transfer
    GET /transfers/<key>
        200 the transfer made with that key (as above, "replayed": true), 404 none (yet)

A request with a key the bank has seen does nothing new and answers the first outcome (done or
declined), the way Stripe's idempotency keys work. A request without a key is a new transfer every
time. Everything a POST does happens in one Postgres transaction, so a second request with the same
key that arrives while the first is still running waits for it and then answers its outcome.

Faults (armed through the nemesis, :mod:`rig.faults`), each on the next POSTs:

* ``lost-reply``: the bank moves the money and commits, then its answer never arrives: ``how=
  "hang"`` keeps the connection open without a word until the client hangs up (the client sees a
  timeout), ``"reset"`` resets it (TCP RST), ``"close"`` closes it without an answer;
* ``held-request``: the bank holds the request before acting on it (a stalled server thread),
  until the fault is healed; then it carries it out, long after the client gave up.

Each request is recorded in the history as an operation of lane ``bank`` (a request that overlaps
another one gets the next free lane: ``bank-2``, ...): ``POST /transfers`` or ``GET /transfers``,
with what it was asked and what it answered, and ``lost``/``held`` when a fault took it.
"""
from __future__ import annotations

import json
import queue
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ClassVar

import psycopg

from rig.checkers import BANK_GET, BANK_POST
from splitbrain.history import History, call_value

__all__ = ["Bank", "Transfer", "Armed", "SCHEMA_SQL", "LOST_HOW"]

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS bank;
REVOKE ALL ON SCHEMA bank FROM PUBLIC;
CREATE TABLE IF NOT EXISTS bank.accounts (
    id text PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE IF NOT EXISTS bank.transfers (
    id bigserial PRIMARY KEY,
    key text UNIQUE,                   -- the Idempotency-Key; NULL when none was sent
    src text NOT NULL,
    dst text NOT NULL,
    amount bigint NOT NULL,
    status text NOT NULL,              -- done | declined (pending only inside its transaction)
    reason text,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    done_at timestamptz);
"""
LOST_HOW = ("hang", "reset", "close")
MAX_KEY = 255
_STATUS_PATH = re.compile(r"^/transfers/([^/?#]+)$")


@dataclass(frozen=True)
class Transfer:
    """One row of ``bank.transfers``: ``status`` is "done" (the money moved) or "declined"."""

    id: int
    key: str | None
    src: str
    dst: str
    amount: int
    status: str
    reason: str | None = None
    at: float = 0.0          # when it was recorded (epoch seconds, Postgres clock)

    def to_dict(self) -> dict:
        return {"id": self.id, "key": self.key, "src": self.src, "dst": self.dst,
                "amount": self.amount, "status": self.status, "reason": self.reason,
                "at": self.at}


@dataclass(eq=False)
class Armed:
    """One fault armed on the bank: ``kind`` ("lost-reply" or "held-request") for the next
    ``times`` POSTs. ``taken`` counts the requests it took; ``on_spent`` is called once the last
    of them has been served (a lost reply heals itself then). A held request waits on
    ``release``, set when the fault is disarmed."""

    kind: str
    times: int = 1
    how: str = "hang"
    hold_s: float = 5.0
    on_spent: Callable[[], Any] | None = None
    taken: int = 0
    served: int = 0
    release: threading.Event = field(default_factory=threading.Event)


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Bank:
    """The bank's HTTP server and its tables; see the module docstring.

    admin_url: the namespace database as the grader (a role that may create the ``bank`` schema).
    history: where requests are recorded (a new one if not given).
    """

    #: the label of a fault on the bank in a history
    name: ClassVar[str] = "bank"

    admin_url: str
    history: History = field(default_factory=History)

    def __post_init__(self) -> None:
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._lock = threading.Lock()
        self._faults: list[Armed] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lanes: set[int] = set()
        self.posts = 0          # POST /transfers requests received
        self.in_flight = 0      # requests being served (held, working, or hanging up)
        self.held = 0           # requests held by a held-request fault right now
        self._changed = threading.Condition(self._lock)

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self) -> "Bank":
        with self._conn() as conn:
            conn.execute(SCHEMA_SQL)
        return self

    def open_accounts(self, balances: dict[str, int]) -> None:
        """Create (or reset) accounts with these balances."""
        with self._conn() as conn, conn.transaction():
            for account, balance in balances.items():
                conn.execute("INSERT INTO bank.accounts (id, balance) VALUES (%s, %s) "
                             "ON CONFLICT (id) DO UPDATE SET balance = excluded.balance",
                             (account, int(balance)))

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the bank is not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the bank is not started; call start() first")
        host, port = self._server.server_address[:2]
        return host, port

    def start(self) -> "Bank":
        if self._server is None:
            handler = type("Handler", (_Handler,), {"bank": self})
            self._server = _Server(("127.0.0.1", 0), handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                            name="lab00-bank", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self.disarm()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> "Bank":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------
    def arm(self, kind: str, times: int = 1, how: str = "hang", hold_s: float = 5.0,
            on_spent: Callable[[], Any] | None = None) -> Armed:
        """Make the next ``times`` POSTs lose their answer (``"lost-reply"``, ``how``) or wait
        before they are carried out (``"held-request"``, until :meth:`disarm`)."""
        if kind not in ("lost-reply", "held-request"):
            raise ValueError(f"the bank's faults are 'lost-reply' and 'held-request', not {kind!r}")
        if how not in LOST_HOW:
            raise ValueError(f"how is one of {', '.join(LOST_HOW)}, not {how!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times is how many requests the fault takes (an int >= 1), "
                             f"got {times!r}")
        armed = Armed(kind, times, how, float(hold_s), on_spent)
        with self._lock:
            self._faults.append(armed)
        return armed

    def disarm(self, armed: Armed | None = None) -> None:
        """Forget one fault (None: every fault); requests it holds are carried out now."""
        with self._lock:
            gone = list(self._faults) if armed is None else [armed]
            for f in gone:
                if f in self._faults:
                    self._faults.remove(f)
        for f in gone:
            f.release.set()

    def _take(self) -> Armed | None:
        with self._lock:
            for f in self._faults:
                if f.taken < f.times:
                    f.taken += 1
                    return f
        return None

    def _served(self, fault: Armed) -> None:
        with self._lock:
            fault.served += 1
            spent = fault.kind == "lost-reply" and fault.served >= fault.times
            if spent and fault in self._faults:
                self._faults.remove(fault)
            else:
                spent = False
        if spent and fault.on_spent is not None:
            fault.on_spent()

    # -- conditions a test waits for ---------------------------------------------------------
    def wait_for(self, condition: Callable[["Bank"], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition(bank)`` holds (True) or ``timeout`` passed (False); it is
        checked whenever a request arrives, is held or ends."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def _note(self, **delta: int) -> None:
        with self._changed:
            for k, v in delta.items():
                setattr(self, k, getattr(self, k) + v)
            self._changed.notify_all()

    def _lane(self) -> tuple[int, str]:
        with self._lock:
            n = 0
            while n in self._lanes:
                n += 1
            self._lanes.add(n)
        return n, ("bank" if n == 0 else f"bank-{n + 1}")

    def _free(self, n: int) -> None:
        with self._lock:
            self._lanes.discard(n)

    # -- truth ---------------------------------------------------------------------------------
    def ledger(self) -> list[Transfer]:
        """Every transfer the bank recorded, in the order it recorded them (the grader's own
        query of its table)."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, key, src, dst, amount, status, reason, extract(epoch FROM at)::float8 "
                "FROM bank.transfers WHERE status <> 'pending' ORDER BY id").fetchall()
        return [Transfer(i, k, s, d, int(a), st, r, at) for i, k, s, d, a, st, r, at in rows]

    def balances(self) -> dict[str, int]:
        with self._conn() as conn:
            return {a: int(b) for a, b in
                    conn.execute("SELECT id, balance FROM bank.accounts ORDER BY id").fetchall()}

    # -- the work --------------------------------------------------------------------------------
    def _conn(self):
        bank = self

        class _Lease:
            def __enter__(self):
                try:
                    self.c = bank._pool.get_nowait()
                except queue.Empty:
                    self.c = psycopg.connect(bank.admin_url, autocommit=True)
                return self.c

            def __exit__(self, et, ev, tb):
                if self.c.closed or self.c.info.transaction_status != 0:
                    self.c.close()
                else:
                    bank._pool.put(self.c)

        return _Lease()

    def transfer(self, req: dict, key: str | None) -> tuple[int, dict]:
        """Carry out one POST in one transaction. Returns (HTTP status, answer)."""
        src, dst, amount = req.get("from"), req.get("to"), req.get("amount")
        for name, v in (("from", src), ("to", dst)):
            if not isinstance(v, str) or not v:
                raise _Refused(400, f"{name!r} must name an account (a non-empty string), "
                                    f"got {v!r}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _Refused(400, f"'amount' must be a positive integer, got {amount!r}")
        if src == dst:
            raise _Refused(400, f"a transfer from {src!r} to itself moves nothing")
        if key is not None and not 0 < len(key) <= MAX_KEY:
            raise _Refused(400, f"an Idempotency-Key is 1 to {MAX_KEY} characters long")
        with self._conn() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO bank.transfers (key, src, dst, amount, status) "
                "VALUES (%s, %s, %s, %s, 'pending') ON CONFLICT (key) DO NOTHING RETURNING id",
                (key, src, dst, amount)).fetchone()
            if row is None:     # a key seen before: answer what happened the first time
                old = conn.execute("SELECT id, src, dst, amount, status, reason "
                                   "FROM bank.transfers WHERE key = %s", (key,)).fetchone()
                if (old[1], old[2], int(old[3])) != (src, dst, amount):
                    raise _Refused(422, f"idempotency key {key!r} was used for a transfer of "
                                        f"{old[3]} from {old[1]} to {old[2]}; use one key per "
                                        f"transfer")
                return self._answer(old[0], key, src, dst, amount, old[4], old[5], True)
            tid = row[0]
            found = dict(conn.execute(
                "SELECT id, balance FROM bank.accounts WHERE id = ANY(%s) ORDER BY id "
                "FOR UPDATE", ([src, dst],)).fetchall())
            for account in (src, dst):
                if account not in found:
                    raise _Refused(404, f"no account {account!r}")
            if found[src] < amount:
                status, reason = "declined", "insufficient funds"
            else:
                conn.execute("UPDATE bank.accounts SET balance = balance - %s WHERE id = %s",
                             (amount, src))
                conn.execute("UPDATE bank.accounts SET balance = balance + %s WHERE id = %s",
                             (amount, dst))
                status, reason = "done", None
            conn.execute("UPDATE bank.transfers SET status = %s, reason = %s, "
                         "done_at = clock_timestamp() WHERE id = %s", (status, reason, tid))
        return self._answer(tid, key, src, dst, amount, status, reason, False)

    def status_of(self, key: str) -> tuple[int, dict]:
        with self._conn() as conn:
            old = conn.execute("SELECT id, src, dst, amount, status, reason FROM bank.transfers "
                               "WHERE key = %s AND status <> 'pending'", (key,)).fetchone()
        if old is None:
            return 404, {"error": f"no transfer with idempotency key {key!r}"}
        return self._answer(old[0], key, old[1], old[2], int(old[3]), old[4], old[5], True)

    @staticmethod
    def _answer(tid: int, key: str | None, src: str, dst: str, amount: int, status: str,
                reason: str | None, replayed: bool) -> tuple[int, dict]:
        body = {"status": status, "id": tid, "from": src, "to": dst, "amount": amount,
                "key": key, "replayed": replayed}
        if reason:
            body["reason"] = reason
        return (200 if status == "done" else 409), body


class _Server(ThreadingHTTPServer):
    """The bank's server: a connection the network reset or the caller abandoned before its
    request was read is the network's doing, not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    bank: Bank
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        """One write per answer (headers and body together), so that a stall on the link in
        front of the bank counts one message per answer."""
        data = json.dumps(body).encode()
        reason = self.responses.get(code, ("",))[0]
        head = (f"HTTP/1.1 {code} {reason}\r\nServer: lab00-bank\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                f"Connection: close\r\n\r\n").encode("latin-1")
        self.close_connection = True
        try:
            self.wfile.write(head + data)
        except OSError:     # the caller is gone: the answer is lost on the way
            pass

    def _lose(self, fault: Armed) -> str:
        """Do not answer: hang on until the caller hangs up (or hold_s passes), reset the
        connection, or close it. Returns what the caller saw happen."""
        self.close_connection = True
        if fault.how == "hang":
            try:
                ready, _, _ = select.select([self.connection], [], [], fault.hold_s)
            except (OSError, ValueError):
                ready = [True]
            return "the caller hung up" if ready else f"dropped after {fault.hold_s:g} s"
        try:
            if fault.how == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        return "connection reset" if fault.how == "reset" else "connection closed, no answer"

    def do_GET(self) -> None:  # noqa: N802
        m = _STATUS_PATH.match(self.path)
        if not m:
            return self._send(404, {"error": f"nothing at GET {self.path}; ask GET "
                                             f"/transfers/<idempotency key>"})
        from urllib.parse import unquote
        bank = self.bank
        n, lane = bank._lane()
        bank._note(in_flight=1)
        key = unquote(m.group(1))
        inv = bank.history.invoke(lane, BANK_GET, call_value([key]))
        try:
            code, body = bank.status_of(key)
            bank.history.complete(inv, "ok", {"code": code, **body})
            self._send(code, body)
        except Exception as e:  # noqa: BLE001 - a bank bug must not look like the learner's
            bank.history.complete(inv, "info", {"error": repr(e)})
            self._send(500, {"error": f"bank error: {e!r}"})
        finally:
            bank._free(n)
            bank._note(in_flight=-1)

    def do_POST(self) -> None:  # noqa: N802
        bank = self.bank
        if self.path != "/transfers":
            return self._send(404, {"error": f"nothing at POST {self.path}; transfers are "
                                             f"POST /transfers"})
        n, lane = bank._lane()
        bank._note(in_flight=1, posts=1)
        try:
            self._post(lane)
        finally:
            bank._free(n)
            bank._note(in_flight=-1)

    def _post(self, lane: str) -> None:
        bank, h = self.bank, self.bank.history
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if not isinstance(req, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            return self._send(400, {"error": f"the body must be a JSON object: {e}"})
        key = self.headers.get("Idempotency-Key")
        inv = h.invoke(lane, BANK_POST, call_value([], {
            "from": req.get("from"), "to": req.get("to"), "amount": req.get("amount"),
            "key": key}))
        fault = bank._take()
        try:
            if fault is not None and fault.kind == "held-request":
                bank._note(held=1)
                try:
                    fault.release.wait()
                finally:
                    bank._note(held=-1)
            try:
                code, body = bank.transfer(req, key)
            except _Refused as e:
                h.complete(inv, "fail", {"code": e.code, "error": str(e)})
                return self._send(e.code, {"error": str(e)})
            outcome = "ok" if code == 200 else "fail"
            extra = {"held": True} if fault is not None and fault.kind == "held-request" else {}
            if fault is not None and fault.kind == "lost-reply":
                h.complete(inv, outcome, {"code": code, **body, "lost": fault.how,
                                          "seen": self._lose(fault)})
                return None
            h.complete(inv, outcome, {"code": code, **body, **extra})
            return self._send(code, body)
        except Exception as e:  # noqa: BLE001 - a bank bug must not look like the learner's
            h.complete(inv, "info", {"error": repr(e)})
            return self._send(500, {"error": f"bank error: {e!r}"})
        finally:
            if fault is not None:
                bank._served(fault)
