"""The lease timeline: who held the lock when, with which fencing token, and which writes landed.

Each lane is a process. A solid bar is a lease from the moment it was granted until it ran out
(``ttl_s``) or was released, labelled with its token; a dashed outline continues it while the holder
still *believed* it held the lock (it had not released yet, but the lease had expired: the paused
holder's dream). Writes are markers: a filled circle for a write the storage accepted, a cross for
one it rejected, each labelled with the token it carried. Faults are shaded, anomaly evidence is
ringed in red.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from splitbrain.history import History
from splitbrain.viz._common import (ANOMALY_COLOR, FAULT_COLOR, OUTCOME_COLORS,
                                    finish, new_figure)

__all__ = ["lease_timeline"]

LEASE_COLOR = "#3b75af"


def _token(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get("token", value.get("fence"))
    return value


def lease_timeline(history: History, ttl_s: float | None = None, *, verdict: Any = None,
                   highlight: Iterable[int] = (), acquire: str = "acquire",
                   release: str = "release", write: str = "write", title: str | None = None,
                   path: str | Path | None = None, width: float = 11.0) -> Figure | Path:
    """Draw leases and fenced writes from ``history`` (see the module docstring).

    Returns the Figure, or saves it to ``path`` and returns the path.
    """
    ops = history.operations()
    lanes = [p for p in history.processes() if p != "nemesis"] or ["(no operations)"]
    lane_of = {p: i for i, p in enumerate(lanes)}
    marked = set(highlight)
    for a in getattr(verdict, "anomalies", ()) if verdict is not None else ():
        marked.update(a.events)
    t_end = max([e.time for e in history.events] or [1.0]) or 1.0
    fig = new_figure(width, 1.3 + 0.6 * len(lanes))
    ax = fig.add_subplot()

    for w in history.fault_windows():
        end = w.end if w.end is not None else t_end
        label = w.name + (f"({w.target})" if w.target else "")
        if w.target in lane_of:
            y = lane_of[w.target]
            ax.add_patch(Rectangle((w.start, y - 0.45), end - w.start, 0.9,
                                   color=FAULT_COLOR, alpha=0.15, lw=0))
            ax.text(w.start, y - 0.47, label, fontsize=7, color=FAULT_COLOR, va="bottom")
        else:
            ax.axvspan(w.start, end, color=FAULT_COLOR, alpha=0.1, lw=0)
            ax.text(w.start, -0.62, label, fontsize=7, color=FAULT_COLOR, va="bottom")

    for i, op in enumerate(ops):
        y = lane_of.get(op.process)
        if y is None:
            continue
        if op.f == acquire and op.type == "ok" and op.result not in (None, False):
            granted = op.end
            released = next((o.start for o in ops[i + 1:] if o.process == op.process
                             and o.f in (release, acquire)), t_end)
            expires = min(released, op.start + ttl_s) if ttl_s is not None else released
            ax.add_patch(Rectangle((granted, y - 0.18), max(expires - granted, 0), 0.36,
                                   color=LEASE_COLOR, alpha=0.75, lw=0))
            if released > expires:
                ax.add_patch(Rectangle((expires, y - 0.18), released - expires, 0.36, fill=False,
                                       edgecolor=LEASE_COLOR, linestyle="--", lw=1))
            ax.text(granted, y + 0.22, f"token {_token(op.result)}", fontsize=7,
                    color=LEASE_COLOR, va="top")
        elif op.f == write:
            x = op.end if op.end is not None else op.start
            result = op.result
            if isinstance(result, Mapping):
                result = result.get("accepted", result.get("ok", True))
            accepted = op.type == "ok" and bool(result)
            unknown = op.type != "ok" and op.type != "fail"
            color = OUTCOME_COLORS["info"] if unknown else (
                OUTCOME_COLORS["ok"] if accepted else OUTCOME_COLORS["fail"])
            ax.plot([x], [y], marker="o" if accepted else "X", color=color, markersize=8, zorder=3)
            events = {op.invoke.index} | ({op.complete.index} if op.complete else set())
            if events & marked:
                ax.plot([x], [y], marker="o", markersize=15, markerfacecolor="none",
                        markeredgecolor=ANOMALY_COLOR, markeredgewidth=2, zorder=4)
            tok = _token(op.args)
            if tok is not None:
                ax.text(x, y - 0.25, f"w{tok}", fontsize=7, ha="center", va="bottom")

    ax.set_xlim(0, t_end * 1.02)
    ax.set_ylim(len(lanes) - 0.4, -0.8)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("time since the history started (s)")
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    head = title or "leases and fenced writes" + (f" (ttl {ttl_s:g} s)" if ttl_s else "")
    if verdict is not None and getattr(verdict, "valid", True) is not True:
        head += f" — {', '.join(verdict.kinds()) or verdict.valid}"
    ax.set_title(head, loc="left", fontsize=10)
    legend = [Patch(color=LEASE_COLOR, alpha=0.75, label="lease (valid)"),
              Patch(fill=False, edgecolor=LEASE_COLOR, linestyle="--", label="believed held"),
              Line2D([], [], marker="o", ls="", color=OUTCOME_COLORS["ok"], label="write accepted"),
              Line2D([], [], marker="X", ls="", color=OUTCOME_COLORS["fail"], label="write rejected"),
              Patch(color=FAULT_COLOR, alpha=0.3, label="fault")]
    if marked:
        legend.append(Line2D([], [], marker="o", ls="", markerfacecolor="none",
                             markeredgecolor=ANOMALY_COLOR, label="anomaly"))
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              frameon=False)
    return finish(fig, path)
