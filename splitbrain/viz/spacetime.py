"""The space-time diagram: one lane per process, operations as bars, faults shaded, anomalies red.

Reading one: time runs left to right. Each bar is one operation, from the moment the grader sent it
to the moment the answer came back; green = ok, red = failed, amber = unknown outcome (a timeout, a
crash), grey hatched = never answered. Shaded bands are faults: on one lane when the fault hit that
process, across the whole picture when it hit a service or the network. Operations outlined in red
are the evidence of an anomaly; the anomaly's kind is written above them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from splitbrain.history import History
from splitbrain.viz._common import (ANOMALY_COLOR, FAULT_COLOR, OUTCOME_COLORS,
                                    finish, new_figure, short)

__all__ = ["spacetime"]


def spacetime(history: History, verdict: Any = None, *, highlight: Iterable[int] = (),
              title: str | None = None, path: str | Path | None = None,
              width: float = 11.0) -> Figure | Path:
    """Draw ``history``; ``verdict`` (or ``highlight``: event indexes) marks the anomaly.

    Returns the Figure (it renders inline in a notebook), or, with ``path``, saves it there (PNG,
    SVG or PDF by suffix) and returns the path.
    """
    ops = history.operations()
    lanes = [p for p in history.processes() if p != "nemesis"] or ["(no operations)"]
    lane_of = {p: i for i, p in enumerate(lanes)}
    marked = set(highlight)
    kinds_at: dict[int, list[str]] = {}
    if verdict is not None:
        for a in getattr(verdict, "anomalies", ()):
            marked.update(a.events)
            for e in a.events:
                kinds_at.setdefault(e, []).append(a.kind)
    times = [e.time for e in history.events] or [0.0, 1.0]
    t_end = max(times)
    t_end = t_end if t_end > 0 else 1.0
    # start the picture where something happens: set-up before the first event is not the story
    t_start = max(0.0, min(times) - 0.05 * (t_end - min(times)))
    span_all = max(t_end - t_start, 1e-6)
    fig = new_figure(width, 1.2 + 0.55 * len(lanes))
    ax = fig.add_subplot()

    for w in history.fault_windows():
        end = w.end if w.end is not None else t_end
        span = max(end - w.start, span_all * 0.004)
        label = f"{w.name}" + (f"({w.target})" if w.target else "")
        if w.target in lane_of:
            y = lane_of[w.target]
            ax.add_patch(_rect(w.start, y - 0.45, span, 0.9, FAULT_COLOR, 0.18))
            ax.text(w.start, y - 0.47, label, fontsize=7, color=FAULT_COLOR, va="bottom")
        else:
            ax.axvspan(w.start, w.start + span, color=FAULT_COLOR, alpha=0.12, lw=0)
            ax.text(w.start, -0.62, label, fontsize=7, color=FAULT_COLOR, va="bottom")

    labelled: set[tuple[str, int]] = set()
    # thin evidence bars get their label written beside them, when there are few enough to read
    n_marked = sum(1 for op in ops if ({op.invoke.index} | (
        {op.complete.index} if op.complete else set())) & marked)
    side_labels = n_marked <= 4
    for op in ops:
        y = lane_of.get(op.process)
        if y is None:
            continue
        outcome = op.type if op.complete else "open"
        end = op.end if op.end is not None else t_end
        bar_w = max(end - op.start, span_all * 0.004)
        events = {op.invoke.index} | ({op.complete.index} if op.complete else set())
        hit = bool(events & marked)
        ax.add_patch(_rect(op.start, y - 0.3, bar_w, 0.6, OUTCOME_COLORS[outcome], 0.85,
                           edge=ANOMALY_COLOR if hit else "white", lw=2.2 if hit else 0.5,
                           hatch="//" if outcome == "open" else None))
        text = op.f + (f" {short(_fmt(op.args), 16)}" if op.args not in (None, {}) else "")
        if op.complete is not None and op.result is not None:
            text += f" → {short(_fmt(op.result), 10)}"
        if bar_w > span_all * 0.06:
            ax.text(op.start + bar_w / 2, y, text, ha="center", va="center", fontsize=7,
                    clip_on=True)
        elif hit and side_labels:  # evidence too short to hold its label: write it beside the bar, in full
            text = op.f + (f" {short(_fmt(op.args), 48)}" if op.args not in (None, {}) else "")
            if op.complete is not None and op.result is not None:
                text += f" → {short(_fmt(op.result), 16)}"
            right = op.start > t_start + 0.7 * span_all
            ax.text(op.start - span_all * 0.005 if right else op.start + bar_w + span_all * 0.005,
                    y + 0.12, text, ha="right" if right else "left", va="center", fontsize=7,
                    color=ANOMALY_COLOR)
        for e in sorted(events & set(kinds_at)):
            for kind in kinds_at[e]:
                if (kind, y) in labelled:
                    continue
                labelled.add((kind, y))
                x = op.start + bar_w / 2
                ax.annotate(kind, (x, y - 0.3), xytext=(0, 5), textcoords="offset points",
                            ha="right" if x > t_start + 0.85 * span_all else "center", fontsize=8,
                            color=ANOMALY_COLOR, fontweight="bold",
                            arrowprops={"arrowstyle": "-", "color": ANOMALY_COLOR, "lw": 0.8})

    ax.set_xlim(t_start, t_end + span_all * 0.02)
    ax.set_ylim(len(lanes) - 0.4, -0.8)          # first lane on top
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("time since the history started (s)")
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    head = title or (getattr(verdict, "checker", "") or "history")
    if verdict is not None and getattr(verdict, "valid", True) is not True:
        head += f" — {', '.join(verdict.kinds()) or verdict.valid}"
    ax.set_title(head, loc="left", fontsize=10)
    legend = [Patch(color=c, label=k) for k, c in OUTCOME_COLORS.items()]
    legend.append(Patch(color=FAULT_COLOR, alpha=0.3, label="fault"))
    if marked:
        legend.append(Patch(facecolor="white", edgecolor=ANOMALY_COLOR, lw=2, label="anomaly"))
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              frameon=False)
    return finish(fig, path)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " ".join(_fmt(v) for v in value)
    return str(value)


def _rect(x: float, y: float, w: float, h: float, color: str, alpha: float, edge: str = "none",
          lw: float = 0.0, hatch: str | None = None):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, facecolor=color, alpha=alpha, edgecolor=edge, linewidth=lw,
                     hatch=hatch)
