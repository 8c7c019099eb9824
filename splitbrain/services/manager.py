"""``ensure_up`` / ``current`` / ``down``: the shared services of this state directory.

Safe to call from many processes at once: the state file is read and changed only under a file
lock, so parallel pytest workers and notebooks all end up on the same servers."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from ..settings import settings
from . import embedded, external, procs, state
from .errors import BadInput, StaleState

SERVICES = ("postgres", "redis", "kafka")
BACKENDS = ("embedded", "external", "docker")


@dataclass(frozen=True)
class Endpoints:
    """Where the services answer. URLs carry credentials: the admin (superuser) ones.

    ``backend`` is the backend shared by every service listed, or ``"mixed"``; ``backends``
    maps each service to its own. ``started`` names what this call started; ``notes`` are
    things the user should know (a stale state file cleaned up)."""

    postgres_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap: str | None = None
    backend: str = "embedded"
    backends: Mapping[str, str] = field(default_factory=dict)
    started: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def url(self, name: str) -> str | None:
        return {"postgres": self.postgres_url, "redis": self.redis_url,
                "kafka": self.kafka_bootstrap}[_check_name(name)]


def _check_name(name: str) -> str:
    if name not in SERVICES:
        raise BadInput(f"unknown service {name!r}: the kit runs {', '.join(SERVICES)}.")
    return name


def _check_backend(backend: str | None) -> str | None:
    if backend is not None and backend not in BACKENDS:
        raise BadInput(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)} "
                       f"(or leave it unset: the kit picks external where URLs are configured, "
                       f"else embedded).")
    return backend


def resolve_backend(name: str, backend: str | None = None) -> str | None:
    """The backend asked for, explicitly or by configuration; None means "whatever runs, else
    embedded"."""
    if backend:
        return _check_backend(backend)
    env = settings.backend or external.config().get("backend")
    if env:
        return _check_backend(env)
    if external.configured_url(name):
        return "external"
    return None


def _healthy(name: str, rec: dict) -> bool:
    b = rec.get("backend")
    if b == "embedded":
        return embedded.healthy(name, rec)
    if b == "docker":
        from . import docker_backend
        return docker_backend.healthy(name, rec)
    return external.check(name, rec["url"], timeout=2.0) is None


def _endpoints(recs: dict, started: Iterable[str] = (), notes: Iterable[str] = ()) -> Endpoints:
    backends = {n: recs[n]["backend"] for n in SERVICES if n in recs}
    kinds = set(backends.values())
    return Endpoints(
        postgres_url=recs.get("postgres", {}).get("url"),
        redis_url=recs.get("redis", {}).get("url"),
        kafka_bootstrap=recs.get("kafka", {}).get("url"),
        backend=kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "none"),
        backends=backends, started=tuple(started), notes=tuple(notes))


def _forget_stale(recs: dict, name: str) -> str | None:
    rec = recs.get(name)
    if rec and rec.get("backend") == "embedded" and not embedded.is_ours(rec):
        del recs[name]
        return str(StaleState(str(state.state_path()),
                              f"{name} (pid {rec.get('pid')}) is no longer running"))
    return None


def ensure_up(names: Iterable[str] | None = None, backend: str | None = None) -> Endpoints:
    """Start what is missing of ``names`` (default all three) and return where they answer.

    A running healthy service is reused when its backend is the one asked for (argument,
    ``SPLITBRAIN_BACKEND``, a configured URL); when none is asked for, a recorded embedded or
    docker service is reused, else an embedded one is started."""
    names = [_check_name(n) for n in (SERVICES if names is None else names)]
    _check_backend(backend)
    started, notes = [], []
    chosen: dict[str, dict] = {}
    with state.locked():
        recs = state.read()
        for name in names:
            want = resolve_backend(name, backend)
            note = _forget_stale(recs, name)
            if note:
                notes.append(note)
            rec = recs.get(name)
            # an external record came from someone's configuration; without it, embedded
            reusable = rec and (rec["backend"] == want or
                                (want is None and rec["backend"] != "external"))
            if reusable and _healthy(name, rec):
                chosen[name] = rec
                continue
            want = want or "embedded"
            if want == "external":
                # someone else's server: nothing to start; the record of a healthy service of
                # another backend stays (other processes may be using it)
                chosen[name] = external.record(name)
                if not (rec and _healthy(name, rec)):
                    recs[name] = chosen[name]
                continue
            if rec:
                _stop_record(name, rec)     # not answering, or another backend was asked for
            recs.pop(name, None)
            if want == "embedded":
                recs[name] = embedded.start(name)
            else:
                from . import docker_backend
                recs[name] = docker_backend.start(name)
            chosen[name] = recs[name]
            started.append(name)
            state.write(recs)
        state.write(recs)
    return _endpoints(chosen, started, notes)


def _stop_record(name: str, rec: dict) -> None:
    """Stop what a record names: embedded (only if still the kit's own process), docker (the
    compose service); external servers are someone else's and are left alone."""
    if rec.get("backend") == "embedded":
        embedded.stop(name, rec)
    elif rec.get("backend") == "docker":
        from . import docker_backend
        docker_backend.stop(name, rec)


def current() -> Endpoints | None:
    """What runs now according to the state file (nothing is started); None if nothing."""
    recs = state.read()
    live = {n: r for n, r in recs.items()
            if n in SERVICES and (r.get("backend") != "embedded" or embedded.is_ours(r))}
    return _endpoints(live) if live else None


def status() -> dict:
    """``{"services": {name: {"backend", "url", "healthy"}}}`` for each recorded service."""
    recs = state.read()
    out = {}
    for name in SERVICES:
        rec = recs.get(name)
        if rec:
            out[name] = {"backend": rec["backend"], "url": rec["url"],
                         "healthy": bool(_healthy(name, rec))}
    return {"services": out}


def down(names: Iterable[str] | None = None, purge: bool = False) -> list[str]:
    """Stop exactly the recorded services (embedded: only processes the kit started, checked
    by pid and start time; docker: the compose project; external: just forgotten). Returns the
    names that were stopped or forgotten. ``purge`` also deletes kept embedded data."""
    names = [_check_name(n) for n in (SERVICES if names is None else names)]
    done = []
    with state.locked():
        recs = state.read()
        for name in names:
            rec = recs.pop(name, None)
            if rec is None:
                continue
            _stop_record(name, rec)
            done.append(name)
        state.write(recs)
        if purge and not any(r.get("backend") == "embedded" for r in recs.values()):
            embedded.purge()
    return done


def _me() -> list:
    return [os.getpid(), procs.start_time(os.getpid())]


def _live_holders(rec: dict) -> list:
    return [h for h in rec.get("holders", []) if procs.is_same_process(h[0], h[1])]


@contextmanager
def using(names: Iterable[str] | None = None, backend: str | None = None) -> Iterator[Endpoints]:
    """``ensure_up`` for the length of a block (a test session): this process is recorded as a
    holder of each service; at the end, a service this block started is stopped unless another
    live process still holds it. Services someone else started are never stopped here."""
    ep = ensure_up(names, backend)
    me = _me()
    with state.locked():
        recs = state.read()
        for name in ep.backends:
            if name in recs:
                recs[name]["holders"] = _live_holders(recs[name]) + [me]
        state.write(recs)
    try:
        yield ep
    finally:
        with state.locked():
            recs = state.read()
            stop = []
            for name in ep.backends:
                rec = recs.get(name)
                if rec is None:
                    continue
                rec["holders"] = [h for h in _live_holders(rec) if h != me]
                if name in ep.started and not rec["holders"]:
                    stop.append(name)
            state.write(recs)
        if stop:
            down(stop)
