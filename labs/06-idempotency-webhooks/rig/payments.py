"""The downstream payment API of lab 06: a small HTTP service over Postgres in the grader's (or
the notebook's) process. It is trusted and literal; its table ``payments.charges`` is the ground
truth for ``double-charge``.

    POST /charges   {"order": "ord_1", "amount": 1200}   header Idempotency-Key (optional)
        200 {"id": 7, "order": ..., "amount": ..., "replayed": false}
        400 a malformed request; 422 a key already used for another order or amount

A request with a key seen before charges nothing and answers the first charge ("replayed":
true); a second request with the same key that arrives while the first is still running waits
for it. A request without a key is a new charge every time.

Faults (armed through the nemesis, ``rig.faults``) on the next requests:
``lost-payment-reply``: the charge is made and committed, and the answer never comes (the
connection hangs, then closes; with ``silent`` it is never closed either: the caller hears
nothing until it gives up itself, as from a host gone behind a partition, and the fault is over
as soon as the answer is lost); ``slow-payment``: the request is held before it is carried out
until the fault is healed.
"""
from __future__ import annotations

import json
import queue
import select
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import psycopg

from splitbrain.history import History, call_value

__all__ = ["Payments", "PAY_POST", "SCHEMA_SQL"]

PAY_POST = "POST /charges"
SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS payments;
REVOKE ALL ON SCHEMA payments FROM PUBLIC;
CREATE TABLE IF NOT EXISTS payments.charges (
    id bigserial PRIMARY KEY,
    key text UNIQUE,
    order_id text NOT NULL,
    amount bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
"""


@dataclass(eq=False)
class Armed:
    kind: str
    times: int = 1
    hold_s: float = 1.0
    silent: bool = False
    on_spent: Callable[[], Any] | None = None
    taken: int = 0
    served: int = 0
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


@dataclass
class Payments:
    admin_url: str
    history: History = field(default_factory=History)
    name = "payments"

    def __post_init__(self) -> None:
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._lock = threading.Lock()
        self._faults: list[Armed] = []
        self._server: _Server | None = None
        self._lanes: set[int] = set()
        self.in_flight = 0
        self.held = 0
        self._stopping = threading.Event()

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self) -> "Payments":
        with self._conn() as c:
            c.execute(SCHEMA_SQL)
        return self

    def start(self) -> "Payments":
        if self._server is None:
            self._stopping.clear()
            handler = type("Handler", (_Handler,), {"api": self})
            self._server = _Server(("127.0.0.1", 0), handler)
            threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True,
                             name="lab06-payments").start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.disarm()
        self._stopping.set()                    # silent connections are closed at last
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break

    # -- faults --------------------------------------------------------------------------------
    def arm(self, kind: str, times: int = 1, hold_s: float = 1.0,
            on_spent: Callable[[], Any] | None = None, silent: bool = False) -> Armed:
        if kind not in ("lost-payment-reply", "slow-payment"):
            raise ValueError(f"the payment API's faults are lost-payment-reply and slow-payment, "
                             f"not {kind!r}")
        a = Armed(kind, int(times), float(hold_s), bool(silent), on_spent)
        with self._lock:
            self._faults.append(a)
        return a

    def disarm(self, armed: Armed | None = None) -> None:
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

    def _served(self, f: Armed) -> None:
        with self._lock:
            f.served += 1
            spent = f.kind == "lost-payment-reply" and f.served >= f.times and f in self._faults
            if spent:
                self._faults.remove(f)
        if spent and f.on_spent is not None:
            f.on_spent()

    def _count(self, **d: int) -> None:
        with self._lock:
            for k, v in d.items():
                setattr(self, k, getattr(self, k) + v)

    def _lane(self) -> tuple[int, str]:
        with self._lock:
            n = 0
            while n in self._lanes:
                n += 1
            self._lanes.add(n)
        return n, "payments" if n == 0 else f"payments-{n + 1}"

    def _free(self, n: int) -> None:
        with self._lock:
            self._lanes.discard(n)

    # -- truth ---------------------------------------------------------------------------------
    def charges(self, conn: psycopg.Connection | None = None) -> list[dict]:
        """Every charge made; on ``conn`` when given (to read them in the caller's snapshot)."""
        sql = "SELECT id, key, order_id, amount FROM payments.charges ORDER BY id"
        if conn is not None:
            rows = conn.execute(sql).fetchall()
        else:
            with self._conn() as c:
                rows = c.execute(sql).fetchall()
        return [{"id": i, "key": k, "order": o, "amount": int(a)} for i, k, o, a in rows]

    # -- work ----------------------------------------------------------------------------------
    def _conn(self):
        api = self

        class _Lease:
            def __enter__(self):
                try:
                    self.c = api._pool.get_nowait()
                except queue.Empty:
                    self.c = psycopg.connect(api.admin_url, autocommit=True)
                return self.c

            def __exit__(self, *exc):
                if self.c.closed or self.c.info.transaction_status != 0:
                    self.c.close()
                else:
                    api._pool.put(self.c)

        return _Lease()

    def charge(self, req: dict, key: str | None) -> tuple[int, dict]:
        order, amount = req.get("order"), req.get("amount")
        if not isinstance(order, str) or not order or isinstance(amount, bool) \
                or not isinstance(amount, int) or amount <= 0:
            return 400, {"error": "a charge is {\"order\": a non-empty string, \"amount\": a "
                                  "positive integer}"}
        if key is not None and not 0 < len(key) <= 255:
            return 400, {"error": "an Idempotency-Key is 1 to 255 characters long"}
        with self._conn() as c, c.transaction():
            row = c.execute("INSERT INTO payments.charges (key, order_id, amount) "
                            "VALUES (%s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
                            (key, order, amount)).fetchone()
            if row is None:
                old = c.execute("SELECT id, order_id, amount FROM payments.charges "
                                "WHERE key = %s", (key,)).fetchone()
                if (old[1], int(old[2])) != (order, amount):
                    return 422, {"error": f"idempotency key {key!r} was used for a charge of "
                                          f"{old[2]} to {old[1]}"}
                return 200, {"id": old[0], "order": order, "amount": amount, "replayed": True}
        return 200, {"id": row[0], "order": order, "amount": amount, "replayed": False}


class _Handler(BaseHTTPRequestHandler):
    api: Payments
    protocol_version = "HTTP/1.0"

    def log_message(self, *a: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        api = self.api
        api._count(in_flight=1)
        lane, proc = api._lane()
        try:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            key = self.headers.get("Idempotency-Key")
            try:
                req = json.loads(raw or b"null")
            except ValueError:
                req = None
            req = req if isinstance(req, dict) else {}
            inv = api.history.invoke(proc, PAY_POST, call_value(
                [], {"order": req.get("order"), "amount": req.get("amount"), "key": key}))
            fault = api._take() if self.path == "/charges" else None
            if fault is not None and fault.kind == "slow-payment":
                api._count(held=1)
                fault.release.wait(30)
                api._count(held=-1)
            if self.path != "/charges":
                code, answer = 404, {"error": "POST /charges is the only endpoint"}
            else:
                code, answer = api.charge(req, key)
            if fault is not None and fault.kind == "lost-payment-reply":
                api.history.complete(inv, "info", {**answer, "code": code, "lost": True})
                if fault.silent:
                    api._served(fault)               # the answer is lost: the fault is over,
                    self._silence()                  # and the caller still hears nothing
                else:
                    fault.release.wait(fault.hold_s)     # the caller hears nothing
                    api._served(fault)
                self.close_connection = True
                return
            if fault is not None:
                api._served(fault)
            api.history.complete(inv, "ok", {**answer, "code": code})
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            api._free(lane)
            api._count(in_flight=-1)

    def _silence(self) -> None:
        """Neither answer nor close: wait until the caller hangs up (its end readable: closed)
        or the payment API stops."""
        while not self.api._stopping.is_set():
            try:
                ready, _, _ = select.select([self.connection], [], [], 0.05)
            except (OSError, ValueError):
                return
            if ready:
                return
