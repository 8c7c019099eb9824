"""The clock a component is given, so that the nemesis can skew it.

Real clocks disagree. NTP steps a wall clock backwards, a VM resumes with its clock minutes behind,
a crystal runs 0.1 % fast. A lease that trusts ``time.time()`` on two machines is only as safe as
the worst of those clocks. Components in the labs therefore never call ``time`` directly: they take
a ``Clock`` and call ``clock.now()``, ``clock.monotonic()`` and ``clock.sleep(s)``. In production
the clock is the machine's; under the grader, the nemesis moves it:

* ``set_offset(s)`` puts the wall clock ``s`` seconds away from the machine's (skew);
* ``jump(s)`` steps the wall clock by ``s`` seconds (an NTP step; negative jumps go back in time);
  with ``monotonic=True`` the monotonic clock jumps too (a VM that was frozen and resumed);
* ``set_rate(r)`` makes both clocks run ``r`` times as fast as real time from now on (drift);
* ``reset()`` undoes all of it.

All methods are thread-safe. A fresh ``Clock()`` is exactly the machine's clock.
"""
from __future__ import annotations

import threading
import time

__all__ = ["Clock"]


class Clock:
    """Wall and monotonic time with an adjustable offset, step and rate.

    ``now()`` returns seconds since the epoch (like ``time.time()``); ``monotonic()`` returns seconds
    from an arbitrary origin that never goes backwards unless the nemesis jumps it with
    ``monotonic=True`` and a negative step; ``sleep(s)`` sleeps ``s`` seconds *of this clock*, so a
    clock running at rate 2 sleeps half as long in real time.
    """

    def __init__(self, offset: float = 0.0, rate: float = 1.0) -> None:
        self._lock = threading.Lock()
        start = time.monotonic()
        self._real_start = start    # real monotonic time at construction
        self._origin = start        # this clock's monotonic() at construction
        self._offset = 0.0          # wall-only offset, seconds
        self._mono_offset = 0.0     # offset applied to both clocks, seconds
        self._rate = 1.0
        self._anchor_real = start   # real monotonic time when the rate last changed
        self._anchor_virtual = 0.0  # virtual seconds elapsed at that moment
        self.set_offset(offset)
        self.set_rate(rate)

    # -- reading ---------------------------------------------------------------------------
    def _elapsed(self, real: float | None = None) -> float:
        """Virtual seconds elapsed since construction (rate applied). Caller holds the lock."""
        real = time.monotonic() if real is None else real
        return self._anchor_virtual + (real - self._anchor_real) * self._rate

    def now(self) -> float:
        """Wall-clock seconds since the epoch, as this (possibly skewed) clock sees it."""
        with self._lock:
            real = time.monotonic()
            drift = self._elapsed(real) - (real - self._real_start)
            return time.time() + drift + self._offset + self._mono_offset

    def monotonic(self) -> float:
        """Monotonic seconds, as this clock sees them (rate and monotonic jumps applied)."""
        with self._lock:
            return self._origin + self._elapsed() + self._mono_offset

    def time(self) -> float:
        """Alias of ``now()`` so a Clock can stand in for the ``time`` module's ``time()``."""
        return self.now()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time (real time = seconds / rate)."""
        if seconds < 0:
            raise ValueError(f"sleep() needs a non-negative number of seconds, got {seconds!r}")
        with self._lock:
            rate = self._rate
        time.sleep(seconds / rate)

    @property
    def offset(self) -> float:
        """Current wall-clock offset from the machine's clock, in seconds (ignoring drift)."""
        with self._lock:
            return self._offset + self._mono_offset

    @property
    def rate(self) -> float:
        with self._lock:
            return self._rate

    # -- the nemesis's controls ----------------------------------------------------------------
    def set_offset(self, seconds: float) -> None:
        """Put the wall clock ``seconds`` away from the machine's (positive = ahead)."""
        seconds = _number("set_offset", seconds)
        with self._lock:
            self._offset = seconds - self._mono_offset

    def jump(self, seconds: float, monotonic: bool = False) -> None:
        """Step the wall clock by ``seconds``; with ``monotonic=True`` step the monotonic clock too."""
        seconds = _number("jump", seconds)
        with self._lock:
            if monotonic:
                self._mono_offset += seconds
            else:
                self._offset += seconds

    def set_rate(self, rate: float) -> None:
        """Run this clock ``rate`` times as fast as real time from now on (1.0 = normal)."""
        rate = _number("set_rate", rate)
        if rate <= 0:
            raise ValueError(f"set_rate() needs a rate > 0 (1.0 is real time), got {rate!r}")
        with self._lock:
            self._anchor_virtual = self._elapsed()
            self._anchor_real = time.monotonic()
            self._rate = rate

    def reset(self) -> None:
        """Back to the machine's clock: no offset, no drift, no jumps."""
        with self._lock:
            self._offset = 0.0
            self._mono_offset = 0.0
            self._rate = 1.0
            self._anchor_real = time.monotonic()
            self._anchor_virtual = self._anchor_real - self._real_start

    def state(self) -> dict:
        """The clock's settings as plain data (what a history or report records)."""
        with self._lock:
            return {"offset": self._offset + self._mono_offset,
                    "monotonic_offset": self._mono_offset, "rate": self._rate}

    def __repr__(self) -> str:
        s = self.state()
        return f"Clock(offset={s['offset']:+.3f}s, rate={s['rate']:g})"


def _number(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}() needs a number of seconds, got {value!r}")
    return float(value)
