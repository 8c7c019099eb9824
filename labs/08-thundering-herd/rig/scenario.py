"""Lab 08 in a notebook (``rig.scenario``): the two experiments the notebook runs, each in its own
namespace with its own history, and the picture of the origin's load.

```python
r = cold_herd("thundering_herd.py", services)     # six callers, one cold key, released at once
r = outage("thundering_herd.py", services)        # six callers while the origin is down 0.7 s
r.verdict                                         # the checkers' verdict (rig.checkers.judge)
plot_origin(r.calls, title="...")                 # every call the origin received, per client
```
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import rig.faults  # noqa: F401 - registers origin-down with the nemesis
from rig import world
from rig.checkers import judge, origin_attempts


@dataclass
class Run:
    history: Any
    calls: list
    verdict: Any


def cold_herd(component: str, services: Any, n: int = 6, seed: int = 1) -> Run:
    """``n`` client processes released together on one cold key, then once more (all hits)."""
    from splitbrain import notebook as nb
    with nb.experiment(component, services) as ex:
        world.prepare(ex.ns)
        cs = world.clients(ex.spawn, ex.ns, [chr(97 + i) for i in range(n)], seed)
        with ex.nemesis.fault("concurrency"):
            world.together(cs, "hot")
        world.together(cs, "hot")
        calls = world.origin_calls(ex.ns, ex.history)
        return Run(ex.history, calls, judge(ex.history, calls))


def outage(component: str, services: Any, n: int = 6, down_s: float = 0.7,
           seed: int = 1) -> Run:
    """``n`` client processes, each asking for its own cold key while the origin is down for
    ``down_s`` seconds; then each asks again once it is back."""
    from splitbrain import notebook as nb
    with nb.experiment(component, services) as ex:
        world.prepare(ex.ns)
        cs = world.clients(ex.spawn, ex.ns, [chr(97 + i) for i in range(n)], seed)
        keys = [f"k{i}" for i in range(n)]
        down = ex.nemesis.inject("origin-down", world.Origin(ex.ns))
        t0 = time.monotonic()
        futs = [c.get_async(k) for c, k in zip(cs, keys)]
        time.sleep(max(0.0, t0 + down_s - time.monotonic()))
        down.heal()
        for f in futs:
            world.outcome(f)
        for c, k in zip(cs, keys):
            world.outcome(c.get_async(k))
        calls = world.origin_calls(ex.ns, ex.history)
        w = ex.history.fault_windows(["origin-down"])[-1]
        storms = [(origin_attempts(calls), (w.start, w.end), "the origin")]
        return Run(ex.history, calls, judge(ex.history, calls, storms=storms))


def plot_origin(calls: list, title: str = "") -> Any:
    """Every call the origin received, one row per client: a bar for each computation (from its
    start to its end), a tick for each call that found it down."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax = fig.add_subplot()
    if not calls:
        ax.text(0.5, 0.5, "the origin received no call", ha="center", transform=ax.transAxes)
        return fig
    t0 = min(c.start for c in calls)
    clients = sorted({c.client for c in calls})
    row = {c: i for i, c in enumerate(clients)}
    for c in calls:
        y = row[c.client]
        if c.ok:
            ax.plot([c.start - t0, c.end - t0], [y, y], lw=6, color="crimson", solid_capstyle="butt")
        else:
            ax.plot([c.start - t0], [y], "|", ms=12, color="0.35")
    ax.set_yticks(range(len(clients)), clients)
    ax.set_xlabel("seconds since the first call")
    ax.set_ylabel("client")
    ax.plot([], [], lw=6, color="crimson", label="a computation (the expensive query)")
    ax.plot([], [], "|", ms=12, color="0.35", label="a try that found the origin down")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
    computed = sum(1 for c in calls if c.ok)
    ax.set_title(title or f"the origin: {computed} computations, {len(calls) - computed} failed tries")
    return fig
