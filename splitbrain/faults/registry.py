"""One registry: fault name -> fault class. Every fault has ``inject()`` and ``heal()``.

Faults are duck-typed on their target, so the same name works on a sandboxed worker, a service
handle from ``splitbrain.services``, a bare pid, a fault proxy or a ``Clock``:

=================  ==========================================  =====================================
name               target needs                                inject / heal
=================  ==========================================  =====================================
pause              ``pause()``/``resume()``, or a pid          SIGSTOP / SIGCONT (a GC pause)
kill, member-kill  ``kill()``, or a pid                        SIGKILL / restart only if asked
restart,           ``restart()``, or a pid + ``start=``        kill and start again / nothing
broker-restart
partition,         a proxy: ``blackhole()``                    bytes stop both ways / flow again
blackhole
latency            a proxy: ``latency(ms, jitter)``            delay / remove the toxic
reset              a proxy: ``reset_peer()``                   RST on next bytes / remove
refuse             a proxy: ``refuse()``                       refuse connections / accept again
bandwidth,         a proxy: ``bandwidth(rate)``,               throttle, slice / remove
slicer             ``slicer(...)``
clock-skew         ``skew_clock(s)`` or ``set_offset(s)``      wall clock ``offset`` s away / 0
clock-jump         ``jump_clock(s)`` or ``jump(s)``            step by ``step`` s / undo the step
clock-drift        ``set_rate(r)``                             run at ``rate`` / rate 1
crash              ``arm_crash(name)``, else this process      arm ``point`` / disarm
duplicate,         a ``Delivery``                              probability ``p`` / 0 and flush
reorder, delay
replay-pause       ``pause_replay()``/``resume_replay()``      standby stops applying WAL / resumes
standby-lag        ``set_apply_delay(ms)``                     commits applied ``ms`` late / on time
promote            ``promote()``                               standby/replica becomes primary
replica-failover   ``promote()``; ``primary=`` to kill first   kill primary, promote replica
=================  ==========================================  =====================================

``make_fault(name, target, **params)`` builds one; an unknown name or a target that lacks what the
fault needs raises ``FaultError`` naming what to pass instead.
"""
from __future__ import annotations

from typing import Any, ClassVar

from splitbrain.faults import crash, process
from splitbrain.faults.fault import Fault, FaultError, _call, _pid, target_name

__all__ = ["Fault", "FaultError", "FAULTS", "make_fault", "register", "target_name"]


# -- processes ---------------------------------------------------------------------------------
class Pause(Fault):
    name, needs = "pause", "pause()/resume() methods or a pid"

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
    """Params: ``restart=True`` (heal calls ``target.restart()``) or ``start=callable``."""
    name, needs = "kill", "a kill() method or a pid"

    def check(self) -> None:
        if not hasattr(self.target, "kill") and _pid(self.target) is None:
            self._fail()

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


class Restart(Fault):
    """Kill and start again in one step. Param ``start=callable`` for a bare pid."""
    name, needs = "restart", "a restart() method, or a pid and start=callable"

    def check(self) -> None:
        if not hasattr(self.target, "restart") and not (
                _pid(self.target) and callable(self.params.get("start"))):
            self._fail()

    def _inject(self) -> None:
        if hasattr(self.target, "restart"):
            _call(self.target, "restart")
        else:
            process.restart(_pid(self.target), self.params["start"])


class BrokerRestart(Restart):
    name = "broker-restart"


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


class Blackhole(Partition):
    name = "blackhole"


class Latency(_ProxyFault):
    name, method = "latency", "latency"

    def args(self) -> dict[str, Any]:
        a = super().args()
        a.setdefault("ms", 100)
        return a


class Reset(_ProxyFault):
    name, method = "reset", "reset_peer"


class Refuse(_ProxyFault):
    name, method = "refuse", "refuse"


class Bandwidth(_ProxyFault):
    name, method = "bandwidth", "bandwidth"

    def args(self) -> dict[str, Any]:
        a = super().args()
        a.setdefault("rate", 16)
        return a


class Slicer(_ProxyFault):
    name, method = "slicer", "slicer"


# -- clocks --------------------------------------------------------------------------------------
class ClockSkew(Fault):
    """Param ``offset`` (seconds, default 2.0)."""
    name, needs = "clock-skew", "skew_clock(seconds) or set_offset(seconds) (a worker or a Clock)"

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
    name, needs = "clock-drift", "set_rate(rate) (a Clock)"

    def check(self) -> None:
        if not hasattr(self.target, "set_rate"):
            self._fail()

    def _inject(self) -> None:
        self.target.set_rate(float(self.params.get("rate", 1.5)))

    def _heal(self) -> None:
        self.target.set_rate(1.0)


# -- crash points ----------------------------------------------------------------------------------
class Crash(Fault):
    """Params ``point`` (crash point name, required), ``after`` (hits to let pass, default 0).
    A target without ``arm_crash`` (or None) arms the point in this process."""
    name, needs = "crash", "arm_crash(name, after) (a worker), or None for this process"

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
        elif hasattr(self.target, "disarm_crash"):
            self.target.disarm_crash(self.params["point"])


# -- delivery --------------------------------------------------------------------------------------
class _DeliveryFault(Fault):
    """Param ``p`` (probability per message, default 0.3)."""
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


class Reorder(_DeliveryFault):
    name = "reorder"


class Delay(_DeliveryFault):
    name = "delay"


# -- service-level -----------------------------------------------------------------------------------
class ReplayPause(Fault):
    name, needs = "replay-pause", "pause_replay()/resume_replay() (a Postgres standby handle)"

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

    def check(self) -> None:
        if not hasattr(self.target, "set_apply_delay"):
            self._fail()

    def _inject(self) -> None:
        self.target.set_apply_delay(int(self.params.get("ms", 2000)))

    def _heal(self) -> None:
        self.target.set_apply_delay(0)


class Promote(Fault):
    name, needs = "promote", "promote() (a Postgres standby or Redis replica handle)"

    def check(self) -> None:
        if not hasattr(self.target, "promote"):
            self._fail()

    def _inject(self) -> None:
        self.target.promote()


class ReplicaFailover(Promote):
    """Param ``primary``: a handle with ``kill()`` to kill before promoting the replica."""
    name = "replica-failover"

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


FAULTS: dict[str, type[Fault]] = {cls.name: cls for cls in (
    Pause, Kill, MemberKill, Restart, BrokerRestart, Partition, Blackhole, Latency, Reset, Refuse,
    Bandwidth, Slicer, ClockSkew, ClockJump, ClockDrift, Crash, Duplicate, Reorder, Delay,
    ReplayPause, StandbyLag, Promote, ReplicaFailover)}


def make_fault(name: str, target: Any = None, **params: Any) -> Fault:
    """Build the fault called ``name`` for ``target`` (see the table in the module docstring)."""
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
    return FAULTS[name](target, **params)


def register(cls: type[Fault]) -> type[Fault]:
    """Add a fault class to FAULTS (usable as a decorator); its ``name`` must be new."""
    if cls.name in FAULTS and FAULTS[cls.name] is not cls:
        raise FaultError(f"a fault named {cls.name!r} is already registered")
    FAULTS[cls.name] = cls
    return cls

