"""Toxics: the faults a proxy applies to the bytes of one direction of a connection.

The names, attributes and units are Toxiproxy's (2.9), so the same JSON drives the kit's own proxy
and a real toxiproxy, with the same effect; ``hold`` and ``stall`` are the kit's own:

============  =============================================  ==========================================
type          attributes                                     effect on the stream
============  =============================================  ==========================================
noop          (none)                                         nothing: bytes pass untouched
latency       latency (ms), jitter (ms)                      each chunk waits latency ± jitter;
                                                             removing the toxic sends what it was
                                                             delaying at once
bandwidth     rate (KB/s)                                    chunks are paced to ``rate`` kilobytes/s
slow_close    delay (ms)                                     closing the connection is delayed
timeout       timeout (ms)                                   bytes are dropped (read and thrown away);
                                                             with ``timeout`` > 0 the connection is
                                                             closed once ``timeout`` ms pass with no
                                                             bytes (each chunk restarts the timer);
                                                             removing the toxic closes every
                                                             connection it was on: what was sent
                                                             meanwhile is lost
reset_peer    timeout (ms)                                   the next bytes make the proxy reset the
                                                             connection (TCP RST) after ``timeout`` ms
slicer        average_size, size_variation (bytes),          chunks are cut into small pieces sent
              delay (microseconds)                           ``delay`` apart
limit_data    bytes                                          the connection is closed once ``bytes``
                                                             have passed
hold          timeout (ms)                                   the kit's partition: bytes stop and are
                                                             held (not read, not lost); removing the
                                                             toxic lets them flow again, in order, on
                                                             the same connection; with ``timeout`` > 0
                                                             each connection is closed ``timeout`` ms
                                                             after the toxic reached it
stall         after (messages)                               the first ``after`` chunks pass (counted
                                                             over every connection of the proxy), then
                                                             the next is held, with all that follows,
                                                             until the toxic is removed; ``held`` in
                                                             the toxic's ``state`` says it engaged
============  =============================================  ==========================================

``timeout`` is Toxiproxy's (toxics/timeout.go: data "dropped on the ground", the timer made anew
on every pass of its loop, and a ``Cleanup`` that closes the link when the toxic is removed).
``hold`` is the kit's named option for what a lesson about a delayed write needs: a partition
that holds a request and delivers it after the heal (lab 01's write that arrives after its lease
ran out). ``Proxy.blackhole()`` and the ``partition`` fault use ``hold``; ``blackhole(hold=False)``
is Toxiproxy's ``timeout``. ``stall`` puts a stall at an exact point of a conversation, between two
round trips, so a test can go through every such point in turn. A real toxiproxy answers
400 "invalid toxic type" to ``hold`` and ``stall``.

``stream`` is ``"upstream"`` (client -> server) or ``"downstream"`` (server -> client, the default),
``toxicity`` is the probability (0..1) that the toxic applies to a given connection.

Where the kit is stricter than Toxiproxy on purpose: an unknown attribute, a negative number, a
bandwidth ``rate`` of 0 or a slicer ``average_size`` of 0 is refused (400, naming it) where
Toxiproxy ignores the attribute or takes the value, so a typo in a test is seen, not silently
ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TOXIC_TYPES", "KIT_TOXICS", "STREAMS", "Toxic", "ToxicError", "parse_toxic"]

TOXIC_TYPES: dict[str, dict[str, int]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "hold": {"timeout": 0},
    "stall": {"after": 0},
}
KIT_TOXICS = frozenset({"hold", "stall"})   # the kit's own: a real toxiproxy refuses them
STREAMS = ("upstream", "downstream")


class ToxicError(ValueError):
    """A toxic or proxy definition that cannot be used; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": self.toxicity, "attributes": dict(self.attributes)}

    def attr(self, key: str) -> int:
        return int(self.attributes.get(key, 0))


def _attributes(type_: str, given: Any, base: dict[str, int] | None = None) -> dict[str, int]:
    known = TOXIC_TYPES[type_]
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ToxicError(f"toxic attributes must be an object like {known}, got {given!r}")
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ToxicError(f"toxic type {type_!r} has no attribute(s) {unknown}; "
                         f"it takes {sorted(known)}")
    out = dict(known if base is None else base)
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ToxicError(f"toxic attribute {key!r} must be a number >= 0, got {value!r}")
        out[key] = int(value)
    if type_ == "bandwidth" and out["rate"] <= 0:
        raise ToxicError("bandwidth toxic needs rate > 0 (kilobytes per second)")
    if type_ == "slicer" and out["average_size"] <= 0:
        raise ToxicError("slicer toxic needs average_size > 0 (bytes per slice)")
    return out


def parse_toxic(body: Any, default_name: str | None = None) -> Toxic:
    """Validate a Toxiproxy toxic JSON object; raises ToxicError naming what is wrong."""
    if not isinstance(body, dict):
        raise ToxicError(f"a toxic is a JSON object with type/stream/attributes, got {body!r}")
    type_ = body.get("type")
    if type_ not in TOXIC_TYPES:
        raise ToxicError(f"unknown toxic type {type_!r}; use one of {sorted(TOXIC_TYPES)}")
    stream = body.get("stream") or "downstream"
    if isinstance(stream, str):
        stream = stream.lower()          # Toxiproxy takes any case (stream.ParseDirection)
    if stream not in STREAMS:
        raise ToxicError(f"toxic stream must be 'upstream' or 'downstream', got {stream!r}")
    toxicity = body.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)) or not 0 <= toxicity <= 1:
        raise ToxicError(f"toxicity is a probability between 0 and 1, got {toxicity!r}")
    name = body.get("name") or default_name or f"{type_}_{stream}"
    if not isinstance(name, str):
        raise ToxicError(f"toxic name must be a string, got {name!r}")
    return Toxic(name, type_, stream, float(toxicity), _attributes(type_, body.get("attributes")))


def update_toxic(toxic: Toxic, body: Any) -> Toxic:
    """Apply a Toxiproxy toxic update (new attributes and/or toxicity) to ``toxic``."""
    if not isinstance(body, dict):
        raise ToxicError(f"a toxic update is a JSON object, got {body!r}")
    toxicity = body.get("toxicity", toxic.toxicity)
    if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)) or not 0 <= toxicity <= 1:
        raise ToxicError(f"toxicity is a probability between 0 and 1, got {toxicity!r}")
    attrs = _attributes(toxic.type, body.get("attributes"), base=toxic.attributes)
    return Toxic(toxic.name, toxic.type, toxic.stream, float(toxicity), attrs)
