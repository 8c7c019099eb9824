"""Layout in points for pictures drawn on a points grid (1 data unit = 1 pt = 1/72 in).

* text is measured from the glyph outlines of the one font every picture uses, so what is
  measured is what is drawn (PNG, SVG with glyphs as paths, PDF);
* :class:`Rows` packs labels into rows of x-intervals so that no two overlap;
* :class:`TimeAxis` maps history time to x: every event gets room (operations are never slivers),
  busy stretches keep some of their real length, idle stretches are cut short.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

FAMILY = "DejaVu Sans"
PT_PER_IN = 72.0


# Widths are those of the glyph outlines (what an SVG with text as paths draws); Agg's hinted
# text in a PNG comes out a little wider, and whole pixels, hence the margin (tested).
MARGIN, MARGIN_PT = 1.04, 1.0


@lru_cache(maxsize=8192)
def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in points of ``text`` set in the pictures' font at ``size`` points (with a small
    margin for hinting)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path
    prop = FontProperties(family=FAMILY, size=size, weight="bold" if bold else "normal")
    w, _, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
    return float(w) * MARGIN + MARGIN_PT


def fit(text: str, size: float, width: float, bold: bool = False) -> str:
    """``text``, cut with an ellipsis so that it is at most ``width`` points wide."""
    if text_width(text, size, bold) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:                      # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid].rstrip() + "…", size, bold) <= width:
            lo = mid
        else:
            hi = mid - 1
    return (text[:lo].rstrip() + "…") if lo else ""


def wrap(text: str, size: float, width: float, bold: bool = False,
         max_lines: int | None = None) -> list[str]:
    """Greedy word wrap to ``width`` points; a word wider than a line is cut; past ``max_lines``
    the last line ends with an ellipsis."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if text_width(trial, size, bold) <= width:
            line = trial
            continue
        if line:
            lines.append(line)
        line = word if text_width(word, size, bold) <= width else fit(word, size, width, bold)
    if line:
        lines.append(line)
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = fit(lines[-1] + " …", size, width, bold)
        if not lines[-1].endswith("…"):
            lines[-1] = fit(lines[-1] + "…", size, width, bold)
    return lines


# -- labels in rows ---------------------------------------------------------------------------
@dataclass
class Placed:
    """A label given a row and a left edge; ``key`` says what it labels."""

    text: str
    row: int
    x0: float
    width: float
    key: object = None


class Rows:
    """Rows of labels between ``lo`` and ``hi`` (points); labels in a row keep ``gap`` apart."""

    def __init__(self, lo: float, hi: float, gap: float = 5.0) -> None:
        self.lo, self.hi, self.gap = lo, hi, gap
        self.rows: list[list[tuple[float, float]]] = []   # per row, sorted occupied intervals
        self.placed: list[Placed] = []

    @property
    def used(self) -> int:
        """How many rows hold a label."""
        return 1 + max((p.row for p in self.placed), default=-1)

    def place(self, candidates: Sequence[str], size: float, anchor: tuple[float, float],
              max_row: int, bold: bool = False, key: object = None, slack: float = 6.0,
              overhang: float | None = None) -> Placed | None:
        """Put the first of ``candidates`` (longest first) that fits in the lowest row where it
        can stand near ``anchor`` (x-interval it labels): its centre within ``slack`` points of
        the anchor, as close to the anchor's centre as the row allows, and (``overhang``) no
        wider than the anchor plus that much on each side, so that it reads as the label of
        what it stands over. None: nothing fits."""
        a0, a1 = anchor
        for text in candidates:
            if not text:
                continue
            w = text_width(text, size, bold)
            if w > self.hi - self.lo or (overhang is not None and w > a1 - a0 + 2 * overhang):
                continue
            want = (a0 + a1) / 2 - w / 2
            lo = max(self.lo, a0 - slack - w / 2)
            hi = min(self.hi - w, a1 + slack - w / 2)
            if lo > hi:                       # the anchor sits at an edge: stay inside
                lo = hi = min(max(want, self.lo), self.hi - w)
            for row in range(max_row + 1):
                x0 = self._free(row, w, want, lo, hi)
                if x0 is not None:
                    self._take(row, x0, w)
                    p = Placed(text, row, x0, w, key)
                    self.placed.append(p)
                    return p
        return None

    def block(self, row: int, x0: float, x1: float) -> None:
        """Mark ``[x0, x1]`` of ``row`` as taken (by something that is not a label)."""
        self._take(row, x0, x1 - x0)

    def _free(self, row: int, w: float, want: float, lo: float, hi: float) -> float | None:
        taken = self.rows[row] if row < len(self.rows) else []
        g = self.gap
        best = None
        edges = [(-math.inf, -math.inf)] + taken + [(math.inf, math.inf)]
        for (_, end), (start, _) in zip(edges, edges[1:]):
            a, b = max(lo, end + g), min(hi, start - g - w)
            if a > b:
                continue
            x = min(max(want, a), b)
            if best is None or abs(x - want) < abs(best - want):
                best = x
        return best

    def _take(self, row: int, x0: float, w: float) -> None:
        while len(self.rows) <= row:
            self.rows.append([])
        bisect.insort(self.rows[row], (x0, x0 + w))


# -- time to x ------------------------------------------------------------------------------
class TimeAxis:
    """History time -> x in points, piecewise linear through the events.

    Each gap between two consecutive event times gets one unit of room while something is in
    flight across it (an operation), 0.3 while nothing is; then its share of the real time (one
    unit for an average gap), so a long wait still looks long: at most ``cap`` more units (a
    quarter of the busy gaps, at least 4) while something is in flight, 0.7 while nothing is.
    An idle gap cut to less than a quarter of its share is a *break* (drawn ≈ on the axis).
    """

    BUSY, IDLE, IDLE_TIME_CAP = 1.0, 0.3, 0.7

    def __init__(self, times: Iterable[float], busy: Sequence[tuple[float, float]],
                 x0: float, x1: float) -> None:
        ts = sorted(set(times))
        merged: list[float] = []
        for t in ts:
            if not merged or t - merged[-1] > 1e-9:
                merged.append(t)
        if len(merged) < 2:
            t = merged[0] if merged else 0.0
            merged = [t, t + 1.0]
        self.times = merged
        n = len(merged) - 1
        span = merged[-1] - merged[0] or 1.0
        # which gaps have an operation in flight: sweep the busy intervals over the gaps
        depth = [0] * (n + 1)
        for s, e in busy:
            i = bisect.bisect_left(merged, s - 1e-9)
            j = bisect.bisect_left(merged, e - 1e-9)
            if j > i:
                depth[i] += 1
                depth[j] -= 1
        run, in_flight = 0, []
        for i in range(n):
            run += depth[i]
            in_flight.append(run > 0)
        cap = max(4.0, 0.25 * sum(in_flight))
        weights, self.breaks = [], []
        for i in range(n):
            dt = merged[i + 1] - merged[i]
            share = dt * n / span
            if in_flight[i]:
                weights.append(self.BUSY + min(share, cap))
            else:
                weights.append(self.IDLE + min(share, self.IDLE_TIME_CAP))
                if share > 3.0:
                    self.breaks.append(i)
        total = sum(weights)
        xs = [x0]
        for w in weights:
            xs.append(xs[-1] + (x1 - x0) * w / total)
        self.xs = xs
        self.x0, self.x1 = x0, x1

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def __call__(self, t: float) -> float:
        ts, xs = self.times, self.xs
        if t <= ts[0]:
            return xs[0]
        if t >= ts[-1]:
            return xs[-1]
        i = bisect.bisect_right(ts, t) - 1
        f = (t - ts[i]) / (ts[i + 1] - ts[i])
        return xs[i] + f * (xs[i + 1] - xs[i])

    def break_xs(self) -> list[float]:
        """x of the middle of each cut idle gap."""
        return [(self.xs[i] + self.xs[i + 1]) / 2 for i in self.breaks]

    def ticks(self, size: float, lo: float, hi: float, gap: float = 10.0
              ) -> list[tuple[float, str]]:
        """(x, label) of time ticks whose labels do not collide and stay within ``lo``..``hi``:
        round times, coarse first, then finer ones wherever the axis stretches time enough to
        give them room."""
        t0, t1 = self.start, self.end
        span = t1 - t0
        if span <= 0:
            return [(self(t0), _tick_label(t0, 1.0))]
        steps: list[float] = []
        e = math.floor(math.log10(span))
        for k in range(e, e - 3, -1):
            for m in (5, 2, 1):
                s = m * 10.0 ** k
                if span / 40 <= s <= span:
                    steps.append(s)
        rows = Rows(lo, hi, gap)
        chosen: dict[float, tuple[float, str]] = {}
        for step in steps:
            first = math.ceil(t0 / step - 1e-9)
            last = math.floor(t1 / step + 1e-9)
            if last - first > 400:
                break
            for i in range(first, last + 1):
                t = round(i * step, 9)
                if t in chosen:
                    continue
                label = _tick_label(t, step)
                x = self(t)
                w = text_width(label, size)
                if x - w / 2 < lo or x + w / 2 > hi or \
                        rows._free(0, w, x - w / 2, x - w / 2, x - w / 2) is None:
                    continue
                rows._take(0, x - w / 2, w)
                chosen[t] = (x, label)
        return sorted(chosen.values())


def _tick_label(t: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{t:.{decimals}f}"
