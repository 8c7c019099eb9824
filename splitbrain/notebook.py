"""Helpers for the lab notebooks: services up, one experiment at a time, pictures with verdicts.

A lab notebook runs the learner's component against real services, the same way the grader does,
only interactively::

    from splitbrain import notebook as nb

    services = nb.up(["redis", "postgres"])          # start what is missing; says where they are
    with nb.experiment("counter.py", services) as ex:  # a fresh namespace, history and workers
        w = ex.spawn("a")                            # a sandboxed worker running counter.py
        c = w.new("Counter", nb.Ref("redis"), ex.ns.key("c"), clock=nb.Ref("clock"))
        c.increment()                                # recorded in ex.history
        gc = ex.nemesis.inject("pause", w)           # faults go through the nemesis, recorded too
        gc.heal()
        px = ex.proxy("redis")                       # a fault proxy in front of the namespace's Redis
        with ex.nemesis.fault("partition", px):
            ...
    nb.show(ex.history, verdict)                     # the space-time picture and the verdict

``up`` returns the ``Endpoints`` of ``splitbrain.services``; ``experiment`` returns an
:class:`Experiment` whose ``spawn``, ``proxy``, ``nemesis``, ``ns`` and ``history`` behave like the
grader's fixtures of the same names; leaving the ``with`` block heals every fault, stops the
workers, closes the proxies and drops the namespace. ``show`` draws ``splitbrain.viz.spacetime`` (or
``picture="lease"`` for ``lease_timeline``) inline, with a tooltip on each operation, and prints
the verdict in words.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable

from splitbrain.history import History
from splitbrain.sandbox import Limits, Ref

__all__ = ["up", "experiment", "Experiment", "show", "explain", "Ref"]


def up(names: Iterable[str], backend: str | None = None):
    """Start the services a lab needs (reusing running ones) and print one line about them."""
    from splitbrain.services import ensure_up
    names = list(names)
    print(f"Starting {', '.join(names)} (reusing what already runs) ...", flush=True)
    ep = ensure_up(names, backend=backend)
    where = []
    for n in names:
        url = ep.url(n) or ""
        where.append(f"{n} at {url.rsplit('@', 1)[-1]}")
    started = f"; started {', '.join(ep.started)}" if getattr(ep, "started", ()) else ""
    print(f"Ready on the {ep.backend} backend: {', '.join(where)}{started}.", flush=True)
    return ep


class Experiment:
    """One run of a scenario: its own namespace, its own history, the workers and proxies it made.

    ``ns``: the namespace (``ns.key("lock")``, ``ns.pg_url``, ``ns.pg_admin_url``, ...).
    ``history``: every call made through a worker and every fault, for the checkers and pictures.
    ``spawn(name, resources=None)``: a sandboxed worker running the component, given the
        namespace's restricted URLs (``resources`` overrides some, e.g. a proxy's URL).
    ``proxy(service)``: a fault proxy in front of the namespace's ``"redis"`` or ``"postgres"``.
    ``nemesis``: injects faults by their registry name and records them in ``history``.
    """

    def __init__(self, component: str | Path, services: Any, memory_mb: int = 512) -> None:
        from splitbrain.services import open_namespace
        self.component = Path(component).resolve()
        if not self.component.is_file():
            raise FileNotFoundError(
                f"{component}: no such component file next to the notebook (cwd {Path.cwd()}); "
                f"run the notebook from its lab folder")
        self.services = services
        self.ns = open_namespace(services)
        self.history = History()
        from splitbrain.faults import Nemesis
        self.nemesis = Nemesis(history=self.history)
        self.memory_mb = memory_mb
        self._workers: list[Any] = []
        self._proxies: list[Any] = []

    def spawn(self, name: str, resources: dict | None = None, **kwargs: Any):
        from splitbrain.grading.env import resources_of
        from splitbrain.sandbox import spawn
        base = resources_of(self.ns, self.services)
        rig = self.component.parent / "rig"
        kwargs.setdefault("rig", rig if (rig / "__init__.py").is_file() else None)
        w = spawn(self.component, name, {**base, **(resources or {})},
                  kwargs.pop("limits", None) or Limits(memory_mb=self.memory_mb),
                  history=self.history, **kwargs)
        self._workers.append(w)
        return w

    def proxy(self, service: str):
        from splitbrain.grading.proxies import ServiceProxy
        p = ServiceProxy(service, self.services, self.ns, len(self._proxies))
        self._proxies.append(p)
        return p

    def close(self) -> None:
        try:
            self.nemesis.heal_all()
        except Exception:  # noqa: BLE001 - closing is best effort; the next run starts fresh
            pass
        for w in self._workers:
            try:
                w.close()
            except Exception:  # noqa: BLE001 - closing is best effort; the next run starts fresh
                pass
        for p in self._proxies:
            p.close()
        try:
            self.ns.drop()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "Experiment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def experiment(component: str | Path, services: Any, memory_mb: int = 512) -> Experiment:
    """A fresh :class:`Experiment` for ``component`` (a path relative to the notebook)."""
    return Experiment(component, services, memory_mb)


def explain(verdict: Any) -> str:
    """The verdict in words: what the checker found, or that it found nothing."""
    if verdict is None:
        return ""
    if verdict.valid is True:
        return (f"{verdict.checker or 'checker'}: no anomaly in this run. The guarantee held "
                f"(if you have fixed the component, that is what you want to see).")
    return verdict.explain()


def _from_first_event(history: History) -> History:
    """The same events with time measured from just before the first one, so the picture does
    not start with the seconds spent starting workers."""
    from splitbrain.history import Event
    if not len(history):
        return history
    t0 = max(min(e.time for e in history) - 0.05, 0.0)
    return History.from_events(Event(e.process, e.type, e.f, e.value, e.time - t0, e.index,
                                     e.fault) for e in history)


def show(history: History, verdict: Any = None, picture: str = "spacetime",
         title: str | None = None, **kwargs: Any):
    """Draw ``history`` inline (``picture``: "spacetime" or "lease") and print the verdict.

    Returns the matplotlib Figure, so a notebook cell that ends with ``show(...)`` displays it
    (``display(fig)`` too). The space-time diagram shows itself as an inline SVG: rest the
    pointer on an operation to read its call, its result and the faults active then; the
    offending operations are outlined in red. Where HTML is not shown it is a PNG. Extra keyword
    arguments go to the picture (``ttl_s=`` for the lease timeline).
    """
    from splitbrain import viz
    draw = {"spacetime": viz.spacetime, "lease": viz.lease_timeline}.get(picture)
    if draw is None:
        raise ValueError(f"picture must be 'spacetime' or 'lease', not {picture!r}")
    fig = draw(_from_first_event(history), verdict=verdict, title=title, **kwargs)
    text = explain(verdict)
    if text:
        print(text, file=sys.stdout, flush=True)
    return fig
