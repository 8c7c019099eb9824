"""Lab 10's checkers: pure functions of the grader's ground truth and the history.

* :func:`check_applied_once` -- every record the grader produced has its effect in Postgres
  exactly once. None: ``lost-record`` when the broker holds a committed offset past it (the group
  declared it done), else ``stuck-partition`` (its partition's lag never reached it while members
  were alive and polling). Twice or more: ``duplicate-effect``.
* :func:`check_steps` -- no member's ``step()`` ran longer than ``max.poll.interval.ms`` while
  nothing held it (no pause of its process, no gate the grader held): a member that does not
  poll in time is thrown out of its group though it is alive and working, its partitions move,
  and the next one to take the same batch is thrown out too (``rebalance-storm``).

Effects and records are plain data: ``Produced`` (or a dict with ``partition``, ``offset``) and
``(partition, offset, member)`` rows.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from splitbrain.checkers.base import Anomaly, Verdict, get, verdict

__all__ = ["Produced", "check_applied_once", "check_steps", "judge", "merge"]


@dataclass(frozen=True)
class Produced:
    """One record the grader produced: where it landed and what it was."""

    partition: int
    offset: int
    n: int = 0
    slow: bool = False
    gated: bool = False


def check_applied_once(records: Iterable[Any], effects: Iterable[Iterable[Any]],
                       committed: dict[int, int] | None = None) -> Verdict:
    committed = {int(k): int(v) for k, v in (committed or {}).items()}
    counts: Counter = Counter()
    who: dict[tuple[int, int], list[str]] = defaultdict(list)
    for p, o, member, *_ in effects:
        counts[(int(p), int(o))] += 1
        who[(int(p), int(o))].append(str(member))
    anomalies, lost, stuck, dup = [], 0, 0, 0
    records = list(records)
    for r in records:
        key = (int(get(r, "partition")), int(get(r, "offset")))
        n = counts.get(key, 0)
        where = f"record {key[0]}/{key[1]}"
        if n == 0 and committed.get(key[0], -1) > key[1]:
            lost += 1
            anomalies.append(Anomaly("lost-record", (
                f"{where} was never applied, yet the group's committed offset on partition "
                f"{key[0]} is {committed[key[0]]}: it was declared done before its effect "
                f"committed, and no member will ever read it again"),
                data={"partition": key[0], "offset": key[1], "committed": committed[key[0]]}))
        elif n == 0:
            stuck += 1
            anomalies.append(Anomaly("stuck-partition", (
                f"{where} was never applied although members were alive and polling: the "
                f"partition stopped making progress"), data={"partition": key[0],
                                                              "offset": key[1]}))
        elif n > 1:
            dup += 1
            anomalies.append(Anomaly("duplicate-effect", (
                f"{where} was applied {n} times (by {', '.join(who[key])}): its amount was "
                f"added {n} times"), data={"partition": key[0], "offset": key[1], "times": n,
                                           "members": who[key]}))
    return verdict("applied-once", anomalies, records=len(records), lost=lost, stuck=stuck,
                   duplicates=dup)


def _held(history: Any, op: Any) -> bool:
    """Whether something the grader injected held this step: a pause of any member (a step can
    wait for a lock the paused one holds), a kill or crash of its own process, or a gate the
    grader held closed."""
    end = op.end if op.end is not None else float("inf")
    for w in history.fault_windows():
        if not w.covers(op.start, end):
            continue
        if w.name == "pause":
            return True
        if w.name in ("kill", "member-kill", "crash") and w.target == op.process:
            return True
        if w.name == "slow-record" and not w.params.get("ms"):
            return True
    return False


def check_steps(history: Any, max_poll_s: float) -> Verdict:
    anomalies = []
    for op in history.operations():
        if not op.f.endswith("step") or op.end is None:
            continue
        took = op.end - op.start
        if took > max_poll_s and not _held(history, op):
            anomalies.append(Anomaly("rebalance-storm", (
                f"{op.process}'s step took {took:.1f} s, longer than max.poll.interval.ms "
                f"({max_poll_s:.1f} s): the group threw out a member that was alive and "
                f"working, and moved its partitions to one that will take the same batch"),
                events=tuple(op.events), data={"member": op.process, "took_s": round(took, 2)}))
    return verdict("bounded-step", anomalies, max_poll_s=max_poll_s)


def merge(parts: list[Verdict], checker: str = "consumer-groups") -> Verdict:
    anomalies = [a for v in parts for a in v.anomalies]
    stats: dict[str, Any] = {}
    for v in parts:
        stats.update(v.stats)
    if any(v.valid is False for v in parts):
        valid: Any = False
    elif any(v.valid == "unknown" for v in parts):
        valid = "unknown"
    else:
        valid = True
    return Verdict(valid, tuple(anomalies), checker, stats)


def judge(records, effects, committed, history, max_poll_s: float,
          steps: bool = True) -> Verdict:
    parts = [check_applied_once(records, effects, committed)]
    if steps:
        parts.append(check_steps(history, max_poll_s))
    return merge(parts)
