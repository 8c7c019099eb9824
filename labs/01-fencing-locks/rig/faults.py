"""Lab 01's own fault: the lock server's clock steps ahead, and the leases on it run out early.

Redis expires a key when its own clock says the key's time is up. If an operator or NTP steps the
Redis host's clock forward, every lease on it ages by that step at once, and the ones shorter
than the step are gone: the chapter's Redlock section names exactly this. The kit cannot move a
real Redis server's clock, so this fault does to the keys what the step would do, with the
grader's own connection and in one atomic script: every key of the lock (``name`` and the keys
that start with it) that carries an expiry loses ``step`` seconds of it, and is deleted when less
than that was left. Keys without an expiry (a fence counter that is meant to last) are untouched.

    server = rig.fencing.LockServer(ns, lock_name)
    nemesis.inject("server-clock-jump", server, step=3600)

It is an instant (a step cannot be undone: healing it would not give the leases their time back).
The tests use it to end a lease at the exact moment they choose, instead of waiting for it.
"""
from __future__ import annotations

from splitbrain.faults.registry import Fault, FaultError, register

__all__ = ["ServerClockJump"]


@register
class ServerClockJump(Fault):
    """Param ``step`` (seconds, default 3600)."""

    name = "server-clock-jump"
    kind = "clock"
    description = ("the lock server's clock steps ahead by `step` seconds (an NTP step on the "
                   "Redis host): every lease on it ages that much at once, and the shorter ones "
                   "run out")
    needs = "age(step_ms) (the lab's lock server, rig.fencing.LockServer)"
    instant = True

    def check(self) -> None:
        if not callable(getattr(self.target, "age", None)):
            self._fail()
        step = self.params.get("step", 3600)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise FaultError(f"fault {self.name!r}: step is a number of seconds > 0, got {step!r}")

    def _inject(self) -> None:
        self.aged = self.target.age(int(float(self.params.get("step", 3600)) * 1000))
