"""One registry: fault name -> fault class. Every fault has ``inject()`` and ``heal()``.

Faults are duck-typed on their target, so the same name works on a sandboxed worker, a service
handle from ``splitbrain.services``, a bare pid, a fault proxy or a ``Clock``:

=================  ==========================================  =====================================
name               target needs                                inject / heal
=================  ==========================================  =====================================
pause              ``pause()``/``resume()``, or a pid          SIGSTOP / SIGCONT (a GC pause)
kill, member-kill  ``kill()``, or a pid                        SIGKILL / restart only if asked
restart,           ``restart()``, or a pid + ``start=``        kill and start again / nothing
broker-restart                                                 (``down=True``: kill / start again)
partition,         a proxy: ``blackhole()``                    bytes stop both ways / flow again
blackhole
latency            a proxy: ``latency(ms, jitter)``            delay / remove the toxic
reset              a proxy: ``reset_peer()``                   RST on next bytes / remove
refuse             a proxy: ``refuse()``                       refuse connections / accept again
bandwidth,         a proxy: ``bandwidth(rate)``,               throttle, slice / remove
slicer             ``slicer(...)``
stall              a proxy: ``stall(after, stream)``           hold message ``after``+1 / release
clock-skew         ``skew_clock(s)`` or ``set_offset(s)``      wall clock ``offset`` s away / 0
clock-jump         ``jump_clock(s)`` or ``jump(s)``            step by ``step`` s / undo the step
clock-drift        ``set_clock_rate(r)`` or ``set_rate(r)``    run at ``rate`` / rate 1
crash              ``arm_crash(name)``, else this process      arm ``point`` / disarm
duplicate,         a ``Delivery``                              probability ``p`` / 0 and flush
reorder, delay
replay-pause       ``pause_replay()``/``resume_replay()``      standby stops applying WAL / resumes
standby-lag        ``set_apply_delay(ms)``                     commits applied ``ms`` late / on time
promote            ``promote()``                               standby/replica becomes primary
replica-failover   ``promote()``; ``primary=`` to kill first   kill primary, promote replica
concurrency        anything, or nothing                        recorded only (a condition)
=================  ==========================================  =====================================

``make_fault(name, target, **params)`` builds one; an unknown name or a target that lacks what the
fault needs raises ``FaultError`` naming what to pass instead. A lab adds its own faults in
``labs/NN-slug/rig/faults.py`` with :func:`register`; they exist while that rig is loaded.
``splitbrain faults`` prints the registry, and the book's fault table is generated from it.
"""
from __future__ import annotations

from typing import Any, ClassVar

from splitbrain.faults import crash, process
from splitbrain.faults.fault import Fault, FaultError, _call, _pid, target_name

__all__ = ["Fault", "FaultError", "FAULTS", "KIT_FAULTS", "Condition", "make_fault", "register",
           "lab_faults", "forget_lab_faults", "target_name"]


# -- processes ---------------------------------------------------------------------------------
class Pause(Fault):
    name, needs = "pause", "pause()/resume() methods or a pid"
    kind = "process"
    freezes = True
    description = ("a process frozen mid-flight (SIGSTOP, then SIGCONT), like a long garbage-collection pause")

    def check(self) -> None:
        if not (hasattr(self.target, "pause") and hasattr(self.target, "resume")) \
                and _pid(self.target) is None:
            self._fail()

    def _inject(self) -> None:
        if hasattr(self.target, "pause"):
            _call(self.target, "pause")
        else:
            process.pause(_pid(self.target), tree=self.params.get("tree", False))

    def _heal(self) -> None:
        if hasattr(self.target, "resume"):
            _call(self.target, "resume")
        else:
            process.resume(_pid(self.target), tree=self.params.get("tree", False))


class Kill(Fault):
    """Params: ``restart=True`` (heal calls ``target.restart()``) or ``start=callable``.
    Without them a kill is an instant: nothing to heal."""
    name, needs = "kill", "a kill() method or a pid"
    kind = "process"
    description = ("a process killed with SIGKILL in the middle of its work: no cleanup, no goodbye")

    def check(self) -> None:
        if not hasattr(self.target, "kill") and _pid(self.target) is None:
            self._fail()

    @property
    def instant(self) -> bool:  # type: ignore[override]
        return not (self.params.get("restart") or callable(self.params.get("start")))

    def _inject(self) -> None:
        if hasattr(self.target, "kill"):
            _call(self.target, "kill")
        else:
            process.kill(_pid(self.target), tree=self.params.get("tree", True))

    def _heal(self) -> None:
        start = self.params.get("start")
        if callable(start):
            start()
        elif self.params.get("restart"):
            _call(self.target, "restart")


class MemberKill(Kill):
    name = "member-kill"
    kind = "process"
    description = ("a member of a group (a consumer, a node) killed with SIGKILL")


class Restart(Fault):
    """Kill and start again in one step. Param ``start=callable`` for a bare pid. With
    ``down=True`` the target is killed at once and started again only by ``heal()``: a window in
    which it is down (what do its clients do meanwhile?) rather than an instant."""
    name, needs = "restart", "a restart() method, or a pid and start=callable"
    kind = "service"
    description = ("a server or worker killed and started again at once")

    def check(self) -> None:
        if not hasattr(self.target, "restart") and not (
                _pid(self.target) and callable(self.params.get("start"))):
            self._fail()

    @property
    def instant(self) -> bool:  # type: ignore[override]
        return not self.params.get("down")

    def _inject(self) -> None:
        if self.params.get("down"):
            if hasattr(self.target, "kill"):
                _call(self.target, "kill")
            else:
                process.kill(_pid(self.target), tree=True)
        elif hasattr(self.target, "restart"):
            _call(self.target, "restart")
        else:
            process.restart(_pid(self.target), self.params["start"])

    def _heal(self) -> None:
        if not self.params.get("down"):
            return
        if hasattr(self.target, "restart"):
            _call(self.target, "restart")
        else:
            self.params["start"]()


class BrokerRestart(Restart):
    name = "broker-restart"
    kind = "service"
    description = ("the Kafka broker killed and started again")


# -- network (through a fault proxy) ---------------------------------------------------------------
class _ProxyFault(Fault):
    method: ClassVar[str] = ""

    def check(self) -> None:
        if not callable(getattr(self.target, self.method, None)):
            self.needs = f"a {self.method}() method (a FaultProxy or a toxiproxy Proxy)"
            self._fail()

    def args(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k != "label"}

    def _inject(self) -> None:
        self.handle = getattr(self.target, self.method)(**self.args())

    def _heal(self) -> None:
        handle = getattr(self, "handle", None)
        if handle is not None and callable(getattr(handle, "remove", None)):
            handle.remove()
        elif callable(getattr(self.target, "heal", None)):
            self.target.heal()


class Partition(_ProxyFault):
    name, method = "partition", "blackhole"
    kind = "network"
    description = ("a network partition: the fault proxy holds every byte both ways until healed")


class Blackhole(Partition):
    name = "blackhole"
    kind = "network"
    description = ("a partition of one proxy: bytes are held, not lost, and arrive after the heal")


class Latency(_ProxyFault):
    name, method = "latency", "latency"
    kind = "network"
    description = ("added network latency (and jitter) through the fault proxy")

    def args(self) -> dict[str, Any]:
        a = super().args()
        a.setdefault("ms", 100)
        return a


class Reset(_ProxyFault):
    name, method = "reset", "reset_peer"
    kind = "network"
    description = ("connections reset (TCP RST) by the fault proxy on their next bytes")


class Refuse(_ProxyFault):
    name, method = "refuse", "refuse"
    kind = "network"
    description = ("the fault proxy refuses new connections and closes open ones")


class Bandwidth(_ProxyFault):
    name, method = "bandwidth", "bandwidth"
    kind = "network"
    description = ("a slow link: the fault proxy passes at most `rate` KB/s")

    def args(self) -> dict[str, Any]:
        a = super().args()
        a.setdefault("rate", 16)
        return a


class Slicer(_ProxyFault):
    name, method = "slicer", "slicer"
    kind = "network"
    description = ("TCP streams cut into small, delayed slices")


class Stall(_ProxyFault):
    """Params ``after`` (messages to let through first, default 0), ``stream`` ("upstream": hold
    the next request, the default; "downstream": hold the next reply). ``wait(timeout)`` blocks
    until the stall engaged, so a test acts at that exact moment."""
    name, method = "stall", "stall"
    kind = "network"
    description = ("a link passes its first `after` messages, then holds the next until healed: "
                   "a stall placed exactly between two round trips")

    def wait(self, timeout: float = 10.0) -> bool:
        handle = getattr(self, "handle", None)
        return bool(handle is not None and handle.wait_held(timeout))


# -- clocks --------------------------------------------------------------------------------------
class ClockSkew(Fault):
    """Param ``offset`` (seconds, default 2.0)."""
    name, needs = "clock-skew", "skew_clock(seconds) or set_offset(seconds) (a worker or a Clock)"
    kind = "clock"
    description = ("a process's wall clock set `offset` seconds away from the others'")

    def check(self) -> None:
        if not (hasattr(self.target, "skew_clock") or hasattr(self.target, "set_offset")):
            self._fail()

    def _set(self, seconds: float) -> None:
        if hasattr(self.target, "skew_clock"):
            _call(self.target, "skew_clock", seconds)
        else:
            self.target.set_offset(seconds)

    def _inject(self) -> None:
        self._set(float(self.params.get("offset", 2.0)))

    def _heal(self) -> None:
        self._set(0.0)


class ClockJump(Fault):
    """Params ``step`` (seconds, default 5.0), ``monotonic`` (bool)."""
    name, needs = "clock-jump", "jump_clock(seconds) or jump(seconds) (a worker or a Clock)"
    kind = "clock"
    description = ("a process's clock steps forward or back at once (NTP correction, VM migration); with monotonic=true its monotonic clock too")

    def check(self) -> None:
        if not (hasattr(self.target, "jump_clock") or hasattr(self.target, "jump")):
            self._fail()

    def _jump(self, step: float) -> None:
        mono = bool(self.params.get("monotonic", False))
        if hasattr(self.target, "jump_clock"):
            _call(self.target, "jump_clock", step, monotonic=mono)
        else:
            self.target.jump(step, monotonic=mono)

    def _inject(self) -> None:
        self._jump(float(self.params.get("step", 5.0)))

    def _heal(self) -> None:
        self._jump(-float(self.params.get("step", 5.0)))


class ClockDrift(Fault):
    """Param ``rate`` (default 1.5: the clock runs 50 % fast)."""
    name, needs = "clock-drift", "set_clock_rate(rate) (a worker) or set_rate(rate) (a Clock)"
    kind = "clock"
    description = ("a process's clocks run fast or slow (`rate` times real time)")

    def check(self) -> None:
        if not (hasattr(self.target, "set_rate") or hasattr(self.target, "set_clock_rate")):
            self._fail()

    def _set(self, rate: float) -> None:
        if hasattr(self.target, "set_clock_rate"):
            self.target.set_clock_rate(rate)
        else:
            self.target.set_rate(rate)

    def _inject(self) -> None:
        self._set(float(self.params.get("rate", 1.5)))

    def _heal(self) -> None:
        self._set(1.0)


# -- crash points ----------------------------------------------------------------------------------
class Crash(Fault):
    """Params ``point`` (crash point name, required), ``after`` (hits to let pass, default 0).
    A target without ``arm_crash`` (or None) arms the point in this process."""
    name, needs = "crash", "arm_crash(name, after) (a worker), or None for this process"
    kind = "crash"
    description = ("a process killed at a named crash point in its code: the worst possible moment")

    def check(self) -> None:
        crash._check_name(self.params.get("point", ""))
        if self.target is not None and not hasattr(self.target, "arm_crash"):
            self._fail()

    def _inject(self) -> None:
        point, after = self.params["point"], int(self.params.get("after", 0))
        if self.target is None:
            crash.arm(point, after)
        else:
            self.target.arm_crash(point, after)

    def _heal(self) -> None:
        if self.target is None:
            crash.disarm(self.params["point"])
        elif hasattr(self.target, "disarm_crash") and getattr(self.target, "alive", True):
            from splitbrain.sandbox.protocol import WorkerDied
            try:
                self.target.disarm_crash(self.params["point"])
            except WorkerDied:   # the crash fired while it was being disarmed: that worker is done
                pass


# -- delivery --------------------------------------------------------------------------------------
class _DeliveryFault(Fault):
    """Param ``p`` (probability per message, default 0.3)."""
    kind = "delivery"
    needs = "configure(...) and flush() (a splitbrain.faults.delivery.Delivery)"

    def check(self) -> None:
        if not (hasattr(self.target, "configure") and hasattr(self.target, "flush")):
            self._fail()

    def _inject(self) -> None:
        self.target.configure(**{self.name: float(self.params.get("p", 0.3))})

    def _heal(self) -> None:
        self.target.configure(**{self.name: 0.0})
        self.target.flush()


class Duplicate(_DeliveryFault):
    name = "duplicate"
    kind = "delivery"
    description = ("the same message delivered more than once")


class Reorder(_DeliveryFault):
    name = "reorder"
    kind = "delivery"
    description = ("messages delivered out of order")


class Delay(_DeliveryFault):
    name = "delay"
    kind = "delivery"
    description = ("messages held back and delivered late")


# -- service-level -----------------------------------------------------------------------------------
class ReplayPause(Fault):
    name, needs = "replay-pause", "pause_replay()/resume_replay() (a Postgres standby handle)"
    kind = "service"
    description = ("a Postgres standby stops applying the primary's changes (replication lag that grows)")

    def check(self) -> None:
        if not (hasattr(self.target, "pause_replay") and hasattr(self.target, "resume_replay")):
            self._fail()

    def _inject(self) -> None:
        self.target.pause_replay()

    def _heal(self) -> None:
        self.target.resume_replay()


class StandbyLag(Fault):
    """Param ``ms`` (default 2000): the standby applies each commit that long after the primary."""
    name, needs = "standby-lag", "set_apply_delay(ms) (a Postgres standby handle)"
    kind = "service"
    description = ("a Postgres standby applies each commit `ms` milliseconds after the primary")

    def check(self) -> None:
        if not hasattr(self.target, "set_apply_delay"):
            self._fail()

    def _inject(self) -> None:
        self.target.set_apply_delay(int(self.params.get("ms", 2000)))

    def _heal(self) -> None:
        self.target.set_apply_delay(0)


class Promote(Fault):
    name, needs = "promote", "promote() (a Postgres standby or Redis replica handle)"
    kind = "service"
    description = ("a standby or replica promoted to primary")
    instant = True

    def check(self) -> None:
        if not hasattr(self.target, "promote"):
            self._fail()

    def _inject(self) -> None:
        self.target.promote()


class ReplicaFailover(Promote):
    """Param ``primary``: a handle with ``kill()`` to kill before promoting the replica."""
    name = "replica-failover"
    kind = "service"
    description = ("the primary killed and its replica promoted, as a failover does")
    instant = True

    def _inject(self) -> None:
        primary = self.params.get("primary")
        if primary is not None:
            primary.kill()
        self.target.promote()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self.params.get("primary") is not None:
            d["primary"] = target_name(self.params["primary"])
        return d


# -- conditions ------------------------------------------------------------------------------------
class Condition(Fault):
    """A shape of the scenario rather than an injected failure (several clients at once, a
    request timed across a window boundary). Injecting it changes nothing; it is recorded, so the
    picture shades when it held and the report names it. Any target (or none) will do."""
    kind = "condition"

    def _inject(self) -> None:
        pass


class Concurrency(Condition):
    name = "concurrency"
    description = "several clients or processes calling at the same moment"


FAULTS: dict[str, type[Fault]] = {cls.name: cls for cls in (
    Pause, Kill, MemberKill, Restart, BrokerRestart, Partition, Blackhole, Latency, Reset, Refuse,
    Bandwidth, Slicer, Stall, ClockSkew, ClockJump, ClockDrift, Crash, Duplicate, Reorder, Delay,
    ReplayPause, StandbyLag, Promote, ReplicaFailover, Concurrency)}
KIT_FAULTS = frozenset(FAULTS)


def make_fault(name: str, target: Any = None, **params: Any) -> Fault:
    """Build the fault called ``name`` for ``target`` (see the table in the module docstring)."""
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
    return FAULTS[name](target, **params)


def register(cls: type[Fault]) -> type[Fault]:
    """Add a fault class to FAULTS (usable as a decorator); its ``name`` must be new.

    A lab's own faults are registered this way by its ``rig/faults.py`` when the rig is loaded
    (``splitbrain.rig``), and forgotten when it is unloaded."""
    import re
    if not isinstance(getattr(cls, "name", None), str) or not re.match(r"^[a-z0-9][a-z0-9-]*$",
                                                                        cls.name):
        raise FaultError(f"{cls.__name__}: a fault's name is lowercase words joined by dashes, "
                         f"got {getattr(cls, 'name', None)!r}")
    if not getattr(cls, "description", ""):
        raise FaultError(f"fault {cls.name!r}: give it a one-sentence `description` (the book's "
                         f"fault table shows it)")
    old = FAULTS.get(cls.name)
    if old is not None and old is not cls and (old.__module__, old.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise FaultError(f"a fault named {cls.name!r} is already registered "
                         f"({old.__module__}.{old.__qualname__})")
    FAULTS[cls.name] = cls
    return cls


def lab_faults() -> dict[str, type[Fault]]:
    """The faults registered by the loaded lab's rig."""
    return {n: c for n, c in FAULTS.items() if n not in KIT_FAULTS}


def forget_lab_faults() -> None:
    for name in list(lab_faults()):
        del FAULTS[name]

