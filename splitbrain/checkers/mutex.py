"""Mutual exclusion and fencing, for any lock: who held it, and which writes the storage accepted.

A lock service cannot stop a paused holder from waking up and writing after its lease ran out.
Only the storage can, by refusing a write whose fencing token is lower than one it has already
accepted. Two checks, each a pure function:

``check_fencing(writes)``
    ``writes``: what the storage decided, in the order it decided (the storage's own log, read by
    the grader): records with ``token`` and ``accepted`` (bool), optionally ``process`` and
    ``event`` (a history index, for the picture). Anomaly kinds:

    * ``stale-write`` — a write was accepted with a token lower than a token already accepted
      (its events: the stale write; ``data["context"]``: the newer write it landed after).

``check_mutual_exclusion(history, ttl_s=None, acquire="acquire", release="release")``
    Operations ``acquire`` (ok = granted) and ``release`` per process. A holder *certainly* holds
    the lock from the completion of its acquire until the earlier of its next release's invoke and
    its acquire's invoke + ``ttl_s`` (the lease can only have started after the request was sent).
    Anomaly kinds:

    * ``overlapping-holders`` — another process's acquire was invoked *and* granted entirely
      inside that interval: two holders at once, whatever the timing uncertainty (its events: the
      second grant; ``data["context"]``: the holder it overlapped).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from splitbrain.checkers.base import get as _get, Anomaly, Verdict, verdict
from splitbrain.history import History

__all__ = ["check_fencing", "check_mutual_exclusion", "holds"]



def check_fencing(writes: Iterable[Any]) -> Verdict:
    """Every accepted write must carry a token >= every token accepted before it."""
    anomalies: list[Anomaly] = []
    best: Any = None
    best_rec: Any = None
    n = 0
    for rec in writes:
        n += 1
        token = _get(rec, "token")
        if token is None:
            raise ValueError(f"write record {rec!r} has no 'token'; each storage decision needs "
                             "the fencing token it was made with")
        if not _get(rec, "accepted", False):
            continue
        if best is not None and token < best:
            stale, newer = _get(rec, "event"), _get(best_rec, "event")
            anomalies.append(Anomaly(
                "stale-write",
                f"{_get(rec, 'process', 'a writer')} wrote with token {token} after "
                f"{_get(best_rec, 'process', 'a writer')} had written with token {best}; the "
                f"storage accepted the stale write", (stale,) if stale is not None else (),
                {"token": token, "newer_token": best,
                 "context": [newer] if newer is not None else []}))
        elif best is None or token > best:
            best, best_rec = token, rec
    return verdict("fencing", anomalies, writes=n)


def holds(history: History, ttl_s: float | Mapping[str, float] | None = None,
          acquire: str = "acquire", release: str = "release") -> list[dict[str, Any]]:
    """The certain holding intervals: dicts with process, start, end, token, events.

    ``ttl_s``: one lease length for every process, one per process name, or None (no expiry)."""
    ops = history.operations()
    out = []
    for i, op in enumerate(ops):
        if op.f != acquire or op.type != "ok" or op.result in (None, False):
            continue
        end = float("inf")
        for later in ops[i + 1:]:
            if later.process == op.process and later.f in (release, acquire):
                end = later.start
                break
        ttl = ttl_s.get(op.process) if isinstance(ttl_s, Mapping) else ttl_s
        if ttl is not None:
            end = min(end, op.start + ttl)
        token = op.result.get("token") if isinstance(op.result, Mapping) else op.result
        out.append({"process": op.process, "start": op.end, "end": end, "token": token,
                    "invoke": op.start,
                    "events": (op.invoke.index,) + ((op.complete.index,) if op.complete else ())})
    return out


def check_mutual_exclusion(history: History,
                           ttl_s: float | Mapping[str, float] | None = None,
                           acquire: str = "acquire", release: str = "release") -> Verdict:
    """No two processes certainly hold the lock at the same time (see the module docstring).

    ``ttl_s``: the lease length in seconds, one for all processes or one per process name."""
    for t in (ttl_s.values() if isinstance(ttl_s, Mapping) else [ttl_s]):
        if t is not None and t <= 0:
            raise ValueError(f"ttl_s is the lease length in seconds (> 0) or None, got {ttl_s!r}")
    hs = holds(history, ttl_s, acquire, release)
    anomalies = []
    for a in hs:
        for b in hs:
            if a is b or a["process"] == b["process"]:
                continue
            if a["start"] < b["invoke"] and b["start"] < a["end"]:
                anomalies.append(Anomaly(
                    "overlapping-holders",
                    f"{b['process']} was granted the lock (token {b['token']}) at "
                    f"{b['start']:.3f} s while {a['process']} still held it (token {a['token']}, "
                    f"held from {a['start']:.3f} s {_until(a['end'])})",
                    b["events"],
                    {"holders": [a["process"], b["process"]], "tokens": [a["token"], b["token"]],
                     "context": list(a["events"])}))
    return verdict("mutual-exclusion", anomalies, grants=len(hs))


def _until(end: float) -> str:
    return "and never released" if end == float("inf") else f"until at least {end:.3f} s"
