"""Lab 03's own faults: what a participant (inventory, payment, shipping) does to a call.

Each one is armed on the participants server (:class:`rig.saga_server.Participants`) for the calls
of one operation of one saga, through the nemesis, which records when it was armed and when it
was over::

    nemesis.inject("lost-reply", parts, op="payment.charge", saga_id="s1")
    nemesis.inject("unavailable", parts, op="payment.refund", saga_id="s1", times=6)
    nemesis.inject("unavailable", parts, op="payment.refund", saga_id="s1", for_s=0.8)
    nemesis.inject("decline", parts, op="payment.charge", saga_id="s1")

``SagaRig.lose_reply`` / ``unavailable`` / ``decline`` do exactly this, with the participant's
name as the target's label (the picture shades that participant's lane). A ``lost-reply`` or
``unavailable`` fault is over once its ``times`` calls have been served: it heals itself then.
An ``unavailable`` fault with ``for_s`` is an outage of that many seconds from the first call it
takes, and heals itself when it is over. A ``decline`` holds until it is healed, like a card that
stays declined.

Two faults of this lab are the kit's: the orchestrator killed at the moment a participant receives
or commits a call is ``kill`` (``SagaRig.crash`` arms the moment; the kill itself goes through the
nemesis when it comes), and a booking request delivered twice is ``duplicate`` (on
``SagaRig.bookings``).
"""
from __future__ import annotations

from typing import Any

from splitbrain.faults.registry import Fault, FaultError, register

__all__ = ["Decline", "LostReply", "Unavailable"]


class _ParticipantFault(Fault):
    """Params: ``op`` (``"payment.charge"``, required), ``saga_id`` (None: any saga)."""

    kind = "service"
    needs = ("arm() and disarm() (a participants server, rig.saga_server.Participants), and "
             "op='service.op' such as 'payment.charge'")

    def check(self) -> None:
        if not (callable(getattr(self.target, "arm", None))
                and callable(getattr(self.target, "disarm", None))):
            self._fail()
        check = getattr(self.target, "check_fault", None)
        try:
            if "op" not in self.params:
                raise ValueError("name the operation: op='service.op' such as 'payment.charge'")
            if callable(check):
                check(self.params["op"], self.name)
        except ValueError as e:
            raise FaultError(f"fault {self.name!r}: {e}") from None
        saga = self.params.get("saga_id")
        if saga is not None and not isinstance(saga, str):
            raise FaultError(f"fault {self.name!r}: saga_id is a saga's id (a string) or None "
                             f"for any saga, got {saga!r}")

    def arm_params(self) -> dict[str, Any]:
        return {}

    def _inject(self) -> None:
        self.armed = self.target.arm(self.params["op"], self.name, self.params.get("saga_id"),
                                     on_spent=self._spent, **self.arm_params())

    def _heal(self) -> None:
        self.target.disarm(self.armed)

    def _spent(self) -> None:
        """Called by the server once the fault's last call has been served: the fault is over."""
        if self.active:
            self.heal()


class _CountedFault(_ParticipantFault):
    """Params: also ``times`` (default 1): how many calls it takes."""

    def check(self) -> None:
        super().check()
        times = self.params.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultError(f"fault {self.name!r}: times is how many calls it takes (an int "
                             f">= 1), got {times!r}")

    def arm_params(self) -> dict[str, Any]:
        return {"times": int(self.params.get("times", 1))}


@register
class LostReply(_CountedFault):
    """Params: also ``hold_s`` (default 2.0): how long the connection stays open without an answer
    before it is dropped (for a caller that never times out)."""

    name = "lost-reply"
    description = "a participant does the work, and its answer never arrives"

    def arm_params(self) -> dict[str, Any]:
        return {**super().arm_params(), "hold_s": float(self.params.get("hold_s", 2.0))}


@register
class Unavailable(_CountedFault):
    """Params: also ``for_s`` (seconds): instead of ``times`` calls, every call during that long
    from the first one it takes (an outage; a retry loop's pace shows in how many calls it
    takes)."""

    name = "unavailable"
    description = "a participant answering 503 for a while, as when it restarts"

    def check(self) -> None:
        super().check()
        for_s = self.params.get("for_s")
        if for_s is not None and (isinstance(for_s, bool) or not isinstance(for_s, (int, float))
                                  or not for_s > 0):
            raise FaultError(f"fault {self.name!r}: for_s is the outage's length in seconds "
                             f"(> 0), got {for_s!r}")

    def arm_params(self) -> dict[str, Any]:
        for_s = self.params.get("for_s")
        return {**super().arm_params(), **({"for_s": float(for_s)} if for_s else {})}


@register
class Decline(_ParticipantFault):
    """A refusal the participant records in its ledger (status declined) and replays for the same
    key, for every call of that step of that saga until healed. ``op`` is a step (reserve,
    charge, schedule): compensations are never refused."""

    name = "decline"
    description = "a participant refusing a step (card declined, out of stock, address not served)"
