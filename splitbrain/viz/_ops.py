"""What a space-time diagram draws: bars for operations (grouped, on tracks) and faults, read
from a history and a verdict; the texts of their labels and of their tooltips."""
from __future__ import annotations

import bisect
import inspect
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterable

from splitbrain.history import FaultWindow, Operation
from splitbrain.viz._common import OUTCOME_NAMES, short

MIN_GROUP = 4         # this many unremarkable calls in a row become one bar
MAX_TRACKS = 6        # calls of one process at once drawn one above the other
DENSE = 300           # with more calls than this, runs group across other lanes' calls


@dataclass
class Bar:
    ops: list[Operation]
    lane: int
    track: int
    start: float
    end: float
    outcome: str                    # ok | fail | info | open
    offender: bool = False
    context: bool = False
    kinds: list[str] = field(default_factory=list)
    x0: float = 0.0
    x1: float = 0.0
    inside: str | None = None       # its label, when it fits in the bar

    @property
    def gid(self) -> str:
        return f"sb-{'grp' if len(self.ops) > 1 else 'op'}-{self.ops[0].invoke.index}"


@dataclass
class Fault:
    window: FaultWindow
    end: float
    lane: int | None                # None: it hit something that is not a lane
    index: int

    @property
    def instant(self) -> bool:
        return self.end <= self.window.start

    @property
    def gid(self) -> str:
        return f"sb-fault-{self.index}"


def marks(anomalies: list, highlight: Iterable[int]
          ) -> tuple[set[int], set[int], dict[int, list[str]]]:
    """(offending event indexes, context event indexes, event -> anomaly kinds)."""
    offenders = set(highlight)
    context: set[int] = set()
    kinds_at: dict[int, list[str]] = {}
    for a in anomalies:
        offenders.update(a.events)
        for e in a.events:
            if a.kind not in kinds_at.setdefault(e, []):
                kinds_at[e].append(a.kind)
        ctx = a.data.get("context") if isinstance(getattr(a, "data", None), dict) else None
        if isinstance(ctx, (list, tuple)):
            context.update(i for i in ctx if isinstance(i, int))
    return offenders, context - offenders, kinds_at


def fault_end(w: FaultWindow, t_end: float) -> float:
    """Where a fault's shading ends: its end; else, for a fault that is over as it happens (a
    kill recorded before the nemesis wrote their ends), its start; else the end of the picture."""
    if w.end is not None:
        return max(w.end, w.start)
    return w.start if is_instant(w.name, w.params) else max(t_end, w.start)


def is_instant(name: str, params: dict) -> bool:
    try:
        from splitbrain.faults.registry import FAULTS
        cls = FAULTS.get(name)
        if cls is None:
            return False
        attr = inspect.getattr_static(cls, "instant", False)
        if isinstance(attr, property):
            return bool(attr.fget(SimpleNamespace(params=dict(params))))
        return bool(attr)
    except Exception:  # noqa: BLE001 - a picture never fails over a fault it cannot classify
        return False


def bars_of(ops: list[Operation], lane_of: dict[str, int], faults: list[Fault], t_end: float,
            offenders: set[int], context: set[int], kinds_at: dict[int, list[str]]
            ) -> tuple[list[Bar], list[int], dict[int, int]]:
    """Bars by lane and track (concurrent calls of one process get tracks of their own, up to
    MAX_TRACKS: a lane with more calls at once deals them round the tracks, overlapping, and
    is *crowded*: lane -> most calls at once); runs of unremarkable calls with nothing else
    happening meanwhile (in a dense history: no fault starting or ending) become one bar."""
    by_lane: dict[int, list[Operation]] = {}
    for op in ops:
        if op.process in lane_of:
            by_lane.setdefault(lane_of[op.process], []).append(op)
    # a run is cut by what happens meanwhile: in another lane too, unless the history is so
    # dense that calls one by one could not be seen anyway
    stamps = [] if len(ops) > DENSE else [
        (t, lane_of.get(op.process, -1)) for op in ops
        for t in (op.start, op.end if op.end is not None else t_end)]
    stamps += [(t, -1) for f in faults for t in (f.window.start, f.end)]
    tracks = [1] * len(lane_of)
    crowded: dict[int, int] = {}
    bars: list[Bar] = []
    for lane, lane_ops in by_lane.items():
        ends: list[float] = []
        placed: list[tuple[int, Operation]] = []
        for op in lane_ops:
            end = op.end if op.end is not None else t_end
            k = next((k for k, e in enumerate(ends) if e <= op.start), None)
            if k is None:
                ends.append(end)
                k = len(ends) - 1
            else:
                ends[k] = end
            placed.append((k, op))
        if len(ends) > MAX_TRACKS:      # too many calls at once to give each a track
            crowded[lane] = len(ends)
            placed = [(i % MAX_TRACKS, op) for i, (_, op) in enumerate(placed)]
        tracks[lane] = max(1, min(len(ends), MAX_TRACKS))
        foreign = sorted(t for t, l in stamps if l != lane)
        run: list[Operation] = []

        def flush() -> None:
            if len(run) >= MIN_GROUP:
                bars.append(make_bar(list(run), lane, 0, t_end, offenders, context, kinds_at))
            else:
                bars.extend(make_bar([o], lane, 0, t_end, offenders, context, kinds_at)
                            for o in run)
            run.clear()

        for k, op in placed:
            plain = (tracks[lane] == 1 and op.complete is not None
                     and not set(op.events) & (offenders | context))
            if plain and run and run[-1].f == op.f and run[-1].type == op.type and \
                    not between(foreign, run[0].start, op.end):
                run.append(op)
                continue
            flush()
            if plain:
                run.append(op)
            else:
                bars.append(make_bar([op], lane, k, t_end, offenders, context, kinds_at))
        flush()
    return bars, tracks, crowded


def between(sorted_times: list[float], a: float, b: float) -> bool:
    """Whether some time lies strictly inside (a, b)."""
    i = bisect.bisect_right(sorted_times, a + 1e-9)
    return i < len(sorted_times) and sorted_times[i] < b - 1e-9


def make_bar(ops: list[Operation], lane: int, track: int, t_end: float, offenders: set[int],
             context: set[int], kinds_at: dict[int, list[str]]) -> Bar:
    events = {i for op in ops for i in op.events}
    kinds = [k for i in sorted(events & set(kinds_at)) for k in kinds_at[i]]
    last = ops[-1]
    return Bar(ops, lane, track, ops[0].start, last.end if last.end is not None else t_end,
                last.type if last.complete is not None else "open",
                bool(events & offenders), bool(events & context), list(dict.fromkeys(kinds)))


def label_texts(b: Bar) -> list[str]:
    """A bar's label, longest first."""
    op = b.ops[0]
    if len(b.ops) > 1:
        results = {result_text(o) for o in b.ops}
        n = len(b.ops)
        uniform = [f"{op.f} ×{n} → {results.pop()}"] if len(results) == 1 else []
        return uniform + [f"{op.f} ×{n}", f"×{n}"]
    return [f"{call_text(op, total=36)} → {short(result_text(op), 16)}", medium_text(op), op.f]


def medium_text(op: Operation) -> str:
    return f"{op.f} → {short(result_text(op), 16)}"


def call_text(op: Operation, budget: int = 12, total: int | None = None) -> str:
    """``f(arg, arg, k=v)``, each value cut to ``budget`` characters, fewer until the whole
    fits in ``total``."""
    raw = op.invoke.value
    plain = raw is not None and not (isinstance(raw, dict) and set(raw) <= {"args", "kwargs"})
    while True:                     # a value not in the call record shape is shown as it is
        parts = [value_text(raw, budget * 3)] if plain else [value_text(a, budget) for a in op.args]
        parts += [] if plain else [f"{k}={value_text(v, budget)}" for k, v in op.kwargs.items()]
        call = f"{op.f}({', '.join(parts)})"
        if total is None or len(call) <= total or budget <= 4:
            return call if total is None else short(call, total)
        budget -= 2


def result_text(op: Operation, budget: int = 16) -> str:
    if op.complete is None:
        return "no answer"
    v = op.result
    if isinstance(v, dict) and "error" in v:
        return str(v["error"])
    return value_text(v, budget)


def value_text(v: Any, budget: int) -> str:
    if v == {} or v == []:
        return str(v)
    if isinstance(v, dict):
        return short(", ".join(f"{k}={value_text(x, 10)}" for k, x in v.items()), budget)
    if isinstance(v, (list, tuple)):
        return short(", ".join(value_text(x, 10) for x in v), budget)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        return short(v, budget) if v else '""'
    return short(str(v), budget)


def duration(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def fault_tip(f: Fault) -> str:
    w = f.window
    params = ", ".join(f"{k}={short(str(v), 40)}" for k, v in w.params.items())
    head = f"fault {w.name}" + (f" on {w.target}" if w.target else "") + \
        (f" ({params})" if params else "")
    if f.instant:
        return f"{head}\nat {w.start:.3f} s, over as it happened"
    until = f"{f.end:.3f} s" if w.end is not None else f"{f.end:.3f} s (never healed here)"
    return f"{head}\nfrom {w.start:.3f} s to {until} ({duration(f.end - w.start)})"


def faults_active(faults: list[Fault], start: float, end: float) -> str:
    hit = [f for f in faults if f.window.start <= end and f.end >= start]
    if not hit:
        return "faults active: none"
    return "faults active: " + "; ".join(
        f"{f.window.name}" + (f" on {f.window.target}" if f.window.target else "")
        + (f" at {f.window.start:.3f} s" if f.instant
           else f" {f.window.start:.3f}–{f.end:.3f} s") for f in hit)


def op_tip(b: Bar, faults: list[Fault], anomalies: list, offenders: set[int]) -> str:
    span = f"{b.start:.3f} s to {b.end:.3f} s ({duration(b.end - b.start)})"
    if len(b.ops) > 1:
        first, last = b.ops[0], b.ops[-1]
        lines = [f"{first.process}: {first.f} ×{len(b.ops)}, all {OUTCOME_NAMES[b.outcome]}",
                 f"first: {call_text(first, 60)} → {result_text(first, 60)}",
                 f"last: {call_text(last, 60)} → {result_text(last, 60)}", span]
    else:
        op = b.ops[0]
        lines = [f"{op.process}: {short(call_text(op, 80), 300)}",
                 f"→ {OUTCOME_NAMES[b.outcome]}: {short(full_text(op.result), 300)}"
                 if op.complete is not None else "→ no answer", span]
    lines.append(faults_active(faults, b.start, b.end))
    mine = {i for op in b.ops for i in op.events}
    for a in anomalies:
        if set(a.events) & mine:
            lines.append(f"offending: [{a.kind}] {short(a.message, 300)}")
        elif isinstance(getattr(a, "data", None), dict) and \
                set(a.data.get("context") or ()) & mine:
            lines.append(f"evidence of: [{a.kind}] {short(a.message, 300)}")
    if b.offender and not any(line.startswith("offending") for line in lines):
        lines.append("offending (highlighted)")
    return "\n".join(lines)


def full_text(v: Any) -> str:
    if isinstance(v, dict) and "error" in v:
        return f"{v['error']}: {v.get('message', '')}".rstrip(": ")
    return value_text(v, 300)
