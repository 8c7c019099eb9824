"""Seeded fault schedules, and the Nemesis that runs them and records every fault in the history.

A failing run is only useful if it can be run again. A schedule is therefore data: a list of
``FaultEvent(at, fault, target, params, duration)`` made by ``Schedule.from_seed(seed, ...)``; the
same seed and arguments give the same list on every machine, and the report prints the seed::

    sched = Schedule.from_seed(42, faults=["pause", "partition"], duration_s=6.0,
                               targets={"pause": ["a", "b"], "partition": ["redis"]})
    nemesis = Nemesis(history, targets={"a": worker_a, "b": worker_b, "redis": redis_proxy})
    nemesis.run(sched)            # or nemesis.start(sched) ... nemesis.wait()
    nemesis.heal_all()

Fault windows in a generated schedule never overlap, so each anomaly can be laid next to the one
fault that was active. ``faults`` may also be a dict ``name -> params``; a param given as a
``(low, high)`` pair is drawn from that range by the seed (``{"latency": {"ms": (50, 300)}}``).
"""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.faults.registry import FAULTS, Fault, FaultError, target_name
from splitbrain.history import History

__all__ = ["FaultEvent", "Schedule", "Nemesis"]


@dataclass(frozen=True)
class FaultEvent:
    """Inject ``fault`` on ``target`` (a name the Nemesis knows) at ``at`` seconds after the
    schedule starts; heal it ``duration`` seconds later (None: leave it until ``heal_all``)."""

    at: float
    fault: str
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Schedule:
    events: tuple[FaultEvent, ...]
    seed: int | None = None
    duration_s: float | None = None

    def __iter__(self):
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def to_json(self) -> str:
        return json.dumps({"seed": self.seed, "duration_s": self.duration_s,
                           "events": [e.to_dict() for e in self.events]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Schedule":
        data = json.loads(text)
        return cls(tuple(FaultEvent(**e) for e in data["events"]), data.get("seed"),
                   data.get("duration_s"))

    def describe(self) -> str:
        lines = [f"schedule seed={self.seed} ({len(self.events)} faults)"]
        for e in self.events:
            span = f"{e.at:6.2f}s" + (f" +{e.duration:.2f}s" if e.duration is not None else "")
            extra = " ".join(f"{k}={v}" for k, v in e.params.items())
            lines.append(f"  {span}  {e.fault}({e.target}) {extra}".rstrip())
        return "\n".join(lines)

    @classmethod
    def from_seed(cls, seed: int, faults: Sequence[str] | Mapping[str, Mapping[str, Any]],
                  duration_s: float, targets: Sequence[str] | Mapping[str, Sequence[str]],
                  *, gap_s: tuple[float, float] = (0.2, 1.0),
                  fault_s: tuple[float, float] = (0.3, 1.5)) -> "Schedule":
        """A reproducible list of non-overlapping fault windows inside ``duration_s`` seconds.

        ``targets``: target names for every fault, or a dict fault name -> target names.
        ``gap_s``/``fault_s``: ranges for the quiet time before each fault and for its length.
        """
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultError(f"a schedule seed is an int (printed in reports to replay), got {seed!r}")
        specs = {f: {} for f in faults} if not isinstance(faults, Mapping) else dict(faults)
        if not specs:
            raise FaultError("Schedule.from_seed needs at least one fault name")
        unknown = sorted(set(specs) - set(FAULTS))
        if unknown:
            raise FaultError(f"unknown fault(s) {unknown}; known: {', '.join(sorted(FAULTS))}")
        if duration_s <= 0:
            raise FaultError(f"duration_s must be > 0 seconds, got {duration_s!r}")
        for lo_hi, what in ((gap_s, "gap_s"), (fault_s, "fault_s")):
            if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
                raise FaultError(f"{what} is a (low, high) range of seconds, got {lo_hi!r}")
        per_fault = {f: list(targets.get(f, ())) if isinstance(targets, Mapping) else list(targets)
                     for f in specs}
        missing = [f for f, ts in per_fault.items() if not ts]
        if missing:
            raise FaultError(f"no targets for fault(s) {missing}; pass targets=[names] or "
                             f"{{fault: [names]}}")
        rng = random.Random(seed)
        names = list(specs)
        events, t = [], 0.0
        while True:
            at = t + rng.uniform(*gap_s)
            length = rng.uniform(*fault_s)
            if at + length > duration_s:
                break
            name = rng.choice(names)
            target = rng.choice(per_fault[name])
            params = {k: _draw(rng, v) for k, v in sorted(specs[name].items())}
            events.append(FaultEvent(round(at, 3), name, target, params, round(length, 3)))
            t = at + length
        return cls(tuple(events), seed, duration_s)


def _draw(rng: random.Random, value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float))
                                                            for v in value):
        lo, hi = value
        if isinstance(lo, int) and isinstance(hi, int):
            return rng.randint(lo, hi)
        return round(rng.uniform(lo, hi), 3)
    return value


class Nemesis:
    """Injects faults on named targets and records each start and end in the history.

    ``targets`` maps the names used in schedules to objects (workers, service handles, proxies,
    clocks, pids). ``fault(name, target, **params)`` is a context manager for one fault;
    ``inject``/``heal`` do it by hand; ``run``/``start`` follow a Schedule.
    """

    def __init__(self, history: History | None = None, registry: Mapping[str, type[Fault]] | None
                 = None, seed: int = 0, targets: Mapping[str, Any] | None = None) -> None:
        self.history = history if history is not None else History()
        self.registry = registry if registry is not None else FAULTS  # live: rig faults join it
        self.seed = seed
        self.targets: dict[str, Any] = dict(targets or {})
        self.active: list[tuple[Fault, str]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.errors: list[str] = []

    def add_target(self, name: str, target: Any) -> None:
        self.targets[name] = target

    def _resolve(self, target: Any) -> tuple[Any, str | None]:
        if isinstance(target, str):
            if target not in self.targets:
                raise FaultError(f"unknown target {target!r}; the nemesis knows "
                                 f"{sorted(self.targets) or 'no targets yet (add_target)'}")
            return self.targets[target], target
        return target, target_name(target)

    def inject(self, name: str, target: Any = None, **params: Any) -> Fault:
        """Build and inject one fault now; records ``phase="start"``."""
        if name not in self.registry:
            raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(sorted(self.registry))}")
        obj, label = self._resolve(target)
        fault = self.registry[name](obj, **params)
        recorded = {k: v for k, v in fault.describe().items() if k not in ("fault", "target")}
        self.history.fault(name, label, phase="start", **recorded)
        try:
            fault.inject()
        except Exception as e:
            self.history.fault(name, label, phase="end", error=f"{type(e).__name__}: {e}")
            raise
        if fault.instant:          # a one-off event (a kill, a restart): over as it happens
            fault.active = False
            self.history.fault(name, label, phase="end")
            return fault
        fault._nemesis = self
        with self._lock:
            self.active.append((fault, label))
        return fault

    def heal(self, fault: Fault) -> None:
        """Heal one injected fault; records ``phase="end"``."""
        with self._lock:
            entry = next((e for e in self.active if e[0] is fault), None)
            if entry is not None:
                self.active.remove(entry)
        if entry is None:            # already healed (heal_all, or twice): nothing to record
            fault.heal_now()
            return
        try:
            fault.heal_now()
        finally:
            self.history.fault(fault.name, entry[1], phase="end")

    def heal_all(self) -> None:
        """Stop a running schedule and heal every active fault, newest first."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        errors = []
        while True:
            with self._lock:
                if not self.active:
                    break
                fault = self.active[-1][0]
            try:
                self.heal(fault)
            except Exception as e:    # noqa: BLE001 - heal the rest, then report
                errors.append(f"{fault.name}: {type(e).__name__}: {e}")
        if errors:
            raise FaultError("some faults could not be healed: " + "; ".join(errors))

    close = heal_all

    def schedule(self, faults: Sequence[str] | Mapping[str, Mapping[str, Any]], duration_s: float,
                 targets: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                 **kwargs: Any) -> Schedule:
        """``Schedule.from_seed`` with this nemesis's seed; targets default to every name it knows."""
        if targets is None:
            targets = sorted(self.targets)
        return Schedule.from_seed(self.seed, faults, duration_s, targets, **kwargs)

    def fault(self, name: str, target: Any = None, **params: Any) -> "_Window":
        """``with nemesis.fault("pause", "a"):`` — injected inside the block, healed after."""
        return _Window(self, name, target, params)

    # -- schedules ----------------------------------------------------------------------------
    def steps(self, schedule: Schedule | Iterable[FaultEvent]) -> list[tuple[float, int, str, FaultEvent]]:
        """The schedule as ordered (time, order, "inject"|"heal", event) steps."""
        out = []
        for i, e in enumerate(schedule):
            out.append((e.at, 2 * i + 1, "inject", e))
            if e.duration is not None:
                out.append((e.at + e.duration, 2 * i, "heal", e))
        return sorted(out, key=lambda s: (s[0], s[1]))

    def run(self, schedule: Schedule | Iterable[FaultEvent]) -> None:
        """Follow the schedule in this thread (blocking); heals what it injected."""
        self._stop.clear()
        t0 = time.monotonic()
        live: dict[int, Fault] = {}
        try:
            for at, _, action, event in self.steps(schedule):
                if self._stop.wait(max(0.0, t0 + at - time.monotonic())):
                    return
                if action == "inject":
                    fault = self.inject(event.fault, event.target, **event.params)
                    if event.duration is not None:       # open-ended faults wait for heal_all
                        live[id(event)] = fault
                elif id(event) in live:
                    self.heal(live.pop(id(event)))
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {e}")
            raise
        finally:
            for fault in live.values():
                self.heal(fault)

    def start(self, schedule: Schedule | Iterable[FaultEvent]) -> threading.Thread:
        """Follow the schedule in a background thread; ``wait()`` joins it."""
        def target():
            try:
                self.run(schedule)
            except Exception:   # noqa: BLE001 - kept in self.errors, raised by wait()
                pass
        self._thread = threading.Thread(target=target, daemon=True, name="nemesis")
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise FaultError(f"the fault schedule did not finish within {timeout} s")
        if self.errors:
            raise FaultError("the fault schedule failed: " + "; ".join(self.errors))


class _Window:
    def __init__(self, nemesis: Nemesis, name: str, target: Any, params: dict) -> None:
        self.nemesis, self.name, self.target, self.params = nemesis, name, target, params
        self.fault: Fault | None = None

    def __enter__(self) -> Fault:
        self.fault = self.nemesis.inject(self.name, self.target, **self.params)
        return self.fault

    def __exit__(self, *exc: Any) -> None:
        if self.fault is not None:
            self.nemesis.heal(self.fault)
