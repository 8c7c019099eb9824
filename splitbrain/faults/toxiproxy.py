"""A client for the Toxiproxy HTTP API: the same calls drive the kit's proxy or a real toxiproxy.

::

    api = ToxiproxyClient("http://127.0.0.1:8474")        # a real toxiproxy, or the kit's server
    redis_proxy = api.create("redis", upstream="127.0.0.1:6379")
    r = redis.Redis(port=redis_proxy.port)
    with redis_proxy.latency(100, jitter=20):            # every reply 80..120 ms late
        ...
    redis_proxy.blackhole()                               # bytes stop both ways: a partition
    redis_proxy.heal()                                    # all toxics gone, proxy enabled

``blackhole()`` (the ``partition`` fault) uses the kit's ``hold`` toxic: held bytes are delivered
after the heal, on the same connection (a write delayed in the network). ``blackhole(hold=False)``
or ``timeout()`` is Toxiproxy's ``timeout`` toxic: bytes are dropped, and the heal closes the
connections they were sent on. A real toxiproxy refuses the kit's own toxics (``hold``, ``stall``);
the error says so.

Each fault method adds toxics and returns a ``ToxicHandle``; leaving its ``with`` block (or calling
``.remove()``) removes exactly those toxics. ``stream`` is ``"upstream"`` (client to server),
``"downstream"`` (server to client) or ``"both"`` (one toxic per direction).
"""
from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from typing import Any, Iterable

from splitbrain.faults.toxics import KIT_TOXICS, ToxicError

__all__ = ["ToxiproxyClient", "Proxy", "ToxicHandle", "Transport", "HttpTransport", "ToxicError",
           "split_addr", "join_addr"]

_names = itertools.count(1)


def split_addr(addr: Any, what: str) -> tuple[str, int]:
    """``"host:port"``, ``"[::1]:port"`` or ``(host, port)`` -> (host, port). An empty host is
    127.0.0.1: the kit never listens on every interface unless asked (Toxiproxy's empty listen
    address does)."""
    if isinstance(addr, (tuple, list)) and len(addr) == 2:
        host, port = addr
        host = str(host).strip("[]")
    elif isinstance(addr, str) and ":" in addr:
        host, _, port = addr.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ToxicError(f"{what} {addr!r}: write an IPv6 address in brackets, "
                             f"e.g. '[::1]:8080'")
    else:
        raise ToxicError(f"{what} must be 'host:port' or (host, port), got {addr!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ToxicError(f"{what} port must be a number, got {addr!r}") from None
    if not 0 <= port <= 65535:
        raise ToxicError(f"{what} port {port} is out of range")
    return (str(host) or "127.0.0.1", port)


def join_addr(host: str, port: int) -> str:
    """(host, port) -> ``"host:port"``, IPv6 in brackets (Go's net.JoinHostPort, as Toxiproxy)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Transport:
    """How a client reaches a Toxiproxy API: ``request(method, path, body) -> (status, json)``."""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raise NotImplementedError


class HttpTransport(Transport):
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"Toxiproxy API URL must start with http:// (e.g. "
                             f"'http://127.0.0.1:8474'), got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach the Toxiproxy API at {self.base_url}: "
                                  f"{e.reason}. Is the proxy server running?") from None
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


def _check(status: int, payload: Any, what: str) -> Any:
    if status >= 400:
        message = payload.get("error") if isinstance(payload, dict) else payload
        raise ToxicError(f"{what} failed ({status}): {message}", status)
    return payload


class ToxicHandle:
    """The toxics one fault call added; a context manager that removes them on exit."""

    def __init__(self, proxy: "Proxy", names: list[str], kind: str) -> None:
        self.proxy, self.names, self.kind = proxy, names, kind
        self.removed = False

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        if self.kind == "refuse":
            self.proxy.enable()
            return
        for name in self.names:
            status, payload = self.proxy.transport.request(
                "DELETE", f"/proxies/{self.proxy.name}/toxics/{name}")
            if status != 404:          # already gone (heal() or reset) is fine
                _check(status, payload, f"removing toxic {name!r}")

    def held(self) -> bool:
        """For a ``stall``: whether it has engaged (a message is being held)."""
        for name in self.names:
            status, payload = self.proxy.transport.request(
                "GET", f"/proxies/{self.proxy.name}/toxics/{name}")
            if status == 200 and isinstance(payload, dict) and \
                    (payload.get("state") or {}).get("held"):
                return True
        return False

    def wait_held(self, timeout: float = 10.0, poll: float = 0.005) -> bool:
        """Wait until the stall engaged (True) or ``timeout`` passed (False)."""
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.held():
                return True
            time.sleep(poll)
        return self.held()

    def __enter__(self) -> "ToxicHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"ToxicHandle({self.proxy.name}: {self.kind} {self.names})"


class Proxy:
    """One proxy on a Toxiproxy API, with one method per fault."""

    def __init__(self, transport: Transport, name: str, listen: str = "",
                 upstream: str = "") -> None:
        self.transport, self.name, self.listen, self.upstream = transport, name, listen, upstream

    # -- where clients connect -------------------------------------------------------------
    @property
    def port(self) -> int:
        if not self.listen:
            self.refresh()
        return int(self.listen.rpartition(":")[2])

    @property
    def host(self) -> str:
        """Where a client connects: the listen host (an IPv6 one without brackets), 127.0.0.1 for
        a proxy that listens on every interface."""
        host = split_addr(self.listen, "listen")[0] if self.listen else ""
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host

    def url_for(self, url: str) -> str:
        """``redis://127.0.0.1:6379/0`` -> the same URL through this proxy (host:port replaced)."""
        from urllib.parse import urlsplit, urlunsplit
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"url_for() needs a URL with host and port, got {url!r}")
        netloc = parts.netloc.rpartition("@")
        auth = netloc[0] + "@" if netloc[1] else ""
        return urlunsplit(parts._replace(netloc=auth + join_addr(self.host, self.port)))

    def refresh(self) -> dict:
        info = _check(*self.transport.request("GET", f"/proxies/{self.name}"), f"proxy {self.name}")
        self.listen, self.upstream = info["listen"], info["upstream"]
        return info

    # -- generic -----------------------------------------------------------------------------
    def add(self, type_: str, stream: str = "downstream", toxicity: float = 1.0,
            name: str | None = None, **attributes: Any) -> ToxicHandle:
        """Add one toxic of any Toxiproxy type; ``stream="both"`` adds one per direction."""
        streams: Iterable[str] = ("upstream", "downstream") if stream == "both" else (stream,)
        base = name or f"{type_}_{next(_names)}"
        names = []
        try:
            for s in streams:
                tname = base if stream != "both" else f"{base}_{s}"
                body = {"name": tname, "type": type_, "stream": s, "toxicity": toxicity,
                        "attributes": attributes}
                status, payload = self.transport.request("POST", f"/proxies/{self.name}/toxics",
                                                         body)
                if status == 400 and type_ in KIT_TOXICS and "invalid toxic type" in str(payload):
                    raise ToxicError(
                        f"adding {type_} toxic to {self.name}: this server is a real toxiproxy, "
                        f"which has no {type_!r} toxic (the kit's own). Use the kit's proxy "
                        f"(python -m splitbrain.faults.proxy --api HOST:PORT)"
                        + (", or blackhole(hold=False): Toxiproxy's timeout, which drops what "
                           "it holds" if type_ == "hold" else ""), 400)
                _check(status, payload, f"adding {type_} toxic to {self.name}")
                names.append(tname)
        except Exception:
            ToxicHandle(self, names, type_).remove()
            raise
        return ToxicHandle(self, names, type_)

    def toxics(self) -> list[dict]:
        return _check(*self.transport.request("GET", f"/proxies/{self.name}/toxics"), "list toxics")

    # -- faults ------------------------------------------------------------------------------
    def latency(self, ms: float, jitter: float = 0, stream: str = "downstream") -> ToxicHandle:
        """Delay each chunk by ``ms`` ± ``jitter`` milliseconds (downstream: once per reply)."""
        return self.add("latency", stream, latency=int(ms), jitter=int(jitter))

    def blackhole(self, timeout_ms: int = 0, stream: str = "both", hold: bool = True) -> ToxicHandle:
        """A partition: bytes stop and connections hang. ``hold=True`` (the kit's ``hold`` toxic)
        keeps what was sent and delivers it after the heal; ``timeout_ms`` > 0 closes each
        connection that long after the partition reached it. ``hold=False`` is Toxiproxy's
        ``timeout`` (see :meth:`timeout`)."""
        if not hold:
            return self.timeout(timeout_ms, stream)
        return self.add("hold", stream, timeout=int(timeout_ms))

    partition = blackhole

    def timeout(self, timeout_ms: int = 0, stream: str = "both") -> ToxicHandle:
        """Toxiproxy's ``timeout`` toxic: bytes are dropped; ``timeout_ms`` > 0 closes a
        connection once it sent nothing for that long; removing the toxic closes every connection
        it was on, so nothing sent meanwhile ever arrives."""
        return self.add("timeout", stream, timeout=int(timeout_ms))

    def reset_peer(self, timeout_ms: int = 0, stream: str = "both") -> ToxicHandle:
        """The next bytes on a connection (a request or its reply) make the proxy send TCP RST."""
        return self.add("reset_peer", stream, timeout=int(timeout_ms))

    def bandwidth(self, rate: float, stream: str = "downstream") -> ToxicHandle:
        """Throttle to ``rate`` kilobytes per second (Toxiproxy's unit)."""
        return self.add("bandwidth", stream, rate=int(rate))

    def slicer(self, average_size: int = 1, size_variation: int = 0, delay_us: int = 0,
               stream: str = "downstream") -> ToxicHandle:
        """Cut the stream into ~``average_size``-byte pieces sent ``delay_us`` microseconds apart."""
        return self.add("slicer", stream, average_size=int(average_size),
                        size_variation=int(size_variation), delay=int(delay_us))

    def limit_data(self, nbytes: int, stream: str = "downstream") -> ToxicHandle:
        """Close each connection once ``nbytes`` have passed in ``stream``."""
        return self.add("limit_data", stream, bytes=int(nbytes))

    def stall(self, after: int = 0, stream: str = "upstream") -> ToxicHandle:
        """Let ``after`` messages through ``stream``, then hold the next one (and all that
        follow) until healed: a stall between two round trips. The kit's proxy only."""
        return self.add("stall", stream, after=int(after))

    def slow_close(self, delay_ms: int, stream: str = "downstream") -> ToxicHandle:
        return self.add("slow_close", stream, delay=int(delay_ms))

    def refuse(self) -> ToxicHandle:
        """Disable the proxy: new connections are refused and open ones closed, until healed."""
        self.disable()
        return ToxicHandle(self, [], "refuse")

    def enable(self) -> None:
        self._set_enabled(True)

    def disable(self) -> None:
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        info = _check(*self.transport.request("POST", f"/proxies/{self.name}",
                                              {"enabled": enabled}), f"enable={enabled}")
        self.listen = info.get("listen", self.listen)

    def heal(self) -> None:
        """Remove every toxic on this proxy and enable it."""
        for toxic in self.toxics():
            status, payload = self.transport.request(
                "DELETE", f"/proxies/{self.name}/toxics/{toxic['name']}")
            if status != 404:
                _check(status, payload, f"removing toxic {toxic['name']!r}")
        self.enable()

    def delete(self) -> None:
        _check(*self.transport.request("DELETE", f"/proxies/{self.name}"), f"delete {self.name}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, listen={self.listen!r}, upstream={self.upstream!r})"


class ToxiproxyClient:
    """The Toxiproxy API as a whole: create, find and reset proxies."""

    def __init__(self, url: str = "http://127.0.0.1:8474", transport: Transport | None = None) -> None:
        self.transport = transport or HttpTransport(url)

    def version(self) -> Any:
        return _check(*self.transport.request("GET", "/version"), "version")

    def create(self, name: str, upstream: str | tuple[str, int], listen: str = "127.0.0.1:0",
               enabled: bool = True) -> Proxy:
        if isinstance(upstream, tuple):
            upstream = f"{upstream[0]}:{upstream[1]}"
        info = _check(*self.transport.request("POST", "/proxies", {
            "name": name, "upstream": upstream, "listen": listen, "enabled": enabled}),
            f"creating proxy {name!r}")
        return Proxy(self.transport, name, info["listen"], info["upstream"])

    def get(self, name: str) -> Proxy:
        p = Proxy(self.transport, name)
        p.refresh()
        return p

    def proxies(self) -> dict[str, Proxy]:
        data = _check(*self.transport.request("GET", "/proxies"), "list proxies")
        return {n: Proxy(self.transport, n, d["listen"], d["upstream"]) for n, d in data.items()}

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        _check(*self.transport.request("POST", "/reset"), "reset")
