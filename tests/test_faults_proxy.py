"""The fault proxy against a real Redis: each toxic does what it says."""
from __future__ import annotations

import os
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import redis

from splitbrain.faults.proxy import FaultProxy, ProxyServer
from splitbrain.faults.proxy_http import serve_in_thread
from splitbrain.faults.toxics import ToxicError
from splitbrain.faults.toxiproxy import ToxiproxyClient


@pytest.fixture(scope="module")
def redis_url(services):
    return services.redis_url


@pytest.fixture(scope="module")
def redis_addr(redis_url):
    u = urlsplit(redis_url)
    return (u.hostname, u.port)


@pytest.fixture
def fp(redis_addr, redis_url):
    proxy = FaultProxy(name=f"redis-{uuid.uuid4().hex[:6]}")
    proxy.start(upstream=redis_addr)
    proxy.service_url = proxy.url_for(redis_url)
    yield proxy
    proxy.stop()


def client(fp, timeout=2.0) -> redis.Redis:
    # retry=None: a fault must surface as an error, not be hidden by a silent reconnect
    return redis.Redis.from_url(fp.service_url, socket_timeout=timeout,
                                socket_connect_timeout=timeout, retry=None)


def test_clean_proxy_passes_commands_through(fp):
    r = client(fp)
    key = f"proxy:{uuid.uuid4().hex}"
    r.set(key, b"v" * 100_000)
    assert r.get(key) == b"v" * 100_000
    r.delete(key)


def test_blackhole_makes_a_redis_call_time_out_and_heal_restores_it(fp):
    r = client(fp, timeout=0.3)
    assert r.ping()
    with fp.blackhole():
        with pytest.raises(redis.TimeoutError):
            r.ping()
        with pytest.raises(redis.TimeoutError):
            client(fp, timeout=0.3).ping()    # new connections hang too
    assert client(fp).ping()


def test_blackhole_holds_bytes_and_delivers_them_after_heal(fp):
    r = client(fp, timeout=10)
    key = f"proxy:{uuid.uuid4().hex}"
    r.ping()
    handle = fp.blackhole()
    done = threading.Event()
    result = {}

    def call():
        result["v"] = r.incr(key)
        done.set()
    t = threading.Thread(target=call)
    t.start()
    assert not done.wait(0.3)                     # held while the partition lasts
    handle.remove()
    assert done.wait(10)
    assert result["v"] == 1
    client(fp).delete(key)


def test_a_toxiproxy_timeout_loses_a_write_and_the_heal_closes_its_connection(fp):
    """Toxiproxy's ``timeout`` (blackhole(hold=False)): the SET sent during the partition is
    dropped, the heal closes the connection it was sent on, and the key was never written. The
    kit's ``hold`` (the partition fault) would have run it after the heal (test above)."""
    r = client(fp, timeout=10)
    key = f"proxy:{uuid.uuid4().hex}"
    r.ping()
    handle = fp.blackhole(hold=False)
    outcome = {}

    def call():
        try:
            outcome["value"] = r.set(key, "held")
        except redis.ConnectionError as e:
            outcome["error"] = e
    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.2)    # the SET is on the wire (were it later, the closed connection fails it too)
    handle.remove()
    t.join(10)
    assert "error" in outcome, outcome             # the connection closed under the call
    assert client(fp).get(key) is None             # and the write never ran


def test_blackhole_with_timeout_closes_connections(fp):
    r = client(fp, timeout=5)
    r.ping()
    with fp.blackhole(timeout_ms=100):
        with pytest.raises(redis.ConnectionError):
            r.ping()


def test_reset_peer_kills_an_in_flight_request(fp):
    r = client(fp, timeout=5)
    r.ping()
    outcome = {}

    def blocked_call():
        try:
            outcome["value"] = r.blpop(f"proxy:empty:{uuid.uuid4().hex}", timeout=1)
        except redis.ConnectionError as e:
            outcome["error"] = e
    t = threading.Thread(target=blocked_call)
    t.start()
    deadline = time.monotonic() + 5
    while fp.connections() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)   # the BLPOP is on the wire; the reply (nil after 1 s) triggers the reset
    with fp.reset_peer():
        t.join(10)
        assert "error" in outcome, outcome
        with pytest.raises(redis.ConnectionError):
            client(fp).ping()
    assert client(fp).ping()


def test_latency_delays_every_reply(fp):
    r = client(fp)
    r.ping()
    with fp.latency(150):
        start = time.monotonic()
        r.ping()
        assert time.monotonic() - start >= 0.15
    start = time.monotonic()
    r.ping()
    assert time.monotonic() - start < 0.15         # loose: the toxic is gone


def test_latency_keeps_the_byte_order(fp):
    r = client(fp)
    key = f"proxy:{uuid.uuid4().hex}"
    with fp.latency(20, jitter=15, stream="both"):
        pipe = r.pipeline(transaction=False)
        for i in range(200):
            pipe.rpush(key, i)
        pipe.execute()
        assert [int(x) for x in r.lrange(key, 0, -1)] == list(range(200))
    r.delete(key)


def test_refuse_refuses_new_connections_until_healed(fp):
    with fp.refuse():
        with pytest.raises(redis.ConnectionError):
            client(fp).ping()
    assert client(fp).ping()


def test_bandwidth_and_slicer_deliver_intact_data(fp):
    r = client(fp, timeout=10)
    key = f"proxy:{uuid.uuid4().hex}"
    payload = os.urandom(20_000)
    r.set(key, payload)
    with fp.bandwidth(100):
        start = time.monotonic()
        assert r.get(key) == payload
        assert time.monotonic() - start >= 0.15    # 20 KB at 100 KB/s cannot be faster
    with fp.slicer(average_size=7, size_variation=5, delay_us=10):
        assert client(fp, timeout=10).get(key) == payload
    r.delete(key)


def test_limit_data_closes_the_connection(fp):
    r = client(fp)
    key = f"proxy:{uuid.uuid4().hex}"
    r.set(key, b"x" * 5000)
    with fp.limit_data(1000):
        with pytest.raises(redis.ConnectionError):
            client(fp).get(key)
    r.delete(key)


def test_heal_removes_everything(fp):
    fp.latency(500)
    fp.blackhole()
    fp.refuse()
    fp.heal()
    assert fp.toxics() == []
    assert client(fp, timeout=0.4).ping()


def test_bad_toxics_are_named():
    with FaultProxy() as proxy:
        proxy.start(upstream=("127.0.0.1", 9))
        with pytest.raises(ToxicError, match="unknown toxic type"):
            proxy.add("drop_everything")
        with pytest.raises(ToxicError, match="stream must be"):
            proxy.latency(10, stream="sideways")
        with pytest.raises(ToxicError, match="number >= 0"):
            proxy.latency(-5)
        with pytest.raises(ToxicError, match="already started"):
            proxy.start(upstream=("127.0.0.1", 9))
    with pytest.raises(ToxicError, match="upstream must be"):
        FaultProxy().start(upstream="nowhere")


def test_http_api_drives_the_same_proxy(redis_addr, redis_url):
    server = ProxyServer(seed=1)
    httpd = serve_in_thread(server)
    try:
        api = ToxiproxyClient(f"http://127.0.0.1:{httpd.server_address[1]}")
        assert "version" in api.version()
        p = api.create("redis", upstream=redis_addr)
        r = redis.Redis.from_url(p.url_for(redis_url), socket_timeout=0.3, retry=None)
        assert r.ping()
        with p.blackhole():
            assert {t["type"] for t in p.toxics()} == {"hold"}
            with pytest.raises(redis.TimeoutError):
                r.ping()
        with pytest.raises(ToxicError) as e:
            api.create("redis", upstream=redis_addr)
        assert e.value.status == 409
        with pytest.raises(ToxicError, match="no proxy named"):
            api.get("missing")
        assert set(api.proxies()) == {"redis"}
        p.latency(10)
        api.reset()
        assert p.toxics() == []
        assert redis.Redis.from_url(p.url_for(redis_url), socket_timeout=1, retry=None).ping()
    finally:
        httpd.shutdown()
        server.close()


def test_url_for_rewrites_host_and_port(fp):
    assert fp.url_for("redis://u:pw@localhost:6379/3") == f"redis://u:pw@127.0.0.1:{fp.port}/3"
    with pytest.raises(ValueError, match="host and port"):
        fp.url_for("redis:///x")


def test_standalone_server_speaks_the_api_and_stops_on_sigterm(redis_addr, redis_url, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "pre", "upstream": f"{redis_addr[0]}:{redis_addr[1]}",
                                   "listen": "127.0.0.1:0"}]))
    proc = subprocess.Popen([sys.executable, "-m", "splitbrain.faults.proxy", "--api",
                             "127.0.0.1:0", "--config", str(config)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("fault proxy API on http://127.0.0.1:"), line
        api = ToxiproxyClient(line.split()[-1])
        assert set(api.proxies()) == {"pre"}
        p = api.get("pre")
        r = redis.Redis.from_url(p.url_for(redis_url), socket_timeout=0.3, retry=None)
        assert r.ping()
        with p.blackhole():
            with pytest.raises(redis.TimeoutError):
                r.ping()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_standalone_server_names_a_bad_api_address():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "splitbrain.faults.proxy", "--api", "nonsense"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "HOST:PORT" in out.stderr


@pytest.fixture
def echo_addr():
    """A tiny TCP echo server (a narrow seam for the proxy's own mechanics)."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return

            def echo(c=conn):
                with c:
                    try:
                        while data := c.recv(65536):
                            c.sendall(data)
                    except OSError:
                        pass         # the proxy closed or reset the connection: a tested fault
            threading.Thread(target=echo, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()
    srv.close()


def _roundtrip(port: int, payload: bytes = b"ping", timeout: float = 5.0) -> bytes:
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_toxicity_zero_never_applies(echo_addr):
    with FaultProxy() as fp:
        fp.start(upstream=echo_addr)
        fp.add("latency", toxicity=0.0, latency=5000)
        start = time.monotonic()
        assert _roundtrip(fp.port) == b"ping"
        assert time.monotonic() - start < 5.0


def test_toxic_update_and_api_errors(echo_addr):
    server = ProxyServer()
    try:
        server.create({"name": "e", "upstream": f"{echo_addr[0]}:{echo_addr[1]}"})
        server.add_toxic("e", {"name": "slow", "type": "latency", "attributes": {"latency": 10}})
        status, body = server.handle("POST", "/proxies/e/toxics/slow",
                                     {"attributes": {"latency": 20, "jitter": 5}})
        assert status == 200 and body["attributes"] == {"latency": 20, "jitter": 5}
        assert server.handle("GET", "/nowhere")[0] == 404
        assert server.handle("DELETE", "/proxies/e/toxics/missing")[0] == 404
        status, body = server.handle("POST", "/proxies/e/toxics",
                                     {"type": "latency", "attributes": {"latncy": 5}})
        assert status == 400 and "latncy" in body["error"]
        status, body = server.handle("POST", "/populate", [{"name": "e", "upstream": "127.0.0.1:9"}])
        assert status == 201 and server.get("e")["upstream"] == "127.0.0.1:9"
        assert server.handle("DELETE", "/proxies/e")[0] == 204
        assert server.proxies() == {}
    finally:
        server.close()


def test_upstream_limit_data_and_slicer_on_a_byte_stream(echo_addr):
    with FaultProxy() as fp:
        fp.start(upstream=echo_addr)
        with fp.slicer(average_size=3, size_variation=2, stream="upstream"):
            assert _roundtrip(fp.port, b"x" * 1000) == b"x" * 1000
        with fp.limit_data(10, stream="downstream"):
            assert _roundtrip(fp.port, b"y" * 100) == b"y" * 10     # then the proxy closed it


def test_removing_a_latency_sends_what_it_was_delaying_at_once(echo_addr):
    """Toxiproxy's latency toxic, interrupted, "exits fast without applying latency" and passes
    on what it was holding (toxics/latency.go); an update re-times it the same way."""
    import socket
    with FaultProxy() as fp:
        fp.start(upstream=echo_addr)
        with socket.create_connection(("127.0.0.1", fp.port), timeout=10) as s:
            slow = fp.latency(60_000)
            s.sendall(b"one")
            _wait_queued(fp)                       # the echo is in the proxy, delayed
            slow.remove()
            assert s.recv(3) == b"one"             # long before a minute
            fp.add("latency", name="slow", latency=60_000)
            s.sendall(b"two")
            _wait_queued(fp)
            status, body = fp.transport.request("POST", f"/proxies/{fp.name}/toxics/slow",
                                                {"attributes": {"latency": 0}})
            assert status == 200, body
            assert s.recv(3) == b"two"


def _wait_queued(fp, deadline_s: float = 10.0) -> None:
    """Wait until the proxy holds a delayed piece (a look inside the proxy: the kit's own test)."""
    def queued():
        p = fp._server._proxies[fp.name]
        return sum(len(link.queue) for c in p.conns for link in c.links.values())
    end = time.monotonic() + deadline_s
    while not fp._server._run(queued):
        assert time.monotonic() < end, "nothing reached the proxy's queue"
        time.sleep(0.005)
