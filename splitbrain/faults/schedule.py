"""Seeded fault schedules, and the Nemesis that runs them and records every fault in the history.

A failing run is only useful if it can be run again. A schedule is therefore data: a list of
``FaultEvent(at, fault, target, params, duration)`` made by ``Schedule.from_seed(seed, ...)``; the
same seed and arguments give the same list on every machine, and the report prints the seed::

    sched = Schedule.from_seed(42, faults=["pause", "partition"], duration_s=6.0,
                               targets={"pause": ["a", "b"], "partition": ["redis"]})
    nemesis = Nemesis(history, targets={"a": worker_a, "b": worker_b, "redis": redis_proxy})
    nemesis.run(sched)            # or nemesis.start(sched) ... nemesis.wait()
    nemesis.heal_all()

Followed that way, the schedule runs on wall-clock time: where a fault lands among the workload's
operations depends on how fast the machine runs them. A schedule followed on a :class:`Pace`
lands its faults between the workload's own steps instead, the same ones on a quiet machine and a
busy one::

    pace = Pace(step_s=0.04)       # one step (a round of the workload) stands for 0.04 s
    def workload():
        while (n := pace.step()) is not None:    # the faults due at step n happen first
            round_(nodes, n)
    threading.Thread(target=workload).start()
    nemesis.run(sched, pace=pace)  # returns once the workload has run every step
    print(sched.describe(pace=pace))

A fault is injected at the first step boundary at or after its ``at`` (step ``n`` stands for
``n * step_s`` seconds) and healed at the boundary of its end, at least one step later; the
workload waits at a boundary until what is due there has happened. A fault that freezes its target
(``Fault.freezes``: a pause) is healed ``duration`` seconds after it was injected instead, on the
wall clock, like a real stop-the-world pause: a workload that calls the frozen process waits in
that call and could never reach the step that heals it.

Fault windows in a generated schedule never overlap, so each anomaly can be laid next to the one
fault that was active. ``faults`` may also be a dict ``name -> params``; a param given as a
``(low, high)`` pair is drawn from that range by the seed (``{"latency": {"ms": (50, 300)}}``).
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from splitbrain.faults.registry import FAULTS, Fault, FaultError, target_name
from splitbrain.history import History

__all__ = ["FaultEvent", "Schedule", "Nemesis", "Pace"]


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

    def describe(self, pace: "Pace | None" = None, registry: Mapping[str, type[Fault]] | None
                 = None) -> str:
        """One line per fault: when it starts and how long it lasts, in seconds, or with ``pace``
        at which step of the workload it is injected and at which it is healed (a fault that
        freezes its target lasts its seconds, whatever the steps)."""
        if pace is None:
            lines = [f"schedule seed={self.seed} ({len(self.events)} faults)"]
        else:
            lines = [f"schedule seed={self.seed} ({len(self.events)} faults), followed on the "
                     f"workload's steps of {pace.step_s:g} s ({pace.last_step(self)} steps)"]
        registry = registry if registry is not None else FAULTS
        for e in self.events:
            if pace is None:
                span = f"{e.at:6.2f}s" + (f" +{e.duration:.2f}s" if e.duration is not None else "")
            else:
                start = pace.step_of(e.at)
                span = f"step {start:3d} ({e.at:5.2f}s)"
                if e.duration is not None:
                    if _freezes(registry, e.fault):
                        span += f" for {e.duration:.2f}s of wall clock"
                    else:
                        span += f" to step {pace.heal_step(e):3d}"
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


def _freezes(registry: Mapping[str, type[Fault]], name: str) -> bool:
    cls = registry.get(name)
    return bool(getattr(cls, "freezes", False))


class Pace:
    """The steps of a workload, for following a schedule on them rather than on wall-clock time.

    The workload calls :meth:`step` before each of its steps (a round of operations); it answers
    the step's number (0, 1, 2, ...) once the nemesis has injected and healed every fault due at
    that boundary, and None when the schedule is over or was stopped. ``Nemesis.run(schedule,
    pace=pace)`` follows the schedule on these steps: step ``n`` stands for ``n * step_s`` seconds
    of the schedule, so a fault at ``at`` seconds is injected before step ``step_of(at)``, with the
    workload held at that boundary, and healed before step ``heal_step(event)``.
    ``timeout_s``: how long either side waits for the other before giving up (generous: only a
    workload that never gets there waits it out).
    """

    def __init__(self, step_s: float, timeout_s: float = 60.0) -> None:
        if not step_s > 0:
            raise FaultError(f"a pace's step_s is a positive number of seconds, got {step_s!r}")
        self.step_s = float(step_s)
        self.timeout_s = float(timeout_s)
        self._cond = threading.Condition()
        self._reached = -1          # the boundary the workload waits at (or last passed)
        self._ready = -1            # every fault due at boundaries <= this one has happened
        self._last: int | None = None   # the number of steps of the schedule being followed
        self._closed = False

    def step_of(self, seconds: float) -> int:
        """The first step boundary at or after ``seconds`` of the schedule."""
        return max(0, math.ceil(round(seconds / self.step_s, 9)))

    def heal_step(self, event: FaultEvent) -> int:
        """The boundary an event's fault is healed at: its end's, at least a step after it began."""
        start = self.step_of(event.at)
        if event.duration is None:
            return start
        return max(start + 1, self.step_of(event.at + event.duration))

    def last_step(self, schedule: Schedule | Iterable[FaultEvent]) -> int:
        """How many steps the workload runs: the schedule's ``duration_s``, and at least one
        step after every fault begins and after every heal at a step boundary."""
        events = list(schedule)
        n = self.step_of(schedule.duration_s) if isinstance(schedule, Schedule) and \
            schedule.duration_s is not None else 0
        for e in events:
            n = max(n, self.step_of(e.at) + 1, self.heal_step(e) + 1 if e.duration is not None
                    else 0)
        return n

    # -- the workload's side --------------------------------------------------------------------
    def step(self) -> int | None:
        """Wait at the next step boundary until its faults have happened; its number, or None
        when the schedule is over (or stopped) and the workload should stop."""
        with self._cond:
            n = self._reached + 1
            self._reached = n
            self._cond.notify_all()
            deadline = time.monotonic() + self.timeout_s
            while not self._closed and self._ready < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FaultError(f"the nemesis did not get step {n} of the schedule ready "
                                     f"within {self.timeout_s:g} s")
                self._cond.wait(left)
            if self._closed or (self._last is not None and n >= self._last):
                return None
            return n

    def __iter__(self):
        while (n := self.step()) is not None:
            yield n

    def close(self) -> None:
        """Stop: the workload's next ``step()`` answers None, a waiting nemesis returns."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the nemesis's side ---------------------------------------------------------------------
    def _begin(self, last: int) -> None:
        with self._cond:
            self._last = last
            self._cond.notify_all()

    def _wait_reached(self, n: int, until: float | None) -> bool:
        """Wait until the workload waits at boundary ``n`` (True), or until the monotonic time
        ``until`` (False). Raises when the pace is closed or the workload never comes."""
        with self._cond:
            deadline = time.monotonic() + self.timeout_s
            while self._reached < n and not self._closed:
                now = time.monotonic()
                if until is not None and now >= until:
                    return False
                if now >= deadline:
                    raise FaultError(f"the workload did not reach step {n} of the schedule "
                                     f"within {self.timeout_s:g} s")
                self._cond.wait(min(deadline, until if until is not None else deadline) - now)
            if self._closed:
                raise _Stopped
            return True

    def _release(self, n: int) -> None:
        with self._cond:
            self._ready = max(self._ready, n)
            self._cond.notify_all()


class _Stopped(Exception):
    """The pace was closed while the nemesis followed it."""


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
        self._pace: Pace | None = None
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
        if self._pace is not None:
            self._pace.close()
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

    def run(self, schedule: Schedule | Iterable[FaultEvent], pace: Pace | None = None) -> None:
        """Follow the schedule in this thread (blocking); heals what it injected.

        Without ``pace``, on wall-clock time from now. With a :class:`Pace`, on the steps of the
        workload that calls ``pace.step()``: returns once the workload has been let through its
        last step (and the faults that freeze their target have been healed)."""
        if pace is not None:
            return self._run_paced(schedule, pace)
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

    def _run_paced(self, schedule: Schedule | Iterable[FaultEvent], pace: Pace) -> None:
        self._stop.clear()
        self._pace = pace
        events = list(schedule)
        timed: list[tuple[float, int, FaultEvent]] = []   # (heal time, order, event): wall clock
        at_step: list[tuple[int, float, int, str, FaultEvent]] = []
        for i, e in enumerate(events):
            at_step.append((pace.step_of(e.at), e.at, 2 * i + 1, "inject", e))
            if e.duration is not None and not _freezes(self.registry, e.fault):
                at_step.append((pace.heal_step(e), e.at + e.duration, 2 * i, "heal", e))
        at_step.sort(key=lambda s: s[:3])
        live: dict[int, Fault] = {}
        try:
            last = pace.last_step(schedule if isinstance(schedule, Schedule) else events)
            pace._begin(last)
        except BaseException:
            pace.close()
            raise

        def heal_due(now: float) -> None:
            while timed and timed[0][0] <= now:
                _, _, event = timed.pop(0)
                if id(event) in live:
                    self.heal(live.pop(id(event)))

        try:
            boundary = 0
            pending = list(at_step)
            while boundary <= last:
                # wait for the workload to reach the boundary; heal frozen targets on time meanwhile
                while not pace._wait_reached(boundary, timed[0][0] if timed else None):
                    heal_due(time.monotonic())
                while pending and pending[0][0] == boundary:
                    _, _, order, action, event = pending.pop(0)
                    if action == "inject":
                        fault = self.inject(event.fault, event.target, **event.params)
                        if event.duration is not None:
                            live[id(event)] = fault
                            if _freezes(self.registry, event.fault):
                                timed.append((time.monotonic() + event.duration, order, event))
                                timed.sort(key=lambda t: t[:2])
                    elif id(event) in live:
                        self.heal(live.pop(id(event)))
                heal_due(time.monotonic())
                pace._release(boundary)
                boundary += 1
            while timed and not self._stop.is_set():    # a pause still running: let it last
                if self._stop.wait(max(0.0, timed[0][0] - time.monotonic())):
                    break
                heal_due(time.monotonic())
        except _Stopped:
            return
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {e}")
            raise
        finally:
            pace.close()
            for fault in live.values():
                self.heal(fault)

    def start(self, schedule: Schedule | Iterable[FaultEvent], pace: Pace | None = None
              ) -> threading.Thread:
        """Follow the schedule in a background thread; ``wait()`` joins it."""
        def target():
            try:
                self.run(schedule, pace)
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
