"""The proxy's moving parts: one listening proxy, its connections, and the pumps that move bytes.

Each connection has two pumps (client -> server is ``upstream``, server -> client ``downstream``).
A pump reads a chunk, asks which toxics apply to this connection and direction, and either writes
the chunk at once (no toxic, nothing queued: the fast path) or cuts it into timed pieces on a queue
that a drain task writes in order when each piece is due. A ``timeout`` toxic stops the pump from
reading: bytes wait in the kernel's buffers, as they would behind a partition, and flow again when
the toxic goes. All of it runs on the ProxyServer's one event loop.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
from typing import TYPE_CHECKING, Any

from splitbrain.faults.toxics import Toxic, ToxicError

if TYPE_CHECKING:
    from splitbrain.faults.proxy import ProxyServer

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
        self.stalls: dict[str, dict[str, Any]] = {}   # stall toxic -> {"passed": n, "held": b}

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
                if data:
                    self.count_stalls(toxics)
                while self.holding(toxics) and not conn.closed:
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

    def count_stalls(self, toxics: list[Toxic]) -> None:
        """A chunk arrived: each stall lets it pass (counting it) or engages on it."""
        for t in toxics:
            if t.type == "stall":
                st = self.stalls.setdefault(t.name, {"passed": 0, "held": False})
                if st["held"]:
                    continue
                if st["passed"] >= t.attr("after"):
                    st["held"] = True
                else:
                    st["passed"] += 1

    def holding(self, toxics: list[Toxic]) -> bool:
        return any(t.type == "timeout" or (t.type == "stall" and
                                           self.stalls.get(t.name, {}).get("held"))
                   for t in toxics)

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
