"""Split Brain: the learner-facing surface is deliberately small.

``Clock`` is the clock a component is given (the nemesis can skew it); ``crash_point(name)`` marks a
line where the harness may kill the process, the way a deploy or an OOM kill would in production.
"""
from splitbrain.faults.clock import Clock
from splitbrain.faults.crash import crash_point

__version__ = "0.1.0"
__all__ = ["Clock", "crash_point"]
