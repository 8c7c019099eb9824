"""Lab 00, solved: a transfer client that knows a timeout means "unknown".

One idempotency key per transfer, made before the first attempt and sent with every attempt, so
that the bank recognises a retry and answers the first outcome instead of moving the money again.
No answer after the last attempt is "unknown", never "failed". Same interface as the handout.
"""
import json
import urllib.error
import urllib.request
import uuid


class TransferClient:
    """Moves money through the bank's HTTP API; a retry is safe because it repeats the key."""

    def __init__(self, url, timeout_s=0.5, attempts=3):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.attempts = attempts

    def transfer(self, src, dst, amount):
        key = uuid.uuid4().hex      # names this transfer, not one attempt of it
        body = json.dumps({"from": src, "to": dst, "amount": amount}).encode()
        for _ in range(self.attempts):
            request = urllib.request.Request(f"{self.url}/transfers", data=body,
                                             headers={"Content-Type": "application/json",
                                                      "Idempotency-Key": key})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s):
                    return "ok"     # 200: done now, or done by an earlier attempt (replayed)
            except urllib.error.HTTPError as e:
                if e.code == 409:   # the bank said no: a definite answer
                    return "failed"
                raise               # the request itself is wrong: a bug, not the network
            except OSError:         # timeout, reset, closed: the bank may have done it, or not
                continue            # asking again with the same key is safe
        return "unknown"            # no answer came: the money moved at most once, or not at all
