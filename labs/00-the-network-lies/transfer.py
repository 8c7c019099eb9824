"""Lab 00: a client that asks the bank, over HTTP, to move money from one account to another.

WHAT TO FIX
-----------
On a quiet day this client works. On a bad day the bank's answer comes late, or never, or the
connection is reset, and the client gets two things wrong (the notebook shows both at once):

  * it takes "no answer" for "the transfer failed" and sends the request again; when the bank had
    done it, the money moves twice;
  * when no attempt got an answer, it tells its caller "failed", although the money may have
    moved.

A timeout does not mean "failed". It means "I do not know". Keep the interface below (the grader
calls exactly this) and change the rest. Check your work with

    splitbrain check 00

THE INTERFACE
-------------
TransferClient(url, timeout_s=0.5, attempts=3)
    url: the bank's address, "http://127.0.0.1:PORT".
    timeout_s: how long to wait for the bank's answer to one request.
    attempts: how many requests one transfer may send, at most.
  transfer(src, dst, amount) -> "ok" | "failed" | "unknown"
    Move ``amount`` (an int > 0) from account ``src`` to account ``dst``, and say what happened
    (every call is a new transfer, even with the same arguments as an earlier one):
    "ok": the money moved, once. "failed": it did not move and never will (the bank said no).
    "unknown": no answer came; the money moved at most once, or not at all.
    Answer in time: within about attempts x timeout_s (the grader allows one second more).

THE BANK'S API
--------------
POST /transfers with the JSON body {"from": src, "to": dst, "amount": amount}
    Optional header ``Idempotency-Key``: any string you choose (at most 255 characters). The bank
    remembers the outcome of the first request with a key; a later request with the same key
    moves nothing and gets that outcome again (with "replayed": true).
    200 {"status": "done", "id": 17, "replayed": false, ...}     the money moved
    409 {"status": "declined", "reason": "insufficient funds"}   it did not, and never will
    400, 404, 422 {"error": "..."}                              the request itself is wrong
GET /transfers/<key>
    200 the transfer the bank made with that key, or 404 if it has none (yet).
"""
import json
import urllib.error
import urllib.request


class TransferClient:
    """Moves money through the bank's HTTP API, retrying when the network acts up."""

    def __init__(self, url, timeout_s=0.5, attempts=3):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.attempts = attempts

    def transfer(self, src, dst, amount):
        body = json.dumps({"from": src, "to": dst, "amount": amount}).encode()
        for _ in range(self.attempts):
            request = urllib.request.Request(f"{self.url}/transfers", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s):
                    return "ok"                 # 200: the bank moved the money
            except urllib.error.HTTPError as e:
                if e.code == 409:               # declined: not enough money
                    return "failed"
                raise                           # our request is wrong: a bug to fix
            except OSError:                     # timeout, connection reset or closed:
                continue                        # the request failed, so send it again
        return "failed"                         # no attempt went through
