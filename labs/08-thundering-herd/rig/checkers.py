"""Lab 08's checkers, one per guarantee, over a history of get() calls and the origin's own record
of every call it served (:class:`rig.world.Call`), never over what a cache reports.

* ``stampede``: two calls of the origin for the same key in flight at once (a refresh computed
  more than once). :func:`check_stampede`.
* ``expiry-wave``: keys filled together all expired together and were recomputed in the same
  instant. :func:`check_expiry_wave`.
* ``retry-storm``: while a dependency was down, clients retried in synchronised waves, or more
  often than capped exponential backoff allows. :func:`check_retry_storm`.
* ``stale-forever``: a get() served a value older than the source had for longer than a TTL, or
  one the origin never produced. :func:`check_stale`.
* ``slow-caller``: a get() took longer than the bound, or got no value while nothing was down.
  :func:`check_latency`; or its callers waited on behind the lease of a caller that had given up
  (:func:`check_handover`); or a caller that had the key cached failed while its early refresh
  could not reach the origin (:func:`check_served_while_down`).
* ``hot-key-expired``: a key read all the time expired, and its readers waited through its
  recomputation instead of being served the value they had. :func:`check_hot_expiry`.
* ``retry-budget``: a get() that gave up did not make exactly its budget of tries.
  :func:`check_handover`.

:func:`judge` runs every one of them and returns one verdict.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from splitbrain.checkers.base import Anomaly, Verdict, verdict

CONDITIONS = {"concurrency"}          # faults that change nothing: they do not excuse a slow get


@dataclass(frozen=True)
class Bounds:
    """What the guarantees allow, from the settings every cache gets (rig.world)."""

    ttl_s: float = 0.6
    lease_s: float = 0.3
    cost_s: float = 0.06
    base_s: float = 0.04
    cap_s: float = 0.4
    wave_s: float = 0.015        # clients' k-th retries this close (or closer than ...
    lockstep_share: float = 0.2  # ... this share of their offset) are in step ...
    wave_share: float = 0.75     # ... when this share of the clients made a k-th retry;
    max_waves: int = 1           # in step more often than this is a storm
    expiry_wave_s: float = 0.02  # refreshes of different keys closer than this are one wave
    attempts: int = 10           # a get()'s retry budget (rig.world.ATTEMPTS)

    @property
    def latency_s(self) -> float:
        """A get() while nothing is down: a lease, two origin calls and slack."""
        return self.lease_s + 2 * self.cost_s + 0.5

    @property
    def recover_s(self) -> float:
        """How long after a fault ends a get() caught in it may still run."""
        return self.cap_s + self.lease_s + 2 * self.cost_s + 0.5

    @property
    def stale_s(self) -> float:
        """How long after the source changed an older value may still be served: a TTL, and the
        moments between the origin reading the source and the value's SET."""
        return self.ttl_s + 0.15

    def max_attempts(self, window_s: float) -> int:
        """The most tries one client may make in ``window_s`` of an outage: three more than a
        client would make that sleeps a tenth of each capped exponential step and, each time a
        get() spends its budget of ``attempts`` tries and fails, is asked again at once (the
        next get() starts from the first step). Full jitter, which may draw any pause down to
        nothing, went past it once in five million simulated outages of 0.1 to 0.75 s; retrying
        at once goes past it a hundredfold."""
        n, t, k = 0, 0.0, 0
        while True:
            if k == self.attempts:
                k = 0                # the get() failed; the next one tries at once
            elif k:
                t += min(self.cap_s, self.base_s * 2 ** (k - 1)) / 10
            if t > window_s:
                return n + 3
            n, k = n + 1, k + 1


def gets(history: Any) -> list[Any]:
    return [op for op in history.operations() if op.f == "get" and not op.invoke.fault]


def _covering(ops: Sequence[Any], process: str, t: float) -> list[int]:
    for op in ops:
        end = op.end if op.end is not None else math.inf
        if op.process == process and op.start - 0.005 <= t <= end + 0.005:
            return list(op.events)
    return []


def check_stampede(history: Any, calls: Sequence[Any], bounds: Bounds = Bounds()) -> Verdict:
    """At most one origin call per key in flight at any moment, and no key recomputed more often
    than one refresh per quarter of a TTL (two more allowed)."""
    ops, out = gets(history), []
    by_key: dict[str, list[Any]] = {}
    for c in calls:
        if c.ok:
            by_key.setdefault(c.key, []).append(c)
    worst = 0
    for key, cs in sorted(by_key.items()):
        cs.sort(key=lambda c: c.start)
        best: list[Any] = []
        for c in cs:
            group = [d for d in cs if d.start <= c.start < d.end]
            if len(group) > len(best):
                best = group
        worst = max(worst, len(best))
        if len(best) > 1:
            events = sorted({e for d in best for e in _covering(ops, d.client, d.start)})
            out.append(Anomaly("stampede", (
                f"the origin computed {key!r} {len(best)} times at once (for "
                f"{', '.join(sorted({d.client for d in best}))}): one refresh of a key must be "
                f"computed once, its other callers served that value"), tuple(events),
                {"key": key, "calls": len(best), "clients": sorted({d.client for d in best})}))
            continue
        span = cs[-1].start - cs[0].start
        allowed = 2 + int(span / (bounds.ttl_s / 4))
        if len(cs) > allowed:
            events = sorted({e for d in cs[-3:] for e in _covering(ops, d.client, d.start)})
            out.append(Anomaly("stampede", (
                f"the origin computed {key!r} {len(cs)} times in {span:.2f} s, one after the "
                f"other: a value that lives {bounds.ttl_s:.2f} s needs at most {allowed} "
                f"refreshes in that time"), tuple(events),
                {"key": key, "calls": len(cs), "allowed": allowed}))
    return verdict("stampede", out, peak_per_key=worst, origin_calls=sum(map(len,
                                                                            by_key.values())))


def _lifetime(ops: Sequence[Any], fill: Any, refresh: Any) -> tuple[float, float]:
    """How long the value ``fill`` computed lived before ``refresh`` recomputed it, as bounds
    that hold however late any process ran: it was SET between the fill's origin call ending and
    the get that made it returning, and the need to recompute it arose between the start of the
    refresher's get before the one that refreshed (a get that still found it) and the refresh's
    origin call. Without a get before the refreshing one, the lower bound is unknown (NaN)."""
    key = refresh.key
    hi = refresh.start - fill.end
    set_by = min((op.end for op in ops if op.process == fill.client and op.arg(0, "key") == key
                  and op.end is not None and op.start <= fill.start and op.end >= fill.end),
                 default=fill.end)
    before = sorted(op.start for op in ops if op.process == refresh.client
                    and op.arg(0, "key") == key and op.start < refresh.start)
    if len(before) < 2:
        return math.nan, hi          # no get saw it before: hi is all that is known
    return min(hi, max(0.0, before[-2] - set_by)), hi


def check_expiry_wave(history: Any, calls: Sequence[Any], keys: Iterable[str], after: float,
                      bounds: Bounds = Bounds()) -> Verdict:
    """Keys filled together must not all be recomputed together: for each key, how long its value
    lived, from the end of its fill (its last computation before ``after``) to the start of its
    first refresh after ``after``, as bounds (:func:`_lifetime`); a wave is ``wave_share`` of the
    keys whose lifetimes can all lie within ``expiry_wave_s`` of each other. Keys that expire
    together are caught however late their readers ran; keys spread by jitter are not joined
    into a wave unless their readers ran tens of milliseconds late. A key whose value surely
    lived longer than ``ttl_s`` is ``stale-forever``: jitter must draw TTLs short of it."""
    keys = set(keys)
    filled: dict[str, Any] = {}
    first: dict[str, Any] = {}
    for c in sorted(calls, key=lambda c: c.start):
        if not c.ok or c.key not in keys:
            continue
        if c.end <= after:
            filled[c.key] = c
        elif c.start >= after and c.key not in first:
            first[c.key] = c
    ops = [op for op in gets(history) if op.arg(0, "key") in keys]
    bounds_of = {k: _lifetime(ops, filled[k], c) for k, c in first.items() if k in filled}
    lives = sorted(((hi if math.isnan(lo) else lo, hi, first[k])
                    for k, (lo, hi) in bounds_of.items()), key=lambda x: x[:2])
    need = max(2, math.ceil(bounds.wave_share * len(keys)))
    w = bounds.expiry_wave_s
    best: list[tuple[float, float, Any]] = []
    for t in sorted({lo - w for lo, _, _ in lives} | {hi for _, hi, _ in lives}):
        group = [x for x in lives if x[0] <= t + w and x[1] >= t]
        if len(group) > len(best):
            best = group
    out = []
    if len(best) >= need:
        events = sorted({e for _, _, d in best for e in _covering(ops, d.client, d.start)})
        out.append(Anomaly("expiry-wave", (
            f"{len(best)} of the {len(keys)} keys filled together were recomputed "
            f"{min(hi for _, hi, _ in best):.3f} to {max(hi for _, hi, _ in best):.3f} s after "
            f"each one was cached: every one lived as long as the others, to within "
            f"{w * 1000:.0f} ms, so they expired together and the origin took the whole load at "
            f"once"), tuple(events),
            {"keys": sorted(d.key for _, _, d in best), "window_s": w}))
    for k, (lo, _) in sorted(bounds_of.items()):
        c = first[k]
        if lo > bounds.ttl_s + 0.005:        # a lower bound: it lived at least this long
            out.append(Anomaly("stale-forever", (
                f"{c.key!r} was served from the cache for at least {lo:.3f} s after it was "
                f"cached, longer than its TTL ({bounds.ttl_s:.2f} s): a TTL drawn with jitter "
                f"must stay at or under ttl_ms, or a value is served staler than promised"),
                tuple(_covering(ops, c.client, c.start)), {"key": c.key, "lived_s": lo}))
            break
    widest = max((hi - lo for lo, hi, _ in lives), default=0.0)
    return verdict("expiry-wave", out, largest_wave=len(best), keys=len(keys),
                   widest_lifetime_bounds_ms=round(widest * 1000, 1))


def check_retry_storm(history: Any, attempts: dict[str, Sequence[float]], window: tuple[float, float],
                      what: str = "the origin", bounds: Bounds = Bounds()) -> Verdict:
    """While ``what`` was down (``window``), each client's tries (``attempts``): not more than
    capped exponential backoff allows, and not in lockstep: for each k, the clients' k-th retries,
    counted from each one's first try, must not all come at the same offset (within
    ``wave_s`` or ``lockstep_share`` of it) for more than ``max_waves`` values of k."""
    t0, t1 = window
    per = {c: sorted(t for t in ts if t0 <= t <= t1) for c, ts in attempts.items()}
    ops, out = gets(history), []
    cap = bounds.max_attempts(t1 - t0)
    for c, ts in sorted(per.items()):
        if len(ts) > cap:
            out.append(Anomaly("retry-storm", (
                f"{c} tried {what} {len(ts)} times in the {t1 - t0:.2f} s it was down; capped "
                f"exponential backoff from {bounds.base_s * 1000:.0f} ms makes at most {cap}"),
                tuple(_covering(ops, c, ts[-1])), {"client": c, "attempts": len(ts), "bound": cap}))
    # lockstep: each client's k-th try, counted from its own first one, at the same offset
    waves: list[tuple[int, float, float]] = []
    for k in range(1, max((len(ts) for ts in per.values()), default=0)):
        offsets = sorted(ts[k] - ts[0] for ts in per.values() if len(ts) > k)
        if len(offsets) < max(4, math.ceil(bounds.wave_share * len(per))):
            break
        middle = offsets[len(offsets) // 2]
        spread = offsets[-1] - offsets[0]
        if spread <= max(bounds.wave_s, bounds.lockstep_share * middle):
            waves.append((k, middle, spread))
    if len(waves) > bounds.max_waves:
        last = {c: ts for c, ts in per.items() if len(ts) > waves[-1][0]}
        events = sorted({e for c, ts in last.items() for e in _covering(ops, c, ts[waves[-1][0]])})
        out.append(Anomaly("retry-storm", (
            f"while {what} was down, the clients retried in lockstep: their tries number "
            f"{', '.join(str(k) for k, _, _ in waves[:6])} came "
            f"{', '.join(f'{m * 1000:.0f}' for _, m, _ in waves[:6])} ms after each one's first, "
            f"all within {max(sp for _, _, sp in waves) * 1000:.0f} ms of each other: the "
            f"same delays for everyone bring them back together, wave after wave"),
            tuple(events), {"waves": [k for k, _, _ in waves], "clients": len(per)}))
    return verdict("retry-storm", out, waves=len(waves),
                   attempts={c: len(ts) for c, ts in per.items()})


def check_hot_expiry(history: Any, calls: Sequence[Any], keys: Iterable[str],
                     bounds: Bounds = Bounds()) -> Verdict:
    """A key read all the time is refreshed before it expires: while the origin recomputes a
    key that was already cached (any computation after its first), its other readers are served
    the value they have. Two or more other clients' gets that each began before a quarter of the
    computation had passed, and returned only after it ended, waited through it; when that
    happens at two refreshes or more (a key that expires does so once per TTL; a machine that
    stalls every process for a moment is not a key that expired), the key expired under load."""
    keys = set(keys)
    ops = [op for op in gets(history) if op.arg(0, "key") in keys]
    by_key: dict[str, list[Any]] = {}
    for c in sorted(calls, key=lambda c: c.start):
        if c.ok and c.key in keys:
            by_key.setdefault(c.key, []).append(c)
    out, worst = [], 0
    for key, cs in sorted(by_key.items()):
        waits = []
        for c in cs[1:]:
            held = [op for op in ops if op.arg(0, "key") == key and op.process != c.client
                    and cs[0].end <= op.start <= c.start + bounds.cost_s / 4
                    and (op.end if op.end is not None else math.inf) >= c.end]
            clients = sorted({op.process for op in held})
            worst = max(worst, len(clients))
            if len(clients) >= 2:
                waits.append((c, clients, held))
        if len(waits) >= 2:
            c, clients, _ = waits[-1]
            out.append(Anomaly("hot-key-expired", (
                f"{key!r} was read all the time, yet {len(waits)} times its readers waited "
                f"through a recomputation of it (the last: {', '.join(clients)} waited "
                f"{c.end - c.start:.3f} s for {c.client}'s): the key expired under load. Refresh "
                f"a hot key before it expires (XFetch), so its readers keep being served the "
                f"value they have"),
                tuple(sorted({e for _, _, held in waits for op in held for e in op.events})),
                {"key": key, "waiting": clients, "refreshes": len(waits)}))
    return verdict("hot-key-expired", out, most_waiting=worst)


def check_handover(history: Any, calls: Sequence[Any], holder: str, key: str, budget: int,
                   bounds: Bounds = Bounds()) -> Verdict:
    """``holder`` computed ``key`` while the origin was down, and gave up, while others waited
    for the key. It must have made exactly ``budget`` tries (its retry budget: no more, and no
    fewer), and let go of its lease: the next try of the key, by one of the others, comes within
    half a lease of its last, not when the lease runs out."""
    ops, out = gets(history), []
    mine = sorted(c.start for c in calls if c.client == holder and c.key == key and not c.ok)
    if len(mine) != budget:
        out.append(Anomaly("retry-budget", (
            f"{holder}'s get({key!r}) tried the origin {len(mine)} times while it was down; its "
            f"budget is {budget} tries: no more (they add load to a struggling service), and no "
            f"fewer (a get() that gives up early fails a caller its budget would have served)"),
            tuple(_covering(ops, holder, mine[-1])) if mine else (),
            {"client": holder, "tries": len(mine), "budget": budget}))
    if mine:
        nxt = [c for c in calls if c.key == key and c.client != holder and c.start > mine[-1]]
        gap = min((c.start for c in nxt), default=math.inf) - mine[-1]
        if gap > bounds.lease_s / 2:
            first = min(nxt, key=lambda c: c.start) if nxt else None
            out.append(Anomaly("slow-caller", (
                f"{holder} gave up on {key!r}, and the callers waiting for it tried the origin "
                + (f"only {gap:.3f} s later" if first else "never")
                + ": a caller that gives up must let go of its lease (compare-and-delete), so "
                  "that one of them takes over at once"),
                tuple(_covering(ops, first.client, first.start)) if first else (),
                {"key": key, "gap_s": gap}))
    return verdict("handover", out, tries=len(mine))


def check_served_while_down(history: Any, client: str, key: str) -> Verdict:
    """``client`` had ``key`` cached and kept reading it while the origin was down: every one of
    its gets returns a value, the cached one while its early refresh fails."""
    failed = [op for op in gets(history) if op.process == client and op.arg(0, "key") == key
              and op.complete is not None and op.type != "ok"]
    out = [Anomaly("slow-caller", (
        f"{client}'s get({key!r}) failed ({failed[0].result!r}) although {client} had the key "
        f"cached: when an early refresh cannot reach the origin, serve the value you have"),
        tuple(failed[0].events), {"key": key, "failed": len(failed)})] if failed else []
    return verdict("served-while-down", out, failed=len(failed))


def _version(value: Any) -> tuple[str, int] | None:
    if not isinstance(value, str) or "@v" not in value:
        return None
    key, _, v = value.rpartition("@v")
    return (key, int(v)) if v.isdigit() else None


def check_stale(history: Any, calls: Sequence[Any], bounds: Bounds = Bounds()) -> Verdict:
    """Every value a get() returns is one the origin produced for that key, and not older than
    the source's version of ``stale_s`` before the get() began."""
    produced = {(c.key, c.value) for c in calls if c.ok}
    bumps = sorted((op.end, op.result["key"], op.result["version"]) for op in history.operations()
                   if op.f == "bump" and op.type == "ok" and isinstance(op.result, dict))
    out = []
    for op in gets(history):
        if op.type != "ok":
            continue
        key = op.arg(0, "key")
        parsed = _version(op.result)
        if (key, op.result) not in produced or parsed is None or parsed[0] != key:
            out.append(Anomaly("stale-forever", (
                f"{op.process}'s get({key!r}) returned {op.result!r}, a value the origin never "
                f"produced for that key"), tuple(op.events), {"key": key, "value": op.result}))
            continue
        due = max((v for t, k, v in bumps if k == key and t <= op.start - bounds.stale_s),
                  default=0)
        if parsed[1] < due:
            out.append(Anomaly("stale-forever", (
                f"{op.process}'s get({key!r}) returned version {parsed[1]} at {op.start:.3f} s, "
                f"more than {bounds.stale_s:.2f} s after the source had version {due}: a cached "
                f"value must expire within its TTL and be refreshed"), tuple(op.events),
                {"key": key, "served": parsed[1], "due": due}))
    return verdict("stale-forever", out[:5], stale=len(out))


def check_latency(history: Any, bounds: Bounds = Bounds()) -> Verdict:
    """A get() while nothing is down returns a value within ``latency_s``; one caught in a fault
    returns (a value or an error) within ``recover_s`` after the fault ends."""
    windows = [w for w in history.fault_windows() if w.name not in CONDITIONS]
    killed = {w.target for w in windows if w.name in ("kill", "member-kill")}
    out = []
    for op in gets(history):
        end = op.end if op.complete is not None else math.inf
        if op.process in killed and any(w.name in ("kill", "member-kill") and
                                        w.target == op.process for w in windows):
            continue
        caught = [w for w in windows if w.start <= end and
                  (w.end if w.end is not None else math.inf) >= op.start]
        if caught:
            limit = max((w.end if w.end is not None else math.inf) for w in caught)
            limit += bounds.recover_s
            if end > limit:
                out.append(Anomaly("slow-caller", (
                    f"{op.process}'s get({op.arg(0, 'key')!r}) was still waiting "
                    f"{bounds.recover_s:.2f} s after the {caught[-1].name} ended"
                    + ("" if op.complete is not None else " and never returned")),
                    tuple(op.events), {"key": op.arg(0, "key")}))
            continue
        if op.complete is None or end - op.start > bounds.latency_s:
            out.append(Anomaly("slow-caller", (
                f"{op.process}'s get({op.arg(0, 'key')!r}) took "
                + (f"{end - op.start:.2f} s" if op.complete is not None else "forever")
                + f" while nothing was down (bound {bounds.latency_s:.2f} s): a waiter must be "
                  f"served the new value, and a lease whose holder died must run out"),
                tuple(op.events), {"key": op.arg(0, "key")}))
        elif op.type != "ok":
            out.append(Anomaly("slow-caller", (
                f"{op.process}'s get({op.arg(0, 'key')!r}) failed while nothing was down: "
                f"{op.result!r}"), tuple(op.events), {"key": op.arg(0, "key")}))
    return verdict("slow-caller", out[:5], slow=len(out))


def judge(history: Any, calls: Sequence[Any], bounds: Bounds = Bounds(), *,
          storms: Sequence[tuple[dict[str, Sequence[float]], tuple[float, float], str]] = (),
          expiry: tuple[Iterable[str], float] | None = None, hot: Iterable[str] = (),
          handover: tuple[str, str, int] | None = None,
          holding: tuple[str, str] | None = None) -> Verdict:
    """Every guarantee of lab.toml at once. ``storms``: (attempts per client, the outage's
    window, what was down) for each outage; ``expiry``: (keys filled together, when the fill
    ended); ``hot``: keys read all the time; ``handover``: (the caller that gave up, its key,
    its retry budget); ``holding``: (a caller, a key it had cached and read through an
    outage)."""
    parts = [check_stampede(history, calls, bounds), check_stale(history, calls, bounds),
             check_latency(history, bounds)]
    for attempts, window, what in storms:
        parts.append(check_retry_storm(history, attempts, window, what, bounds))
    if expiry is not None:
        parts.append(check_expiry_wave(history, calls, expiry[0], expiry[1], bounds))
    if hot:
        parts.append(check_hot_expiry(history, calls, hot, bounds))
    if handover is not None:
        parts.append(check_handover(history, calls, *handover, bounds))
    if holding is not None:
        parts.append(check_served_while_down(history, *holding))
    anomalies = [a for v in parts for a in v.anomalies]
    return Verdict(not anomalies, tuple(anomalies), "herd",
                   {k: v for p in parts for k, v in p.stats.items()})


def origin_attempts(calls: Sequence[Any]) -> dict[str, list[float]]:
    """Each client's calls of the origin that found it down (the start of each)."""
    out: dict[str, list[float]] = {}
    for c in calls:
        if not c.ok:
            out.setdefault(c.client, []).append(c.start)
    return out

