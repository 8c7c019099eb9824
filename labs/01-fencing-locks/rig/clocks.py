"""A holder's clock that the nemesis can move while the holder is inside a call.

A sandboxed worker is single-threaded: it runs one call at a time, and the kit moves its own clock
(``Ref("clock")``) with a request that waits until the call in progress is over. A clock that
jumps *while* ``acquire()`` waits for the lock cannot be made that way. So a holder may instead be
given a clock whose settings live in a small file the grader writes:

* grader side, :class:`SharedClock` (a ``splitbrain.Clock``): the target of the kit's clock faults
  (``nemesis.inject("clock-jump", h.clock, step=3600, monotonic=True)``, ``"clock-skew"``,
  ``"clock-drift"``); every change is published to its file at once;
* worker side, :class:`FileClock` (what the learner's ``RedisLock`` gets, built by the trusted
  helper ``Ref("rig.clocks:shared", path=...)``): reads the file at every ``now()``,
  ``monotonic()`` and ``sleep()``, so a change reaches the component at its next look at the time.

Both compute time exactly as ``splitbrain.Clock`` does (offset, monotonic steps, rate), from the
machine's monotonic clock, which every process shares.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from splitbrain.faults.clock import Clock

__all__ = ["SharedClock", "FileClock", "shared"]

_FIELDS = ("_real_start", "_origin", "_offset", "_mono_offset", "_rate", "_anchor_real",
           "_anchor_virtual")


class SharedClock(Clock):
    """The grader's handle on one holder's clock; ``name`` labels its faults in the history."""

    def __init__(self, name: str, folder: str | Path) -> None:
        self.name = name
        self.path = str(Path(folder) / f"{name}.clock")
        super().__init__()
        self._publish()

    def _publish(self) -> None:
        if not hasattr(self, "path") or not os.path.isdir(os.path.dirname(self.path)):
            return       # Clock.__init__ runs before the path exists; after the test, it is gone
        with self._lock:
            state = {f: getattr(self, f) for f in _FIELDS}
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(state, fh)
        os.chmod(tmp, 0o644)             # the worker runs as another user: it only reads
        os.replace(tmp, self.path)

    def set_offset(self, seconds: float) -> None:
        super().set_offset(seconds)
        self._publish()

    def jump(self, seconds: float, monotonic: bool = False) -> None:
        super().jump(seconds, monotonic)
        self._publish()

    def set_rate(self, rate: float) -> None:
        super().set_rate(rate)
        self._publish()

    def reset(self) -> None:
        super().reset()
        self._publish()


class FileClock(Clock):
    """A holder's clock in its worker, following the settings the grader publishes to ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._load()

    def _load(self) -> None:
        try:
            with open(self._path) as fh:
                state = json.load(fh)
        except (OSError, ValueError):
            return                       # keep the last settings seen
        with self._lock:
            for f in _FIELDS:
                setattr(self, f, float(state[f]))

    def now(self) -> float:
        self._load()
        return super().now()

    def monotonic(self) -> float:
        self._load()
        return super().monotonic()

    def sleep(self, seconds: float) -> None:
        self._load()
        super().sleep(seconds)


def shared(resources: Any, path: str) -> FileClock:
    """``Ref("rig.clocks:shared", path=...)``: the clock a holder's lock is built with."""
    return FileClock(path)
