"""Lab 09's own fault: a standby cut off from the primary's WAL stream.

The standby's replication connection stops delivering: the standby keeps, and replays, all the WAL
it had received when the cut came, and receives nothing written after it until the fault heals.
Together with ``replay-pause`` it holds a standby at a position of the grader's choosing: between
a session's write and another user's later write, say.
"""
from __future__ import annotations

from splitbrain.faults.registry import Fault, register

__all__ = ["StreamCut"]


@register
class StreamCut(Fault):
    name = "stream-cut"
    kind = "network"
    description = ("a standby receives no more WAL from the primary: it keeps, and replays, what "
                   "it had received")
    needs = "cut_stream()/restore_stream() (a rig.world.Standby)"

    def check(self) -> None:
        if not (callable(getattr(self.target, "cut_stream", None))
                and callable(getattr(self.target, "restore_stream", None))):
            self._fail()

    def _inject(self) -> None:
        self.target.cut_stream()

    def _heal(self) -> None:
        self.target.restore_stream()
