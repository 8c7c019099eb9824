"""Saga atomicity, for any saga: every saga ends all done or all compensated, each step once.

A saga has no rollback; it has compensations, and a coordinator that crashes between a step and
its compensation leaves the world half-changed: the card charged, no parcel, no refund. Retries
make it worse in the other direction: the charge applied twice, the refund paid twice.

``check_sagas(effects, steps, balances_before=None, balances_after=None)``
    ``effects``: what the participants *recorded* (not what the coordinator claims): records with
    ``saga`` (id), ``step`` (e.g. ``"charge"``), ``action`` (``"do"`` or ``"undo"``) and
    optionally ``event`` (a history index). ``steps``: the saga's forward steps in order
    (``["reserve", "charge", "ship"]``). Balances: optional mappings account -> amount read before
    and after the run (money moves between accounts; the total must not change).
    Anomaly kinds:

    * ``dangling-saga`` — a saga ended neither fully done (every step done, none undone) nor fully
      compensated (every done step undone);
    * ``double-charge`` — a forward step took effect more than once in one saga (named after the
      classic case; ``data["step"]`` says which step);
    * ``double-refund`` — a compensation took effect more than once in one saga;
    * ``not-conserved`` — the balances' total changed (``balances_before`` and ``balances_after``).

A compensation without its step (undoing what never happened) is reported as ``dangling-saga``
too: the world is not back where it started.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.checkers.base import get as _get, Anomaly, Verdict, verdict

__all__ = ["check_sagas", "saga_states"]



def saga_states(effects: Iterable[Any], steps: Sequence[str]) -> dict[Any, str]:
    """saga id -> "done" | "compensated" | "dangling" (duplicates ignored here)."""
    did: dict[Any, set] = defaultdict(set)
    undid: dict[Any, set] = defaultdict(set)
    for rec in effects:
        (did if _get(rec, "action") == "do" else undid)[_get(rec, "saga")].add(_get(rec, "step"))
    out = {}
    for saga in set(did) | set(undid):
        d, u = did[saga], undid[saga]
        if d == set(steps) and not u:
            out[saga] = "done"
        elif d == u:
            out[saga] = "compensated"
        else:
            out[saga] = "dangling"
    return out


def check_sagas(effects: Iterable[Any], steps: Sequence[str],
                balances_before: Mapping[Any, float] | None = None,
                balances_after: Mapping[Any, float] | None = None,
                sagas: Iterable[Any] = ()) -> Verdict:
    """See the module docstring. ``sagas`` lists ids that were started but may have left no
    effect at all (those count as compensated: nothing happened)."""
    effects = list(effects)
    bad = [r for r in effects if _get(r, "action") not in ("do", "undo")]
    if bad:
        raise ValueError(f"effect {bad[0]!r}: action must be 'do' or 'undo'")
    unknown = sorted({str(_get(r, "step")) for r in effects} - set(map(str, steps)))
    if unknown:
        raise ValueError(f"effects name step(s) {unknown} that are not in steps={list(steps)}")
    events: dict[Any, list[int]] = defaultdict(list)
    counts: Counter = Counter()
    for r in effects:
        counts[(_get(r, "saga"), _get(r, "step"), _get(r, "action"))] += 1
        if _get(r, "event") is not None:
            events[_get(r, "saga")].append(_get(r, "event"))
    anomalies = []
    states = saga_states(effects, steps)
    for saga in sagas:
        states.setdefault(saga, "compensated")
    for saga, state in sorted(states.items(), key=lambda kv: str(kv[0])):
        ev = tuple(events.get(saga, ()))
        if state == "dangling":
            did = [s for s in steps if counts[(saga, s, "do")]]
            undid = [s for s in steps if counts[(saga, s, "undo")]]
            anomalies.append(Anomaly(
                "dangling-saga", f"saga {saga!r} ended half-done: did {did}, undid {undid}",
                ev, {"saga": saga, "did": did, "undid": undid}))
    for (saga, step, action), n in sorted(counts.items(), key=lambda kv: str(kv[0])):
        if n > 1:
            kind = "double-charge" if action == "do" else "double-refund"
            what = step if action == "do" else f"the compensation of {step}"
            anomalies.append(Anomaly(kind, f"saga {saga!r}: {what} took effect {n} times",
                                     tuple(events.get(saga, ())), {"saga": saga, "step": step,
                                                                   "count": n}))
    if balances_before is not None and balances_after is not None:
        before, after = sum(balances_before.values()), sum(balances_after.values())
        if abs(before - after) > 1e-9:
            anomalies.append(Anomaly(
                "not-conserved", f"the balances added up to {before:g} before and {after:g} after",
                (), {"before": before, "after": after}))
    tally = Counter(states.values())
    return verdict("saga", anomalies, sagas=len(states), done=tally["done"],
                   compensated=tally["compensated"], dangling=tally["dangling"])
