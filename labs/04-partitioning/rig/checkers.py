"""Lab 04's checks of a key-value store partitioned over several shards.

Four questions, each a pure function of what the grader observed:

* ``check_reads`` — is every acknowledged write readable afterwards, from every process?
  A read that misses the latest acknowledged value is a ``misrouted-read`` when that value still
  sits on some live shard (the reader looked in the wrong place, e.g. two processes hash the same
  key differently) and a ``lost-write`` when it is on no live shard at all.
* ``check_movement`` — did a change of the shard set move about 1/N of the keys, not most of them
  (``moved-too-many``)?
* ``check_balance`` — does every shard hold about its share of the keys (``imbalanced``)?
* ``check_placement`` — is every acknowledged key stored on some shard at all (``unplaced-key``)?

Operations in a history are ``put`` (arguments key, value) and ``get`` (argument key; result the
value or None), in the kit's one call record (read with ``Operation.arg``). ``placement`` is what
the grader read directly from each live shard: ``{key: {shard_name: value_found_there}}``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History, Operation

Placement = Mapping[str, Mapping[str, Any]]

__all__ = ["check_reads", "check_movement", "check_balance", "check_placement",
           "moved_keys", "shard_counts", "ABSENT"]

ABSENT = None  # what a read of a never-written key returns
_MISSING = object()


@dataclass(frozen=True)
class _Write:
    op: Operation
    key: str
    value: Any

    @property
    def acked(self) -> bool:
        return self.op.type == "ok"

    @property
    def failed(self) -> bool:
        return self.op.type == "fail"


def _writes_by_key(ops: Iterable[Operation]) -> dict[str, list[_Write]]:
    out: dict[str, list[_Write]] = {}
    for op in ops:
        if op.f != "put":
            continue
        key, value = op.arg(0, "key", _MISSING), op.arg(1, "value", _MISSING)
        if key is _MISSING or value is _MISSING:
            continue
        out.setdefault(str(key), []).append(_Write(op, str(key), value))
    return out


def _allowed(writes: list[_Write], start: float, end: float) -> tuple[list[Any], list[_Write]]:
    """Values a read spanning [start, end] may legally return, and the writes it must not miss.

    A completed write is *superseded* when another acknowledged write to the same key started after
    it completed and completed before the read started. The read must return the value of a
    non-superseded acknowledged write, or of any write that may overlap the read (concurrent or of
    unknown outcome). With no acknowledged write before the read, "absent" is allowed too.
    """
    done = [w for w in writes if w.acked and w.op.end is not None and w.op.end < start]
    latest = [w for w in done
              if not any(o.op.start > w.op.end and o.op.end < start for o in done if o is not w)]
    maybe = [w for w in writes if not w.failed and w not in done and w.op.start < end]
    values = [w.value for w in latest + maybe]
    if not done:
        values.append(ABSENT)
    return values, latest


def check_reads(history: History, placement: Placement | None = None) -> Verdict:
    """Every read returns the latest acknowledged write of its key (or a concurrent one).

    placement: the grader's direct view of the live shards at the end, used only to tell a
    ``misrouted-read`` (the value is on some live shard) from a ``lost-write`` (it is nowhere).
    """
    ops = history.operations()
    writes = _writes_by_key(ops)
    anomalies: list[Anomaly] = []
    reads = 0
    for op in ops:
        if op.f != "get" or op.type != "ok":
            continue
        reads += 1
        key = str(op.arg(0, "key"))
        got = op.result
        if isinstance(got, Mapping) and "value" in got:
            got = got["value"]
        values, latest = _allowed(writes.get(key, []), op.start, op.end)
        if got in values:
            continue
        expected = [w.value for w in latest]
        where = {shard: v for shard, v in (placement or {}).get(key, {}).items()
                 if v in expected}
        events = tuple([w.op.invoke.index for w in latest] + [op.invoke.index])
        data = {"key": key, "got": got, "expected": expected, "reader": op.process,
                "writers": sorted({w.op.process for w in latest}), "found_on": sorted(where)}
        writer = ", ".join(data["writers"]) or "?"
        if where:
            anomalies.append(Anomaly(
                "misrouted-read",
                f"{op.process} read {key!r} and got {got!r}, but {writer}'s acknowledged value "
                f"{expected[0]!r} is on shard {sorted(where)[0]}: the reader looked on a "
                f"different shard than the writer used",
                events, data))
        else:
            anomalies.append(Anomaly(
                "lost-write",
                f"{op.process} read {key!r} and got {got!r}; {writer}'s acknowledged write of "
                f"{expected[0]!r} is on no live shard",
                events, data))
    anomalies.sort(key=lambda a: a.kind != "lost-write")   # the worse news first
    return verdict("partitioning.reads", anomalies, reads=reads,
                   keys_written=len(writes))


def moved_keys(before: Placement, after: Placement) -> list[str]:
    """Keys present, after the change, on a shard that did not hold them before."""
    moved = []
    for key, where in after.items():
        old = {s for s, v in before.get(key, {}).items() if v is not None}
        new = {s for s, v in where.items() if v is not None}
        if new - old:
            moved.append(key)
    return sorted(moved)


def check_movement(before: Placement, after: Placement, shards_before: Iterable[str],
                   shards_after: Iterable[str], epsilon: float = 0.1) -> Verdict:
    """Changing N shards to M moves at most 1/max(N, M) + epsilon of the keys.

    Adding one shard to N must move only what the new shard takes over (about 1/(N+1));
    removing one of N must move only what the removed shard held (about 1/N). ``hash(k) % N``
    moves about N/(N+1) of all keys instead.
    """
    n_before, n_after = len(set(shards_before)), len(set(shards_after))
    if n_before == 0 or n_after == 0:
        raise ValueError("check_movement needs a non-empty shard set before and after")
    keys = [k for k in before if any(v is not None for v in before[k].values())]
    if not keys:
        raise ValueError("check_movement needs keys placed before the change; none were found")
    moved = set(moved_keys({k: before[k] for k in keys}, {k: after.get(k, {}) for k in keys}))
    fraction = len(moved) / len(keys)
    bound = 1 / max(n_before, n_after) + epsilon
    anomalies = []
    if fraction > bound:
        sample = sorted(moved)[:5]
        anomalies.append(Anomaly(
            "moved-too-many",
            f"going from {n_before} to {n_after} shards moved {len(moved)} of {len(keys)} keys "
            f"({fraction:.0%}); a consistent scheme moves about {1 / max(n_before, n_after):.0%} "
            f"(allowed up to {bound:.0%})",
            (), {"moved": len(moved), "keys": len(keys), "fraction": fraction,
                 "bound": bound, "sample": sample}))
    return verdict("partitioning.movement", anomalies, moved=len(moved), keys=len(keys),
                   fraction=round(fraction, 4), bound=round(bound, 4))


def shard_counts(placement: Placement, shards: Iterable[str]) -> dict[str, int]:
    counts = {s: 0 for s in shards}
    for where in placement.values():
        for s, v in where.items():
            if v is not None and s in counts:
                counts[s] += 1
    return counts


def check_balance(placement: Placement, shards: Iterable[str], epsilon: float = 0.4) -> Verdict:
    """Every shard holds between (1 - epsilon) and (1 + epsilon) times the mean number of keys.

    The upper bound catches a hot shard (a range split on skewed keys, a ring with one point per
    shard); the lower bound catches a shard that was added but never given its share.
    """
    counts = shard_counts(placement, shards)
    if not counts:
        raise ValueError("check_balance needs at least one shard")
    total = sum(counts.values())
    mean = total / len(counts)
    anomalies = []
    if total:
        listing = ", ".join(f"{s}={c}" for s, c in sorted(counts.items()))
        fullest = max(counts, key=lambda s: counts[s])
        emptiest = min(counts, key=lambda s: counts[s])
        for shard, bad, bound in ((fullest, counts[fullest] > (1 + epsilon) * mean, 1 + epsilon),
                                  (emptiest, counts[emptiest] < (1 - epsilon) * mean,
                                   1 - epsilon)):
            if bad:
                ratio = counts[shard] / mean
                limit = "up to" if bound > 1 else "at least"
                anomalies.append(Anomaly(
                    "imbalanced",
                    f"shard {shard} holds {counts[shard]} keys, {ratio:.2f}x the mean of "
                    f"{mean:.0f} (allowed {limit} {bound:.2f}x); counts: {listing}",
                    (), {"counts": counts, "ratio": ratio, "shard": shard}))
    return verdict("partitioning.balance", anomalies, counts=counts, total=total)


def check_placement(acked: Mapping[str, Any], placement: Placement) -> Verdict:
    """Every acknowledged key is stored, with its value, on at least one live shard."""
    anomalies = []
    for key, value in sorted(acked.items()):
        if not any(v == value for v in placement.get(key, {}).values()):
            anomalies.append(Anomaly(
                "unplaced-key",
                f"the acknowledged value {value!r} of {key!r} is on none of the shards; "
                f"the store must keep each key on the shard that owns it",
                (), {"key": key, "value": value}))
    return verdict("partitioning.placement", anomalies, keys=len(acked))
