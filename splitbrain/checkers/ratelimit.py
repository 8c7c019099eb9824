"""Rate conformance over every sliding window, and starvation.

A limiter that allows ``limit`` requests per ``window_s`` seconds promises that *no* window of that
length, starting anywhere, contains more than ``limit`` admissions. A fixed-window counter keeps the
promise for the windows it counts and breaks it for the window that straddles its boundary: the
last ``limit`` requests of one window and the first ``limit`` of the next. Checking only aligned
windows misses exactly that, so this checker slides over every window.

Input: decisions, each a record (dict or object) with ``client`` (optional; default one client),
``time`` (seconds, when the decision was taken; for a history, the operation's completion) and
``allowed`` (bool). ``decisions_from_history(history, f="allow")`` builds them.

``check_rate(decisions, limit, window_s, slack_s=0.0)`` anomaly kinds:

* ``over-limit`` — some window of ``window_s - slack_s`` seconds holds more than ``limit``
  admissions of one client (``slack_s`` absorbs the grader's uncertainty about when each decision
  was taken: a window must be certainly too short);
* ``starved`` — a request was refused although the window of ``window_s + slack_s`` seconds
  ending at it held fewer than ``limit`` admissions of that client (refusing with capacity left).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from splitbrain.checkers.base import get as _get, Anomaly, Verdict, verdict
from splitbrain.history import History

__all__ = ["check_rate", "decisions_from_history"]



def decisions_from_history(history: History, f: str = "allow") -> list[dict[str, Any]]:
    """One decision per completed ``f`` operation: client from the args (``"client"`` field or
    the process name), allowed from a truthy ok result."""
    out = []
    for op in history.operations():
        if op.f != f or op.type != "ok":
            continue
        client = op.arg(0, "client")
        allowed = op.result.get("allowed") if isinstance(op.result, Mapping) else op.result
        out.append({"client": client or op.process, "time": op.end, "allowed": bool(allowed),
                    "event": op.complete.index})
    return out


def check_rate(decisions: Iterable[Any], limit: int, window_s: float,
               slack_s: float = 0.0) -> Verdict:
    """Check every sliding window of every client (see the module docstring)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit is the number of requests allowed per window (an int >= 1), "
                         f"got {limit!r}")
    if window_s <= 0 or slack_s < 0 or slack_s >= window_s:
        raise ValueError(f"need window_s > 0 and 0 <= slack_s < window_s, got window_s={window_s!r}"
                         f", slack_s={slack_s!r}")
    by_client: dict[Any, list[Any]] = defaultdict(list)
    for rec in decisions:
        by_client[_get(rec, "client")].append(rec)
    anomalies: list[Anomaly] = []
    admitted_total = 0
    for client, recs in by_client.items():
        recs.sort(key=lambda r: _get(r, "time"))
        allowed = [r for r in recs if _get(r, "allowed")]
        admitted_total += len(allowed)
        times = [_get(r, "time") for r in allowed]
        anomalies += _over(client, allowed, times, limit, window_s - slack_s)
        anomalies += _starved(client, recs, times, limit, window_s + slack_s)
    return verdict("rate-limit", anomalies, clients=len(by_client), admitted=admitted_total)


def _over(client: Any, allowed: list, times: list[float], limit: int,
          width: float) -> list[Anomaly]:
    """One anomaly per burst (a run of windows over the limit), showing its fullest window."""
    out: list[Anomaly] = []
    best: tuple[int, int, int] | None = None       # (count, lo, hi) of the current burst
    lo = 0
    for hi in range(len(times) + 1):
        if hi < len(times):
            while times[hi] - times[lo] >= width:
                lo += 1
            count = hi - lo + 1
            if count > limit:
                if best is None or count > best[0]:
                    best = (count, lo, hi)
                continue
        if best is not None:
            n, a, b = best
            evs = tuple(e for e in (_get(r, "event") for r in allowed[a:b + 1]) if e is not None)
            out.append(Anomaly(
                "over-limit",
                f"client {client!r}: {n} requests allowed within {times[b] - times[a]:.3f} s "
                f"(from {times[a]:.3f} s), limit {limit} per {width:g} s",
                evs, {"client": client, "count": n, "start": times[a]}))
            best = None
    return out


def _starved(client: Any, recs: list, times: list[float], limit: int,
             width: float) -> list[Anomaly]:
    import bisect
    out = []
    for r in recs:
        if _get(r, "allowed"):
            continue
        t = _get(r, "time")
        recent = bisect.bisect_right(times, t) - bisect.bisect_right(times, t - width)
        if recent < limit:
            ev = _get(r, "event")
            out.append(Anomaly(
                "starved", f"client {client!r} was refused at {t:.3f} s with only {recent} "
                f"request(s) allowed in the {width:g} s before (limit {limit})",
                (ev,) if ev is not None else (), {"client": client, "time": t, "recent": recent}))
    return out
