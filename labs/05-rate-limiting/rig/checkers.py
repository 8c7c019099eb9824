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
for them. The one tolerance is ``slack`` (one request for a limit of 10): Cloudflare's
sliding-window counter, which the chapter calls approximate ("a small error"), rounds its estimate
and admits up to one request more than the envelope right after its own window boundary; a
sliding-window log, a token bucket and GCRA never exceed the envelope at all. There is no
tolerance on the rate: every correct design refills at exactly ``limit / window_s``, so a limiter
that admits one request too many per window is over the envelope after a few windows.

Who may be refused is judged as strictly, with the faults in view: ``faulted`` decisions (taken
while Redis was failing) are not judged, but they may have spent some of the client's limit, so
each one lowers what the client is owed by one.

Checks (anomaly kinds), one per guarantee of the chapter (``[[guarantees]]`` in lab.toml):
  ``over-limit``      more admissions in some interval than the envelope allows;
  ``starved``         a client within its limit was refused: a quiet client did not get its whole
                      limit at once, a client sending steadily below the rate was rejected, or a
                      client sending faster than the rate got less than half of it;
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
    "check_decisions", "check_key_expiry", "check_rate_limit", "POLICIES",
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
                   slack: int | None = None, rate_tolerance: float = 1.0,
                   budget: int = 3000) -> Verdict:
    """``over-limit``: some interval held more admissions than ``limit + rate * d`` allows.

    For each client, looks for a set S of admissions that all started at or after x and all
    answered by y: their decisions were taken inside [x, y], so at most
    ``limit + slack + rate * rate_tolerance * (y - x)`` of them may exist. ``slack`` defaults to
    1 (the sliding-window counter's rounding, see the module docstring). Reports the worst
    interval per client. More than ``budget`` admissions for one client: "unknown".
    """
    _positive(limit=limit, window_s=window_s)
    slack = 1 if slack is None else slack
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
                     fraction: float = 0.5, faulted: Sequence[Decision] = (),
                     budget: int = 3000) -> Verdict:
    """``starved``: a client within its limit was refused. Three rules, each kept by every
    correct design (sliding-window log, sliding-window counter, token bucket, GCRA):

    * **a quiet client may spend its whole limit at once.** A client's requests fall into
      episodes separated by quiet gaps of at least two windows (from the answer of one request to
      the call of the next; two, because the sliding-window counter still weighs the previous
      window). In each episode, of the ``n`` judged requests at least ``min(n, limit - f)`` are
      admitted, ``f`` being the episode's faulted requests (each may have spent one unit).
    * **a client sending steadily below the rate is never rejected.** A client all of whose
      requests (faulted ones too) fit a quarter of the burst and half the rate (``k`` requests
      between the answer of the first and the call of the last, ``d`` seconds apart, with
      ``k <= limit / 4 + rate / 2 * d``) must have every judged request admitted.
    * **a client sending faster still gets about the rate.** Over the time that surely passed
      between its first answer and its last call, ``d``, a client is owed
      ``min(requests, limit + rate * d - f)``; it must get at least ``fraction`` of that.

    ``decisions`` are the ones to judge (taken while Redis worked); ``faulted`` are the same
    clients' decisions taken while it failed (not judged; see the module docstring). More than
    ``budget`` requests of one client: the steady-rate rule is "unknown" for it.
    """
    _positive(limit=limit, window_s=window_s)
    rate = limit / window_s
    anomalies: list[Anomaly] = []
    unknown = False
    bad = _by_client(faulted)
    for client, ds in sorted(_by_client(decisions).items()):
        lost = bad.get(client, [])
        everything = sorted(list(ds) + lost, key=lambda d: d.start)
        judged = {id(d) for d in ds}

        # quiet bursts: episodes split by quiet gaps of two windows
        episodes: list[list[Decision]] = []
        last_end = -math.inf
        for d in everything:
            if not episodes or d.start - last_end >= 2 * window_s:
                episodes.append([])
            episodes[-1].append(d)
            last_end = max(last_end, math.inf if d.end is None else d.end)
        for ep in episodes:
            answered = [d for d in ep if id(d) in judged and d.ok and d.end is not None]
            spent = len(ep) - len(answered)        # faulted, raised or unanswered
            owed = min(len(answered), limit - spent)
            got = sum(1 for d in answered if d.admitted)
            if got < owed:
                anomalies.append(Anomaly(
                    "starved",
                    f"client {client!r} was quiet, then sent {len(ep)} requests"
                    f"{f' ({spent} of them while Redis failed)' if spent else ''}; a quiet client "
                    f"may spend its whole limit of {limit} at once, but only {got} of the first "
                    f"{owed} it was owed were admitted",
                    tuple(d.index for d in answered if not d.admitted)[:50],
                    {"client": client, "rule": "quiet-burst", "admitted": got, "owed": owed,
                     "requests": len(ep), "spent": spent}))
                break

        # steady clients below the rate
        if len(everything) > budget:
            unknown = True
        elif _fits(everything, limit / 4, rate / 2):
            refused = [d for d in everything if id(d) in judged and d.ok and d.end is not None
                       and not d.admitted]
            if refused:
                anomalies.append(Anomaly(
                    "starved",
                    f"client {client!r} sent steadily at half the rate at most ({len(everything)} "
                    f"requests, never more than {limit / 4:g} at once); a limit of {limit} per "
                    f"{window_s:g}s admits all of them, but {len(refused)} were rejected",
                    tuple(d.index for d in refused)[:50],
                    {"client": client, "rule": "steady", "rejected": len(refused),
                     "requests": len(everything)}))

        # about the rate
        answered = [d for d in ds if d.end is not None and d.ok]
        if not answered:
            continue
        d_span = max(0.0, max(d.start for d in answered) - min(d.end for d in answered))  # type: ignore[type-var]
        first, last = min(d.start for d in answered), max(d.start for d in answered)
        spent = sum(1 for d in lost if first <= d.start <= last)
        entitled = max(0, min(len(answered), math.floor(limit + rate * d_span) - spent))
        need = math.ceil(fraction * entitled - 1e-9)
        got = sum(1 for d in answered if d.admitted)
        if got < need:
            anomalies.append(Anomaly(
                "starved",
                f"client {client!r} was admitted {got} of {len(answered)} requests over "
                f"{d_span:.2f}s; a limit of {limit} per {window_s:g}s entitles it to about "
                f"{entitled}",
                tuple(d.index for d in answered if not d.admitted)[:50],
                {"client": client, "rule": "rate", "admitted": got, "requests": len(answered),
                 "entitled": entitled, "needed": need}))
    if unknown and not anomalies:
        return Verdict("unknown", (), "rate-starvation", {"budget": budget})
    return verdict("rate-starvation", anomalies)


def _fits(ds: Sequence[Decision], burst: float, rate: float) -> bool:
    """Do these requests (sorted by call) fit ``burst`` at once and ``rate`` after, even if each
    was decided as late as it answered and the next as early as it was called?"""
    for i, first in enumerate(ds):
        if first.end is None:
            return False
        for j in range(i, len(ds)):
            gap = max(0.0, ds[j].start - first.end)
            if j - i + 1 > burst + rate * gap + 1e-9:
                return False
    return True


def check_decisions(decisions: Sequence[Decision], bound_s: float) -> Verdict:
    """``bad-decision`` and ``hung-decision``: every ``allow()`` answered True or False, within
    ``bound_s``."""
    return combine([check_decision_types(decisions), check_bounded(decisions, bound_s)],
                   "decisions")


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
