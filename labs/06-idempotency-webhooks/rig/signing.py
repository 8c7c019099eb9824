"""Standard Webhooks signatures (https://www.standardwebhooks.com/), as the sender makes them.

The secret is ``whsec_`` followed by the base64 of the key bytes. A delivery carries three headers:
``webhook-id`` (the event's id, the same on every retry), ``webhook-timestamp`` (Unix seconds when
this attempt was signed) and ``webhook-signature``: ``v1,`` and the base64 of
HMAC-SHA256(key, ``f"{id}.{timestamp}.{body}"``); several signatures may be separated by spaces.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["make_secret", "sign", "headers"]


def make_secret(seed: str) -> str:
    key = hashlib.sha256(f"lab06-{seed}".encode()).digest()[:24]
    return "whsec_" + base64.b64encode(key).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body),
            "Content-Type": "application/json"}
