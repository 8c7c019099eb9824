"""Lab 00, a different correct design: after a request that got no answer, ask the bank what
became of the key (GET /transfers/<key>) before sending the transfer again.

Every request counts as one attempt, so the call still ends within attempts x timeout_s. The key
is this client's random prefix and a counter: new for every transfer() call, the same for all
its attempts. Written on http.client rather than urllib."""
import http.client
import itertools
import json
import secrets
import urllib.parse


class TransferClient:
    def __init__(self, url, timeout_s=0.5, attempts=3):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(1)

    def _request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def transfer(self, src, dst, amount):
        key = f"{self.prefix}-{next(self.counter)}"
        body = json.dumps({"from": src, "to": dst, "amount": amount})
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        lost = False                    # the last request may have reached the bank
        for _ in range(self.attempts):
            try:
                if lost:
                    status, _ = self._request("GET", f"/transfers/{key}")
                    if status == 404:   # not done (yet): send it again, same key
                        lost = False
                        continue
                else:
                    status, _ = self._request("POST", "/transfers", body, headers)
            except OSError:             # no answer: done or not, nobody knows
                lost = True
                continue
            if status == 200:
                return "ok"
            if status == 409:
                return "failed"
            raise RuntimeError(f"the bank refused the request: HTTP {status}")
        return "unknown"
