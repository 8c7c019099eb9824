"""Lab 06: a webhook receiver. A storefront (the provider) tells us about orders by webhooks;
we keep each order's state in Postgres, and when an order is confirmed we charge the customer
through the payment API and ship the goods.

WHAT TO FIX
-----------
On a quiet day this receiver works. But a webhook provider delivers *at least once*: it retries
when our answer is slow or not 2xx, it sometimes sends the same event twice, and it does not
promise any order. And anyone who knows our URL can post to it. The notebook shows the receiver
ship an order twice, charge a card twice, let an old event overwrite a newer one, and accept a
delivery nobody signed. Keep the interface below and change the rest; check with

    splitbrain check 06

THE INTERFACE
-------------
Receiver(connect, payments_url, secret)
    connect(): a new Postgres connection (psycopg 3; your own database; the tables below exist).
    payments_url: the payment API, "http://127.0.0.1:PORT".
    secret: the endpoint's signing secret, "whsec_" + base64 of the key bytes.
  serve(port) -> int
    Start serving HTTP on 127.0.0.1:port in background threads and return the port at once.
    The provider POSTs every delivery to /webhooks. A 2xx answer tells it "received, don't
    send it again"; anything else, or no answer within 0.5 s, makes it send the delivery again.
    serve() is also how the receiver starts again after its process died.

THE DELIVERIES (Standard Webhooks, https://www.standardwebhooks.com/)
    headers  webhook-id: the event's id (the same on every retry of it)
             webhook-timestamp: Unix seconds when this attempt was signed
             webhook-signature: "v1,<base64 HMAC-SHA256(key, f'{id}.{timestamp}.{body}')>"
                                (several may be given, separated by spaces)
    body     {"type": "order.created" | "order.confirmed" | "order.shipped" | "order.cancelled",
              "timestamp": "...", "data": {"order": "ord_1", "version": 2,
                                           "status": "confirmed", "amount": 1200}}
    ``version`` counts the order's changes at the provider: version 3 is newer than version 2,
    whatever order the deliveries arrive in. ``data`` is the whole order as of that version.

WHAT THE RECEIVER MUST DO (the grader reads these tables)
    orders(id text PRIMARY KEY, status text, version int, amount bigint): each order's newest
        state. shipments(id bigserial, order_id text): one row per order shipped.
    order.confirmed: charge the order's amount once (payment API below) and ship it once.
    Every other effect of an event is its row in ``orders``.

THE PAYMENT API
    POST {payments_url}/charges {"order": "ord_1", "amount": 1200}, optional header
    Idempotency-Key (1..255 characters): a second request with a key already used charges
    nothing and answers the first charge again ("replayed": true).
    200 {"id": 7, "order": ..., "amount": ..., "replayed": false}; 400/422 a wrong request.
"""
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Applies each delivery as it arrives, then answers 200."""

    def __init__(self, connect, payments_url, secret):
        self.connect = connect
        self.payments_url = payments_url.rstrip("/")
        self.secret = secret

    def serve(self, port):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.handle(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server.server_address[1]

    def handle(self, event):
        order = event["data"]
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO orders (id, status, version, amount) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "version = excluded.version, amount = excluded.amount",
                (order["order"], order["status"], order["version"], order["amount"]))
            if event["type"] == "order.confirmed":
                self.charge(order["order"], order["amount"])
                conn.execute("INSERT INTO shipments (order_id) VALUES (%s)", (order["order"],))
            conn.commit()

    def charge(self, order, amount):
        body = json.dumps({"order": order, "amount": amount}).encode()
        for attempt in range(3):
            request = urllib.request.Request(f"{self.payments_url}/charges", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=0.5) as reply:
                    return json.load(reply)
            except TimeoutError:
                if attempt == 2:
                    raise
