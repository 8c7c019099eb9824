"""Lab 05's checkers (``rig.checkers``). Rate-limit conformance: did a limiter keep its promise,
as the grader saw it?

A limiter promises ``limit`` requests per ``window_s`` seconds for each client. Every correct design
(sliding-window log, sliding-window counter, token bucket, GCRA) keeps one common envelope, the
token bucket's: *in any interval of length d, at most ``limit + rate * d`` requests are admitted*,
where ``rate = limit / window_s``. A quiet client may spend ``limit`` at once; after that, admissions
come no faster than the rate. A fixed window breaks the envelope at every boundary (``limit`` just
before it and ``limit`` again just after: twice the limit in an instant); a read-modify-write counter
breaks it under concurrency; a limiter that reads the gateway's clock breaks it when gateway clocks
disagree.

The generic ``splitbrain.checkers.ratelimit.check_rate`` checks the sliding log's stricter promise
(at most ``limit`` in every window of ``window_s``). A token bucket or GCRA with a burst of ``limit``
legitimately admits up to twice that in one window (a full bucket, then the refill), so lab 05
grades with the envelope, the promise every correct design keeps; for interval lengths up to
``window_s`` the envelope is that window check with an allowance of ``rate * d``.

The grader never knows exactly when a decision was taken, only that it happened between the call
(``start``) and the answer (``end``). Every check therefore gives the component the benefit of the
doubt: an over-limit needs a set of admissions that *must* have fallen within an interval too short
for them. Tolerances (``slack``, ``rate_tolerance``) are wide for a correct limiter and still far
below what the broken designs admit (about twice the limit).

Checks (anomaly kinds):
  ``over-limit``      more admissions in some interval than the envelope allows;
  ``starved``         a client got less than half of what the limit entitles it to;
  ``hung-decision``   a decision came back later than the bound, or never (the call timed out);
  ``policy-broken``   while Redis was slow or unreachable, a decision differed from the declared
                      failure policy (``"open"`` admits, ``"closed"`` denies), or was an error;
  ``bad-decision``    ``allow()`` returned something other than True or False, or raised;
  ``unbounded-keys``  a key the limiter wrote has no expiry, or one far longer than needed.

All functions are pure: they take plain data (``Decision`` lists, or a History through
``decisions_from_history``) and return a Verdict. ``outside`` and ``during`` split decisions by the
history's fault windows (``History.fault_windows``).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import FaultWindow, History

__all__ = [
    "Decision", "decisions_from_history", "outside", "during", "combine",
    "check_envelope",
    "check_starvation", "check_bounded", "check_policy", "check_decision_types",
    "check_key_expiry", "check_rate_limit", "POLICIES",
]

POLICIES = ("open", "closed")
# completions that mean "no answer came back" (the sandbox's words for a hung or dead worker)
NO_ANSWER = ("CallTimeout", "WorkerDied")


@dataclass(frozen=True)
class Decision:
    """One ``allow(client)`` call as the grader observed it.

    process: the gateway (worker) that decided.
    client: the client the limit applies to.
    start: when the grader sent the call (seconds, the history's clock).
    end: when the answer came back; None if it never did (timeout, crash).
    result: True (admitted), False (denied), or anything else the call returned; for an error,
        the error text. ``ok`` says whether the call returned normally.
    ok: True when the call returned a value, False when it raised or never answered.
    index: the history event that proves it (the completion, else the invoke).
    """

    process: str
    client: str
    start: float
    end: float | None
    result: Any
    ok: bool = True
    index: int = -1

    @property
    def admitted(self) -> bool:
        return self.ok and self.result is True

    @property
    def denied(self) -> bool:
        return self.ok and self.result is False

    @property
    def latency(self) -> float | None:
        return None if self.end is None else self.end - self.start


# -- from a history ------------------------------------------------------------------------------

def _result_of(value: Any) -> Any:
    if isinstance(value, Mapping) and "error" in value:
        return f"{value['error']}: {value.get('message', '')}".rstrip(": ")
    if isinstance(value, Mapping) and set(value) <= {"result", "value", "elapsed"} and (
            "result" in value or "value" in value):
        return value.get("result", value.get("value"))
    return value


def decisions_from_history(history: History, f: str = "allow") -> list[Decision]:
    """Every ``f`` operation in the history as a Decision (faults and other ops are ignored);
    the client is the call's first argument (or its ``client`` keyword)."""
    out = []
    for op in history.operations():
        if op.f != f:
            continue
        done = op.complete
        ok = done is not None and done.type == "ok"
        lost = done is None or (done.type == "info" and isinstance(done.value, Mapping) and
                                done.value.get("error") in NO_ANSWER)
        client = op.arg(0, "client")
        out.append(Decision(
            process=op.process, client="" if client is None else str(client), start=op.start,
            end=None if lost else done.time,  # type: ignore[union-attr]
            result=_result_of(done.value) if done is not None else None, ok=ok,
            index=done.index if done is not None else op.invoke.index))
    return out


def outside(decisions: Iterable[Decision], windows: Sequence[FaultWindow]) -> list[Decision]:
    """The decisions that began after every fault healed or ended before it began: none overlaps
    any of ``windows`` (from ``history.fault_windows(...)``; a fault never healed lasts for
    ever)."""
    def clear(d: Decision) -> bool:
        end = d.end if d.end is not None else math.inf
        return not any(w.covers(d.start, end) for w in windows)
    return [d for d in decisions if clear(d)]


def during(decisions: Iterable[Decision], windows: Sequence[FaultWindow]) -> list[Decision]:
    """The decisions that began and ended inside one fault window."""
    def inside(d: Decision) -> bool:
        end = d.end if d.end is not None else math.inf
        return any(w.start <= d.start and end <= (math.inf if w.end is None else w.end)
                   for w in windows)
    return [d for d in decisions if inside(d)]


# -- the checks ----------------------------------------------------------------------------------

def _by_client(decisions: Iterable[Decision]) -> dict[str, list[Decision]]:
    out: dict[str, list[Decision]] = {}
    for d in decisions:
        out.setdefault(d.client, []).append(d)
    return out


def check_envelope(decisions: Sequence[Decision], limit: int, window_s: float, *,
                   slack: int | None = None, rate_tolerance: float = 1.05,
                   budget: int = 3000) -> Verdict:
    """``over-limit``: some interval held more admissions than ``limit + rate * d`` allows.

    For each client, looks for a set S of admissions that all started at or after x and all
    answered by y: their decisions were taken inside [x, y], so at most
    ``limit + slack + rate * rate_tolerance * (y - x)`` of them may exist. ``slack`` defaults to
    10 % of the limit (at least 1). Reports the worst interval per client. More than ``budget``
    admissions for one client: "unknown".
    """
    _positive(limit=limit, window_s=window_s)
    slack = max(1, math.ceil(0.1 * limit)) if slack is None else slack
    rate = limit / window_s * rate_tolerance
    anomalies: list[Anomaly] = []
    worst_excess = 0.0
    for client, ds in sorted(_by_client(decisions).items()):
        adm = sorted((d for d in ds if d.admitted and d.end is not None), key=lambda d: d.start)
        if len(adm) > budget:
            return Verdict("unknown", (), "rate-envelope",
                           {"admitted": len(adm), "budget": budget, "client": client})
        best: tuple[float, int, int, float, float] | None = None  # (excess, i, count, x, y)
        ends: list[tuple[float, int]] = []   # (end, position in adm) of admissions starting >= x
        for i in range(len(adm) - 1, -1, -1):
            x = adm[i].start
            bisect.insort(ends, (adm[i].end, i))
            for k, (y, _) in enumerate(ends):
                count = k + 1
                allowed = limit + slack + rate * max(0.0, y - x)
                if count > allowed and (best is None or count - allowed > best[0]):
                    best = (count - allowed, i, count, x, y)
        if best is not None:
            excess, i, count, x, y = best
            members = [d for d in adm if d.start >= x and d.end <= y]  # type: ignore[operator]
            worst_excess = max(worst_excess, excess)
            anomalies.append(Anomaly(
                "over-limit",
                f"client {client!r}: {count} requests admitted within {y - x:.3f}s; the limit of "
                f"{limit} per {window_s:g}s allows at most {limit + rate / rate_tolerance * (y - x):.1f} "
                f"in that time",
                tuple(d.index for d in members),
                {"client": client, "admitted": count, "interval_s": round(y - x, 6),
                 "from": x, "to": y, "limit": limit, "window_s": window_s,
                 "processes": sorted({d.process for d in members})}))
    return verdict("rate-envelope", anomalies, worst_excess=worst_excess)


def check_starvation(decisions: Sequence[Decision], limit: int, window_s: float, *,
                     fraction: float = 0.5) -> Verdict:
    """``starved``: a client was admitted less than ``fraction`` of what it was entitled to.

    Entitlement: ``min(requests, limit + rate * d)`` where d is the time that surely passed between
    the client's first answer and its last call. Only decisions that answered count.
    """
    _positive(limit=limit, window_s=window_s)
    rate = limit / window_s
    anomalies = []
    for client, ds in sorted(_by_client(decisions).items()):
        answered = [d for d in ds if d.end is not None and d.ok]
        if not answered:
            continue
        d_span = max(0.0, max(d.start for d in answered) - min(d.end for d in answered))  # type: ignore[type-var]
        entitled = min(len(answered), math.floor(limit + rate * d_span))
        need = math.ceil(fraction * entitled - 1e-9)
        got = sum(1 for d in answered if d.admitted)
        if got < need:
            anomalies.append(Anomaly(
                "starved",
                f"client {client!r} was admitted {got} of {len(answered)} requests over "
                f"{d_span:.2f}s; a limit of {limit} per {window_s:g}s entitles it to about "
                f"{entitled}",
                tuple(d.index for d in answered if not d.admitted)[:50],
                {"client": client, "admitted": got, "requests": len(answered),
                 "entitled": entitled, "needed": need}))
    return verdict("rate-starvation", anomalies)


def check_bounded(decisions: Sequence[Decision], bound_s: float) -> Verdict:
    """``hung-decision``: a call answered after ``bound_s`` seconds, or never answered."""
    anomalies = []
    for d in decisions:
        lat = d.latency
        if lat is None or lat > bound_s:
            how = "never answered (the call timed out or the gateway died)" if lat is None else (
                f"took {lat:.2f}s")
            anomalies.append(Anomaly(
                "hung-decision",
                f"{d.process}: allow({d.client!r}) {how}; a gateway must decide within "
                f"{bound_s:g}s even when Redis is slow or unreachable",
                (d.index,), {"process": d.process, "client": d.client, "latency_s": lat,
                             "bound_s": bound_s}))
    return verdict("decision-bound", anomalies)


def check_decision_types(decisions: Sequence[Decision]) -> Verdict:
    """``bad-decision``: a call that answered with something other than True or False, or raised."""
    anomalies = []
    for d in decisions:
        if d.end is None:
            continue
        if not d.ok or not isinstance(d.result, bool):
            what = f"raised {d.result}" if not d.ok else f"returned {d.result!r}"
            anomalies.append(Anomaly(
                "bad-decision",
                f"{d.process}: allow({d.client!r}) {what}; it must return True or False",
                (d.index,), {"process": d.process, "client": d.client, "result": repr(d.result)}))
    return verdict("decision-type", anomalies)


def check_policy(decisions: Sequence[Decision], policy: Any) -> Verdict:
    """``policy-broken``: a decision taken while Redis failed that differs from the declared policy.

    Pass only the decisions taken during the fault. ``policy`` is the component's declared
    FAILURE_POLICY: ``"open"`` (admit) or ``"closed"`` (deny); anything else is itself an anomaly.
    Calls that never answered are left to ``check_bounded``.
    """
    if policy not in POLICIES:
        return verdict("failure-policy", [Anomaly(
            "policy-broken",
            f"FAILURE_POLICY is {policy!r}; declare FAILURE_POLICY = \"open\" or \"closed\" on the "
            f"class, and keep it when Redis is slow or down", (), {"policy": repr(policy)})])
    expect = policy == "open"
    anomalies = []
    for d in decisions:
        if d.end is None:
            continue
        if not (d.ok and d.result is expect):
            got = f"raised {d.result}" if not d.ok else f"returned {d.result!r}"
            anomalies.append(Anomaly(
                "policy-broken",
                f"{d.process}: while Redis was failing, allow({d.client!r}) {got}; the declared "
                f"policy {policy!r} means it returns {expect}",
                (d.index,), {"process": d.process, "policy": policy, "result": repr(d.result)}))
    return verdict("failure-policy", anomalies)


def check_key_expiry(ttls_ms: Mapping[str, int], max_ttl_ms: float) -> Verdict:
    """``unbounded-keys``: a key without an expiry (PTTL -1) or with one beyond ``max_ttl_ms``.

    ``ttls_ms`` maps each key the grader found under the limiter's prefix to its PTTL (-1: no
    expiry; -2: gone, which is fine).
    """
    anomalies = []
    for key, ttl in sorted(ttls_ms.items()):
        if ttl == -1 or ttl > max_ttl_ms:
            how = "has no expiry" if ttl == -1 else f"expires in {ttl / 1000:.0f}s"
            anomalies.append(Anomaly(
                "unbounded-keys",
                f"key {key!r} {how}; every key a limiter writes must expire within "
                f"{max_ttl_ms / 1000:g}s, or memory grows with every client and window",
                (), {"key": key, "pttl_ms": ttl}))
    return verdict("key-expiry", anomalies, keys=len(ttls_ms))


def check_rate_limit(decisions: Sequence[Decision], limit: int, window_s: float, *,
                     bound_s: float | None = None, starvation: bool = True,
                     slack: int | None = None) -> Verdict:
    """The usual combination: decision types, bound (if given), envelope, starvation."""
    parts = [check_decision_types(decisions)]
    if bound_s is not None:
        parts.append(check_bounded(decisions, bound_s))
    parts.append(check_envelope(decisions, limit, window_s, slack=slack))
    if starvation:
        parts.append(check_starvation(decisions, limit, window_s))
    return combine(parts, "rate-limit")


def combine(parts: Sequence[Verdict], name: str) -> Verdict:
    """One verdict from several: invalid if any is, else unknown if any is, else valid."""
    anomalies = tuple(a for p in parts for a in p.anomalies)
    stats = {p.checker: dict(p.stats) for p in parts}
    if anomalies or any(p.valid is False for p in parts):
        return Verdict(False, anomalies, name, stats)
    if any(p.valid == "unknown" for p in parts):
        return Verdict("unknown", (), name, stats)
    return Verdict(True, (), name, stats)


def _positive(**values: float) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
