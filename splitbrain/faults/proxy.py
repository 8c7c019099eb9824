"""The kit's own TCP fault proxy, shaped like Toxiproxy.

A network fault is easiest to believe when it happens to real bytes. ``ProxyServer`` sits between a
client and a real Postgres, Redis or Kafka on 127.0.0.1 and does to the bytes what a bad network
does: delays them, holds them (a partition), resets the connection (RST, mid-request), refuses new
connections, throttles and slices them (see ``splitbrain.faults.toxics`` for every toxic). Its model
and HTTP API are Toxiproxy's (proxies with toxics), so the client in ``splitbrain.faults.toxiproxy``
drives this proxy in-process, this proxy as a server (``python -m splitbrain.faults.proxy --api
127.0.0.1:8474``), or a real toxiproxy, with the same calls.

In a test::

    fp = FaultProxy()
    port = fp.start(upstream=("127.0.0.1", 6379))     # listen port on 127.0.0.1
    r = redis.Redis(port=port, socket_timeout=0.5)
    with fp.blackhole():                               # partition: r.ping() times out
        ...
    fp.stop()

One asyncio loop in a daemon thread serves every proxy of a ``ProxyServer``; all state changes run
on that loop, so toxics take effect between two chunks of a stream, never in the middle of one.
Where this proxy differs from Toxiproxy: disabling a proxy (``refuse``) closes open connections with
a FIN, as Toxiproxy does; toxicity rolls come from a seeded generator, so runs replay.
"""
from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

from splitbrain.faults.proxy_conn import _Proxy, _split_addr
from splitbrain.faults.toxics import ToxicError, parse_toxic, update_toxic
from splitbrain.faults.toxiproxy import Proxy, Transport

__all__ = ["ProxyServer", "FaultProxy", "ToxicError"]


class ProxyServer:
    """Many named proxies served by one asyncio loop in a daemon thread.

    Every public method takes and returns Toxiproxy-shaped JSON values and raises ``ToxicError``
    (with an HTTP ``status``) on bad input; ``handle(method, path, body)`` is the HTTP API.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self._proxies: dict[str, _Proxy] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="splitbrain-fault-proxy")
        self._thread.start()
        self._closed = False

    def _run(self, fn, *args) -> Any:
        if self._closed:
            raise ToxicError("this ProxyServer was closed; create a new one", 410)

        async def call():
            out = fn(*args)
            return await out if asyncio.iscoroutine(out) else out
        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    def _get(self, name: str) -> _Proxy:
        if name not in self._proxies:
            raise ToxicError(f"no proxy named {name!r}; existing: {sorted(self._proxies)}", 404)
        return self._proxies[name]

    # -- proxies -----------------------------------------------------------------------------
    def proxies(self) -> dict[str, dict]:
        return self._run(lambda: {n: p.to_dict() for n, p in self._proxies.items()})

    def create(self, body: dict) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise ToxicError("a proxy needs a JSON object with a non-empty 'name', 'upstream' "
                             "('host:port') and optionally 'listen' and 'enabled'")
        name = body["name"]
        upstream = _split_addr(body.get("upstream"), "upstream")
        listen = _split_addr(body.get("listen") or "127.0.0.1:0", "listen")

        async def create():
            if name in self._proxies:
                raise ToxicError(f"proxy {name!r} already exists", 409)
            proxy = _Proxy(self, name, listen, upstream)
            if body.get("enabled", True):
                await proxy.enable()
            self._proxies[name] = proxy
            return proxy.to_dict()
        return self._run(create)

    def get(self, name: str) -> dict:
        return self._run(lambda: self._get(name).to_dict())

    def update(self, name: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise ToxicError(f"a proxy update is a JSON object like {{'enabled': false}}, got {body!r}")

        async def update():
            proxy = self._get(name)
            if "upstream" in body:
                proxy.upstream = _split_addr(body["upstream"], "upstream")
            if "listen" in body and _split_addr(body["listen"], "listen") != proxy.listen:
                await proxy.disable()
                proxy.listen = _split_addr(body["listen"], "listen")
                body.setdefault("enabled", True)
            if "enabled" in body:
                await (proxy.enable() if body["enabled"] else proxy.disable())
            return proxy.to_dict()
        return self._run(update)

    def delete(self, name: str) -> None:
        async def delete():
            proxy = self._get(name)
            await proxy.disable()
            del self._proxies[name]
        self._run(delete)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's POST /reset)."""
        async def reset():
            for proxy in self._proxies.values():
                for name in list(proxy.toxics):
                    self._remove_toxic(proxy, name)
                await proxy.enable()
        self._run(reset)

    # -- toxics ------------------------------------------------------------------------------
    @staticmethod
    def _toxic_dict(p: _Proxy, t) -> dict:
        d = t.to_dict()
        if t.type == "stall":   # the kit's own toxic: say whether it engaged
            d["state"] = dict(p.stalls.get(t.name, {"passed": 0, "held": False}))
        return d

    def toxics(self, proxy: str) -> list[dict]:
        return self._run(lambda: [self._toxic_dict(self._get(proxy), t)
                                  for t in self._get(proxy).toxics.values()])

    def add_toxic(self, proxy: str, body: dict) -> dict:
        toxic = parse_toxic(body)

        def add():
            p = self._get(proxy)
            if toxic.name in p.toxics:
                raise ToxicError(f"toxic {toxic.name!r} already exists on proxy {proxy!r}", 409)
            p.toxics[toxic.name] = toxic
            for conn in list(p.conns):
                conn.roll(toxic, self.rng)
            p.notify()
            return toxic.to_dict()
        return self._run(add)

    def get_toxic(self, proxy: str, name: str) -> dict:
        def get():
            p = self._get(proxy)
            if name not in p.toxics:
                raise ToxicError(f"no toxic {name!r} on proxy {proxy!r}", 404)
            return self._toxic_dict(p, p.toxics[name])
        return self._run(get)

    def update_toxic(self, proxy: str, name: str, body: dict) -> dict:
        def update():
            p = self._get(proxy)
            if name not in p.toxics:
                raise ToxicError(f"no toxic {name!r} on proxy {proxy!r}", 404)
            new = update_toxic(p.toxics[name], body)
            self._remove_toxic(p, name)
            p.toxics[name] = new
            for conn in list(p.conns):
                conn.roll(new, self.rng)
            p.notify()
            return new.to_dict()
        return self._run(update)

    def remove_toxic(self, proxy: str, name: str) -> None:
        def remove():
            p = self._get(proxy)
            if name not in p.toxics:
                raise ToxicError(f"no toxic {name!r} on proxy {proxy!r}", 404)
            self._remove_toxic(p, name)
        self._run(remove)

    @staticmethod
    def _remove_toxic(p: _Proxy, name: str) -> None:
        del p.toxics[name]
        p.stalls.pop(name, None)
        for conn in list(p.conns):
            conn.forget(name)
        p.notify()

    def connections(self, proxy: str) -> int:
        """Open connections through ``proxy`` (not in Toxiproxy's API; for tests and pictures)."""
        return self._run(lambda: len(self._get(proxy).conns))

    # -- HTTP API ----------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        from splitbrain.faults.proxy_http import route
        return route(self, method, path, body)

    def close(self) -> None:
        if self._closed:
            return

        async def close_all():
            for proxy in self._proxies.values():
                await proxy.disable()
        try:
            self._run(close_all)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> "ProxyServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _LocalTransport(Transport):
    """Speaks the Toxiproxy API to an in-process ProxyServer without HTTP."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.server.handle(method, path, body)


class FaultProxy(Proxy):
    """One in-process proxy in front of one service: ``port = FaultProxy().start(upstream=...)``.

    All the fault methods of ``splitbrain.faults.toxiproxy.Proxy`` apply (``latency``,
    ``blackhole``, ``reset_peer``, ``refuse``, ``bandwidth``, ``slicer``, ``limit_data``,
    ``heal``). ``stop()`` closes the proxy and its connections.
    """

    def __init__(self, name: str = "proxy", server: ProxyServer | None = None, seed: int = 0) -> None:
        self._own = server is None
        self._server = server or ProxyServer(seed=seed)
        super().__init__(_LocalTransport(self._server), name)
        self._started = False

    def start(self, upstream: tuple[str, int] | str, listen: str = "127.0.0.1:0") -> int:
        """Start proxying to ``upstream``; returns the port clients should connect to."""
        if self._started:
            raise ToxicError(f"proxy {self.name!r} is already started (port {self.port})", 409)
        host, port = _split_addr(upstream, "upstream")
        info = self._server.create({"name": self.name, "upstream": f"{host}:{port}",
                                    "listen": listen})
        self._started = True
        self.listen = info["listen"]
        return self.port

    def stop(self) -> None:
        if self._started:
            self._server.delete(self.name)
            self._started = False
        if self._own:
            self._server.close()

    def connections(self) -> int:
        return self._server.connections(self.name)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


if __name__ == "__main__":   # python -m splitbrain.faults.proxy --api 127.0.0.1:8474
    from splitbrain.faults.proxy_http import main
    raise SystemExit(main())
