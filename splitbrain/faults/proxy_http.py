"""Toxiproxy's HTTP API in front of a ``ProxyServer``, and the standalone server's command line.

Routes (JSON in and out, errors as ``{"error": ..., "status": N}``)::

    GET    /version                      POST   /reset
    GET    /proxies                      POST   /proxies            POST /populate
    GET    /proxies/NAME                 POST   /proxies/NAME       DELETE /proxies/NAME
    GET    /proxies/NAME/toxics          POST   /proxies/NAME/toxics
    GET    /proxies/NAME/toxics/TOXIC    POST   /proxies/NAME/toxics/TOXIC   DELETE (same)

Run it: ``python -m splitbrain.faults.proxy --api 127.0.0.1:8474`` (stop with Ctrl-C or SIGTERM).
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from splitbrain.faults.toxics import ToxicError

VERSION = "2.9.0"          # the Toxiproxy version whose API and toxics this proxy follows
SERVER = "splitbrain-proxy"  # the Server header says which proxy answered


def route(server: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Answer one API request; returns (HTTP status, JSON value or None)."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    try:
        return _route(server, method.upper(), parts, body)
    except ToxicError as e:
        return e.status, {"error": str(e), "status": e.status}


def _route(s: Any, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    match (method, parts):
        case ("GET", ["version"]):
            return 200, {"version": VERSION}
        case ("POST", ["reset"]):
            s.reset()
            return 204, None
        case ("GET", ["proxies"]):
            return 200, s.proxies()
        case ("POST", ["proxies"]):
            return 201, s.create(body)
        case ("POST", ["populate"]):
            created, error = s.populate(body)
            if error is not None:
                return error.status, {"error": str(error), "status": error.status,
                                      "proxies": created}
            return 201, {"proxies": created}
        case ("GET", ["proxies", name]):
            return 200, s.get(name)
        case ("POST" | "PATCH", ["proxies", name]):
            return 200, s.update(name, body)
        case ("DELETE", ["proxies", name]):
            s.delete(name)
            return 204, None
        case ("GET", ["proxies", name, "toxics"]):
            return 200, s.toxics(name)
        case ("POST", ["proxies", name, "toxics"]):
            return 200, s.add_toxic(name, body)
        case ("GET", ["proxies", name, "toxics", toxic]):
            return 200, s.get_toxic(name, toxic)
        case ("POST" | "PATCH", ["proxies", name, "toxics", toxic]):
            return 200, s.update_toxic(name, toxic, body)
        case ("DELETE", ["proxies", name, "toxics", toxic]):
            s.remove_toxic(name, toxic)
            return 204, None
    raise ToxicError(f"no route {method} /{'/'.join(parts)}; see the Toxiproxy HTTP API", 404)


def make_http_server(server: Any, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that answers the API for ``server``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = SERVER
        sys_version = ""

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                status, payload = 400, {"error": "request body is not valid JSON", "status": 400}
            else:
                status, payload = route(server, self.command, self.path, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    return Server((host, port), Handler)


def serve_in_thread(server: Any, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve the API from a daemon thread; ``httpd.server_address`` has the port; stop with
    ``httpd.shutdown()``."""
    httpd = make_http_server(server, host, port)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="splitbrain-proxy-api").start()
    return httpd


def main(argv: list[str] | None = None) -> int:
    from splitbrain.faults.proxy import ProxyServer

    ap = argparse.ArgumentParser(prog="python -m splitbrain.faults.proxy",
                                 description="TCP fault proxy with the Toxiproxy HTTP API.")
    ap.add_argument("--api", default="127.0.0.1:8474", help="HOST:PORT for the HTTP API")
    ap.add_argument("--config", help="JSON file: a list of proxies to create at start")
    ap.add_argument("--seed", type=int, default=0, help="seed for toxicity rolls and jitter")
    args = ap.parse_args(argv)
    host, _, port = args.api.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit():
        ap.error(f"--api must be HOST:PORT, e.g. 127.0.0.1:8474 or [::1]:8474, got {args.api!r}")
    proxies = ProxyServer(seed=args.seed)
    if args.config:
        with open(args.config) as fh:
            status, payload = route(proxies, "POST", "/populate", json.load(fh))
        if status >= 400:
            proxies.close()
            ap.error(f"--config {args.config}: {payload['error']}")
    try:
        httpd = make_http_server(proxies, host or "127.0.0.1", int(port))
    except OSError as e:
        ap.error(f"cannot listen on {args.api}: {e.strerror or e}")
    bound = httpd.server_address[0]
    shown = f"[{bound}]" if ":" in bound else bound
    print(f"fault proxy API on http://{shown}:{httpd.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        proxies.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
