"""The fault only lab 05 has, registered in the kit's fault registry when the rig is loaded.

* ``window-boundary``: a condition of the scenario, not an injected failure: requests are timed to
  straddle the boundary of a fixed time window. Injecting it changes nothing; it is recorded
  around the stream of requests, so the picture shades it and the report names it. Its target is
  the wall clock every gateway follows (:data:`rig.ratelimit.WALL_CLOCK`, named ``clock`` in the
  history); param ``at_wall``: the wall-clock time of the boundary. ::

      with nemesis.fault("window-boundary", rl.WALL_CLOCK, at_wall=boundary):
          rl.stream(gateways, client, until=boundary + 0.3)
"""
from __future__ import annotations

from splitbrain.faults.registry import Condition, register

__all__ = ["WindowBoundary"]


@register
class WindowBoundary(Condition):
    name = "window-boundary"
    description = "requests timed to straddle the boundary of a fixed time window"
    needs = "the wall clock (rig.ratelimit.WALL_CLOCK) and at_wall=<the boundary's wall time>"

    def check(self) -> None:
        at = self.params.get("at_wall")
        if isinstance(at, bool) or not isinstance(at, (int, float)):
            self._fail()
