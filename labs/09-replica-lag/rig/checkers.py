"""Checkers for session consistency over replicas (lab 09): each guarantee of the chapter, judged
over the whole history and what the grader itself read from the standbys.

The history holds every call the grader made: ``put(session, key, value)`` and
``get(session, key)`` (result: the value read, or None), from the application's workers, and
``put`` calls of session ``other`` (another user's writes, made by the grader on the primary).
Every value is written once, and the writes of one key never overlap in time, so the order in
which the puts of a key completed is the order of its versions (version 0: the key absent).

The guarantees (``lab.toml`` lists them with these checkers), each with its anomaly:

* read your writes, :func:`check_read_your_writes`: ``stale-read``: a get that returned an older
  version of the key than one its own session had written before the get began;
* monotonic reads, :func:`check_monotonic_reads`: ``non-monotonic-read``: a get that returned an
  older version of the key than an earlier get of the same session had returned;
* standbys serve, :func:`check_primary_reads`: ``needless-primary-read``: in a window where the
  grader knows what every standby holds (replay paused there), fewer than ``MIN_STANDBY_SHARE`` of
  the gets a standby could have served (one held everything the session had written and read of
  the key) were served by one. A get that returned a value no standby held was served by the
  primary.

:func:`check_sessions` runs the first two (and the third when windows are given).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from splitbrain.checkers.base import Anomaly, Verdict, get, verdict
from splitbrain.history import History, Operation

__all__ = [
    "MIN_STANDBY_SHARE",
    "check_monotonic_reads",
    "check_primary_reads",
    "check_read_your_writes",
    "check_sessions",
    "versions",
]

MIN_STANDBY_SHARE = 0.8


def _name(op: Operation) -> str:
    return op.f.rsplit(".", 1)[-1]


def _ok(history: History, f: str) -> list[Operation]:
    return [op for op in history.operations() if _name(op) == f and op.type == "ok"
            and op.end is not None]


def versions(history: History) -> dict[str, dict[Any, int]]:
    """``{key: {value: version}}`` from the acknowledged puts, in the order they completed."""
    out: dict[str, dict[Any, int]] = {}
    for op in sorted(_ok(history, "put"), key=lambda o: o.end):
        key, value = op.arg(1, "key"), op.arg(2, "value")
        vs = out.setdefault(key, {None: 0})
        vs.setdefault(value, len(vs))
    return out


def _version(vs: Mapping[str, Mapping[Any, int]], key: str, value: Any) -> int | None:
    return (vs.get(key) or {None: 0}).get(value)


def _session_ops(history: History) -> dict[tuple[str, str], list[Operation]]:
    """Each (session, key)'s acknowledged puts and gets, in the order they began."""
    out: dict[tuple[str, str], list[Operation]] = {}
    for op in history.operations():
        if _name(op) in ("put", "get") and op.type == "ok" and op.end is not None:
            out.setdefault((op.arg(0, "session"), op.arg(1, "key")), []).append(op)
    return out


def _need(ops: Sequence[Operation], op: Operation, vs: Mapping, f: str | None = None
          ) -> tuple[int, Operation | None]:
    """The newest version the session had written (``f="put"``), read (``"get"``) or either
    (None) of the key before ``op`` began, and the operation that showed it."""
    best, by = 0, None
    for prev in ops:
        if prev is op or prev.end >= op.start or (f is not None and _name(prev) != f):
            continue
        seen = prev.arg(2, "value") if _name(prev) == "put" else prev.result
        v = _version(vs, prev.arg(1, "key"), seen)
        if v is not None and v > best:
            best, by = v, prev
    return best, by


def _check_gets(history: History, f: str, kind: str, what: str) -> list[Anomaly]:
    vs = versions(history)
    anomalies = []
    for (session, key), ops in sorted(_session_ops(history).items(), key=lambda kv: str(kv[0])):
        for op in ops:
            if _name(op) != "get":
                continue
            got = _version(vs, key, op.result)
            if got is None:
                continue
            need, by = _need(ops, op, vs, f)
            if got < need:
                anomalies.append(Anomaly(
                    kind,
                    f"session {session} read {key}={op.result!r} (version {got}) at "
                    f"{op.start:.3f} s, after it had {what} {key}="
                    f"{(by.arg(2, 'value') if f == 'put' else by.result)!r} (version {need}): "
                    f"a replica that had not replayed that far answered",
                    op.events, {"session": session, "key": key, "read": op.result,
                                "version": got, "needed": need, "context": list(by.events)}))
    return anomalies


def check_read_your_writes(history: History) -> Verdict:
    anomalies = _check_gets(history, "put", "stale-read", "written")
    return verdict("read-your-writes", anomalies)


def check_monotonic_reads(history: History) -> Verdict:
    anomalies = _check_gets(history, "get", "non-monotonic-read", "already read")
    return verdict("monotonic-reads", anomalies)


def check_primary_reads(history: History, windows: Iterable[Mapping[str, Any]] = (),
                        min_share: float = MIN_STANDBY_SHARE) -> Verdict:
    """``windows``: ``{"start", "end", "standbys": {name: {key: value}}}`` each (rig.world.Window)."""
    vs = versions(history)
    by_session = _session_ops(history)
    anomalies = []
    eligible, served = 0, 0
    needless: list[Operation] = []
    for win in windows:
        start, end, held = get(win, "start"), get(win, "end"), get(win, "standbys") or {}
        for (session, key), ops in by_session.items():
            have = [_version(vs, key, s.get(key)) for s in held.values()]
            best = max((v for v in have if v is not None), default=None)
            if best is None:
                continue
            for op in ops:
                if _name(op) != "get" or op.start < start or (end is not None and op.end > end):
                    continue
                need, _ = _need(ops, op, vs)
                if need > best:
                    continue                      # no standby could serve it: the primary must
                eligible += 1
                got = _version(vs, key, op.result)
                if got is not None and got > best:
                    needless.append(op)            # only the primary held what it returned
                else:
                    served += 1
    if eligible and served < min_share * eligible:
        anomalies.append(Anomaly(
            "needless-primary-read",
            f"{len(needless)} of {eligible} reads went to the primary although a standby held "
            f"everything their session had written and read (at least {min_share:.0%} must be "
            f"served by standbys when they are that close)",
            tuple(e for op in needless[:5] for e in op.events),
            {"eligible": eligible, "standby": served, "primary": len(needless)}))
    return verdict("standbys-serve", anomalies, eligible=eligible, standby=served)


def check_sessions(history: History, windows: Iterable[Mapping[str, Any]] = ()) -> Verdict:
    """Every guarantee at once (the cost bound only over ``windows``)."""
    parts = [check_read_your_writes(history), check_monotonic_reads(history)]
    windows = list(windows)
    if windows:
        parts.append(check_primary_reads(history, windows))
    anomalies = [a for p in parts for a in p.anomalies]
    stats = {p.checker: dict(p.stats) for p in parts if p.stats}
    return verdict("sessions", anomalies, **stats)
