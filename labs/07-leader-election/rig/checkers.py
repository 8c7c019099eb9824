"""Checkers for leader election (lab 07): each guarantee of the chapter, judged over the whole
history and the job's own record.

The history holds what the grader asked each node and what came back: ``campaign`` (result: the
term the node leads in, or None), ``leading`` (the same, by the node's own reckoning, without a
round trip), ``tick`` (argument ``n``; result: whether the node says it charged) and every fault,
from the nemesis. The grader also reads, with its own connection, every charge the job really made,
in the order it made them (``rig.world.charges``: ``seq``, ``tick``, ``term``, ``node``): the
ground truth, whatever a node claims. ``lease_s`` gives each node's lease in seconds.

The guarantees (``lab.toml`` lists them with these checkers), each with its anomaly:

* one leader per term, :func:`check_terms`: ``split-brain``: two nodes granted the same term; a
  node that says it leads in term *t* (its ``campaign`` or ``leading`` answered *t*) after another
  node had been elected in a later term; two nodes' charges made in one term;
* fenced actions, :func:`check_fenced`: ``stale-leader-write``: a charge made in term *t* after a
  charge made in a later term (the resource accepted the old leader's work after the new one's);
* once per tick, :func:`check_ticks`: ``duplicate-tick``: a tick charged more than once;
* a leader within the bound, :func:`check_liveness`: ``no-leader``: a tick nobody charged although
  a node had just been elected with a fresh lease and was asked to tick, or although every lease
  had certainly run out and the live nodes campaigned (and no fault was in force);
* honest answers, :func:`check_answers`: ``phantom-charge``: ``tick(n)`` answered True more often
  than the node's charges of tick *n* in the database (it said it charged when it was not leading,
  was refused, or found the tick charged); ``unreported-charge``: the database holds a charge of
  the node's that no call answered True for (and no call of that tick failed).

A claim to lead is also judged against the grader's clock (:func:`check_terms`, ``split-brain``):
a lease the store granted ran out at the latest ``lease`` after the reply reached the grader, so a
``leading()`` that answers its term later than that (and a margin), with no renewal since, is a
node leading on a lease that is certainly gone.

:func:`check_election` runs them all and returns one verdict.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History, Operation

__all__ = ["check_terms", "check_fenced", "check_ticks", "check_liveness", "check_answers",
           "check_election", "MARGIN_S", "FRESH_SHARE"]

MARGIN_S = 0.05       # the store's expiry and the grader's clock may disagree this much
FRESH_SHARE = 0.5     # a node asked to tick within this share of its lease after its campaign
                      # began certainly still leads (its own step-down may not have come yet)
_NOT_FAULTS = ("concurrency", "kill", "member-kill")   # instants and conditions hold nobody up


def _name(op: Operation) -> str:
    return op.f.rsplit(".", 1)[-1]


def _term(x: Any) -> int | None:
    if isinstance(x, bool) or not isinstance(x, int):
        return None
    return x


def _lease(lease_s: Any, process: str) -> float:
    v = lease_s.get(process) if isinstance(lease_s, Mapping) else lease_s
    return float(v) if v is not None else 0.0


def _get(c: Any, k: str) -> Any:
    return c[k] if isinstance(c, Mapping) else getattr(c, k)


def _grants(history: History) -> list[Operation]:
    return [op for op in history.operations() if _name(op) == "campaign" and op.type == "ok"
            and _term(op.result) is not None]


def _tick_ops(history: History, n: Any, node: str | None = None) -> list[Operation]:
    return [op for op in history.operations() if _name(op) == "tick"
            and op.arg(0, "n") == n and (node is None or op.process == node)]


def _events(ops: Iterable[Operation]) -> tuple[int, ...]:
    return tuple(e for op in ops for e in op.events)


# -- one leader per term -------------------------------------------------------------------------
def _overrun(history: History, lease_s: Any) -> list[Anomaly]:
    """leading() answered a term after that node's lease of it had certainly run out: no later
    than its lease after the campaign that granted or renewed it returned (the store counted
    from when the request arrived, before that), with no campaign of that node since whose
    outcome the grader cannot know (still in flight, or failed)."""
    ops = history.operations()
    campaigns = [op for op in ops if _name(op) == "campaign"]
    out = []
    flagged: set[tuple[str, int]] = set()
    for op in ops:
        t = _term(op.result) if _name(op) == "leading" and op.type == "ok" else None
        lease = _lease(lease_s, op.process)
        if t is None or lease <= 0 or (op.process, t) in flagged:
            continue
        mine = [c for c in campaigns if c.process == op.process and c.start < op.start]
        granted = [c for c in mine if c.type == "ok" and c.end is not None and c.end < op.start
                   and _term(c.result) == t]
        if not granted:
            continue
        g = max(granted, key=lambda c: c.end)
        if any(c.start > g.start and (c.type != "ok" or c.end is None or c.end >= op.start)
               for c in mine):
            continue
        gone = g.end + lease + MARGIN_S
        if op.start > gone:
            flagged.add((op.process, t))
            out.append(Anomaly(
                "split-brain",
                f"{op.process}'s leading() said it leads in term {t} at {op.start:.3f} s, but its "
                f"lease was last granted by a campaign that returned at {g.end:.3f} s: by "
                f"{gone:.3f} s it had certainly run out in the store, whatever the node's own "
                f"clock said", op.events,
                {"node": op.process, "term": t, "context": list(g.events)}))
    return out


def check_terms(history: History, charges: Sequence[Any] = (), lease_s: Any = None) -> Verdict:
    anomalies = []
    grants = _grants(history)
    by_term: dict[int, list[Operation]] = {}
    for op in grants:
        by_term.setdefault(op.result, []).append(op)
    for t, ops in sorted(by_term.items()):
        nodes = sorted({op.process for op in ops})
        if len(nodes) > 1:
            firsts = [next(op for op in ops if op.process == n) for n in nodes]
            anomalies.append(Anomaly(
                "split-brain",
                f"term {t} was granted to {' and '.join(nodes)}: one term, two leaders (a term "
                f"must be drawn anew at every election, and an election must not be lost)",
                _events(firsts), {"term": t, "nodes": nodes}))
    seen: set[tuple[str, int]] = set()
    for op in history.operations():
        if _name(op) not in ("campaign", "leading") or op.type != "ok":
            continue
        t = _term(op.result)
        if t is None or (op.process, t) in seen:
            continue
        newer = next((g for g in grants if g.process != op.process and g.end is not None
                      and g.end < op.start and g.result > t), None)
        if newer is not None:
            seen.add((op.process, t))
            anomalies.append(Anomaly(
                "split-brain",
                f"{op.process}'s {_name(op)}() said it leads in term {t} at {op.start:.3f} s, "
                f"but {newer.process} had been elected in term {newer.result} at "
                f"{newer.end:.3f} s: two nodes that both believe they lead",
                op.events, {"node": op.process, "term": t, "newer": newer.result,
                            "context": list(newer.events)}))
    if lease_s is not None:
        anomalies += _overrun(history, lease_s)
    by_charge_term: dict[int, set[str]] = {}
    for c in charges:
        by_charge_term.setdefault(_get(c, "term"), set()).add(_get(c, "node"))
    for t, nodes in sorted(by_charge_term.items()):
        if len(nodes) > 1:
            anomalies.append(Anomaly(
                "split-brain",
                f"charges were made in term {t} by {' and '.join(sorted(nodes))}: two leaders "
                f"acted in one term", (), {"term": t, "nodes": sorted(nodes)}))
    return verdict("terms", anomalies, elections=len(grants))


# -- fenced actions ----------------------------------------------------------------------------
def check_fenced(history: History, charges: Sequence[Any]) -> Verdict:
    anomalies = []
    newest = None
    for c in charges:
        term = _get(c, "term")
        if newest is not None and term < _get(newest, "term"):
            ops = _tick_ops(history, _get(c, "tick"), _get(c, "node"))
            ctx = _tick_ops(history, _get(newest, "tick"), _get(newest, "node"))
            anomalies.append(Anomaly(
                "stale-leader-write",
                f"{_get(c, 'node')} charged tick {_get(c, 'tick')} in term {term} after "
                f"{_get(newest, 'node')} had charged tick {_get(newest, 'tick')} in term "
                f"{_get(newest, 'term')}: the resource accepted the old leader's work after the "
                f"new leader's", _events(ops[-1:]),
                {"tick": _get(c, "tick"), "term": term, "newer": _get(newest, "term"),
                 "context": list(_events(ctx[-1:]))}))
        if newest is None or term > _get(newest, "term"):
            newest = c
    return verdict("fenced", anomalies, charges=len(charges))


# -- once per tick -----------------------------------------------------------------------------
def check_ticks(history: History, charges: Sequence[Any]) -> Verdict:
    anomalies = []
    by_tick: dict[Any, list[Any]] = {}
    for c in charges:
        by_tick.setdefault(_get(c, "tick"), []).append(c)
    for n, cs in sorted(by_tick.items()):
        if len(cs) < 2:
            continue
        who = ", ".join(f"{_get(c, 'node')} (term {_get(c, 'term')})" for c in cs)
        ops = [op for c in cs for op in _tick_ops(history, n, _get(c, "node"))[-1:]]
        anomalies.append(Anomaly(
            "duplicate-tick", f"tick {n} was charged {len(cs)} times: by {who}",
            _events(ops), {"tick": n, "charges": len(cs)}))
    return verdict("ticks", anomalies, ticks=len(by_tick))


# -- a leader within the bound -----------------------------------------------------------------
def _held(history: History, lo: float, hi: float) -> bool:
    """A fault that may hold a node up (or make it doubt its lease) overlaps [lo, hi]."""
    for w in history.fault_windows():
        if w.name in _NOT_FAULTS:
            continue
        end = w.end if w.end is not None else float("inf")
        if w.start <= hi and end >= lo:
            return True
    return False


def check_liveness(history: History, charges: Sequence[Any], lease_s: Any = None) -> Verdict:
    charged = {_get(c, "tick") for c in charges}
    ops = history.operations()
    grants = _grants(history)
    ticks = [op for op in ops if _name(op) == "tick"]
    numbers: list[Any] = []
    for op in ticks:
        n = op.arg(0, "n")
        if n not in numbers:
            numbers.append(n)
    anomalies = []
    prev_end = float("-inf")
    for n in numbers:
        mine = [op for op in ticks if op.arg(0, "n") == n]
        t_n = min(op.start for op in mine)
        last = max((op.end if op.end is not None else op.start) for op in mine)
        round_campaigns = [op for op in ops if _name(op) == "campaign"
                           and prev_end < op.start < t_n]
        prev_end = max(prev_end, last)
        if n in charged:
            continue
        found = None
        # A: a node elected with a fresh lease, asked to tick, and no charge.
        for op in mine:
            if op.type != "ok" or op.end is None:
                continue
            before = [g for g in ops if g.process == op.process and _name(g) == "campaign"
                      and g.end is not None and g.end <= op.start]
            if not before or before[-1] not in grants:
                continue
            g = before[-1]
            fresh = op.start - g.start < FRESH_SHARE * _lease(lease_s, op.process)
            rival = any(x is not g and x.end is not None and x.end >= g.start and
                        x.start <= op.end and (x.process != op.process or x.result > g.result)
                        for x in grants)
            if fresh and not rival and not _held(history, g.start, op.end):
                found = (f"{op.process} was elected in term {g.result} at {g.end:.3f} s and "
                         f"asked to tick {n} at {op.start:.3f} s, its lease still fresh, yet "
                         f"nobody charged tick {n}", op.events + g.events)
                break
        # B: every lease had run out, the live nodes campaigned, nobody was elected.
        if found is None and round_campaigns and all(
                c.type == "ok" and c.result is None for c in round_campaigns):
            c0 = min(c.start for c in round_campaigns)
            busy = [(g.end + _lease(lease_s, g.process) + MARGIN_S) for g in grants
                    if g.end is not None and g.start < c0]
            busy += [(c.end if c.end is not None else float("inf")) + _lease(lease_s, c.process)
                     for c in ops if _name(c) == "campaign" and c.type != "ok" and c.start < c0]
            free_from = max(busy, default=float("-inf"))
            if free_from < c0 and not _held(history, min(free_from, c0 - 1.0), last):
                found = (f"every lease had run out by {max(free_from, 0.0):.3f} s; "
                         f"{len(round_campaigns)} campaign(s) from {c0:.3f} s elected nobody, "
                         f"and tick {n} was never charged", _events(round_campaigns))
        if found is not None:
            anomalies.append(Anomaly("no-leader", found[0], found[1], {"tick": n}))
    return verdict("liveness", anomalies, ticks=len(numbers))


# -- honest answers -----------------------------------------------------------------------------
def check_answers(history: History, charges: Sequence[Any]) -> Verdict:
    """tick(n) says True exactly when that call's charge is in the database."""
    rows: dict[tuple[str, Any], int] = {}
    for c in charges:
        k = (_get(c, "node"), _get(c, "tick"))
        rows[k] = rows.get(k, 0) + 1
    calls: dict[tuple[str, Any], list[Operation]] = {}
    for op in history.operations():
        if _name(op) == "tick":
            calls.setdefault((op.process, op.arg(0, "n")), []).append(op)
    anomalies = []
    for (node, n), ops in sorted(calls.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        said = [op for op in ops if op.type == "ok" and op.result]   # an answer read as a bool
        unknown = [op for op in ops if op.type != "ok"]
        made = rows.get((node, n), 0)
        if len(said) > made:
            anomalies.append(Anomaly(
                "phantom-charge",
                f"{node}'s tick({n}) answered True {len(said)} time(s), and the database holds "
                f"{made} charge(s) of tick {n} by {node}: tick() must answer True only when that "
                f"call's charge is recorded (not when the node does not lead, is refused by the "
                f"fence, or finds the tick already charged)", _events(said[made:]),
                {"node": node, "tick": n, "said": len(said), "charges": made}))
        elif made > len(said) + len(unknown):
            anomalies.append(Anomaly(
                "unreported-charge",
                f"the database holds {made} charge(s) of tick {n} by {node}, but its tick({n}) "
                f"answered True {len(said)} time(s): a call that charged must say so",
                _events(ops), {"node": node, "tick": n, "said": len(said), "charges": made}))
    return verdict("answers", anomalies, calls=sum(len(v) for v in calls.values()))


def check_election(history: History, charges: Iterable[Any], lease_s: Any = None,
                   extra: Iterable[Verdict] = ()) -> Verdict:
    """Every guarantee of the chapter over the whole history and the charges really made."""
    charges = list(charges)
    parts = [check_ticks(history, charges), check_fenced(history, charges),
             check_terms(history, charges, lease_s), check_liveness(history, charges, lease_s),
             check_answers(history, charges), *extra]
    anomalies = [a for v in parts for a in v.anomalies]
    failed = [v.checker for v in parts if not v.ok]
    return verdict(failed[0] if len(failed) == 1 else "election", anomalies,
                   checked=[v.checker for v in parts])
