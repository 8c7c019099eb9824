"""Lab 06, solved: a webhook receiver that verifies, records, answers fast and applies once.

* Verify first: the Standard Webhooks signature (HMAC-SHA256 over id, timestamp and body,
  compared in constant time) and the timestamp within five minutes of now; anything else is 400
  and touches nothing.
* Record, then answer: the delivery goes into an inbox table keyed by its webhook-id, in a
  transaction of its own; the 2xx leaves only after that COMMIT, so an acknowledged event is never
  lost, and a duplicate (same id) is a no-op that still answers 2xx.
* Apply in the background, idempotently: one thread takes unapplied inbox rows (FOR UPDATE SKIP
  LOCKED), applies each in one transaction with its ``applied`` mark, so an effect and the record
  that it happened commit together. State moves only forward by the order's version.
* One payment, one key: the charge's Idempotency-Key names the payment (the order), so a retried
  request, a redelivered event or a restart after a crash all reach the payment API as the same
  charge.
"""
import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300

INBOX_SQL = """
CREATE TABLE IF NOT EXISTS webhook_inbox (
    id text PRIMARY KEY,
    type text NOT NULL,
    data jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_at timestamptz)
"""


class Receiver:
    def __init__(self, connect, payments_url, secret):
        self.connect = connect
        self.payments_url = payments_url.rstrip("/")
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.wake = threading.Event()
        with self.connect() as conn:
            conn.execute(INBOX_SQL)
            conn.commit()

    # -- receiving -------------------------------------------------------------------------
    def verify(self, headers, body):
        msg_id = headers.get("webhook-id") or ""
        stamp = headers.get("webhook-timestamp") or ""
        if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_S:
            return False
        mac = hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256)
        expected = base64.b64encode(mac.digest()).decode()
        for sig in (headers.get("webhook-signature") or "").split():
            version, _, value = sig.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                return True
        return False

    def record(self, msg_id, event):
        with self.connect() as conn:
            conn.execute("INSERT INTO webhook_inbox (id, type, data) VALUES (%s, %s, %s) "
                         "ON CONFLICT (id) DO NOTHING",
                         (msg_id, event["type"], json.dumps(event["data"])))
            conn.commit()
        self.wake.set()

    def serve(self, port):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not receiver.verify(self.headers, body):
                    return self.answer(400)
                try:
                    event = json.loads(body)
                    event["data"]["order"]
                except (ValueError, KeyError, TypeError):
                    return self.answer(400)
                receiver.record(self.headers["webhook-id"], event)
                self.answer(204)

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        threading.Thread(target=self.apply_loop, daemon=True).start()
        return server.server_address[1]

    # -- applying ----------------------------------------------------------------------------
    def apply_loop(self):
        while True:
            try:
                while self.apply_one():
                    pass
            except Exception:       # the payment API did not answer, a connection broke:
                time.sleep(0.05)    # the row stays unapplied and is tried again
            self.wake.wait(0.05)
            self.wake.clear()

    def apply_one(self):
        with self.connect() as conn:
            row = conn.execute(
                "SELECT id, type, data FROM webhook_inbox WHERE applied_at IS NULL "
                "ORDER BY received_at LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                return False
            _, kind, order = row
            conn.execute(
                "INSERT INTO orders (id, status, version, amount) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "version = excluded.version, amount = excluded.amount "
                "WHERE orders.version < excluded.version",
                (order["order"], order["status"], order["version"], order["amount"]))
            if kind == "order.confirmed":
                self.charge(order["order"], order["amount"])
                conn.execute("INSERT INTO shipments (order_id) VALUES (%s)", (order["order"],))
            conn.execute("UPDATE webhook_inbox SET applied_at = clock_timestamp() WHERE id = %s",
                         (row[0],))
            conn.commit()
        return True

    def charge(self, order, amount):
        key = f"charge-{order}"         # one payment per order: the same key on every retry
        body = json.dumps({"order": order, "amount": amount}).encode()
        while True:
            request = urllib.request.Request(
                f"{self.payments_url}/charges", data=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": key})
            try:
                with urllib.request.urlopen(request, timeout=0.5) as reply:
                    return json.load(reply)
            except urllib.error.HTTPError:
                raise
            except OSError:
                continue                # no answer: ask again with the same key
