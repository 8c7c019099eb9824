"""Lab 05 in a notebook (``rig.scenario``): a scenario with its own namespace, history, gateways,
nemesis and fault proxy, and the picture of one client's admissions against the limit's envelope.

```python
with Scenario("limiter.py") as s:
    gws = [s.gateway(f"g{i}", via_proxy=True) for i in range(4)]
    with s.latency(20):               # the nemesis's "latency" on the proxy in front of Redis
        race(gws, "client-1", 10)
    s.nemesis.inject("clock-skew", gws[1].worker, offset=5.0)   # any other fault, by its name
    s.verdict()          # the checker's verdict over every allow() of the scenario
    s.picture()          # admissions over time with the envelope
```
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from splitbrain.notebook import Experiment

from rig import ratelimit as rl


class Scenario(Experiment):
    """One experiment: a fresh namespace on the running Redis, a history, gateway workers running
    ``component``, a nemesis that records every fault in the history, and (on first use) a fault
    proxy in front of Redis. ``close()`` heals every fault and cleans up."""

    def __init__(self, component: str | Path = "limiter.py", services: Any = None) -> None:
        if not Path(component).resolve().is_file():
            raise FileNotFoundError(f"{Path(component).resolve()}: run the notebook from its own "
                                    f"folder, next to limiter.py")
        if services is None:
            from splitbrain.services import ensure_up
            services = ensure_up(["redis"])
        super().__init__(component, services)
        self.prefix = self.ns.key("rl:")
        self._redis_proxy: Any = None

    # -- parts ----------------------------------------------------------------------------------
    def gateway(self, name: str, via_proxy: bool = False) -> rl.Gateway:
        url = self.redis_proxy.url if via_proxy else None
        return rl.Gateway(self.spawn, name, self.prefix, redis_url=url)

    @property
    def redis_proxy(self) -> Any:
        """The fault proxy in front of the namespace's Redis (named ``redis`` in the history)."""
        if self._redis_proxy is None:
            self._redis_proxy = self.proxy("redis")
        return self._redis_proxy

    @contextlib.contextmanager
    def latency(self, ms: float) -> Iterator[None]:
        """Every reply from Redis ``ms`` late, for the block (the nemesis's ``latency``)."""
        with self.nemesis.fault("latency", self.redis_proxy, ms=ms):
            yield

    @contextlib.contextmanager
    def partition(self) -> Iterator[None]:
        """Redis unreachable for the block (the nemesis's ``partition``)."""
        with self.nemesis.fault("partition", self.redis_proxy):
            yield

    # -- results --------------------------------------------------------------------------------
    def decisions(self) -> list:
        return rl.between(self.history, 0.0, self.history.now())

    def verdict(self, **kw: Any) -> Any:
        return rl.verdict_of(self.decisions(), **kw)

    def picture(self, client: str | None = None, title: str = "") -> Any:
        return plot_admissions(self.decisions(), client=client, title=title)

    def __enter__(self) -> "Scenario":
        return self


def plot_admissions(decisions: list, *, client: str | None = None, limit: int = rl.LIMIT,
                    window_s: float = rl.WINDOW_S, title: str = "") -> Any:
    """One client's admissions over time (a step per admitted request, coloured by gateway;
    rejected requests as grey ticks) with the envelope from its first admission,
    ``limit + rate * (t - t_first)``: no correct limiter's steps cross that line."""
    from matplotlib.figure import Figure
    answered = [d for d in decisions if d.end is not None]
    clients = sorted({d.client for d in answered})
    client = client or (max(clients, key=lambda c: sum(d.admitted for d in answered
                                                      if d.client == c)) if clients else "")
    ds = sorted((d for d in answered if d.client == client), key=lambda d: d.end)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.add_subplot()
    adm = [d for d in ds if d.admitted]
    if not ds:
        ax.text(0.5, 0.5, "no decisions recorded", ha="center", transform=ax.transAxes)
        return fig
    t0 = min(d.start for d in ds)
    gateways = sorted({d.process for d in ds})
    colors = {g: f"C{i % 10}" for i, g in enumerate(gateways)}
    for n, d in enumerate(adm, start=1):
        ax.plot([d.end - t0], [n], "o", ms=4, color=colors[d.process])
    ax.step([d.end - t0 for d in adm], range(1, len(adm) + 1), where="post", color="0.3", lw=1)
    for d in ds:
        if d.denied:
            ax.plot([d.end - t0], [0], "|", ms=8, color="0.6")
    if adm:
        first = adm[0].start - t0
        t_max = max(d.end for d in ds) - t0
        xs = [first, max(t_max, first + 1e-3)]
        ax.plot(xs, [limit + limit / window_s * (x - first) for x in xs], "--", color="crimson",
                label=f"envelope: {limit} + {limit / window_s:g}/s × t")
    for g in gateways:
        ax.plot([], [], "o", color=colors[g], label=f"admitted by {g}")
    ax.plot([], [], "|", color="0.6", label="rejected")
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"requests of {client} admitted")
    ax.set_title(title or f"{len(adm)} of {len(ds)} requests admitted (limit {limit} per "
                          f"{window_s:g} s)")
    ax.legend(loc="upper left", fontsize=8)
    return fig
