"""The saga state graph: forward steps, their compensations, and where sagas really ended.

Top row: the forward steps in order, ending in *done*. Bottom row: each step's compensation, run
right to left, ending in *compensated*. A failure at a step drops to the compensation of the step
before it. Given the participants' effects (the records ``check_sagas`` reads), every node shows how
many sagas reached it and every end state how many sagas ended there; *dangling* collects the sagas
that stopped half-way, drawn red when there are any. With ``saga=ID`` the graph shows that one
saga's path instead.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx
from matplotlib.figure import Figure

from splitbrain.viz._common import ANOMALY_COLOR, OUTCOME_COLORS, finish, new_figure

from splitbrain.checkers.base import get as _get

__all__ = ["saga_graph"]


def saga_graph(steps: Sequence[str], effects: Iterable[Any] = (), *, saga: Any = None,
               compensations: Mapping[str, str] | None = None, title: str | None = None,
               path: str | Path | None = None) -> Figure | Path:
    """Draw the saga of ``steps`` with counts from ``effects`` (see the module docstring)."""
    if not steps:
        raise ValueError("saga_graph needs the saga's forward steps, e.g. ['reserve', 'charge']")
    from splitbrain.checkers.saga import saga_states
    comp = {s: (compensations or {}).get(s, f"undo {s}") for s in steps}
    effects = [e for e in effects if saga is None or _get(e, "saga") == saga]
    did = Counter((_get(e, "step"), _get(e, "action")) for e in effects)
    states = Counter(saga_states(effects, steps).values())

    g = nx.DiGraph()
    pos: dict[str, tuple[float, float]] = {"start": (0, 0.5)}
    for i, s in enumerate(steps):
        g.add_node(s)
        pos[s] = (i + 1, 1)
        g.add_edge("start" if i == 0 else steps[i - 1], s, kind="forward")
        u = comp[s]
        g.add_node(u)
        pos[u] = (i + 1, 0)
    g.add_edge(steps[-1], "done", kind="forward")
    pos["done"] = (len(steps) + 1, 1)
    pos["compensated"] = (0, -0.6)
    pos["dangling"] = (len(steps) + 1, -0.6)
    g.add_edge(comp[steps[0]], "compensated", kind="compensate")
    for i in range(1, len(steps)):
        g.add_edge(steps[i], comp[steps[i - 1]], kind="failure")
        g.add_edge(comp[steps[i]], comp[steps[i - 1]], kind="compensate")
    g.add_node("dangling")

    counts = {s: did[(s, "do")] for s in steps}
    counts.update({comp[s]: did[(s, "undo")] for s in steps})
    counts.update({"done": states["done"], "compensated": states["compensated"],
                   "dangling": states["dangling"], "start": len({_get(e, "saga") for e in effects})})

    def color(node: str) -> str:
        if node == "dangling":
            return ANOMALY_COLOR if counts["dangling"] else "#dddddd"
        if node in ("done",) or node in steps:
            return OUTCOME_COLORS["ok"] if counts.get(node) else "#dddddd"
        if node == "start":
            return "#9aa5b1"
        return OUTCOME_COLORS["info"] if counts.get(node) else "#dddddd"

    fig = new_figure(1.9 * (len(steps) + 2), 3.6)
    ax = fig.add_subplot()
    nodes = list(g.nodes)
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=nodes, node_color=[color(n) for n in nodes],
                           node_size=2300, edgecolors="#555555")
    styles = {"forward": ("#333333", "solid"), "failure": (ANOMALY_COLOR, "dashed"),
              "compensate": ("#b07020", "solid")}
    for kind, (c, style) in styles.items():
        edges = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == kind]
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges, edge_color=c, style=style,
                               arrows=True, arrowsize=14, node_size=2300,
                               connectionstyle="arc3,rad=0.0")
    labels = {n: f"{n}\n×{counts.get(n, 0)}" for n in nodes}
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=8)
    ax.set_axis_off()
    ax.margins(0.12)
    head = title or (f"saga {saga!r}" if saga is not None else "saga outcomes")
    if states["dangling"]:
        head += f" — {states['dangling']} dangling"
    ax.set_title(head, loc="left", fontsize=10)
    return finish(fig, path)
