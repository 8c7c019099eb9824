"""The kit's fault proxy behaves like Toxiproxy 2.9, driven by Toxiproxy's own clients.

Each test drives the kit's standalone server (``python -m splitbrain.faults.proxy --api ...``) with
``toxiproxy-python`` (PyPI) or ``toxiproxy-node-client`` (npm), and names the file of Toxiproxy
v2.9.0 whose behaviour it pins. Upstream is a small TCP echo server that logs what reaches it (a
narrow seam: what matters here is which bytes the proxy lets through, and when it closes)."""
from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from splitbrain.faults.proxy import FaultProxy
from splitbrain.faults.toxiproxy import HttpTransport
from splitbrain.testing import require

NODE_CLIENT = "toxiproxy-node-client@4.1.0"


class Echo:
    """A TCP echo server that keeps every byte it received."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.addr = self.srv.getsockname()
        self.received = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def upstream(self) -> str:
        return f"{self.addr[0]}:{self.addr[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, c: socket.socket) -> None:
        with c:
            try:
                while data := c.recv(65536):
                    with self.lock:
                        self.received += data
                    c.sendall(data)
            except OSError:
                pass

    def got(self) -> bytes:
        with self.lock:
            return bytes(self.received)

    def close(self) -> None:
        self.srv.close()


@pytest.fixture
def echo():
    e = Echo()
    yield e
    e.close()


@pytest.fixture(scope="module")
def _server():
    """The kit's proxy as a standalone server, one for the module: (host, port) of its API."""
    proc = subprocess.Popen([sys.executable, "-m", "splitbrain.faults.proxy", "--api",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("fault proxy API on http://127.0.0.1:"), line
        yield "127.0.0.1", int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def api(_server):
    """The server's API address, with no proxy left from an earlier test (each is deleted, which
    closes its connections)."""
    base = f"http://{_server[0]}:{_server[1]}"
    with urllib.request.urlopen(f"{base}/proxies", timeout=10) as r:
        left = json.load(r)
    for name in left:
        urllib.request.urlopen(urllib.request.Request(f"{base}/proxies/{name}",
                                                      method="DELETE"), timeout=10).close()
    yield _server


@pytest.fixture
def toxi(api):
    """toxiproxy-python's client, pointed at the kit's server."""
    try:
        from toxiproxy import Toxiproxy
        from toxiproxy.api import APIConsumer
    except ImportError:
        Toxiproxy = None
    require(Toxiproxy is not None, "toxiproxy-python (pip install -e '.[test]')")
    saved = APIConsumer.host, APIConsumer.port
    server = Toxiproxy()
    server.update_api_consumer(*api)
    yield server
    APIConsumer.host, APIConsumer.port = saved


def _port(proxy) -> int:
    return int(proxy.listen.rsplit(":", 1)[1])


def _read_until_closed(s: socket.socket, deadline_s: float = 10.0) -> bytes:
    """Everything the proxy still sends on ``s`` until it closes it (EOF or reset)."""
    got = b""
    s.settimeout(deadline_s)
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def _is_open(s: socket.socket) -> bool:
    """Whether the proxy has not closed ``s`` yet (nothing is being echoed meanwhile)."""
    readable, _, _ = select.select([s], [], [], 0)
    if not readable:
        return True
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except ConnectionResetError:
        return False


def test_toxiproxy_python_drives_the_kits_server(toxi, echo):
    assert toxi.running()
    assert json.loads(toxi.version()) == {"version": "2.9.0"}   # a version number, as 2.9 says
    proxy = toxi.create(upstream=echo.upstream, name="echo")
    assert proxy.enabled and proxy.listen.startswith("127.0.0.1:")
    assert set(toxi.proxies()) == {"echo"}
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        s.sendall(b"hello")
        assert s.recv(5) == b"hello"
    proxy.add_toxic(type="latency", attributes={"latency": 50, "jitter": 0})
    proxy.add_toxic(type="noop", name="nothing")          # Toxiproxy registers "noop"
    assert {n: t.type for n, t in proxy.toxics().items()} == {"latency_downstream": "latency",
                                                               "nothing": "noop"}
    assert proxy.destroy_toxic("latency_downstream")
    with proxy.down():
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5)
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    assert toxi.reset()
    assert proxy.toxics() == {}
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        s.sendall(b"again")
        assert s.recv(5) == b"again"
    assert toxi.destroy(proxy)
    assert toxi.proxies() == {}


def test_removing_a_timeout_closes_the_connection_and_what_it_held_is_lost(toxi, echo):
    """toxics/timeout.go: data is "dropped on the ground"; its Cleanup closes the link when the
    toxic is removed (link.go RemoveToxic). The client learns nothing arrived: its connection
    closes, and a new one works."""
    proxy = toxi.create(upstream=echo.upstream, name="echo")
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        s.sendall(b"before")
        assert s.recv(6) == b"before"
        proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
        s.sendall(b"SET k held")                        # a write sent during the partition
        assert _is_open(s)                               # timeout 0: never closed by itself
        proxy.destroy_toxic("timeout_upstream")          # the heal
        assert _read_until_closed(s) == b""              # closed, and nothing came back
    assert echo.got() == b"before"                       # the held write never ran
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        s.sendall(b"after")
        assert s.recv(5) == b"after"


def test_removing_a_timeout_closes_connections_it_spared_too(toxi, echo):
    """link.go calls the timeout's Cleanup on every link it is on, whatever the toxicity roll."""
    proxy = toxi.create(upstream=echo.upstream, name="echo")
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        proxy.add_toxic(type="timeout", toxicity=0.0, attributes={"timeout": 0})
        s.sendall(b"spared")
        assert s.recv(6) == b"spared"                    # toxicity 0: bytes pass
        proxy.destroy_toxic("timeout_downstream")
        assert _read_until_closed(s) == b""


def test_a_timeout_with_a_value_restarts_on_every_chunk(toxi, echo):
    """toxics/timeout.go makes its timer anew on each pass of its loop: a connection that keeps
    sending stays open past ``timeout``; one that goes quiet is closed ``timeout`` ms later."""
    proxy = toxi.create(upstream=echo.upstream, name="echo")
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 600})
        start = time.monotonic()
        while time.monotonic() - start < 1.4:            # over 2 timeouts, a chunk every 50 ms
            s.sendall(b".")
            time.sleep(0.1)
            assert _is_open(s), f"closed {time.monotonic() - start:.2f} s in, while sending"
        assert _read_until_closed(s) == b""              # quiet: closed
    assert echo.got() == b""


def test_hold_is_the_kits_partition_and_delivers_after_the_heal(toxi, echo):
    """The named option: ``hold`` keeps what was sent and delivers it, on the same connection,
    after the heal (lab 01's write delayed in the network). A real toxiproxy refuses it."""
    proxy = toxi.create(upstream=echo.upstream, name="echo")
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        proxy.add_toxic(type="hold", stream="upstream", attributes={"timeout": 0})
        s.sendall(b"SET k held")
        assert _is_open(s)
        proxy.destroy_toxic("hold_upstream")
        got = b""
        while len(got) < 10:
            got += s.recv(64)
        assert got == b"SET k held"
    assert echo.got() == b"SET k held"


def test_the_partition_fault_and_blackhole_are_hold_and_timeout_is_toxiproxys(echo):
    from splitbrain.faults.registry import make_fault
    with FaultProxy() as fp:
        fp.start(upstream=echo.addr)
        fault = make_fault("partition", fp)
        fault.inject()
        assert {t["type"] for t in fp.toxics()} == {"hold"}
        fault.heal()
        with fp.blackhole(hold=False):
            assert {t["type"] for t in fp.toxics()} == {"timeout"}
        with fp.timeout(100, stream="upstream"):
            assert [(t["type"], t["attributes"]) for t in fp.toxics()] == [
                ("timeout", {"timeout": 100})]


def test_the_client_names_the_kits_own_toxics_when_a_real_toxiproxy_refuses_them():
    """toxics/toxic.go New() knows only registered types; api.go answers 400 invalid toxic type."""
    from splitbrain.faults.toxics import ToxicError
    from splitbrain.faults.toxiproxy import Proxy, Transport

    class RealToxiproxy(Transport):           # what toxiproxy 2.9 answers to an unknown type
        def request(self, method, path, body=None):
            return 400, {"error": "invalid toxic type", "status": 400}

    with pytest.raises(ToxicError, match="real toxiproxy.*hold=False"):
        Proxy(RealToxiproxy(), "redis").blackhole()
    with pytest.raises(ToxicError, match="no 'stall' toxic"):
        Proxy(RealToxiproxy(), "redis").stall(1)


def _post(api, path: str, body) -> tuple[int, dict]:
    host, port = api
    return HttpTransport(f"http://{host}:{port}").request("POST", path, body)


def test_populate_checks_every_entry_first_and_leaves_identical_proxies_alone(toxi, api, echo):
    """proxy_collection.go PopulateJson: every entry is checked before any proxy is made;
    AddOrReplace leaves a proxy with the same listen and upstream untouched (its toxics and
    connections too) and replaces one that differs."""
    a = toxi.create(upstream=echo.upstream, name="a")
    a.add_toxic(type="latency", attributes={"latency": 1})
    s = socket.create_connection(("127.0.0.1", _port(a)), timeout=5)
    try:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        status, body = _post(api, "/populate", [
            {"name": "a", "listen": a.listen, "upstream": echo.upstream},
            {"name": "b", "listen": "127.0.0.1:0", "upstream": echo.upstream}])
        assert status == 201, body
        assert [p["name"] for p in body["proxies"]] == ["a", "b"]
        assert body["proxies"][0]["listen"] == a.listen
        assert [t.type for t in toxi.get_proxy("a").toxics().values()] == ["latency"]
        assert _is_open(s)

        status, body = _post(api, "/populate", [
            {"name": "c", "upstream": echo.upstream}, {"name": "", "upstream": echo.upstream}])
        assert status == 400 and "name at proxy 2" in body["error"], body
        assert set(toxi.proxies()) == {"a", "b"}          # c was not made

        status, body = _post(api, "/populate", [
            {"name": "a", "listen": a.listen, "upstream": "127.0.0.1:9"}])
        assert status == 201, body
        assert toxi.get_proxy("a").upstream == "127.0.0.1:9"
        assert toxi.get_proxy("a").toxics() == {}          # a new proxy: no toxics
        assert _read_until_closed(s) == b""                # its old connections closed
    finally:
        s.close()

    busy = socket.create_server(("127.0.0.1", 0))
    try:
        status, body = _post(api, "/populate", [
            {"name": "d", "upstream": echo.upstream},
            {"name": "e", "listen": f"127.0.0.1:{busy.getsockname()[1]}",
             "upstream": echo.upstream}])
        assert status == 500 and "cannot listen" in body["error"], body
        assert [p["name"] for p in body["proxies"]] == ["d"]   # made before the error, kept
        assert "d" in toxi.proxies() and "e" not in toxi.proxies()
    finally:
        busy.close()


def test_ipv6_listen_and_upstream_addresses(api):
    require(socket.has_ipv6 and _ipv6_loopback(), "an IPv6 loopback (::1)")
    echo6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
    port6 = echo6.getsockname()[1]

    def serve():
        try:
            c, _ = echo6.accept()
        except OSError:
            return
        with c:
            c.sendall(c.recv(64))
    threading.Thread(target=serve, daemon=True).start()
    try:
        status, body = _post(api, "/proxies", {"name": "six", "listen": "[::1]:0",
                                               "upstream": f"[::1]:{port6}"})
        assert status == 201, body
        assert body["listen"].startswith("[::1]:") and body["upstream"] == f"[::1]:{port6}"
        port = int(body["listen"].rsplit(":", 1)[1])
        with socket.create_connection(("::1", port), timeout=5) as s:
            s.sendall(b"six")
            assert s.recv(3) == b"six"
        status, body = _post(api, "/proxies", {"name": "bad", "upstream": "::1:80"})
        assert status == 400 and "brackets" in body["error"]
    finally:
        echo6.close()


def test_url_for_brackets_an_ipv6_listen_address():
    from splitbrain.faults.toxiproxy import Proxy, Transport
    p = Proxy(Transport(), "six", listen="[::1]:5555")
    assert p.host == "::1" and p.port == 5555
    assert p.url_for("redis://:pw@127.0.0.1:6379/0") == "redis://:pw@[::1]:5555/0"
    assert Proxy(Transport(), "any", listen="[::]:5555").host == "127.0.0.1"


def _ipv6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


def test_update_to_a_new_upstream_closes_open_connections(toxi, api, echo):
    """proxy.go Update: a new listen or upstream stops the proxy (closing its connections) and
    starts it again."""
    proxy = toxi.create(upstream=echo.upstream, name="echo")
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        status, body = _post(api, "/proxies/echo", {"upstream": "127.0.0.1:9"})
        assert status == 200 and body["enabled"] and body["listen"] == proxy.listen, body
        assert _read_until_closed(s) == b""


# -- a second client: toxiproxy-node-client (npm) -------------------------------------------------
NODE_SCRIPT = r"""
const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");
const [api, upstream] = process.argv.slice(2);
const out = {};
const connect = (port) => new Promise((ok) => {
  const s = net.connect(port, "127.0.0.1", () => ok(s));
  s.got = ""; s.closed = false;
  s.on("data", (d) => { s.got += d.toString(); });
  s.on("close", () => { s.closed = true; });
  s.on("error", () => {});
});
const until = async (what, ms = 10000) => {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return what();
};
(async () => {
  const toxiproxy = new Toxiproxy(api);
  out.version = await toxiproxy.getVersion();
  const proxy = await toxiproxy.createProxy({ name: "node", listen: "127.0.0.1:0", upstream });
  const port = Number(proxy.listen.split(":").pop());
  const s = await connect(port);
  s.write("one");
  out.echoed = await until(() => s.got === "one");
  const toxic = await proxy.addToxic({ name: "cut", type: "timeout", stream: "upstream",
                                       toxicity: 1, attributes: { timeout: 0 } });
  out.toxic = toxic.toJson();
  s.write("two");
  await toxic.remove();
  out.closedAfterHeal = await until(() => s.closed);
  out.gotAfterHeal = s.got;
  const again = await toxiproxy.populate([{ name: "node", listen: proxy.listen, upstream }]);
  out.populated = Object.keys(again);
  out.samePort = again.node.listen === proxy.listen;
  await toxiproxy.reset();
  await proxy.remove();
  out.left = Object.keys(await toxiproxy.getAll());
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


@pytest.fixture(scope="module")
def node_client(tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    require(node is not None and npm is not None, "node and npm (for toxiproxy-node-client)")
    where = tmp_path_factory.mktemp("node-client")
    out = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(where),
                          NODE_CLIENT], capture_output=True, text=True, timeout=300)
    require(out.returncode == 0, f"npm install {NODE_CLIENT}: {out.stderr.strip()[-300:]}")
    return node, where


@pytest.mark.slow
def test_toxiproxy_node_client_sees_the_same_behaviour(node_client, api, echo):
    node, where = node_client
    script = where / "drive.js"
    script.write_text(NODE_SCRIPT)
    out = subprocess.run([node, str(script), f"http://{api[0]}:{api[1]}", echo.upstream],
                         capture_output=True, text=True, timeout=60, cwd=where)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert json.loads(result["version"]) == {"version": "2.9.0"}
    assert result["echoed"] is True
    assert result["toxic"] == {"name": "cut", "type": "timeout", "stream": "upstream",
                               "toxicity": 1, "attributes": {"timeout": 0}}
    assert result["closedAfterHeal"] is True and result["gotAfterHeal"] == "one"
    assert result["populated"] == ["node"] and result["samePort"] is True
    assert result["left"] == []
    assert echo.got() == b"one"                           # "two" was dropped by the timeout


def test_the_api_answers_with_a_server_header_naming_the_kit(api):
    with urllib.request.urlopen(f"http://{api[0]}:{api[1]}/version", timeout=5) as resp:
        assert resp.headers["Server"].startswith("splitbrain-proxy")
        assert json.loads(resp.read()) == {"version": "2.9.0"}


# -- where the kit differs on purpose (see splitbrain/faults/proxy.py) ---------------------------
def test_reset_peer_resets_a_connection_opened_before_the_toxic(echo):
    """The kit always ends a reset_peer in a TCP RST (the ``reset`` fault's lesson); Toxiproxy
    2.9 sets SO_LINGER 0 only on links started after the toxic was added (link.go Start)."""
    with FaultProxy() as fp:
        fp.start(upstream=echo.addr)
        with socket.create_connection(("127.0.0.1", fp.port), timeout=10) as s:
            s.sendall(b"a")
            assert s.recv(1) == b"a"
            with fp.reset_peer(stream="upstream"):
                s.sendall(b"b")
                with pytest.raises(ConnectionResetError):
                    while s.recv(64):
                        pass
    assert echo.got() == b"a"


def test_a_half_close_is_passed_on_and_the_reply_still_arrives():
    """A client that shuts its sending side down still gets the reply the server sends after
    it (Toxiproxy 2.9 closes both sides once one reached EOF: link.go write)."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        c, _ = srv.accept()
        with c:
            while c.recv(64):
                pass
            c.sendall(b"bye")                         # replies only after the client's EOF
    threading.Thread(target=serve, daemon=True).start()
    try:
        with FaultProxy() as fp:
            fp.start(upstream=srv.getsockname())
            with socket.create_connection(("127.0.0.1", fp.port), timeout=10) as s:
                s.sendall(b"request")
                s.shutdown(socket.SHUT_WR)
                assert _read_until_closed(s) == b"bye"
    finally:
        srv.close()


def test_no_listen_address_means_loopback_only(api):
    status, body = _post(api, "/proxies", {"name": "quiet", "upstream": "127.0.0.1:9"})
    assert status == 201 and body["listen"].startswith("127.0.0.1:"), body
    status, body = _post(api, "/proxies", {"name": "typo", "upstream": "127.0.0.1:9",
                                           "listen": ":0"})
    assert status == 201 and body["listen"].startswith("127.0.0.1:"), body
