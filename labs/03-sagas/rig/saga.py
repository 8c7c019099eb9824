"""The participants of lab 03 (sagas): inventory, payment and shipping, and the client to call them.

Each participant is a small HTTP service with its own Postgres schema (``inventory``, ``payment``,
``shipping``) in the namespace database. The learner's orchestrator never sees those schemas: it
talks to the participants over HTTP through :class:`ParticipantClient`, the way a real order
service talks to a stock service, a payment provider and a carrier.

The participants are honest and literal. Every call carries an **idempotency key**: a repeated key
does nothing new and answers with the original outcome (ok or declined), which is also the only way
to learn what happened to a call whose answer was lost. A call with a *new* key is a new operation:
a second ``refund`` with a fresh key pays the customer a second time, exactly like a second wire
transfer. Reusing a key for a different request is refused with a clear error.

Operations (``service.op``: arguments; business refusal):

* ``inventory.reserve``: sku, qty; declined when the stock is short.
* ``inventory.release``: sku, qty; puts stock back (the compensation of reserve).
* ``payment.charge``: account, amount; declined when the balance is short.
* ``payment.refund``: account, amount; pays back (the compensation of charge).
* ``shipping.schedule``: address; declined when the carrier does not serve the address.
* ``shipping.cancel``: address; cancels one scheduled shipment (the compensation of schedule).

Every call also names its ``saga_id``: the participants keep it with the record so that the grader
can add up, per saga, what really happened. The server (:mod:`rig.saga_server`) runs in the
grader's process, and the grader's faults act on it; this module is what the learner's code
imports (``from rig.saga import Declined, OutcomeUnknown, ParticipantClient``).
"""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ParticipantClient", "ParticipantError", "Declined", "OutcomeUnknown", "BadRequest",
           "OPERATIONS", "COMPENSATION_OF", "participants"]

#: service -> op -> the argument names it takes (besides key and saga_id)
OPERATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "inventory": {"reserve": ("sku", "qty"), "release": ("sku", "qty")},
    "payment": {"charge": ("account", "amount"), "refund": ("account", "amount")},
    "shipping": {"schedule": ("address",), "cancel": ("address",)},
}
#: forward op -> the op that undoes it
COMPENSATION_OF = {"reserve": "release", "charge": "refund", "schedule": "cancel"}


class ParticipantError(Exception):
    """Base of what a participant call can raise."""


class Declined(ParticipantError):
    """A definite *no*: the participant refused and did nothing (out of stock, card declined,
    address not served). Asking again with the same key gives the same answer."""

    def __init__(self, service: str, op: str, reason: str) -> None:
        super().__init__(f"{service}.{op} declined: {reason}")
        self.service, self.op, self.reason = service, op, reason


class OutcomeUnknown(ParticipantError):
    """No definite answer: a timeout, a dropped connection, a 503. The operation may have happened
    or not. Asking again with the **same** key tells you which (and does it if it had not)."""

    def __init__(self, service: str, op: str, why: str) -> None:
        super().__init__(f"{service}.{op}: outcome unknown ({why})")
        self.service, self.op, self.why = service, op, why


class BadRequest(ParticipantError, ValueError):
    """The request itself is wrong (unknown operation, missing argument, a key reused for a
    different request). Retrying cannot help; fix the call."""


class ParticipantClient:
    """Calls the three participants over HTTP.

    ``base_url`` is the participants' address (``http://127.0.0.1:PORT``). ``timeout_s`` is the
    default time to wait for an answer; ``None`` waits as long as the connection stays open.

    Each method returns the participant's answer (a dict with ``"status": "ok"`` and
    ``"replayed": True`` when the key had been seen before) or raises :class:`Declined`,
    :class:`OutcomeUnknown` or :class:`BadRequest`.
    """

    def __init__(self, base_url: str, timeout_s: float | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"participants URL must look like http://127.0.0.1:PORT, "
                             f"got {base_url!r}")
        self.base_url = base_url
        self.host, self.port = parts.hostname, parts.port
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ParticipantClient({self.base_url!r}, timeout_s={self.timeout_s!r})"

    # -- the six operations ------------------------------------------------------------------
    def reserve(self, *, key: str, saga_id: str, sku: str, qty: int,
                timeout_s: float | None = ...) -> dict:
        return self.call("inventory", "reserve", key=key, saga_id=saga_id, timeout_s=timeout_s,
                         sku=sku, qty=qty)

    def release(self, *, key: str, saga_id: str, sku: str, qty: int,
                timeout_s: float | None = ...) -> dict:
        return self.call("inventory", "release", key=key, saga_id=saga_id, timeout_s=timeout_s,
                         sku=sku, qty=qty)

    def charge(self, *, key: str, saga_id: str, account: str, amount: int,
               timeout_s: float | None = ...) -> dict:
        return self.call("payment", "charge", key=key, saga_id=saga_id, timeout_s=timeout_s,
                         account=account, amount=amount)

    def refund(self, *, key: str, saga_id: str, account: str, amount: int,
               timeout_s: float | None = ...) -> dict:
        return self.call("payment", "refund", key=key, saga_id=saga_id, timeout_s=timeout_s,
                         account=account, amount=amount)

    def schedule(self, *, key: str, saga_id: str, address: str,
                 timeout_s: float | None = ...) -> dict:
        return self.call("shipping", "schedule", key=key, saga_id=saga_id, timeout_s=timeout_s,
                         address=address)

    def cancel(self, *, key: str, saga_id: str, address: str,
               timeout_s: float | None = ...) -> dict:
        return self.call("shipping", "cancel", key=key, saga_id=saga_id, timeout_s=timeout_s,
                         address=address)

    # -- the wire --------------------------------------------------------------------------------
    def call(self, service: str, op: str, *, key: str, saga_id: str,
             timeout_s: float | None = ..., **args: Any) -> dict:
        """POST ``/<service>/<op>`` with ``{"key", "saga_id", **args}``."""
        if service not in OPERATIONS or op not in OPERATIONS[service]:
            known = ", ".join(f"{s}.{o}" for s in OPERATIONS for o in OPERATIONS[s])
            raise BadRequest(f"unknown operation {service}.{op}; the participants offer {known}")
        if not isinstance(key, str) or not key:
            raise BadRequest(f"{service}.{op} needs an idempotency key (a non-empty string), "
                             f"got {key!r}")
        if not isinstance(saga_id, str) or not saga_id:
            raise BadRequest(f"{service}.{op} needs the saga_id (a non-empty string), "
                             f"got {saga_id!r}")
        timeout = self.timeout_s if timeout_s is ... else timeout_s
        body = json.dumps({"key": key, "saga_id": saga_id, **args}).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", f"/{service}/{op}", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        except (socket.timeout, TimeoutError):
            raise OutcomeUnknown(service, op, f"no answer within {timeout} s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise OutcomeUnknown(service, op, f"connection lost: {type(e).__name__}") from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            raise OutcomeUnknown(service, op, f"unreadable answer (HTTP {status})") from None
        if status == 200:
            return answer
        if status == 409:
            raise Declined(service, op, answer.get("reason", "declined"))
        if status in (400, 404, 422):
            raise BadRequest(answer.get("error", f"HTTP {status}"))
        raise OutcomeUnknown(service, op, answer.get("error", f"HTTP {status}"))


def participants(resources: dict, timeout_s: float | None = None) -> ParticipantClient:
    """Sandbox helper: ``Ref("rig.saga:participants")`` builds a client inside a worker from
    ``resources["saga_url"]``."""
    url = resources.get("saga_url")
    if not url:
        raise ValueError("this worker has no resources['saga_url']: start the participants with "
                         "rig.saga_server.Participants and pass its url")
    return ParticipantClient(url, timeout_s=timeout_s)
