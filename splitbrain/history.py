"""One event format for operations and faults.

A history is what the grader *observed*: it records an ``invoke`` when it sends an operation to a
process and an ``ok`` / ``fail`` / ``info`` when the answer comes back (``info``: outcome unknown,
e.g. a timeout or a crash). Faults are events too, from process ``"nemesis"``. Checkers, reports and
pictures all read this one format; it is stored as JSON lines.

One call record: the value of an ``invoke`` is always ``{"args": [...], "kwargs": {...}}``
(:func:`call_value`); read it with :meth:`Operation.arg`. A fault's start and end pair up into a
:class:`FaultWindow` (:meth:`History.fault_windows`).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

EventType = Literal["invoke", "ok", "fail", "info"]
COMPLETIONS = ("ok", "fail", "info")


def call_value(args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one shape of a recorded call's arguments."""
    return {"args": list(args), "kwargs": dict(kwargs or {})}


@dataclass(frozen=True)
class Event:
    """One line of a history.

    process: who did it ("a", "worker-2", "nemesis", "grader").
    type: "invoke" starts an operation; "ok"/"fail"/"info" completes the latest invoke of the same
        process and op (info = outcome unknown). Fault events use "info" with ``fault=True`` and
        ``value={"phase": "start"|"end", "target": ..., **params}``.
    f: the operation or fault name ("acquire", "write", "pause", "partition").
    value: arguments on invoke, result on completion (JSON-serialisable).
    time: seconds since the history started (monotonic clock of the grader).
    index: position in the history, assigned on append.
    fault: True for nemesis events.
    """

    process: str
    type: EventType
    f: str
    value: Any = None
    time: float = 0.0
    index: int = -1
    fault: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Operation:
    """An invoke paired with its completion (``complete`` is None while still open)."""

    invoke: Event
    complete: Event | None

    @property
    def process(self) -> str:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def type(self) -> str:
        return self.complete.type if self.complete else "info"

    @property
    def start(self) -> float:
        return self.invoke.time

    @property
    def end(self) -> float | None:
        return self.complete.time if self.complete else None

    @property
    def args(self) -> list[Any]:
        """Positional arguments of the call (see :func:`call_value`)."""
        v = self.invoke.value
        return list(v.get("args") or []) if isinstance(v, dict) else []

    @property
    def kwargs(self) -> dict[str, Any]:
        v = self.invoke.value
        return dict(v.get("kwargs") or {}) if isinstance(v, dict) else {}

    def arg(self, index: int, name: str | None = None, default: Any = None) -> Any:
        """The argument passed by keyword ``name``, else the ``index``-th positional one."""
        kw = self.kwargs
        if name is not None and name in kw:
            return kw[name]
        pos = self.args
        return pos[index] if 0 <= index < len(pos) else default

    @property
    def result(self) -> Any:
        return self.complete.value if self.complete else None

    @property
    def events(self) -> tuple[int, ...]:
        """History indexes of the invoke and its completion (for an anomaly's evidence)."""
        return tuple(e.index for e in (self.invoke, self.complete) if e is not None)


@dataclass(frozen=True)
class FaultWindow:
    """A fault from its start to its end (``end`` None: never healed in this history).

    name: the registry name ("pause", "partition", ...); target: what it hit ("a", "redis");
    params: what it was injected with; events: the history indexes of its start and end.
    """

    name: str
    target: str | None
    start: float
    end: float | None
    params: dict[str, Any]
    events: tuple[int, ...]

    def covers(self, t: float, until: float | None = None) -> bool:
        """Whether the fault was active at time ``t`` (or at some moment of ``[t, until]``)."""
        hi = t if until is None else until
        return self.start <= hi and (self.end is None or self.end >= t)


@dataclass
class History:
    """A thread-safe, append-only list of events."""

    events: list[Event] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    # -- recording -------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def append(self, process: str, type: EventType, f: str, value: Any = None,
               fault: bool = False, at: float | None = None) -> Event:
        with self._lock:
            ev = Event(process, type, f, value, self.now() if at is None else at,
                       len(self.events), fault)
            self.events.append(ev)
            return ev

    def invoke(self, process: str, f: str, value: Any = None) -> Event:
        return self.append(process, "invoke", f, value)

    def complete(self, invoke: Event, type: EventType, value: Any = None) -> Event:
        if type not in COMPLETIONS:
            raise ValueError(f"completion type must be one of {COMPLETIONS}, not {type!r}")
        return self.append(invoke.process, type, invoke.f, value)

    def fault(self, name: str, target: str | None = None, phase: str = "start",
              **params: Any) -> Event:
        return self.append("nemesis", "info", name,
                           {"phase": phase, "target": target, **params}, fault=True)

    # -- reading ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Event]:
        return iter(list(self.events))

    def __len__(self) -> int:
        return len(self.events)

    def operations(self) -> list[Operation]:
        """Pair each invoke with the next completion of the same process and op."""
        open_: dict[tuple[str, str], list[Event]] = {}
        pairs: dict[int, Event | None] = {}
        order: list[Event] = []
        for ev in self.events:
            if ev.fault:
                continue
            key = (ev.process, ev.f)
            if ev.type == "invoke":
                open_.setdefault(key, []).append(ev)
                order.append(ev)
                pairs[ev.index] = None
            elif open_.get(key):
                inv = open_[key].pop(0)
                pairs[inv.index] = ev
        return [Operation(inv, pairs[inv.index]) for inv in order]

    def faults(self) -> list[Event]:
        return [e for e in self.events if e.fault]

    def fault_windows(self, names: Iterable[str] | None = None) -> list[FaultWindow]:
        """Every fault as a window, in the order they started; an end pairs with the latest
        open start of the same fault and target. ``names`` keeps only those faults."""
        wanted = set(names) if names is not None else None
        out: list[list[Any]] = []
        for ev in self.faults():
            if wanted is not None and ev.f not in wanted:
                continue
            v = ev.value if isinstance(ev.value, dict) else {}
            target = v.get("target")
            if v.get("phase", "start") == "end":
                for w in reversed(out):
                    if w[0] == ev.f and w[1] == target and w[3] is None:
                        w[3], w[5] = ev.time, (*w[5], ev.index)
                        break
                else:  # an end whose start this history does not hold: an instant
                    out.append([ev.f, target, ev.time, ev.time, {}, (ev.index,)])
                continue
            params = {k: x for k, x in v.items() if k not in ("phase", "target")}
            out.append([ev.f, target, ev.time, None, params, (ev.index,)])
        return [FaultWindow(*w) for w in out]

    def processes(self) -> list[str]:
        seen: dict[str, None] = {}
        for e in self.events:
            seen.setdefault(e.process, None)
        return list(seen)

    # -- storage ---------------------------------------------------------------------------
    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w") as fh:
            for e in self.events:
                fh.write(json.dumps(e.to_dict(), default=repr) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_events(cls, events: Iterable[Event | dict]) -> "History":
        h = cls()
        for e in events:
            e = e if isinstance(e, Event) else Event(**e)
            h.events.append(Event(e.process, e.type, e.f, e.value, e.time, len(h.events), e.fault))
        return h

    @classmethod
    def from_jsonl(cls, path: str | Path) -> "History":
        with Path(path).open() as fh:
            return cls.from_events(json.loads(line) for line in fh if line.strip())
