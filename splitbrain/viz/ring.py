"""The partition ring: shards as points on a hash ring, keys as dots in their owner's colour.

With ``hash(key) % N``, adding one shard moves almost every key; on a consistent-hash ring it moves
only the keys between the new shard's points and their predecessors. Draw the ring before and after
(``moved=`` the keys that changed owner, ringed in red) and the difference is visible at a glance.

``ring``: shard -> position or list of positions (virtual nodes) in ``[0, 1)``, or integers with
``space=`` the ring size (e.g. ``2**32``). ``keys``: key -> position (same units). ``owner``: key ->
shard as the grader read it from the shards; when omitted, each key belongs to the first shard
point clockwise from it (the consistent-hashing rule).
"""
from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from splitbrain.viz._common import ANOMALY_COLOR, finish, new_figure

__all__ = ["partition_ring", "ring_owner"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#7f7f7f", "#aec7e8"]


def _points(ring: Mapping[str, Any], space: float) -> list[tuple[float, str]]:
    pts = []
    for shard, where in ring.items():
        for p in (where if isinstance(where, (list, tuple)) else [where]):
            pts.append(((float(p) / space) % 1.0, shard))
    if not pts:
        raise ValueError("partition_ring needs at least one shard position")
    return sorted(pts)


def ring_owner(ring: Mapping[str, Any], position: float, space: float = 1.0) -> str:
    """The shard owning ``position``: the first shard point at or after it, wrapping around."""
    pts = _points(ring, space)
    i = bisect.bisect_left([p for p, _ in pts], (float(position) / space) % 1.0)
    return pts[i % len(pts)][1]


def partition_ring(ring: Mapping[str, Any], keys: Mapping[str, Any] | None = None, *,
                   owner: Mapping[str, str] | None = None, moved: Iterable[str] = (),
                   space: float = 1.0, title: str | None = None,
                   path: str | Path | None = None) -> Figure | Path:
    """Draw the ring (see the module docstring); returns the Figure, or the path when saving."""
    pts = _points(ring, space)
    shards = list(dict.fromkeys(s for s in ring))
    color = {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(shards)}
    moved = set(moved)
    fig = new_figure(6.0, 6.0)
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.set_axis_off()
    t = [2 * math.pi * i / 360 for i in range(361)]
    ax.plot([math.sin(a) for a in t], [math.cos(a) for a in t], color="#999999", lw=1)

    def xy(frac: float, r: float = 1.0) -> tuple[float, float]:
        a = 2 * math.pi * frac                      # clockwise from twelve o'clock
        return r * math.sin(a), r * math.cos(a)

    for i, (p, shard) in enumerate(pts):           # arcs: each point owns the arc before it
        prev = pts[i - 1][0] if i else pts[-1][0] - 1.0
        arc = [prev + (p - prev) * k / 30 for k in range(31)]
        ax.plot([xy(a)[0] for a in arc], [xy(a)[1] for a in arc], color=color[shard], lw=5,
                alpha=0.55, solid_capstyle="butt")
        x, y = xy(p)
        ax.plot([x], [y], marker="s", color=color[shard], markersize=9, markeredgecolor="black")
    counts = {s: 0 for s in shards}
    for key, where in (keys or {}).items():
        frac = (float(where) / space) % 1.0
        shard = (owner or {}).get(key) or ring_owner(ring, where, space)
        counts[shard] = counts.get(shard, 0) + 1
        x, y = xy(frac, 0.86)
        ax.plot([x], [y], marker="o", markersize=4, color=color.get(shard, "#000000"))
        if key in moved:
            ax.plot([x], [y], marker="o", markersize=9, markerfacecolor="none",
                    markeredgecolor=ANOMALY_COLOR, markeredgewidth=1.5)
    handles = [Line2D([], [], marker="s", ls="", color=color[s],
                      label=f"{s}" + (f" ({counts.get(s, 0)} keys)" if keys else ""))
               for s in shards]
    if moved:
        handles.append(Line2D([], [], marker="o", ls="", markerfacecolor="none",
                              markeredgecolor=ANOMALY_COLOR, label=f"moved ({len(moved)})"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)
    ax.set_title(title or f"hash ring: {len(shards)} shards, {len(pts)} points", loc="left",
                 fontsize=10)
    return finish(fig, path)
