"""Lab 06's own faults. The network's are the kit's (``latency``, ``reset``, ...) on the fault
proxy in front of the receiver; the delivery faults (``duplicate``, ``reorder``) are the kit's on
the sender; these act on the payment API or are an attacker's deliveries::

    nemesis.inject("lost-payment-reply", "payments")           # the next charge's answer is lost
    nemesis.inject("lost-payment-reply", "payments", silent=True)  # ... and its connection
                                                               # stays open, silent, for good
    slow = nemesis.inject("slow-payment", "payments")          # the next charge waits ...
    slow.heal()                                                # ... until now
    nemesis.inject("forged-delivery", "sender", order="ord_1")     # a wrong signature
    nemesis.inject("replayed-delivery", "sender", order="ord_1")   # signed an hour ago
"""
from __future__ import annotations


from splitbrain.faults.registry import Fault, FaultError, register

__all__ = ["LostPaymentReply", "SlowPayment", "ForgedDelivery", "ReplayedDelivery"]


class _PaymentFault(Fault):
    needs = "arm() and disarm() (the lab's payment API, rig.payments.Payments)"

    def check(self) -> None:
        if not (callable(getattr(self.target, "arm", None))
                and callable(getattr(self.target, "disarm", None))):
            self._fail()
        times = self.params.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultError(f"fault {self.name!r}: times is an int >= 1, got {times!r}")

    def _inject(self) -> None:
        self.armed = self.target.arm(self.name, times=int(self.params.get("times", 1)),
                                     on_spent=self._spent, **self.arm_params())

    def arm_params(self) -> dict:
        """The fault's own parameters for ``arm()``, beyond ``times``."""
        return {}

    def _heal(self) -> None:
        self.target.disarm(self.armed)

    def _spent(self) -> None:
        if self.active:
            self.heal()


@register
class LostPaymentReply(_PaymentFault):
    """Params: ``times`` (default 1): how many charges lose their answer; ``silent`` (default
    False): the connection is then never closed either (a payment host gone behind a partition):
    the caller hears nothing until it gives up itself, and the fault is over once the answers
    are lost. Without it the connection hangs a second and closes."""
    name = "lost-payment-reply"
    kind = "network"
    description = ("the payment API makes the charge, and its answer never reaches the caller")

    def check(self) -> None:
        super().check()
        if not isinstance(self.params.get("silent", False), bool):
            raise FaultError(f"fault {self.name!r}: silent is True or False, got "
                             f"{self.params['silent']!r}")

    def arm_params(self) -> dict:
        return {"silent": bool(self.params.get("silent", False))}


@register
class SlowPayment(_PaymentFault):
    name = "slow-payment"
    kind = "service"
    description = ("the payment API holds a charge before making it, until healed: a receiver "
                   "that charges before it answers answers too late")

    def _spent(self) -> None:
        """Released by healing only."""


class _Attack(Fault):
    needs = "attack(event, kind) (the lab's sender, rig.sender.Sender)"
    instant = True
    how = ""

    def check(self) -> None:
        if not callable(getattr(self.target, "attack", None)):
            self._fail()
        if not isinstance(self.params.get("order"), str):
            raise FaultError(f"fault {self.name!r}: order names the order the delivery is about")

    def _inject(self) -> None:
        from rig.sender import Event
        order = self.params["order"]
        n = int(self.params.get("n", 0))
        ev = Event(f"evt_{self.how}_{order}_{n}", "order.cancelled", order,
                   int(self.params.get("version", 90 + n)), int(self.params.get("amount", 1)))
        self.accepted = self.target.attack(ev, self.how)

    def _heal(self) -> None:
        pass


@register
class ForgedDelivery(_Attack):
    """Params: ``order`` (required), ``version``: an order.cancelled with a wrong signature."""
    name = "forged-delivery"
    kind = "delivery"
    how = "forged"
    description = ("a delivery signed with the wrong key (an attacker who knows the endpoint's "
                   "address)")


@register
class ReplayedDelivery(_Attack):
    """Params: ``order`` (required), ``version``: an order.cancelled signed with the right key
    an hour ago, which the receiver never saw."""
    name = "replayed-delivery"
    kind = "delivery"
    how = "replayed"
    description = ("a genuine delivery captured long ago and sent again: its signature is "
                   "valid, its timestamp an hour old")


