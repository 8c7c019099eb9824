"""Lab 00's own faults: what happens to a request at the bank (:class:`rig.bank.Bank`).

The network faults of this lab are the kit's, on the fault proxy between the client and the bank
(``latency``, ``blackhole``, ``reset``, ``stall``). These two act on one request at the bank, so a
test can lose exactly the answer it means to lose and let the next request through::

    nemesis.inject("lost-reply", bank)                        # the next answer: a timeout
    nemesis.inject("lost-reply", bank, how="reset", times=2)  # the next two: connection reset
    slow = nemesis.inject("held-request", bank)               # the next request waits ...
    slow.heal()                                               # ... and is carried out now

A ``lost-reply`` is over once its ``times`` requests have been served: it heals itself then. A
``held-request`` holds until it is healed, like a server thread stuck behind a lock.
"""
from __future__ import annotations

from typing import Any

from splitbrain.faults.registry import Fault, FaultError, register

__all__ = ["LostReply", "HeldRequest"]


class _BankFault(Fault):
    """Param ``times`` (default 1): how many requests it takes."""

    needs = "arm() and disarm() (the lab's bank, rig.bank.Bank)"

    def check(self) -> None:
        if not (callable(getattr(self.target, "arm", None))
                and callable(getattr(self.target, "disarm", None))):
            self._fail()
        times = self.params.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultError(f"fault {self.name!r}: times is how many requests it takes (an int "
                             f">= 1), got {times!r}")

    def arm_params(self) -> dict[str, Any]:
        return {"times": int(self.params.get("times", 1))}

    def _inject(self) -> None:
        self.armed = self.target.arm(self.name, on_spent=self._spent, **self.arm_params())

    def _heal(self) -> None:
        self.target.disarm(self.armed)

    def _spent(self) -> None:
        """Called by the bank once the fault's last request has been served."""
        if self.active:
            self.heal()


@register
class LostReply(_BankFault):
    """Params: also ``how`` ("hang", the default: the client waits until it gives up; "reset":
    the connection is reset; "close": it is closed without an answer) and ``hold_s`` (default
    5.0: how long a hanging connection stays open for a client that never gives up)."""

    name = "lost-reply"
    kind = "network"
    description = ("the bank moves the money, and its answer never arrives: the connection hangs, "
                   "is reset or is closed without a word")

    def check(self) -> None:
        super().check()
        how = self.params.get("how", "hang")
        if how not in ("hang", "reset", "close"):
            raise FaultError(f"fault {self.name!r}: how is 'hang', 'reset' or 'close', "
                             f"got {how!r}")
        hold = self.params.get("hold_s", 5.0)
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or hold <= 0:
            raise FaultError(f"fault {self.name!r}: hold_s is a number of seconds > 0, "
                             f"got {hold!r}")

    def arm_params(self) -> dict[str, Any]:
        return {**super().arm_params(), "how": self.params.get("how", "hang"),
                "hold_s": float(self.params.get("hold_s", 5.0))}


@register
class HeldRequest(_BankFault):
    name = "held-request"
    kind = "service"
    description = ("the bank holds a request before acting on it (a stalled server thread) and "
                   "carries it out when healed, after the client has given up")

    def _spent(self) -> None:
        """A held request is released by healing the fault, never by itself."""
