"""The fault only lab 08 has, registered in the kit's fault registry when the rig is loaded.

* ``origin-down``: the dependency behind the cache (the origin, :class:`rig.world.Origin`) stops
  answering, and comes back at the heal. Every call it receives meanwhile is still counted, so
  the grader sees each client's retries, when they came and how many. ::

      with nemesis.fault("origin-down", world.Origin(ns)):
          ...
"""
from __future__ import annotations

from splitbrain.faults.registry import Fault, register

__all__ = ["OriginDown"]


@register
class OriginDown(Fault):
    name = "origin-down"
    kind = "service"
    description = ("the origin behind a cache answers nothing but errors until healed (every call "
                   "still counted)")
    needs = "the origin (rig.world.Origin): down() and up()"

    def check(self) -> None:
        if not (hasattr(self.target, "down") and hasattr(self.target, "up")):
            self._fail()

    def _inject(self) -> None:
        self.target.down()

    def _heal(self) -> None:
        self.target.up()
