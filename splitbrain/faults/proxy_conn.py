"""The proxy's moving parts: one listening proxy, its connections, and the pumps that move bytes.

Each connection has two pumps (client -> server is ``upstream``, server -> client ``downstream``).
A pump reads a chunk, asks which toxics apply to this connection and direction, and either writes
the chunk at once (no toxic, nothing queued: the fast path) or cuts it into timed pieces on its
link's queue, which a drain task writes in order when each piece is due. Each queued piece keeps
what every toxic added to its delay, so removing a latency, bandwidth or slicer toxic sends what it
was delaying at once, as Toxiproxy does. A ``timeout`` toxic reads the bytes and drops them, and
closes the connection once it sat idle ``timeout`` ms, or when the toxic is removed (Toxiproxy's).
A ``hold`` toxic (the kit's partition) stops the pump from reading: bytes wait in the kernel's
buffers, as they would behind a partition, and flow again when the toxic goes. All of it runs on
the ProxyServer's one event loop.
"""
from __future__ import annotations

import asyncio
import collections
import random
import socket
import struct
from typing import TYPE_CHECKING, Any

from splitbrain.faults.toxics import Toxic, ToxicError
from splitbrain.faults.toxiproxy import join_addr

if TYPE_CHECKING:
    from splitbrain.faults.proxy import ProxyServer

_EOF, _CLOSE = object(), object()
_CHUNK = 65536
_DELAYING = ("latency", "bandwidth", "slicer", "slow_close")


class _Piece:
    """One queued piece of a stream: bytes, or an EOF / close marker, with its delay's parts."""
    __slots__ = ("due", "item", "arrival", "pace", "pacers", "lat")

    def __init__(self, item: Any, arrival: float, pace: float, pacers: frozenset,
                 lat: dict[str, float]) -> None:
        self.item, self.arrival, self.pace, self.pacers, self.lat = item, arrival, pace, pacers, lat
        self.due = 0.0

    def at(self) -> float:
        return max(self.arrival, self.pace) + max(sum(self.lat.values()), 0.0)


class _Link:
    """One direction of one connection: its queue of timed pieces and its clocks."""

    def __init__(self) -> None:
        self.queue: collections.deque[_Piece] = collections.deque()
        self.wake = asyncio.Event()
        self.pace = 0.0       # when the pacing toxics (bandwidth, slicer) let the next piece go
        self.out = 0.0        # due time of the last queued piece (pieces leave in order)

    def push(self, piece: _Piece) -> None:
        piece.due = self.out = max(self.out, piece.at())
        self.queue.append(piece)
        if len(self.queue) == 1:      # the drain waits on the head only
            self.wake.set()

    def release(self, name: str, new: Toxic | None = None) -> None:
        """Toxic ``name`` was removed: what it was delaying is re-timed without it (Toxiproxy
        sends it at once). Updated to ``new``: a latency applies its new value."""
        if new is None:
            self.pace = 0.0
        hit = [p for p in self.queue if name in p.lat or name in p.pacers]
        for p in hit:
            if name in p.lat and new is None:
                del p.lat[name]
            elif name in p.lat and new.type == "latency":
                p.lat[name] = new.attr("latency") / 1000
            if name in p.pacers and new is None:
                p.pacers = p.pacers - {name}
                p.pace = p.pace if p.pacers else p.arrival
        if not hit:
            return
        self.out = 0.0
        for p in self.queue:
            p.due = self.out = max(self.out, p.at())
        self.wake.set()


class _Conn:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: "_Proxy", client: asyncio.StreamWriter,
                 upstream: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.writers = {"upstream": upstream, "downstream": client}
        self.links = {"upstream": _Link(), "downstream": _Link()}
        self.active: dict[str, bool] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tasks: list[asyncio.Task] = []
        self.sent = {"upstream": 0, "downstream": 0}
        self.done: set[str] = set()
        self.closed = False
        self.resetting = False

    def roll(self, toxic: Toxic, rng: random.Random) -> None:
        """The toxic reaches this connection: roll its toxicity, start its timer."""
        self.active[toxic.name] = toxic.toxicity >= 1.0 or rng.random() < toxic.toxicity
        if toxic.type in ("timeout", "hold") and self.active[toxic.name]:
            self.arm(toxic)

    def arm(self, toxic: Toxic) -> None:
        """(Re)start the close timer of a ``timeout`` or ``hold`` toxic with a timeout > 0."""
        timer = self.timers.pop(toxic.name, None)
        if timer:
            timer.cancel()
        if toxic.attr("timeout") > 0:
            loop = asyncio.get_running_loop()
            self.timers[toxic.name] = loop.call_later(toxic.attr("timeout") / 1000, self.close)

    def forget(self, name: str, replacement: Toxic | None = None) -> None:
        """The toxic left (or is being replaced): stop its timer and re-time what it delayed."""
        self.active.pop(name, None)
        timer = self.timers.pop(name, None)
        if timer:
            timer.cancel()
        for link in self.links.values():
            link.release(name, replacement)

    def applying(self, stream: str) -> list[Toxic]:
        return [t for t in self.proxy.toxics.values()
                if t.stream == stream and t.type != "noop" and self.active.get(t.name)]

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
        self.listener: asyncio.Task | None = None      # the accepting loop
        self.generation = 0          # counts disables: a connection accepted before one is closed
        self.changed = asyncio.Event()
        self.stalls: dict[str, dict[str, Any]] = {}   # stall toxic -> {"passed": n, "held": b}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "listen": join_addr(*self.listen),
                "upstream": join_addr(*self.upstream), "enabled": self.enabled,
                "toxics": [t.to_dict() for t in self.toxics.values()]}

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def enable(self) -> None:
        if self.enabled:
            return
        host, port = self.listen
        sock = None
        try:
            # one address, the first IPv4 one if the name has any (Go's net.Listen, as Toxiproxy)
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            infos.sort(key=lambda i: i[0] != socket.AF_INET)
            sock = socket.socket(infos[0][0], socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(infos[0][4])
            sock.listen(128)
            sock.setblocking(False)
        except OSError as e:
            if sock is not None:
                sock.close()
            # Toxiproxy answers a listen error with 500 (an error without a status of its own)
            raise ToxicError(f"proxy {self.name!r} cannot listen on "
                             f"{join_addr(host, port)}: {e.strerror or e}", 500) from None
        self.listen = sock.getsockname()[:2]
        self.enabled = True
        self.listener = asyncio.create_task(self.accepting(sock, self.generation))

    async def disable(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self.generation += 1
        if self.listener is not None:   # its socket is closed when it stops: wait for that
            self.listener.cancel()
            await asyncio.gather(self.listener, return_exceptions=True)
            self.listener = None
        for conn in list(self.conns):
            conn.close()
        self.notify()

    async def accepting(self, sock: socket.socket, generation: int) -> None:
        """Accept clients until the proxy is disabled. The kit's own loop, not asyncio's
        start_server: a client accepted just as the proxy is disabled is closed here, never
        left open by a server that went away (Python 3.11 leaks such a socket)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                client, _ = await loop.sock_accept(sock)
                asyncio.create_task(self.accept(client, generation))
        except asyncio.CancelledError:
            pass
        finally:
            sock.close()     # clients still in the backlog are reset by the kernel

    async def accept(self, client: socket.socket, generation: int) -> None:
        u_writer = None
        try:
            c_reader, c_writer = await asyncio.open_connection(sock=client)
        except OSError:
            client.close()
            return
        try:
            if generation == self.generation:
                u_reader, u_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), 10)
        except (OSError, asyncio.TimeoutError):
            pass
        if u_writer is None or generation != self.generation:   # no upstream, or disabled
            c_writer.close()
            if u_writer is not None:
                u_writer.close()
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
        link = conn.links[stream]
        conn.tasks.append(asyncio.create_task(self.drain(conn, stream, writer, link)))
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
                drops = [t for t in toxics if t.type == "timeout"]
                if drops:                            # Toxiproxy's timeout: dropped on the ground
                    if not data:
                        conn.close()
                        return
                    for t in drops:
                        conn.arm(t)                  # each chunk restarts its timer
                    continue
                now = loop.time()
                if not data:
                    delay = {t.name: t.attr("delay") / 1000 for t in toxics
                             if t.type == "slow_close"}
                    link.push(_Piece(_EOF, now, 0.0, frozenset(), delay))
                    return
                resets = [t for t in toxics if t.type == "reset_peer"]
                if resets:
                    if not conn.resetting:
                        conn.resetting = True
                        loop.call_later(resets[0].attr("timeout") / 1000, conn.close, True)
                    continue
                if not toxics and not link.queue:
                    writer.write(data)                 # fast path: no toxic, nothing queued
                    conn.sent[stream] += len(data)
                    await writer.drain()
                    continue
                self.schedule(conn, stream, toxics, data, link, now)
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
        return any(t.type == "hold" or (t.type == "stall" and
                                        self.stalls.get(t.name, {}).get("held"))
                   for t in toxics)

    def schedule(self, conn: _Conn, stream: str, toxics: list[Toxic], data: bytes,
                 link: _Link, now: float) -> None:
        """Cut ``data`` into timed pieces per the toxics and queue them on ``link``."""
        close_after = False
        for t in toxics:
            if t.type == "limit_data":
                room = t.attr("bytes") - conn.sent[stream]
                if len(data) >= room:
                    data, close_after = data[:max(room, 0)], True
        pieces = [data]
        slice_gap, pacers = 0.0, set()
        for t in toxics:
            if t.type == "slicer":
                pieces, slice_gap = self._slice(data, t), t.attr("delay") / 1e6
                pacers.add(t.name)
        rates = [t for t in toxics if t.type == "bandwidth"]
        pacers.update(t.name for t in rates)
        rng = self.server.rng
        link.pace = max(now, link.pace)
        lat: dict[str, float] = {}
        for i, piece in enumerate(pieces):
            if i:
                link.pace += slice_gap
            for t in rates:
                link.pace += len(piece) / (t.attr("rate") * 1000)
            lat = {}
            for t in toxics:
                if t.type == "latency":
                    jitter = t.attr("jitter")
                    lat[t.name] = (t.attr("latency") + (rng.uniform(-jitter, jitter)
                                                        if jitter else 0)) / 1000
            conn.sent[stream] += len(piece)
            if piece:
                link.push(_Piece(piece, now, link.pace if pacers else now, frozenset(pacers),
                                 lat))
        if close_after:
            link.push(_Piece(_CLOSE, now, link.pace if pacers else now, frozenset(pacers), lat))

    def _slice(self, data: bytes, t: Toxic) -> list[bytes]:
        avg, var = t.attr("average_size"), t.attr("size_variation")
        pieces, i = [], 0
        while i < len(data):
            size = max(1, avg + (self.server.rng.randint(-var, var) if var else 0))
            pieces.append(data[i:i + size])
            i += size
        return pieces

    async def drain(self, conn: _Conn, stream: str, writer: asyncio.StreamWriter,
                    link: _Link) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not link.queue:
                    link.wake.clear()
                    await link.wake.wait()
                    continue
                piece = link.queue[0]
                wait = piece.due - loop.time()
                if wait > 0:                   # sleep until due, or until a toxic goes
                    link.wake.clear()
                    try:
                        await asyncio.wait_for(link.wake.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
                    continue
                link.queue.popleft()
                if piece.item is _EOF:
                    if writer.can_write_eof():
                        writer.write_eof()
                    conn.half_closed(stream)
                    return
                if piece.item is _CLOSE:
                    conn.close()
                    return
                writer.write(piece.item)
                await writer.drain()
        except (ConnectionError, OSError):
            conn.close(rst=True)
        except asyncio.CancelledError:
            pass
