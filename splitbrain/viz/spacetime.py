"""The space-time diagram: one lane per process, operations as bars, faults shaded, offenders red.

Reading one: time runs left to right, *not to scale*: every event gets room, so a 2 ms write is
as easy to see as a 400 ms wait (which still looks longer), and a stretch where nothing was in
flight is cut short (≈ on the axis); the tick labels give the real times. Each bar is one
operation, from the moment the grader sent it to the moment the answer came back: green ok, grey
failed, amber outcome unknown (a timeout, a crash), pale hatched never answered. Four or more
unremarkable calls in a row with nothing else happening meanwhile are one bar, ``f ×N``. Shaded
bands are faults: on one lane when the fault hit that process, across the picture when it hit a
service, the network or the clock; a dashed line is a fault that is over as it happens (a kill).

The offending operations, the events each ``Anomaly`` of the verdict names (or ``highlight``),
are outlined in red, and only they; the anomaly's kind is written above the first of them in
each lane, and every anomaly is written out under the axis (an anomaly that names no operation
is only there). A checker that wants to show operations that are evidence without being at
fault (the newer write that a stale one landed after) lists their event indexes in
``Anomaly.data["context"]``: they are outlined dashed, in grey.

Sizes are in points on a grid of points, for a picture 7 in wide: drawn at its natural size
(672 CSS px) the labels are 12 px, in the book's column and in a notebook. In a notebook the
picture is an inline SVG: rest the pointer on an operation to read its call, its result and the
faults active (``<title>`` tooltips, no extension needed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from splitbrain.history import History
from splitbrain.viz._common import (ANOMALY_COLOR, CONTEXT_COLOR, DPI, FAULT_COLOR,
                                    MUTED_TEXT, OUTCOME_COLORS, TEXT_COLOR, Picture, finish)
from splitbrain.viz._labels import (PAD, ROW, SIZE, TITLE_SIZE, draw_legend, draw_rows, flow,
                                    legend_items, notes, place_labels)
from splitbrain.viz._layout import FAMILY, PT_PER_IN, Rows, TimeAxis, fit, text_width, wrap
from splitbrain.viz._ops import Fault, bars_of, fault_end, fault_tip, marks, op_tip

__all__ = ["spacetime"]

BAR = 15.0            # one operation's bar
TRACK_GAP = 3.0       # between concurrent operations of one lane
LANE_GAP = 12.0


def spacetime(history: History, verdict: Any = None, *, highlight: Iterable[int] = (),
              title: str | None = None, path: str | Path | None = None,
              width: float = 7.0) -> Figure | Path:
    """Draw ``history``; ``verdict`` (or ``highlight``: event indexes) marks the offenders.

    Returns the Figure (it renders inline in a notebook, with tooltips), or, with ``path``,
    saves it there (PNG, SVG with tooltips, or PDF by suffix) and returns the path. ``width`` in
    inches; the text keeps its size whatever the width.
    """
    anomalies = list(getattr(verdict, "anomalies", ()) or ())
    offenders, context, kinds_at = marks(anomalies, highlight)
    times = [e.time for e in history.events] or [0.0]
    t_start, t_end = min(times), max(times)
    lanes = [p for p in history.processes() if p != "nemesis"] or ["(no operations)"]
    lane_of = {p: i for i, p in enumerate(lanes)}
    faults = [Fault(w, fault_end(w, t_end), lane_of.get(w.target), i)
              for i, w in enumerate(history.fault_windows())]
    bars, tracks, crowded = bars_of(history.operations(), lane_of, faults, t_end, offenders,
                                    context, kinds_at)

    W = width * PT_PER_IN
    name_w = min(max([text_width(n, SIZE, True) for n in lanes]
                     + [text_width(f"{n} at once", SIZE) for n in crowded.values()]), 0.28 * W)
    left, right = PAD + name_w + 8.0, W - PAD
    axis = TimeAxis([t_start, t_end] + [t for b in bars for t in (b.start, b.end)]
                    + [t for f in faults for t in (f.window.start, f.end)],
                    [(b.start, b.end) for b in bars], left + 4.0, right - 4.0)
    for b in bars:
        b.x0 = axis(b.start)
        b.x1 = max(axis(b.end), b.x0 + 2.0)

    above = [Rows(left, right) for _ in lanes]
    below = [Rows(left, right) for _ in lanes]
    top_rows = Rows(left, right)
    place_labels(bars, faults, above, below, top_rows, axis, crowded)

    # -- vertical layout (y grows downwards, in points) ---------------------------------------
    head = title or (getattr(verdict, "checker", "") or "history")
    if verdict is not None and getattr(verdict, "valid", True) is not True:
        head += f" — {', '.join(verdict.kinds()) or verdict.valid}"
    title_lines = wrap(head, TITLE_SIZE, W - 2 * PAD, bold=True, max_lines=3)
    legend = legend_items(bars, faults, axis)
    legend_rows = flow(legend, W - 2 * PAD)
    y = PAD
    y_title = y
    y += len(title_lines) * 14.0 + 4.0
    y_legend = y
    y += len(legend_rows) * ROW + 6.0
    y_top = y                                          # where the shading starts
    y += top_rows.used * ROW
    lane_y: list[tuple[float, float]] = []             # (top of the first track, bottom)
    for i in range(len(lanes)):
        y += max(1, above[i].used) * ROW
        bottom = y + tracks[i] * (BAR + TRACK_GAP) - TRACK_GAP
        lane_y.append((y, bottom))
        y = bottom + below[i].used * ROW + LANE_GAP
    y_axis = y - LANE_GAP + 5.0
    ticks = axis.ticks(SIZE, PAD, W - PAD)
    y = y_axis + 4.0 + ROW + ROW
    written = notes(anomalies, bars, W - 2 * PAD)
    y_notes = y + (4.0 if written else 0.0)
    y = y_notes + sum(len(lines) for _, lines in written) * ROW
    H = y + PAD

    fig = Picture(figsize=(W / PT_PER_IN, H / PT_PER_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)
    ax.axis("off")

    def text(x, yc, s, size=SIZE, color=TEXT_COLOR, bold=False, ha="left"):
        return ax.text(x, yc, s, fontsize=size, fontfamily=FAMILY, color=color, ha=ha,
                       va="center", fontweight="bold" if bold else "normal", parse_math=False,
                       zorder=6)

    for i, line in enumerate(title_lines):
        text(PAD, y_title + 7.0 + 14.0 * i, line, TITLE_SIZE, bold=True)
    draw_legend(ax, text, legend_rows, y_legend)

    lanes_bottom = lane_y[-1][1]
    for x, _ in ticks:                                  # faint guides from the ticks up
        ax.plot([x, x], [y_top, y_axis], color="#e4e4e4", lw=0.6, zorder=0)
    tips: dict[str, str] = {}
    for f in faults:
        if f.lane is None:
            top, bottom = y_top, lanes_bottom
        else:
            top = lane_y[f.lane][0] - max(1, above[f.lane].used) * ROW
            bottom = lane_y[f.lane][1] + max(below[f.lane].used * ROW, 2.0)
        x0, x1 = axis(f.window.start), axis(f.end)
        if f.instant:        # across the bars it hit, never through a label
            ys: list[float] = []
            for i in ([f.lane] if f.lane is not None else range(len(lanes))):
                ys += [lane_y[i][0] - 3.0, lane_y[i][1] + 3.0, float("nan")]
            art = ax.plot([x0] * len(ys), ys, color=FAULT_COLOR, lw=1.5, ls=(0, (3, 2)),
                          zorder=4)[0]
        else:
            art = ax.add_patch(Rectangle((x0, top), max(x1 - x0, 1.5), bottom - top,
                                         facecolor=FAULT_COLOR, alpha=0.14, lw=0, zorder=1))
        art.set_gid(f.gid)
        tips[f.gid] = fault_tip(f)

    for b in bars:
        top = lane_y[b.lane][0] + b.track * (BAR + TRACK_GAP)
        edge, lw, ls = "white", min(0.8, 0.2 * (b.x1 - b.x0)), "solid"
        if b.offender:
            edge, lw = ANOMALY_COLOR, 2.2
        elif b.context:
            edge, lw, ls = CONTEXT_COLOR, 1.4, (0, (2.5, 1.5))
        rect = Rectangle((b.x0, top), b.x1 - b.x0, BAR, facecolor=OUTCOME_COLORS[b.outcome],
                         edgecolor=edge, lw=lw, ls=ls, zorder=3 if b.offender else 2,
                         hatch="////" if b.outcome == "open" else None)
        rect.set_gid(b.gid)
        ax.add_patch(rect)
        tips[b.gid] = op_tip(b, faults, anomalies, offenders)
        if len(b.ops) > 1:                              # the calls inside a grouped bar
            step = (b.x1 - b.x0) / len(b.ops)
            if step >= 2.5:
                for k in range(1, len(b.ops)):
                    x = b.x0 + k * step
                    (line,) = ax.plot([x, x], [top + 1, top + BAR - 1], color="white",
                                      lw=0.5, zorder=2)
                    line.set_gid(f"divider_{b.gid}_{k}")  # the pointer goes through it
        if b.inside:
            text((b.x0 + b.x1) / 2, top + BAR / 2, b.inside, ha="center")

    for i, name in enumerate(lanes):
        top, bottom = lane_y[i]
        mid = (top + bottom) / 2
        if i in crowded:                                # say why its bars overlap
            text(left - 8.0, mid - ROW / 2, fit(name, SIZE, name_w, True), bold=True, ha="right")
            text(left - 8.0, mid + ROW / 2, fit(f"{crowded[i]} at once", SIZE, name_w),
                 color=MUTED_TEXT, ha="right")
        else:
            text(left - 8.0, mid, fit(name, SIZE, name_w, True), bold=True, ha="right")
        draw_rows(ax, text, above[i], top)
        draw_rows(ax, text, below[i], bottom, down=True)
        if i:                                           # a faint line between lanes
            y_sep = top - max(1, above[i].used) * ROW - LANE_GAP / 2
            ax.plot([PAD, right], [y_sep, y_sep], color="#eeeeee", lw=0.8, zorder=0)
    draw_rows(ax, text, top_rows, y_top + top_rows.used * ROW)

    ax.plot([left, right], [y_axis, y_axis], color="#888888", lw=0.8)
    for x, label in ticks:
        ax.plot([x, x], [y_axis, y_axis + 3.5], color="#888888", lw=0.8)
        text(x, y_axis + 4.0 + ROW / 2, label, color=MUTED_TEXT, ha="center")
    breaks = Rows(0.0, W)
    for x in axis.break_xs():                           # ≈ where idle time was cut
        if breaks.place(["≈"], SIZE, (x, x), 0, bold=True, slack=0.0) is not None:
            text(x, y_axis, "≈", color=MUTED_TEXT, ha="center", bold=True)
    text(right, y_axis + 4.0 + ROW * 1.5, "time (s), not to scale: every event gets room",
         color=MUTED_TEXT, ha="right")
    yy = y_notes
    for kind_line, lines in written:                    # the anomalies, written out
        text(PAD, yy + ROW / 2, kind_line, color=ANOMALY_COLOR, bold=True)
        for x, line in lines:
            if line:
                text(PAD + x, yy + ROW / 2, line)
            yy += ROW
    fig.tooltips = tips
    return finish(fig, path)
