"""Each process's own network path to each server, so a fault can hold one process's requests to
one shard while every other process goes on.

The shard map lives in the control Redis and names every shard by its URL, so every process
connects to the same addresses. To give each worker its own link anyway, the grader puts one fault
proxy per (worker, server) in front of the real servers, and the worker's connections to a server's
address are sent to that worker's proxy (:func:`routed`, run inside the worker by the trusted
helper ``Ref("rig.links:routed", routes=...)`` before the learner's store is built). The bytes are
real Redis traffic to real servers; only the route differs, like a per-process firewall rule.

Grader side::

    links = Links({"control": ns.redis_url, **shards.urls()})
    links.add_server("s4", url)                     # a shard started later
    worker, store = part.store(spawn, ns, "m", shards, links=links)
    px = links.link("m", "s2")                      # m's link to shard s2: a FaultProxy
    held = nemesis.inject("stall", px, after=0)     # hold m's next request to s2
    held.wait()                                     # ... until it engaged

A link is named ``"<worker>-><server>"`` (``m->s2``), which is how the history names the target of
a fault on it. Shards that share one server (several databases of one Redis) share a link.
"""
from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Links", "Held", "finished", "routed", "install"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ValueError(f"a server URL needs a host and a port, got {url!r}")
    return parts.hostname, parts.port


class Links:
    """Fault proxies, one per (worker, server), on one proxy server (one asyncio thread).

    ``servers``: ``{server name: URL}``; shards are named by their shard name, the control Redis
    by ``"control"``. Only loopback servers can be routed (they all are, in the grader).
    """

    def __init__(self, servers: dict[str, str] | None = None, seed: int = 0) -> None:
        from splitbrain.faults.proxy import ProxyServer
        self._server = ProxyServer(seed=seed)
        self._servers: dict[str, tuple[str, int]] = {}
        self._proxies: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        for name, url in (servers or {}).items():
            self.add_server(name, url)

    def add_server(self, name: str, url: str) -> None:
        host, port = _addr(url)
        if host not in _LOOPBACK:
            raise ValueError(f"server {name!r} at {url!r} is not on this machine; links route "
                             f"loopback servers only")
        self._servers[name] = ("127.0.0.1", port)

    @property
    def servers(self) -> list[str]:
        return list(self._servers)

    def _by_port(self) -> dict[int, str]:
        """One link per server process: shards that are databases of one Redis share it."""
        first: dict[int, str] = {}
        for name, (_, port) in self._servers.items():
            first.setdefault(port, name)
        return first

    def link(self, proc: str, server: str):
        """``proc``'s link to ``server`` (a FaultProxy), created on first use."""
        if server not in self._servers:
            raise KeyError(f"no server named {server!r}; links know {sorted(self._servers)}")
        port = self._servers[server][1]
        server = self._by_port()[port]
        with self._lock:
            px = self._proxies.get((proc, server))
            if px is None:
                from splitbrain.faults.proxy import FaultProxy
                px = FaultProxy(f"{proc}->{server}", server=self._server)
                px.start(self._servers[server])
                self._proxies[(proc, server)] = px
            return px

    def links_of(self, proc: str) -> dict[str, Any]:
        """``{server: link}`` for every server ``proc`` can reach (one per server process)."""
        return {server: self.link(proc, server) for server in self._by_port().values()}

    def routes(self, proc: str) -> dict[str, int]:
        """What :func:`routed` installs in ``proc``'s worker: ``{server port: proxy port}``."""
        return {str(port): self.link(proc, server).port
                for port, server in self._by_port().items()}

    def close(self) -> None:
        with self._lock:
            proxies, self._proxies = list(self._proxies.values()), {}
        for px in proxies:
            try:
                px.stop()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self._server.close()


# -- inside the worker ---------------------------------------------------------------------------
_ROUTES: dict[int, int] = {}


def install(routes: dict[str, int]) -> None:
    """Send this process's TCP connections to a loopback ``port`` to ``routes[port]`` instead."""
    _ROUTES.update({int(k): int(v) for k, v in routes.items()})
    if getattr(socket.socket, "_splitbrain_routed", False):
        return
    plain_connect, plain_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def route(address):
        if isinstance(address, tuple) and len(address) >= 2 and address[0] in _LOOPBACK:
            to = _ROUTES.get(address[1])
            if to is not None:
                return (address[0], to, *address[2:])
        return address

    def connect(self, address):
        return plain_connect(self, route(address))

    def connect_ex(self, address):
        return plain_connect_ex(self, route(address))

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket._splitbrain_routed = True


def routed(resources: dict, routes: dict[str, int], url: str | None = None) -> str:
    """Trusted helper (``Ref("rig.links:routed", routes=...)``): install this worker's routes and
    return the control URL (``url``, default the worker's ``redis_url``)."""
    install(routes)
    return url or resources["redis_url"]


# -- holding a call at a boundary (grader side) --------------------------------------------------
class Held:
    """A call started with a ``stall`` armed on one link of its process (through the nemesis).

    ``engaged`` says whether the call reached the stall — it is held there now, right before its
    (``after`` + 1)-th request on that link (``stream="upstream"``), or right after the server ran
    that request and before its reply arrives (``"downstream"``) — or finished without reaching
    it (then every boundary on that link has been visited). ``release()`` lets it go on."""

    def __init__(self, nemesis, link, start, after: int = 0, stream: str = "upstream",
                 timeout: float = 15.0) -> None:
        import time
        self.fault = nemesis.inject("stall", link, after=after, stream=stream)
        self.future = start()
        deadline = time.monotonic() + timeout
        while True:
            if self.fault.wait(0.005):
                self.engaged = True
                break
            if self.future.done():
                self.engaged = self.fault.wait(0)
                break
            if time.monotonic() > deadline:
                self.fault.heal()
                raise AssertionError(f"a call neither finished nor reached the stall on "
                                     f"{link.name} within {timeout:g} s")
        if not self.engaged:
            self.fault.heal()

    def release(self) -> None:
        self.fault.heal()

    def outcome(self, timeout: float = 15.0) -> tuple[bool, object]:
        """Release, then (True, result) or (False, the exception) once the call is over."""
        self.release()
        try:
            return True, self.future.result(timeout=timeout)
        except Exception as e:  # noqa: BLE001 - recorded in the history; the checkers judge it
            return False, e


def finished(future, timeout: float) -> bool:
    """Whether ``future`` finished within ``timeout`` seconds (a correct store may legitimately
    block while a stall holds the rebalance: then the test lets the rebalance go on first)."""
    from concurrent.futures import wait
    return bool(wait([future], timeout=timeout).done)
