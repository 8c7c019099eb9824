"""The verdict every checker returns."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Validity = bool | Literal["unknown"]


@dataclass(frozen=True)
class Anomaly:
    """One thing that went wrong, with the evidence.

    kind: stable slug ("stale-write", "lost-event", "double-charge", ...) that labs name in
        ``taught_anomalies``.
    message: one sentence a learner can read ("b wrote with token 3 after a wrote with token 4").
    events: indexes of the history events that prove it (highlighted in the pictures).
    data: anything else worth showing (keys, tokens, counts).
    """

    kind: str
    message: str
    events: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """valid: True, False, or "unknown" (the checker ran out of budget; never reported as ok)."""

    valid: Validity
    anomalies: tuple[Anomaly, ...] = ()
    checker: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.valid is True

    def kinds(self) -> list[str]:
        return sorted({a.kind for a in self.anomalies})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (saved beside a history; the book draws a figure from both)."""
        return {"valid": self.valid, "checker": self.checker, "stats": dict(self.stats),
                "anomalies": [{"kind": a.kind, "message": a.message, "events": list(a.events),
                               "data": dict(a.data)} for a in self.anomalies]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        return cls(d["valid"], tuple(Anomaly(a["kind"], a["message"], tuple(a.get("events", ())),
                                             dict(a.get("data", {})))
                                     for a in d.get("anomalies", ())),
                   d.get("checker", ""), dict(d.get("stats", {})))

    def explain(self, limit: int = 5) -> str:
        if self.valid is True:
            return f"{self.checker or 'checker'}: valid"
        if self.valid == "unknown":
            head = f"{self.checker or 'checker'}: unknown (out of budget; not counted as valid)"
        else:
            head = f"{self.checker or 'checker'}: {len(self.anomalies)} anomal" + (
                "y" if len(self.anomalies) == 1 else "ies")
        lines = [head] + [f"  - [{a.kind}] {a.message}" for a in self.anomalies[:limit]]
        if len(self.anomalies) > limit:
            lines.append(f"  ... and {len(self.anomalies) - limit} more")
        return "\n".join(lines)


def verdict(checker: str, anomalies: list[Anomaly], **stats: Any) -> Verdict:
    return Verdict(valid=not anomalies, anomalies=tuple(anomalies), checker=checker, stats=stats)


def get(rec: Any, key: str, default: Any = None) -> Any:
    """A field of a plain-data record a checker reads: a dict key or an attribute."""
    if isinstance(rec, Mapping):
        return rec.get(key, default)
    return getattr(rec, key, default)
