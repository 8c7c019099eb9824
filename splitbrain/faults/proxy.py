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
import socket
import struct
import threading
from typing import Any

from splitbrain.faults.toxics import Toxic, ToxicError, parse_toxic, update_toxic
from splitbrain.faults.toxiproxy import Proxy, Transport

__all__ = ["ProxyServer", "FaultProxy", "ToxicError"]

_EOF, _CLOSE = object(), object()
_CHUNK = 65536


def _split_addr(addr: Any, what: str) -> tuple[str, int]:
    if isinstance(addr, (tuple, list)) and len(addr) == 2:
        host, port = addr
    elif isinstance(addr, str) and ":" in addr:
        host, _, port = addr.rpartition(":")
    else:
        raise ToxicError(f"{what} must be 'host:port' or (host, port), got {addr!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ToxicError(f"{what} port must be a number, got {addr!r}") from None
    if not 0 <= port <= 65535:
        raise ToxicError(f"{what} port {port} is out of range")
    return (str(host) or "127.0.0.1", port)


class _Conn:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: "_Proxy", client: asyncio.StreamWriter,
                 upstream: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.writers = {"upstream": upstream, "downstream": client}
        self.active: dict[str, bool] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tasks: list[asyncio.Task] = []
        self.sent = {"upstream": 0, "downstream": 0}
        self.done: set[str] = set()
        self.closed = False
        self.resetting = False

    def roll(self, toxic: Toxic, rng: random.Random) -> None:
        self.active[toxic.name] = toxic.toxicity >= 1.0 or rng.random() < toxic.toxicity
        if toxic.type == "timeout" and toxic.attr("timeout") > 0 and self.active[toxic.name]:
            loop = asyncio.get_running_loop()
            self.timers[toxic.name] = loop.call_later(toxic.attr("timeout") / 1000, self.close)

    def forget(self, name: str) -> None:
        self.active.pop(name, None)
        timer = self.timers.pop(name, None)
        if timer:
            timer.cancel()

    def applying(self, stream: str) -> list[Toxic]:
        return [t for t in self.proxy.toxics.values()
                if t.stream == stream and self.active.get(t.name)]

    def close(self, rst: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for w in self.writers.values():
            if rst:
                sock = w.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                w.transport.abort()
            else:
                w.close()
        for timer in self.timers.values():
            timer.cancel()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.proxy.conns.discard(self)

    def half_closed(self, stream: str) -> None:
        self.done.add(stream)
        if len(self.done) == 2:
            self.close()


class _Proxy:
    def __init__(self, server: "ProxyServer", name: str, listen: tuple[str, int],
                 upstream: tuple[str, int]) -> None:
        self.server = server
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.conns: set[_Conn] = set()
        self.listener: asyncio.Server | None = None
        self.changed = asyncio.Event()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "listen": f"{self.listen[0]}:{self.listen[1]}",
                "upstream": f"{self.upstream[0]}:{self.upstream[1]}", "enabled": self.enabled,
                "toxics": [t.to_dict() for t in self.toxics.values()]}

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def enable(self) -> None:
        if self.enabled:
            return
        try:
            self.listener = await asyncio.start_server(self.accept, self.listen[0], self.listen[1],
                                                       reuse_address=True)
        except OSError as e:
            raise ToxicError(f"proxy {self.name!r} cannot listen on "
                             f"{self.listen[0]}:{self.listen[1]}: {e.strerror or e}", 409) from None
        self.listen = self.listen[0], self.listener.sockets[0].getsockname()[1]
        self.enabled = True

    async def disable(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for conn in list(self.conns):
            conn.close()
        self.notify()

    async def accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            c_writer.close()
            return
        try:
            u_reader, u_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 10)
        except (OSError, asyncio.TimeoutError):
            c_writer.close()
            return
        conn = _Conn(self, c_writer, u_writer)
        self.conns.add(conn)
        for toxic in self.toxics.values():
            conn.roll(toxic, self.server.rng)
        conn.tasks = [asyncio.create_task(self.pump(conn, "upstream", c_reader, u_writer)),
                      asyncio.create_task(self.pump(conn, "downstream", u_reader, c_writer))]

    async def pump(self, conn: _Conn, stream: str, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        link = {"busy": 0}
        drain_task = asyncio.create_task(self.drain(conn, stream, writer, queue, link))
        conn.tasks.append(drain_task)
        pace = out = 0.0
        try:
            while not conn.closed:
                data = await reader.read(_CHUNK)
                toxics = conn.applying(stream)
                while any(t.type == "timeout" for t in toxics) and not conn.closed:
                    await self.changed.wait()        # held: a partition, until the toxic goes
                    toxics = conn.applying(stream)
                if conn.closed:
                    return
                now = loop.time()
                if not data:
                    delay = max([t.attr("delay") for t in toxics if t.type == "slow_close"] or [0])
                    link["busy"] += 1
                    queue.put_nowait((max(now, out) + delay / 1000, _EOF))
                    return
                resets = [t for t in toxics if t.type == "reset_peer"]
                if resets:
                    if not conn.resetting:
                        conn.resetting = True
                        loop.call_later(resets[0].attr("timeout") / 1000, conn.close, True)
                    continue
                if not toxics and link["busy"] == 0:
                    writer.write(data)                 # fast path: no toxic, nothing queued
                    conn.sent[stream] += len(data)
                    await writer.drain()
                    continue
                pace, out = self.schedule(conn, stream, toxics, data, queue, link, now, pace, out)
        except (ConnectionError, OSError):
            conn.close(rst=True)
        except asyncio.CancelledError:
            pass

    def schedule(self, conn: _Conn, stream: str, toxics: list[Toxic], data: bytes,
                 queue: asyncio.Queue, link: dict, now: float, pace: float,
                 out: float) -> tuple[float, float]:
        """Cut ``data`` into timed pieces per the toxics and queue them; returns new clocks."""
        close_after = False
        for t in toxics:
            if t.type == "limit_data":
                room = t.attr("bytes") - conn.sent[stream]
                if len(data) >= room:
                    data, close_after = data[:max(room, 0)], True
        pieces = [data]
        slice_gap = 0.0
        for t in toxics:
            if t.type == "slicer":
                pieces, slice_gap = self._slice(data, t), t.attr("delay") / 1e6
        rng = self.server.rng
        pace = max(now, pace)
        for i, piece in enumerate(pieces):
            if i:
                pace += slice_gap
            for t in toxics:
                if t.type == "bandwidth":
                    pace += len(piece) / (t.attr("rate") * 1000)
            extra = 0.0
            for t in toxics:
                if t.type == "latency":
                    jitter = t.attr("jitter")
                    extra += (t.attr("latency") + (rng.uniform(-jitter, jitter) if jitter else 0))
            out = max(out, pace + max(extra, 0) / 1000)
            conn.sent[stream] += len(piece)
            if piece:
                link["busy"] += 1
                queue.put_nowait((out, piece))
        if close_after:
            link["busy"] += 1
            queue.put_nowait((out, _CLOSE))
        return pace, out

    def _slice(self, data: bytes, t: Toxic) -> list[bytes]:
        avg, var = t.attr("average_size"), t.attr("size_variation")
        pieces, i = [], 0
        while i < len(data):
            size = max(1, avg + (self.server.rng.randint(-var, var) if var else 0))
            pieces.append(data[i:i + size])
            i += size
        return pieces

    async def drain(self, conn: _Conn, stream: str, writer: asyncio.StreamWriter,
                    queue: asyncio.Queue, link: dict) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                at, item = await queue.get()
                wait = at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                link["busy"] -= 1
                if item is _EOF:
                    if writer.can_write_eof():
                        writer.write_eof()
                    conn.half_closed(stream)
                    return
                if item is _CLOSE:
                    conn.close()
                    return
                writer.write(item)
                await writer.drain()
        except (ConnectionError, OSError):
            conn.close(rst=True)
        except asyncio.CancelledError:
            pass


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
    def toxics(self, proxy: str) -> list[dict]:
        return self._run(lambda: [t.to_dict() for t in self._get(proxy).toxics.values()])

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
            return p.toxics[name].to_dict()
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
