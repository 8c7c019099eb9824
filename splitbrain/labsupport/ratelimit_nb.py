"""Lab 05 in a notebook: a scenario with its own namespace, history, gateways and fault proxy, and the
picture of one client's admissions against the limit's envelope.

```python
with Scenario("limiter.py") as s:
    gws = [s.gateway(f"g{i}", via_proxy=True) for i in range(4)]
    with s.latency(20):
        race(gws, "client-1", 10)
    s.verdict()          # the checker's verdict over every allow() of the scenario
    s.picture()          # admissions over time with the envelope
```
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from splitbrain.history import History
from splitbrain.labsupport import ratelimit as rl


class Scenario:
    """One experiment: a fresh namespace on the running Redis, a history, gateway workers running
    ``component``, and (on first use) a fault proxy in front of Redis. ``close()`` cleans up."""

    def __init__(self, component: str | Path = "limiter.py", services: Any = None) -> None:
        from splitbrain.services import ensure_up, open_namespace
        self.component = Path(component).resolve()
        if not self.component.is_file():
            raise FileNotFoundError(f"{self.component}: run the notebook from its own folder, "
                                    f"next to limiter.py")
        self.services = services or ensure_up(["redis"])
        self.ns = open_namespace(self.services)
        self.history = History()
        self.prefix = self.ns.key("rl:")
        self._workers: list[Any] = []
        self._proxy: Any = None

    # -- parts ----------------------------------------------------------------------------------
    def _spawn(self, name: str, resources: dict | None = None, limits: Any = None) -> Any:
        from splitbrain.sandbox import spawn
        w = spawn(self.component, name, {"redis_url": self.ns.redis_url, **(resources or {})},
                  limits, history=self.history)
        self._workers.append(w)
        return w

    def gateway(self, name: str, via_proxy: bool = False) -> rl.Gateway:
        url = self.proxy.url_for(self.ns.redis_url) if via_proxy else None
        return rl.Gateway(self._spawn, name, self.prefix, redis_url=url)

    @property
    def proxy(self) -> Any:
        if self._proxy is None:
            from urllib.parse import urlsplit

            from splitbrain.faults.proxy import FaultProxy
            parts = urlsplit(self.ns.redis_url)
            self._proxy = FaultProxy(f"redis-{self.ns.prefix.strip(':')}")
            self._proxy.start((parts.hostname, parts.port))
        return self._proxy

    @contextlib.contextmanager
    def latency(self, ms: float) -> Iterator[None]:
        with self.proxy.latency(ms):
            self.history.fault("latency", "redis", phase="start", ms=ms)
            try:
                yield
            finally:
                self.history.fault("latency", "redis", phase="end")

    @contextlib.contextmanager
    def partition(self) -> Iterator[None]:
        with self.proxy.blackhole():
            self.history.fault("partition", "redis", phase="start")
            try:
                yield
            finally:
                self.history.fault("partition", "redis", phase="end")

    # -- results --------------------------------------------------------------------------------
    def decisions(self) -> list:
        return rl.between(self.history, 0.0, self.history.now())

    def verdict(self, **kw: Any) -> Any:
        return rl.verdict_of(self.decisions(), **kw)

    def picture(self, client: str | None = None, title: str = "") -> Any:
        return plot_admissions(self.decisions(), client=client, title=title)

    def close(self) -> None:
        for w in self._workers:
            with contextlib.suppress(Exception):
                w.close()
        if self._proxy is not None:
            with contextlib.suppress(Exception):
                self._proxy.stop()
        with contextlib.suppress(Exception):
            self.ns.drop()

    def __enter__(self) -> "Scenario":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
