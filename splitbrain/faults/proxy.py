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

It behaves as Toxiproxy 2.9 does (``tests/test_faults_toxiproxy_compat.py`` drives it with
Toxiproxy's own Python and Node clients): every toxic of 2.9 with its effects (``timeout`` drops
bytes, restarts its timer on each chunk and closes its connections when removed; removing a
``latency`` sends what it was delaying at once); ``/populate`` checks every entry before touching
a proxy and leaves one with the same listen address and upstream as it is; a new upstream or
listen address closes a proxy's connections; IPv6 addresses in brackets (``[::1]:0``);
``/version`` is ``{"version": "2.9.0"}``; status codes as 2.9's (409 for a name in use, 500 for a
listen address in use). What is the kit's own, on purpose:

- ``hold``: the named option for a partition that delivers what it held after the heal (the
  ``partition`` fault and ``blackhole()``); Toxiproxy's ``timeout`` loses it. ``stall`` holds the
  message after the first N. A real toxiproxy refuses both (400 invalid toxic type).
- toxicity rolls and jitter come from a seeded generator, so a run replays.
- a proxy with no ``listen`` address (or an empty host) listens on 127.0.0.1, not on every
  interface; an unknown toxic attribute or a negative value is refused, naming it.
- ``reset_peer`` always ends in a TCP RST (2.9 sets SO_LINGER 0 only on connections opened
  after the toxic was added: link.go); a client's half-close is passed on as one (2.9 closes
  both ways).
- a stall toxic's ``state`` and ``ProxyServer.connections()`` are not in Toxiproxy's API; the
  HTTP ``Server`` header says ``splitbrain-proxy``.
"""
from __future__ import annotations

import asyncio
import random
import socket
import threading
from typing import Any

from splitbrain.faults.proxy_conn import _Proxy
from splitbrain.faults.toxics import ToxicError, parse_toxic, update_toxic
from splitbrain.faults.toxiproxy import Proxy, Transport, split_addr

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

    @staticmethod
    def _parse(body: Any, where: str = "") -> tuple[str, tuple[str, int], tuple[str, int], bool]:
        """A proxy's JSON -> (name, listen, upstream, enabled), or ToxicError naming what is wrong."""
        if not isinstance(body, dict):
            raise ToxicError(f"a proxy is a JSON object with 'name', 'upstream' ('host:port') and "
                             f"optionally 'listen' and 'enabled', got {body!r}{where}")
        for field in ("name", "upstream"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise ToxicError(f"missing required field: {field}{where} (a proxy needs a "
                                 f"non-empty 'name' and 'upstream' ('host:port'))")
        enabled = body.get("enabled")
        if enabled is None:
            enabled = True
        elif not isinstance(enabled, bool):
            raise ToxicError(f"'enabled' is true or false, got {enabled!r}{where}")
        return (body["name"], split_addr(body.get("listen") or "127.0.0.1:0", "listen"),
                split_addr(body["upstream"], "upstream"), enabled)

    def create(self, body: dict) -> dict:
        name, listen, upstream, enabled = self._parse(body)

        async def create():
            if name in self._proxies:
                raise ToxicError(f"proxy {name!r} already exists", 409)
            proxy = _Proxy(self, name, listen, upstream)
            if enabled:
                await proxy.enable()
            self._proxies[name] = proxy
            return proxy.to_dict()
        return self._run(create)

    def populate(self, body: Any) -> tuple[list[dict], ToxicError | None]:
        """Toxiproxy's POST /populate: every entry is checked before any proxy is touched; a proxy
        whose name exists with the same listen address and upstream is left as it is (its
        connections and toxics too); one that differs is stopped and replaced. Returns the
        proxies, and the error that stopped it part way (a listen address in use), if any."""
        if not isinstance(body, list):
            raise ToxicError("populate takes a JSON list of proxies")
        items = [self._parse(item, f" at proxy {i}") for i, item in enumerate(body, 1)]

        async def populate():
            done: list[dict] = []
            for name, listen, upstream, enabled in items:
                old = self._proxies.get(name)
                if old is not None:
                    if upstream == old.upstream and await _same_listen(listen, old.listen):
                        done.append(old.to_dict())
                        continue
                    await old.disable()
                    del self._proxies[name]
                proxy = _Proxy(self, name, listen, upstream)
                if enabled:
                    try:
                        await proxy.enable()
                    except ToxicError as e:
                        return done, e
                self._proxies[name] = proxy
                done.append(proxy.to_dict())
            return done, None
        return self._run(populate)

    def get(self, name: str) -> dict:
        return self._run(lambda: self._get(name).to_dict())

    def update(self, name: str, body: dict) -> dict:
        """Toxiproxy's proxy update: a new listen address or upstream stops the proxy (closing its
        connections) and starts it again there if it stays enabled."""
        if not isinstance(body, dict):
            raise ToxicError(f"a proxy update is a JSON object like {{'enabled': false}}, got {body!r}")
        enabled = body.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ToxicError(f"'enabled' is true or false, got {enabled!r}")
        upstream = split_addr(body["upstream"], "upstream") if body.get("upstream") else None
        listen = split_addr(body["listen"], "listen") if body.get("listen") else None

        async def update():
            proxy = self._get(name)
            want = proxy.enabled if enabled is None else enabled
            moved = (upstream not in (None, proxy.upstream) or
                     (listen is not None and not await _same_listen(listen, proxy.listen)))
            if moved:
                await proxy.disable()
                proxy.upstream = upstream or proxy.upstream
                proxy.listen = listen or proxy.listen
            await (proxy.enable() if want else proxy.disable())
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
        """New attributes and/or toxicity: the toxic starts again on every connection (toxicity
        rolled again, a timeout's timer restarted), as Toxiproxy does, without its removal."""
        def update():
            p = self._get(proxy)
            if name not in p.toxics:
                raise ToxicError(f"no toxic {name!r} on proxy {proxy!r}", 404)
            new = update_toxic(p.toxics[name], body)
            p.toxics[name] = new
            p.stalls.pop(name, None)
            for conn in list(p.conns):
                conn.forget(name, new)
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
        toxic = p.toxics.pop(name)
        p.stalls.pop(name, None)
        for conn in list(p.conns):
            conn.forget(name)
            if toxic.type == "timeout":
                conn.close()     # Toxiproxy's timeout Cleanup: every link it was on is closed
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


async def _same_listen(want: tuple[str, int], have: tuple[str, int]) -> bool:
    """Whether listen address ``want`` (as asked) is ``have`` (as bound): names resolved, port 0
    never the same (it asks for a new port)."""
    if want == have:
        return True
    if want[1] != have[1]:
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(want[0], want[1],
                                                             type=socket.SOCK_STREAM)
    except OSError:
        return False
    return have[0] in {i[4][0] for i in infos}


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
        host, port = split_addr(upstream, "upstream")
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
