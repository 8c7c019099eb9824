"""The ``proxy`` fixture's handle: a FaultProxy in front of one service, faults recorded in the
test's history (``blackhole`` becomes a fault event ``partition`` that starts and ends)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

_FAULT_NAMES = {"blackhole": "partition", "reset_peer": "reset-peer", "refuse": "refuse",
                "latency": "latency", "bandwidth": "bandwidth", "slicer": "slicer",
                "limit_data": "limit-data", "slow_close": "slow-close"}
_URL_KEY = {"redis": "redis_url", "postgres": "pg_url"}


class _Recorded:
    """Wraps a toxic handle: removing it (or leaving its ``with``) records the fault's end."""

    def __init__(self, owner: "ServiceProxy", fault: str, handle: Any) -> None:
        self._owner, self._fault, self._handle, self._open = owner, fault, handle, True

    def remove(self) -> None:
        if self._open:
            self._open = False
            self._handle.remove()
            self._owner._end(self._fault)

    def __enter__(self) -> "_Recorded":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class ServiceProxy:
    """``url``: the service URL (this test's namespace) through the proxy; ``resources``: the same
    as a dict to pass to ``spawn(resources=...)``; fault methods as on FaultProxy."""

    def __init__(self, service: str, services, ns, history, seed: int) -> None:
        from splitbrain.faults.proxy import FaultProxy
        if service not in _URL_KEY:
            raise ValueError(f"proxy() takes 'redis' or 'postgres', not {service!r} (a Kafka "
                             f"broker behind a proxy must advertise the proxy's port: use a "
                             f"private broker)")
        self.service, self.history = service, history
        base = getattr(ns, _URL_KEY[service], None) if ns is not None else None
        if not base:  # never the admin URL: learner code only gets the namespace's user
            raise ValueError(f"proxy({service!r}): this test's namespace has no {service}; list it "
                             f"in lab.toml `services`")
        parts = urlsplit(base)
        self._proxy = FaultProxy(f"{service}-{seed}", seed=seed)
        self._proxy.start((parts.hostname, parts.port))
        self.url = self._proxy.url_for(base)
        self.resources = {_URL_KEY[service]: self.url}
        self._active: list[str] = []

    @property
    def port(self) -> int:
        return self._proxy.port

    def _end(self, fault: str) -> None:
        if fault in self._active:
            self._active.remove(fault)
        if self.history is not None:
            self.history.fault(fault, self.service, phase="end")

    def __getattr__(self, name: str) -> Any:
        if name not in _FAULT_NAMES:
            return getattr(self._proxy, name)
        method = getattr(self._proxy, name)
        fault = _FAULT_NAMES[name]

        def inject(*args: Any, **kwargs: Any) -> _Recorded:
            handle = method(*args, **kwargs)
            self._active.append(fault)
            if self.history is not None:
                params = {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str))}
                self.history.fault(fault, self.service, phase="start", **params,
                                   **({"args": list(args)} if args else {}))
            return _Recorded(self, fault, handle)
        return inject

    def heal(self) -> None:
        self._proxy.heal()
        for fault in list(self._active):
            self._end(fault)

    def close(self) -> None:
        try:
            self._proxy.stop()
        except Exception:  # noqa: BLE001 - closing at teardown is best effort
            pass
