"""Lab 02's own fault: a consumer group delivers the same events again.

Kafka delivers at least once. A consumer that applied an event and died before committing its
offset, or lost its partition in a rebalance, leaves the next member of its group to fetch from
the last committed offset: the events since then arrive a second time. The grader plays that by
moving a :class:`rig.world.Replay` back; the kit's ``duplicate`` fault (a random second copy from
a ``Delivery``) is a different shape of the same promise.
"""
from __future__ import annotations

from splitbrain.faults.registry import Fault, FaultError, register

__all__ = ["Redeliver"]


@register
class Redeliver(Fault):
    """Param ``events`` (default 2): how many of the last delivered events come again."""

    name = "redeliver"
    kind = "delivery"
    description = ("the same message delivered twice: the consumer group goes back to its last "
                   "committed offset, as after a crash or a rebalance")
    needs = "rewind(events) (a rig.world.Replay: the grader playing events into a consumer)"
    instant = True

    def check(self) -> None:
        if not callable(getattr(self.target, "rewind", None)):
            self._fail()
        events = self.params.get("events", 2)
        if isinstance(events, bool) or not isinstance(events, int) or events < 1:
            raise FaultError(f"redeliver: events is how many delivered events come again (an "
                             f"int >= 1), got {events!r}")

    def _inject(self) -> None:
        self.target.rewind(int(self.params.get("events", 2)))
