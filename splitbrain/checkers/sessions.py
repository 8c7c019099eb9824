"""Session guarantees: read-your-writes and monotonic reads, per session.

A user saves a profile, the page reloads from a replica that has not caught up, and the change is
gone; they reload again, hit the primary, and it is back; again, and it is gone. Each page view was
served "correctly" by some copy. The guarantees that rule this out are per session:

* **read-your-writes** — a read sees the session's own completed writes;
* **monotonic reads** — a read never sees an older state than an earlier read of the same session.

Input: a History whose processes are sessions, with operations ``write`` (args ``{"key": k,
"version": v}``) and ``read`` (args ``{"key": k}`` or the key; ok result: the version read, or
``{"version": v}``; None = nothing found, older than any version). Versions of one key are
ordered (a counter, a timestamp, a log position). Only completed operations count: a write whose
outcome is unknown (info) makes no promise.

``check_sessions(history)`` anomaly kinds:

* ``stale-read`` — a read invoked after the same session's write of version v completed returned a
  version older than v;
* ``non-monotonic-read`` — a read returned a version older than one the same session had already
  read (that earlier read completed before this one was invoked).
"""
from __future__ import annotations

from typing import Any, Mapping

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History, Operation

__all__ = ["check_sessions"]

_NONE = float("-inf")


def _key(op: Operation) -> Any:
    return op.arg(0, "key")


def _written(op: Operation) -> Any:
    """The version a ``write(key, version)`` wrote."""
    return _version(op.arg(1, "version"))


def _version(value: Any) -> Any:
    v = value.get("version") if isinstance(value, Mapping) else value
    return _NONE if v is None else v


def _ev(op: Operation) -> tuple[int, ...]:
    return (op.invoke.index,) + ((op.complete.index,) if op.complete else ())


def check_sessions(history: History, write: str = "write", read: str = "read") -> Verdict:
    """Read-your-writes and monotonic reads for every session (process) in ``history``."""
    anomalies = []
    ops = [op for op in history.operations() if op.type == "ok" and op.f in (write, read)]
    by_session: dict[str, list[Operation]] = {}
    for op in ops:
        by_session.setdefault(op.process, []).append(op)
    reads = 0
    for session, sops in by_session.items():
        writes = [op for op in sops if op.f == write]
        rds = [op for op in sops if op.f == read]
        reads += len(rds)
        for r in rds:
            k, got = _key(r), _version(r.result)
            own = [w for w in writes if _key(w) == k and w.end is not None and w.end <= r.start]
            if own:
                w = max(own, key=_written)
                if got < _written(w):
                    anomalies.append(Anomaly(
                        "stale-read", f"session {session!r} wrote {k!r} version "
                        f"{_written(w)} and then read version {_show(got)}",
                        _ev(w) + _ev(r), {"session": session, "key": k,
                                          "wrote": _written(w), "read": r.result}))
            earlier = [p for p in rds if p is not r and _key(p) == k and p.end is not None
                       and p.end <= r.start]
            if earlier:
                p = max(earlier, key=lambda p: _version(p.result))
                if got < _version(p.result):
                    anomalies.append(Anomaly(
                        "non-monotonic-read", f"session {session!r} read {k!r} version "
                        f"{_show(_version(p.result))} and later version {_show(got)}",
                        _ev(p) + _ev(r), {"session": session, "key": k,
                                          "first": p.result, "then": r.result}))
    return verdict("sessions", anomalies, sessions=len(by_session), reads=reads)


def _show(v: Any) -> str:
    return "none" if v == _NONE else str(v)
