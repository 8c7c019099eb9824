"""Checkers for locks and fencing tokens (lab 01): each guarantee of the chapter, judged over the
whole history and the storage's own record.

The history holds what the grader asked each worker to do and what came back: ``acquire``
(argument ``wait_s``; result: the fencing token, or None when the lock was not taken), ``write``
(key, value, token; result: whether the store says it stored the value), ``release`` (result:
whether it says it released its own lease) and every fault, from the nemesis. The grader also
reads, with its own connection, the values the storage really accepted, in the order it applied
them (lab 01's audit table, ``rig.fencing.applied``): the ground truth, whatever a component
claims. ``ttl_s`` gives each holder's lease (seconds; what its ``RedisLock`` was built with).

**When was a lease granted?** Somewhere between the invoke and the completion of its
``acquire``: a reply can be delayed (a stall, a partition) long after Redis granted the lease.
A lease certainly lasts from that moment until the earliest of: its invoke + ``ttl`` (Redis
started counting after the request was sent), the invoke of its holder's next ``release`` or
``acquire``, and what a ``server-clock-jump`` (the lock server's clock stepping ahead) took off
it. Call that time the lease's *certain end*. Then, if lease *j*'s certain end is later than
the completion of lease *i*'s acquire, *i* was granted before *j* (had *j* come first, *i*
would have been granted while *j* was still in force): *i* **precedes** *j*. When *i* precedes
*j* and *j* precedes *i*, the two overlapped. This order, not the order the grader happened to
see replies in, is the order of acquisitions the chapter's guarantees speak of.

The guarantees (``lab.toml`` lists them with these checkers), each with the anomalies it reports:

* mutual exclusion, :func:`check_mutual_exclusion`: ``overlapping-holders`` (two leases in force
  at once, whatever the timing uncertainty; a late release that freed a newer holder's lock
  shows up here as the next worker's grant);
* tokens grow, :func:`check_tokens`: ``token-order`` (an acquisition that came later got a token
  that is not larger);
* fenced writes, :func:`check_fenced_writes`: ``stale-write`` (a write under an older lease
  stored after a write under a newer one), ``phantom-write``;
* honest answers, :func:`check_answers`: ``misreported-write`` (``write`` said stored when the
  storage has no trace of the value, or refused when it stored it), ``misreported-release``;
* progress, :func:`check_progress`: ``rejected-write`` (the newest holder's write never
  stored), ``stuck-lock`` (a waiting worker did not get a lock that was certainly free for a while
  before its wait was over);
* bounded wait, :func:`check_waits`: ``wait-overrun`` (``acquire(wait_s)`` still running well
  after ``wait_s`` seconds of its own monotonic clock were over), ``busy-wait`` (a waiting
  worker that sent more requests to Redis than a paced retry would, as the grader counted them
  on its link);
* no lost update, :func:`check_counter` (over the values stored): ``lost-update``.

:func:`check_lock` runs them all and returns one verdict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import FaultWindow, History, Operation

__all__ = ["Lease", "Write", "leases", "writes", "precedes", "check_mutual_exclusion",
           "check_tokens", "check_fenced_writes", "check_answers", "check_progress",
           "check_waits", "busy_wait", "check_counter", "counter_value", "check_lock", "wait_over", "MARGIN_S",
           "GRACE_S", "OVERRUN_S"]

MARGIN_S = 0.02    # Redis's expiry (its own clock, ms) and the grader's clock may disagree this much
GRACE_S = 0.5      # a waiting worker notices a free lock within this (it retries every few ms;
                   # the rest is room for a loaded machine)
OVERRUN_S = 1.0    # an acquire may return this long after its wait is over (one last attempt,
                   # and room for a loaded machine)
SERVER_JUMP = "server-clock-jump"
# Faults during which a holder's calls may hang through no fault of its own: its wait is
# extended by the time they overlap the call.
_HOLDING_FAULTS = ("pause", "partition", "blackhole", "stall", "latency", "bandwidth", "slicer",
                   "reset", "refuse")


def _name(op: Operation) -> str:
    return op.f.rsplit(".", 1)[-1]


def _ttl(ttl_s: Any, process: str) -> float | None:
    if isinstance(ttl_s, Mapping):
        v = ttl_s.get(process)
    else:
        v = ttl_s
    return None if v is None else float(v)


def _int(x: Any) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, str) and x.strip().lstrip("-").isdigit():
        return int(x)
    return None


@dataclass(frozen=True)
class Lease:
    """A granted acquisition.

    generation: its place among the leases in the order their grants were seen (for messages);
    invoked / granted: its acquire's invoke and completion; expires_after: Redis cannot have
    expired it before then (its ttl counted from the invoke, less what a server clock jump took);
    ends_after: the certain end (also no later than its holder's next release or acquire, see
    the module docstring); ends_by: the latest it can have ended (inf when unknown; the end of a
    release that said True, if one came first)."""

    holder: str
    token: Any
    generation: int
    invoked: float
    granted: float
    ttl: float | None
    expires_after: float
    ends_after: float
    ends_by: float
    events: tuple[int, ...]


@dataclass(frozen=True)
class Write:
    """A write the grader asked for, with the lease its writer held at the time (None: no lease)."""

    holder: str
    key: str
    value: str
    token: Any
    lease: Lease | None
    invoked: float
    completed: float | None
    outcome: str           # "ok" | "fail" | "info"
    claimed: Any           # what the component answered
    events: tuple[int, ...]


def _server_jumps(history: History) -> list[FaultWindow]:
    return [w for w in history.fault_windows([SERVER_JUMP])]


def _step(w: FaultWindow) -> float:
    try:
        return float(w.params.get("step", 3600))
    except (TypeError, ValueError):
        return 3600.0


def leases(history: History, ttl_s: Any = None) -> list[Lease]:
    """Granted acquisitions (an ``ok`` acquire whose result is not None), in the order their
    grants were seen, with the bounds of how long each lasted."""
    ops = history.operations()
    jumps = _server_jumps(history)
    granted = [(i, op) for i, op in enumerate(ops)
               if _name(op) == "acquire" and op.type == "ok" and op.result is not None]
    granted.sort(key=lambda x: (x[1].end, x[1].invoke.index))
    out = []
    for g, (i, op) in enumerate(granted):
        ttl = _ttl(ttl_s, op.process)
        nxt = next((later for later in ops[i + 1:] if later.process == op.process
                    and _name(later) in ("release", "acquire")), None)
        expires = op.start + max(0.0, (ttl or 0.0) - MARGIN_S)
        latest = float("inf") if ttl is None else op.end + ttl + MARGIN_S
        for w in jumps:
            end = w.end if w.end is not None else w.start
            if end >= op.start and w.start < expires:      # may have hit it after the grant
                expires = max(w.start, expires - _step(w))
            if w.start >= op.end and end < latest:          # certainly hit it after the grant
                latest = max(end, latest - _step(w))
        certain = expires if nxt is None else min(expires, nxt.start)
        if nxt is not None and _name(nxt) == "release" and nxt.type == "ok" \
                and nxt.result is True and nxt.end is not None:
            latest = min(latest, nxt.end)
        out.append(Lease(op.process, op.result, g, op.start, op.end, ttl, expires, certain,
                         latest, op.events))
    return out


def precedes(i: Lease, j: Lease) -> bool:
    """Lease ``i`` was granted before lease ``j`` (or they overlapped, if ``j`` precedes ``i``
    too): ``j`` certainly still ran when ``i``'s acquire completed."""
    return i != j and j.ends_after > i.granted


def _strictly(i: Lease, j: Lease) -> bool:
    return precedes(i, j) and not precedes(j, i)


def _who(lease: Lease | None, holder: str = "") -> str:
    if lease is None:
        return f"{holder} (holding no lease)"
    return f"{lease.holder} (lease #{lease.generation + 1}, token {lease.token!r})"


def writes(history: History, ttl_s: Any = None) -> list[Write]:
    """Every write the grader asked for, paired with the writer's lease: its latest lease
    granted before the write whose token is the one written with (else its latest)."""
    all_leases = leases(history, ttl_s)
    out = []
    for op in history.operations():
        if _name(op) != "write":
            continue
        token = op.arg(2, "token")
        mine = [le for le in all_leases if le.holder == op.process and le.granted <= op.start]
        same = [le for le in mine if le.token == token]
        lease = same[-1] if same else (mine[-1] if mine else None)
        out.append(Write(op.process, str(op.arg(0, "key")), str(op.arg(1, "value")), token,
                         lease, op.start, op.end, op.type, op.result, op.events))
    return out


# -- mutual exclusion --------------------------------------------------------------------------
def check_mutual_exclusion(history: History, ttl_s: Any = None) -> Verdict:
    """No two leases in force at once: for two holders' leases that each precede the other, one
    was granted while the other certainly still ran."""
    ls = leases(history, ttl_s)
    anomalies = []
    for x in range(len(ls)):
        for y in range(x + 1, len(ls)):
            a, b = ls[x], ls[y]
            if a.holder == b.holder or not (precedes(a, b) and precedes(b, a)):
                continue
            anomalies.append(Anomaly(
                "overlapping-holders",
                f"{b.holder} was granted the lock (token {b.token!r}) at {b.granted:.3f} s while "
                f"{a.holder}'s lease (token {a.token!r}, granted by {a.granted:.3f} s) certainly "
                f"still ran, until at least {a.ends_after:.3f} s: two holders at once",
                a.events + b.events,
                {"holders": [a.holder, b.holder], "tokens": [a.token, b.token]}))
    return verdict("mutual-exclusion", anomalies, grants=len(ls))


# -- tokens ------------------------------------------------------------------------------------
def check_tokens(history: History, ttl_s: Any = None) -> Verdict:
    """Every acquisition's token is larger than the token of every acquisition before it."""
    ls = leases(history, ttl_s)
    anomalies = []
    reported: set[int] = set()
    for j in ls:
        for i in ls:
            if j.generation in reported or not _strictly(i, j):
                continue
            ti, tj = _int(i.token), _int(j.token)
            if ti is None or tj is None:
                if ti is None and tj is None:
                    continue
                bad, why = True, "is not a number"
            else:
                bad, why = ti >= tj, ("is the same" if ti == tj else "is smaller")
            if bad:
                reported.add(j.generation)
                anomalies.append(Anomaly(
                    "token-order",
                    f"{j.holder}'s acquisition (token {j.token!r}) came after {i.holder}'s "
                    f"(token {i.token!r}): {i.holder}'s acquire returned at {i.granted:.3f} s "
                    f"while {j.holder}'s lease certainly still ran, so {i.holder}'s lease was "
                    f"granted first; yet {j.holder}'s token {why}",
                    i.events + j.events, {"earlier": i.token, "later": j.token,
                                          "holders": [i.holder, j.holder]}))
    return verdict("tokens", anomalies, leases=len(ls))


# -- fenced writes -----------------------------------------------------------------------------
def check_fenced_writes(history: History, applied: Iterable[str], ttl_s: Any = None) -> Verdict:
    """A write under an older lease never lands after a write under a newer one.

    ``applied``: the values the storage accepted, in the order it applied them (from the grader's
    own query). Values are unique per write (the grader chooses them): that is how an applied
    value is traced back to its write and lease. Without ``ttl_s`` only the real-time order of
    acquisitions is used (one acquire completed before the other began)."""
    applied = list(applied)
    all_writes = writes(history, ttl_s)
    by_value = {w.value: w for w in all_writes}
    anomalies: list[Anomaly] = []
    for v in applied:
        if v not in by_value:
            anomalies.append(Anomaly(
                "phantom-write", f"the storage holds {v!r}, which no worker was asked to write",
                (), {"value": v}))
    stale: set[str] = set()
    # 1. In storage order: a write from an older lease after a write from a newer one.
    landed: list[Write] = []
    for v in applied:
        w = by_value.get(v)
        if w is None or w.lease is None:
            continue
        newer = next((x for x in landed if _strictly(w.lease, x.lease)), None)
        if newer is not None and w.value not in stale:
            stale.add(w.value)
            anomalies.append(Anomaly(
                "stale-write",
                f"{_who(w.lease)} wrote {w.value!r} after {_who(newer.lease)} had written "
                f"{newer.value!r}: the storage accepted a write from an older lease over the "
                f"newer holder's", newer.events + w.events,
                {"stale": w.value, "newer": newer.value}))
        landed.append(w)
    # 2. In real time: a write from an older lease stored although a newer holder had already
    #    written (even if that newer write was itself refused).
    stored = set(applied)
    for w in all_writes:
        if w.lease is None or w.value not in stored or w.value in stale:
            continue
        x = next((x for x in all_writes if x.lease is not None and x.completed is not None
                  and _strictly(w.lease, x.lease) and x.completed < w.invoked), None)
        if x is not None:
            stale.add(w.value)
            anomalies.append(Anomaly(
                "stale-write",
                f"{_who(w.lease)} wrote {w.value!r} after {_who(x.lease)} had written "
                f"{x.value!r}, and the storage accepted the older holder's value",
                x.events + w.events, {"stale": w.value, "newer": x.value}))
    return verdict("fenced-writes", anomalies, writes=len(all_writes), applied=len(applied))


# -- honest answers ----------------------------------------------------------------------------
def check_answers(history: History, applied: Iterable[str], ttl_s: Any = None) -> Verdict:
    """``write`` says whether the storage took the value; ``release`` says whether it released
    the caller's own lease (judged where the history leaves no doubt)."""
    stored = set(applied)
    anomalies = []
    for w in writes(history, ttl_s):
        if w.outcome != "ok":
            continue
        if bool(w.claimed) != (w.value in stored):
            anomalies.append(Anomaly(
                "misreported-write",
                f"{w.holder}'s write of {w.value!r} answered {w.claimed!r}, but the storage "
                + ("has it" if w.value in stored else "never stored it"),
                w.events, {"value": w.value, "claimed": w.claimed}))
    ops = history.operations()
    ls = leases(history, ttl_s)
    for idx, op in enumerate(ops):
        if _name(op) != "release" or op.type != "ok":
            continue
        mine = [le for le in ls if le.holder == op.process and le.granted <= op.start]
        lease = mine[-1] if mine else None
        earlier = [o for o in ops[:idx] if o.process == op.process and _name(o) == "release"
                   and o.result is True and (lease is None or o.start > lease.granted)]
        must: bool | None = None
        why = ""
        if lease is None or earlier:
            must, why = False, ("it held no lease" if lease is None else
                                "it had already released since its last acquisition")
        elif lease.ends_by < op.start:
            must, why = False, "its lease had certainly run out"
        elif any(other.holder != op.process and _strictly(lease, other)
                 and other.granted < op.start for other in ls):
            must, why = False, "another worker had been granted the lock since"
        elif op.end is not None and op.end < lease.expires_after and not any(
                o.process != op.process and _name(o) in ("release", "acquire")
                and (o.end is None or o.end > lease.invoked) and o.start < op.end
                for o in ops):
            # no other worker's call could have touched the key meanwhile (a broken release of
            # another worker can delete this one's lease; that is reported where it happened)
            must, why = True, "its lease certainly still ran"
        if must is not None and (op.result is True) != must:
            anomalies.append(Anomaly(
                "misreported-release",
                f"{op.process}'s release answered {op.result!r}, but {why}: it "
                + ("released" if must else "could not release") + " its own lease",
                op.events, {"holder": op.process, "claimed": op.result, "expected": must}))
    return verdict("answers", anomalies)


# -- progress ----------------------------------------------------------------------------------
def _busy(history: History, ttl_s: Any) -> list[tuple[float, float]]:
    """Intervals in which the lock may not have been free for the taking: every granted lease from
    its invoke to the latest it can have ended, an acquire whose outcome is unknown (or that
    raised) from its invoke on, and every fault that may have held some worker's calls up."""
    spans = [(le.invoked, le.ends_by) for le in leases(history, ttl_s)]
    for op in history.operations():
        if _name(op) == "acquire" and op.type in ("info", "fail"):
            ttl = _ttl(ttl_s, op.process)
            end = float("inf") if op.end is None or ttl is None else op.end + ttl
            spans.append((op.start, end))
    spans += [(w.start, w.end if w.end is not None else float("inf"))
              for w in history.fault_windows(_HOLDING_FAULTS)]
    return spans


def _free(spans: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """Sub-intervals of [lo, hi] covered by no span."""
    out, t = [], lo
    for s, e in sorted(spans):
        if e <= t:
            continue
        if s > t:
            out.append((t, min(s, hi)))
        t = max(t, e)
        if t >= hi:
            break
    if t < hi:
        out.append((t, hi))
    return [(a, b) for a, b in out if b > a]


def wait_over(history: History, process: str, start: float, wait_s: float) -> float:
    """When ``wait_s`` seconds of ``process``'s monotonic clock had passed since ``start`` (in
    the grader's time), given the drifts and monotonic jumps the nemesis gave that process."""
    changes: list[tuple[float, str, float]] = []
    for w in history.fault_windows(["clock-jump", "clock-drift"]):
        if w.target != process:
            continue
        if w.name == "clock-jump":
            if not w.params.get("monotonic"):
                continue
            step = float(w.params.get("step", 5.0))
            changes.append((w.start, "jump", step))
            if w.end is not None:
                changes.append((w.end, "jump", -step))
        else:
            changes.append((w.start, "rate", float(w.params.get("rate", 1.5))))
            if w.end is not None:
                changes.append((w.end, "rate", 1.0))
    changes.sort()
    rate, elapsed, t = 1.0, 0.0, start
    for at, kind, value in changes:
        if at <= start:
            if kind == "rate":
                rate = value
            continue
        if elapsed + (at - t) * rate >= wait_s:
            break
        elapsed += (at - t) * rate
        t = at
        if kind == "rate":
            rate = value
        else:
            elapsed += value
            if elapsed >= wait_s:
                return t
    return t + max(0.0, wait_s - elapsed) / rate


def _held_up(history: History, lo: float, hi: float) -> float:
    """Seconds of [lo, hi] during which a fault may have held a worker's calls up."""
    spans = [(max(lo, w.start), min(hi, w.end if w.end is not None else hi))
             for w in history.fault_windows(_HOLDING_FAULTS)]
    total, t = 0.0, lo
    for s, e in sorted(spans):
        s = max(s, t)
        if e > s:
            total += e - s
            t = e
    return total


def check_progress(history: History, applied: Iterable[str], ttl_s: Any = None) -> Verdict:
    """The newest holder's writes land, and a waiting worker gets a lock that is free before its
    wait is over.

    ``rejected-write``: a write that completed under a lease no other lease can have superseded
    by then, and the storage never stored it (a store that refuses everything is safe and
    useless). ``stuck-lock``: an ``acquire(wait_s)`` that returned None although the lock was
    certainly free (no lease possibly in force, no fault holding anyone up) throughout its call,
    or for ``GRACE_S`` seconds before its wait (on its own clock) was over."""
    stored = set(applied)
    ls = leases(history, ttl_s)
    anomalies = []
    leased = [w for w in writes(history, ttl_s) if w.lease is not None and w.outcome == "ok"]
    for w in leased:
        if w.value in stored:
            continue
        rival = any(le != w.lease and not _strictly(le, w.lease)
                    and le.invoked < (w.completed or 0) for le in ls)
        if not rival:
            anomalies.append(Anomaly(
                "rejected-write",
                f"{_who(w.lease)} held the newest lease and wrote {w.value!r}, but the storage "
                f"never applied it (the component answered {w.claimed!r})",
                w.events, {"value": w.value}))
    if leased and not stored and not anomalies:
        w = leased[-1]          # a fence refuses only below a token it stored: nothing was
        anomalies.append(Anomaly(
            "rejected-write",
            f"{len(leased)} write(s) were made under leases and the storage applied none of them "
            f"(the last: {_who(w.lease)} wrote {w.value!r}; the component answered "
            f"{w.claimed!r})", w.events, {"value": w.value}))
    spans = _busy(history, ttl_s)
    for op in history.operations():
        if _name(op) != "acquire" or op.type != "ok" or op.result is not None or op.end is None:
            continue
        wait_s = op.arg(0, "wait_s", 0.0)
        try:
            wait_s = max(0.0, float(wait_s))
        except (TypeError, ValueError):
            continue
        over = wait_over(history, op.process, op.start, wait_s)
        whole = _free(spans, op.start, op.end)
        window = _free(spans, op.start, max(over, op.end))
        if whole and whole[0] == (op.start, op.end):
            free = (op.start, op.end)
        else:
            free = next(((a, b) for a, b in window if b - a >= GRACE_S), None)
        if free is not None:
            anomalies.append(Anomaly(
                "stuck-lock",
                f"{op.process}'s acquire(wait_s={wait_s:g}) gave up at {op.end:.3f} s although "
                f"no lease was in force from {free[0]:.3f} s to {free[1]:.3f} s, before its wait "
                f"was over ({over:.3f} s)", op.events,
                {"holder": op.process, "free": list(free)}))
    return verdict("progress", anomalies)


# -- waits -------------------------------------------------------------------------------------
def check_waits(history: History, busy: Iterable[tuple[str, int, float, int]] = ()) -> Verdict:
    """``acquire(wait_s)`` returns once ``wait_s`` seconds of its own monotonic clock are over
    (plus one last attempt): a component that measures the wait on another clock, or not at
    all, waits on after its caller's deadline (``wait-overrun``). ``busy``: what the grader
    counted on a waiting worker's link to Redis, ``(holder, requests, seconds, limit)`` (see
    :func:`busy_wait`)."""
    anomalies = [a for b in busy for a in busy_wait(*b).anomalies]
    for op in history.operations():
        if _name(op) != "acquire" or op.end is None or op.type != "ok":
            continue
        try:
            wait_s = max(0.0, float(op.arg(0, "wait_s", 0.0)))
        except (TypeError, ValueError):
            continue
        over = wait_over(history, op.process, op.start, wait_s)
        allowed = over + _held_up(history, op.start, op.end) + OVERRUN_S
        if op.end > allowed:
            anomalies.append(Anomaly(
                "wait-overrun",
                f"{op.process}'s acquire(wait_s={wait_s:g}) returned at {op.end:.3f} s, "
                f"{op.end - over:.2f} s after its wait was over on its own clock "
                f"({over:.3f} s)", op.events, {"holder": op.process, "over": over}))
    return verdict("waits", anomalies)


def busy_wait(holder: str, requests: int, seconds: float, limit: int) -> Verdict:
    """A worker that sent more than ``limit`` requests to Redis while it waited ``seconds`` for
    a lock retried in a tight loop (the grader counts them on its link)."""
    if requests <= limit:
        return verdict("waits", [])
    return verdict("waits", [Anomaly(
        "busy-wait",
        f"{holder} sent more than {limit} requests to Redis while it waited {seconds:.2f} s for "
        f"the lock: it retries in a tight loop instead of pausing between attempts",
        (), {"holder": holder, "requests": requests})])


# -- the counter ---------------------------------------------------------------------------------
def counter_value(raw: Any) -> int:
    """The number a counter write stored: ``"7"``, or ``"7:w1:3"`` (the number, then who wrote it
    and which of its increments it was, so that every write's value is unique)."""
    return int(str(raw).split(":", 1)[0])


def check_counter(applied: Sequence[str], start: int = 0) -> Verdict:
    """A counter incremented under the lock must take the values start+1, start+2, ... in order
    (each value is :func:`counter_value`)."""
    anomalies = []
    expected = start + 1
    for i, raw in enumerate(applied):
        try:
            n = counter_value(raw)
        except (TypeError, ValueError):
            anomalies.append(Anomaly("lost-update", f"write #{i + 1} stored {raw!r}, not a number",
                                     (), {"position": i}))
            break
        if n != expected:
            anomalies.append(Anomaly(
                "lost-update",
                f"write #{i + 1} stored {n} where {expected} was due: two holders read the same "
                f"value and one increment was lost" if n < expected else
                f"write #{i + 1} stored {n} where {expected} was due",
                (), {"position": i, "stored": n, "expected": expected}))
            expected = n
        expected += 1
    return verdict("counter", anomalies, increments=len(applied))


# -- all of them ---------------------------------------------------------------------------------
def check_lock(history: History, applied: Iterable[str], ttl_s: Any = None,
               extra: Iterable[Verdict] = (),
               busy: Iterable[tuple[str, int, float, int]] = ()) -> Verdict:
    """Every guarantee of the chapter over the whole history (``extra``: verdicts the test made
    from its own ground truth, such as a counter; ``busy``: see :func:`check_waits`)."""
    applied = list(applied)
    parts = [check_fenced_writes(history, applied, ttl_s), check_tokens(history, ttl_s),
             check_mutual_exclusion(history, ttl_s), check_answers(history, applied, ttl_s),
             check_progress(history, applied, ttl_s), check_waits(history, busy), *extra]
    anomalies = [a for v in parts for a in v.anomalies]
    failed = [v.checker for v in parts if not v.ok]
    return verdict(failed[0] if len(failed) == 1 else "lock", anomalies,
                   checked=[v.checker for v in parts])
