"""The webhook provider of lab 06: it signs each delivery as the Standard Webhooks spec says,
sends it over real HTTP (through the fault proxy) to the learner's receiver, and retries with
backoff when the reply is slow (past ``timeout_s``) or not 2xx: the same ``webhook-id``, signed
again with the time of the attempt. Through the nemesis it also duplicates and reorders
deliveries (a ``splitbrain.faults.delivery.Delivery`` between the events and the wire), and sends
a forged delivery (a wrong key) or a replayed one (signed with the right key an hour ago).

Each delivery is one operation of process ``sender`` in the history: ``deliver(event_id, ...)``
with the event's fields and ``kind`` ("genuine", "forged" or "replayed"); its result says whether
a reply was 2xx (``acked``), the status of every attempt (``codes``; 0: no reply in time) and
when it was acknowledged.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rig import signing
from splitbrain.faults.delivery import Delivery
from splitbrain.history import History, call_value

__all__ = ["Sender", "Event", "DELIVER", "STATUS_OF"]

DELIVER = "deliver"
STATUS_OF = {"order.created": "created", "order.confirmed": "confirmed",
             "order.shipped": "shipped", "order.cancelled": "cancelled"}


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    order: str
    version: int
    amount: int

    @property
    def status(self) -> str:
        return STATUS_OF[self.type]

    def body(self, at: float) -> bytes:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        return json.dumps({"type": self.type, "timestamp": stamp,
                           "data": {"order": self.order, "version": self.version,
                                    "status": self.status, "amount": self.amount}}).encode()


@dataclass
class Sender:
    """host/port: where deliveries go (the fault proxy). secret: the endpoint's ``whsec_``."""

    host: str
    port: int
    secret: str
    history: History
    seed: int = 0
    timeout_s: float = 0.5
    attempts: int = 5
    backoff_s: float = 0.05
    max_backoff_s: float = 0.1
    name = "sender"
    acked: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.delivery = Delivery(self._deliver, seed=self.seed, window=3)
        self._lock = threading.Lock()

    # the nemesis's delivery faults (duplicate, reorder, delay) act through these two
    def configure(self, **kw: float) -> None:
        self.delivery.configure(**kw)

    def flush(self) -> None:
        self.delivery.flush()

    def send(self, event: Event) -> None:
        """Hand one event to the provider's delivery queue (which may hold it back or send it
        twice while a delivery fault is on)."""
        self.delivery.send(event)

    @contextmanager
    def tries(self, n: int) -> Iterator[None]:
        """Try each delivery at most ``n`` times while inside (e.g. while every answer is known
        to come after the timeout: one retry shows a late answer as well as four)."""
        old, self.attempts = self.attempts, n
        try:
            yield
        finally:
            self.attempts = old

    def redeliver(self, event: Event) -> bool:
        """Send it again now (the provider's later retries); True when acknowledged."""
        return self._deliver(event)

    def _deliver(self, event: Event, kind: str = "genuine") -> bool:
        inv = self.history.invoke(self.name, DELIVER, call_value(
            [event.id], {"type": event.type, "order": event.order, "version": event.version,
                         "status": event.status, "amount": event.amount, "kind": kind}))
        codes: list[int] = []
        acked_at = None
        tries = 1 if kind != "genuine" else self.attempts
        for i in range(tries):
            if i:
                time.sleep(min(self.backoff_s * 2 ** (i - 1), self.max_backoff_s))
            at = time.time() - (3600 if kind == "replayed" else 0)
            body = event.body(at)
            secret = self.secret if kind != "forged" else signing.make_secret("attacker")
            code = self._post(signing.headers(secret, event.id, int(at), body), body)
            codes.append(code)
            if 200 <= code < 300:
                acked_at = self.history.now()
                break
        ok = acked_at is not None
        with self._lock:
            if kind == "genuine":
                self.acked[event.id] = self.acked.get(event.id, False) or ok
        self.history.complete(inv, "ok", {"acked": ok, "codes": codes, "acked_at": acked_at})
        return ok

    def attack(self, event: Event, kind: str) -> bool:
        """Send one forged ("forged") or replayed ("replayed") delivery; True if accepted."""
        return self._deliver(event, kind)

    def _post(self, headers: dict[str, str], body: bytes) -> int:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request("POST", "/webhooks", body=body, headers=headers)
            return conn.getresponse().status
        except (OSError, http.client.HTTPException):
            return 0                            # no reply in time, reset or refused
        finally:
            conn.close()
