"""Delivery faults: duplicate, delay and reorder the messages the harness delivers.

Brokers and webhooks promise *at least once*, not *exactly once, in order*. A consumer that is
correct only when every message arrives once, on time and in order is correct only on a quiet day.
``Delivery`` stands between the harness and a handler (a webhook endpoint, a consumer's
``handle(message)``) and, from a seed, decides for each message whether to deliver it now, hold it
back behind later messages (delay / reorder), or deliver it twice (duplicate, the second copy a few
messages later, the way a redelivery after a lost ack arrives)::

    d = Delivery(consumer.handle, seed=7, duplicate=0.2, reorder=0.2, window=3)
    for m in messages:
        d.send(m)
    d.flush()                       # deliver whatever is still held back
    d.log                           # [(message, "now" | "late" | "duplicate"), ...] as delivered

Positions, not seconds: a held message is released after 1..``window`` later messages, so the same
seed and the same messages give the same delivery order on any machine. ``plan(messages)`` returns
that order without calling anything.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Iterable

__all__ = ["Delivery"]


def _prob(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"Delivery {name} is a probability between 0 and 1, got {value!r}")
    return float(value)


class Delivery:
    """A seeded, fault-injecting message deliverer (see the module docstring)."""

    def __init__(self, deliver: Callable[[Any], Any] | None = None, seed: int = 0, *,
                 duplicate: float = 0.0, reorder: float = 0.0, delay: float = 0.0,
                 window: int = 3) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"Delivery window is how many later messages a held one may wait "
                             f"behind (an int >= 1), got {window!r}")
        self.deliver = deliver
        self.seed = seed
        self.window = window
        self.configure(duplicate=duplicate, reorder=reorder, delay=delay)
        self.rng = random.Random(seed)
        self.sent = 0
        self.held: list[tuple[int, int, Any, str]] = []     # (due, order, message, kind)
        self.log: list[tuple[Any, str]] = []
        self._order = 0

    def configure(self, *, duplicate: float | None = None, reorder: float | None = None,
                  delay: float | None = None) -> None:
        """Change the fault probabilities from now on (what the nemesis injects and heals)."""
        if duplicate is not None:
            self.duplicate = _prob("duplicate", duplicate)
        if reorder is not None:
            self.reorder = _prob("reorder", reorder)
        if delay is not None:
            self.delay = _prob("delay", delay)

    def send(self, message: Any) -> list[Any]:
        """Hand one message to the faulty network; returns the handler's results of the
        deliveries this call caused (possibly none, possibly several)."""
        self.sent += 1
        r = self.rng
        late = r.random() < self.reorder or r.random() < self.delay
        twice = r.random() < self.duplicate
        out: list[Any] = []
        if late:
            self._hold(self.sent + r.randint(1, self.window), message, "late")
        else:
            out.append(self._deliver(message, "now"))
        if twice:
            self._hold(self.sent + r.randint(0 if not late else 1, self.window), message,
                       "duplicate")
        out += self._release(self.sent)
        return out

    def flush(self) -> list[Any]:
        """Deliver everything still held back, in the order it was due."""
        return self._release(None)

    def send_all(self, messages: Iterable[Any]) -> list[Any]:
        out: list[Any] = []
        for m in messages:
            out += self.send(m)
        return out + self.flush()

    def plan(self, messages: Iterable[Any]) -> list[tuple[Any, str]]:
        """The (message, kind) sequence this Delivery's seed and settings would produce for
        ``messages``, computed on a fresh copy: nothing is delivered."""
        dry = Delivery(None, self.seed, duplicate=self.duplicate, reorder=self.reorder,
                       delay=self.delay, window=self.window)
        dry.send_all(messages)
        return dry.log

    # -- internals ---------------------------------------------------------------------------
    def _hold(self, due: int, message: Any, kind: str) -> None:
        self._order += 1
        self.held.append((due, self._order, message, kind))

    def _release(self, upto: int | None) -> list[Any]:
        ready = sorted(h for h in self.held if upto is None or h[0] <= upto)
        self.held = [h for h in self.held if not (upto is None or h[0] <= upto)]
        return [self._deliver(m, kind) for _, _, m, kind in ready]

    def _deliver(self, message: Any, kind: str) -> Any:
        self.log.append((message, kind))
        return self.deliver(message) if self.deliver is not None else None

    def __repr__(self) -> str:
        return (f"Delivery(seed={self.seed}, duplicate={self.duplicate}, reorder={self.reorder}, "
                f"delay={self.delay}, window={self.window}, held={len(self.held)})")
