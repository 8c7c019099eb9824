"""Process faults on real processes: a paused Redis stops answering, a killed tree is gone."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
import redis

from splitbrain.faults import process
from splitbrain.faults.process import ProcessFaultError
from splitbrain.faults.proxy import FaultProxy
from splitbrain.faults.schedule import FaultEvent, Nemesis
from splitbrain.history import History
from splitbrain.testing import require_binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen:
    binary = require_binary("redis-server")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=0.5).ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def private_redis():
    port = _free_port()
    proc = _start_redis(port)
    box = {"proc": proc, "port": port}
    yield box
    for p in (box["proc"],):
        if p.poll() is None:
            os.kill(p.pid, 18)   # SIGCONT in case a test left it stopped
            p.kill()
            p.wait(5)


def test_paused_redis_stops_answering_and_resumes(private_redis):
    r = redis.Redis(port=private_redis["port"], socket_timeout=0.3, retry=None)
    assert r.ping()
    pid = private_redis["proc"].pid
    with process.paused(pid):
        assert process.state(pid) == "T"
        with pytest.raises(redis.TimeoutError):
            r.ping()
    assert redis.Redis(port=private_redis["port"], socket_timeout=2, retry=None).ping()


def test_kill_and_restart_with_a_callback(private_redis):
    port, pid = private_redis["port"], private_redis["proc"].pid

    def start() -> int:
        private_redis["proc"] = _start_redis(port)
        return private_redis["proc"].pid
    new_pid = process.restart(pid, start)
    assert new_pid != pid and not process.alive(pid)
    assert redis.Redis(port=port, socket_timeout=2).ping()


def test_kill_tree_waits_for_every_descendant():
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess,sys,time;"
                               "subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
                               "print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 5
    while not process.descendants(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    children = process.descendants(parent.pid)
    assert children
    process.kill(parent.pid, tree=True)
    assert not process.alive(parent.pid)
    assert not any(process.alive(c) for c in children)


def test_refuses_bad_pids():
    with pytest.raises(ProcessFaultError, match="own process"):
        process.pause(os.getpid())
    with pytest.raises(ProcessFaultError, match="pid"):
        process.kill("123")  # type: ignore[arg-type]
    with pytest.raises(ProcessFaultError, match="no such running process"):
        process.pause(2 ** 22 + 12345)


def test_nemesis_schedule_pauses_a_real_server_and_partitions_a_proxy(private_redis):
    """A schedule of real faults: the history shows each window; calls fail inside them."""
    h = History()
    port, pid = private_redis["port"], private_redis["proc"].pid
    with FaultProxy(name=f"redis-{uuid.uuid4().hex[:6]}") as fp:
        fp.start(upstream=("127.0.0.1", port))
        n = Nemesis(h, targets={"redis-server": pid, "redis-net": fp})
        n.start([FaultEvent(0.0, "pause", "redis-server", {}, 0.6),
                 FaultEvent(0.8, "partition", "redis-net", {}, 0.6)])
        r = redis.Redis(port=fp.port, socket_timeout=0.2, retry=None)
        outcomes = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(h.faults()) < 4:
            inv = h.invoke("client", "ping")
            try:
                r.ping()
                h.complete(inv, "ok")
                outcomes.append("ok")
            except (redis.TimeoutError, redis.ConnectionError) as e:
                h.complete(inv, "info", type(e).__name__)
                outcomes.append("info")
                r = redis.Redis(port=fp.port, socket_timeout=0.2, retry=None)
            time.sleep(0.02)
        n.wait(10)
        assert [(e.f, e.value["phase"]) for e in h.faults()] == [
            ("pause", "start"), ("pause", "end"), ("partition", "start"), ("partition", "end")]
        assert "info" in outcomes
        # every failed call overlaps a fault window
        windows = []
        starts = {}
        for e in h.faults():
            if e.value["phase"] == "start":
                starts[e.f] = e.time
            else:
                windows.append((starts.pop(e.f), e.time))
        for op in h.operations():
            if op.type == "info":
                assert any(op.start <= end and op.end >= start for start, end in windows), op
        assert r.ping()


def test_tree_faults_reach_a_child_in_its_own_session():
    """A process group misses a child that started its own session (servers' helpers do);
    the tree does not, on Linux and macOS alike."""
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess,sys,time;"
                               "c=subprocess.Popen([sys.executable,'-c',"
                               "'import time; time.sleep(60)'], start_new_session=True);"
                               "print(c.pid, flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        assert process.descendants(parent.pid) == [child]
        with process.paused(parent.pid, tree=True) as pids:
            assert sorted(pids) == sorted([parent.pid, child])
            assert process.state(parent.pid) == "T" and process.state(child) == "T"
        assert process.state(child) != "T"
        process.kill(parent.pid, tree=True)
        assert not process.alive(child)
        assert process.state(parent.pid) is None   # our child: reaped, not left a zombie
    finally:
        for pid in (child, parent.pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        parent.wait(5)
