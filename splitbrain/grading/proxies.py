"""The ``proxy`` fixture's handle: a FaultProxy in front of one service for this test.

Faults on it go through the nemesis like every other fault (``nemesis.inject("partition", px)``);
the handle itself records nothing."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

_URL_KEY = {"redis": "redis_url", "postgres": "pg_url"}


class ServiceProxy:
    """``url``: the service URL (this test's namespace) through the proxy; ``resources``: the same
    as a dict to pass to ``spawn(resources=...)``; ``name``: the service, as the history names
    the target; fault methods (``blackhole``, ``latency``, ...) as on FaultProxy."""

    def __init__(self, service: str, services, ns, seed: int) -> None:
        from splitbrain.faults.proxy import FaultProxy
        if service not in _URL_KEY:
            raise ValueError(f"proxy() takes 'redis' or 'postgres', not {service!r} (a Kafka "
                             f"broker behind a proxy must advertise the proxy's port: use a "
                             f"private broker)")
        self.service = self.name = service
        base = getattr(ns, _URL_KEY[service], None) if ns is not None else None
        if not base:  # never the admin URL: learner code only gets the namespace's user
            raise ValueError(f"proxy({service!r}): this test's namespace has no {service}; list it "
                             f"in lab.toml `services`")
        parts = urlsplit(base)
        self._proxy = FaultProxy(f"{service}-{seed}", seed=seed)
        self._proxy.start((parts.hostname, parts.port))
        self.url = self._proxy.url_for(base)
        self.resources = {_URL_KEY[service]: self.url}

    @property
    def port(self) -> int:
        return self._proxy.port

    def __getattr__(self, name: str) -> Any:
        return getattr(self._proxy, name)

    def close(self) -> None:
        try:
            self._proxy.stop()
        except Exception:  # noqa: BLE001 - closing at teardown is best effort
            pass
