"""Sandboxed workers against a real Redis: calls, errors, limits, faults, and what the learner's
code can and cannot see."""
import os
import subprocess
import sys
import textwrap
from concurrent.futures import TimeoutError as FutureTimeout

import pytest

from splitbrain.faults import Nemesis

from splitbrain.history import History
from splitbrain.sandbox import (CallTimeout, Limits, Ref, RemoteError, WorkerDied, hash_seed,
                                spawn)

COMPONENT = textwrap.dedent('''
    import os

    class Thing:
        def __init__(self, redis=None, key="k", clock=None, **kw):
            self.redis, self.key, self.clock, self.kw = redis, key, clock, kw

        def incr(self):
            return self.redis.incr(self.key)

        def now(self):
            return self.clock.now()

        def echo(self, *args, **kwargs):
            return [list(args), kwargs]

        def boom(self):
            raise ValueError("no " + self.key)

    def add(a, b):
        return a + b

    def env(name):
        return os.environ.get(name)

    def whoami():
        return {"uid": os.getuid(), "cwd": os.getcwd()}

    def shout():
        print("hello from the learner")
        return "said"

    def crash():
        from splitbrain import crash_point
        crash_point("boom")
        return "alive"

    def hang():
        while True:
            pass

    def die():
        os._exit(7)

    def pair():
        return {1, 2}, b"bytes", Thing()

    def portrait():
        """What the learner's code can see of its own process."""
        import resource
        import sys
        caps = [line.split()[1] for line in open("/proc/self/status") if line.startswith("Cap")]
        return {"hash": hash("splitbrain"), "env": sorted(os.environ), "uid0": os.getuid() == 0,
                "groups": os.getgroups(), "path0": sys.path[0] == os.getcwd(),
                "leader": os.getsid(0) == os.getpid(), "caps": caps,
                "limits": [resource.getrlimit(getattr(resource, n)) for n in
                           ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_NPROC")],
                "redis_loaded": "redis" in sys.modules}
''')


@pytest.fixture
def component(tmp_path):
    p = tmp_path / "thing.py"
    p.write_text(COMPONENT)
    return p


@pytest.fixture
def worker(component, ns, tmp_path):
    workers = []

    def make(name="a", **kw):
        kw.setdefault("limits", Limits(call_timeout_s=5))
        w = spawn(component, name, {"redis_url": ns.redis_url, "prefix": ns.prefix},
                  log_dir=tmp_path / "logs", **kw)
        workers.append(w)
        return w
    yield make
    for w in workers:
        w.close()


def test_calls_objects_refs_and_history(worker, ns):
    h = History()
    w = worker(history=h)
    t = w.new("Thing", Ref("redis"), key=ns.key("n"))
    assert [t.incr(), t.incr()] == [1, 2]
    assert w.call("add", 2, 3) == 5
    assert w.fn("add").async_(1, 1).result() == 2
    assert t.echo(1, "x", k=[1, 2]) == [[1, "x"], {"k": [1, 2]}]
    assert w.call("env", "missing") is None
    assert w.new("Thing", Ref("prefix")).echo() == [[], {}]
    kinds = [(e.type, e.f) for e in h]
    assert kinds[:4] == [("invoke", "incr"), ("ok", "incr"), ("invoke", "incr"), ("ok", "incr")]
    assert h.operations()[1].result == 2


def test_async_calls_run_in_order(worker, ns):
    w = worker()
    t = w.new("Thing", Ref("redis"), key=ns.key("o"))
    futures = [t.incr.async_() for _ in range(20)]
    assert [f.result(timeout=10) for f in futures] == list(range(1, 21))


def test_results_become_json_or_handles(worker):
    w = worker()
    s, b, thing = w.call("pair")
    assert s == [1, 2] and b == "bytes"
    assert thing.echo(5) == [[5], {}]
    with pytest.raises(TypeError, match="arguments must be JSON values"):
        w.call("add", object(), 1)


def test_learner_exceptions_come_back_as_remote_errors(worker, ns):
    h = History()
    w = worker(history=h)
    t = w.new("Thing", key="door")
    with pytest.raises(RemoteError) as e:
        t.boom()
    assert e.value.type == "ValueError" and e.value.message == "no door"
    assert "in boom" in e.value.traceback and "sandbox" not in e.value.traceback
    assert h.events[-1].type == "fail" and h.events[-1].value["error"] == "ValueError"
    with pytest.raises(RemoteError, match="defines no 'Missing'"):
        w.new("Missing")
    with pytest.raises(RemoteError, match="Thing has no method 'nope'"):
        t.nope()
    with pytest.raises(RemoteError, match="unknown resource"):
        w.new("Thing", Ref("kafka_bootstrap"))
    with pytest.raises(RemoteError, match="a helper is trusted code"):
        w.new("Thing", Ref("os.path:join"))
    with pytest.raises(RemoteError, match="spawned without its lab's rig"):
        w.new("Thing", Ref("rig.world:make"))
    with pytest.raises(RemoteError, match="call 'os:getcwd': a helper is trusted code"):
        w.call("os:getcwd")          # a call runs the component's functions or trusted helpers
    with pytest.raises(RemoteError, match="call 'rig.world:look': this worker was spawned"):
        w.call("rig.world:look", t)
    assert w.call("add", 1, 1) == 2  # the worker survives its learner's exceptions


def test_timeout_kills_the_worker(worker):
    h = History()
    w = worker(history=h, limits=Limits(call_timeout_s=2))
    with pytest.raises(CallTimeout, match="did not answer within 2 s"):
        w.call("hang")
    assert h.events[-1].type == "info"
    with pytest.raises(WorkerDied):
        w.call("add", 1, 2)
    w.restart()
    assert w.call("add", 1, 2) == 3


def test_death_is_reported_with_status_and_log(worker):
    w = worker()
    assert w.call("shout") == "said"  # prints go to the log, never into the RPC channel
    with pytest.raises(WorkerDied) as e:
        w.call("die")
    assert e.value.returncode == 7 and "exited with status 7" in str(e.value)
    assert "hello from the learner" in e.value.log_tail


def test_pause_resume_kill_restart(worker, ns):
    h = History()
    w = worker(history=h)
    nemesis = Nemesis(h)
    t = w.new("Thing", Ref("redis"), key=ns.key("p"))
    gc = nemesis.inject("pause", w)
    fut = t.incr.async_()
    with pytest.raises(FutureTimeout):
        fut.result(timeout=0.3)  # a paused process answers nothing
    gc.heal()
    assert fut.result(timeout=5) == 1
    nemesis.inject("kill", w)
    with pytest.raises(WorkerDied, match="SIGKILL"):
        t.incr()
    nemesis.inject("restart", w)
    with pytest.raises(RemoteError, match="does not exist"):
        t.incr()  # objects do not survive a restart
    assert w.new("Thing", Ref("redis"), key=ns.key("p")).incr() == 2
    assert [(e.f, e.value["phase"]) for e in h.faults()] == [
        ("pause", "start"), ("pause", "end"), ("kill", "start"), ("kill", "end"),
        ("restart", "start"), ("restart", "end")]
    w.pause()                       # the worker's own methods record nothing: one route
    w.resume()
    assert len(h.faults()) == 6


def test_clock_skew_and_crash_points(worker):
    w = worker()
    t = w.new("Thing", clock=Ref("clock"))
    before = t.now()
    w.skew_clock(3600)
    assert t.now() - before > 3000
    assert w.call("crash") == "alive"
    w.arm_crash("boom")
    with pytest.raises(WorkerDied, match="SIGKILL at crash point 'boom'"):
        w.call("crash")


def test_environment_hash_seed_and_no_admin_urls(worker, monkeypatch):
    monkeypatch.setenv("SPLITBRAIN_POSTGRES_URL", "postgresql://postgres@127.0.0.1/secret")
    a, b = worker("a", seed=7, env={"EXTRA": "1"}), worker("b", seed=7)
    assert a.call("env", "PYTHONHASHSEED") == str(hash_seed(7, "a"))
    assert hash_seed(7, "a") != hash_seed(7, "b") and hash_seed(7, "a") == hash_seed(7, "a")
    assert b.call("env", "PYTHONHASHSEED") == str(hash_seed(7, "b"))
    assert a.call("env", "EXTRA") == "1" and b.call("env", "EXTRA") is None
    assert a.call("env", "SPLITBRAIN_POSTGRES_URL") is None


def test_runs_as_its_own_user_in_its_own_folder(worker):
    a, b = worker("a"), worker("b")
    wa, wb = a.call("whoami"), b.call("whoami")
    assert wa["cwd"] != wb["cwd"]
    if os.geteuid() == 0:
        assert wa["uid"] != 0 and wb["uid"] != 0 and wa["uid"] != wb["uid"]
    limits = open(f"/proc/{a.pid}/limits").read()
    assert "Max core file size        0" in limits


def test_a_worker_from_the_fork_server_is_one_started_anew(worker, monkeypatch):
    """A worker forked by the fork server (which has imported the client libraries already) sees
    what a worker started as a new process sees: the same hash seed for its name, environment,
    user, groups, capabilities, limits, session and import path. Workers of one name share a
    fork server; another name gets its own, and so its own hash seed."""
    from splitbrain.sandbox.zygote import Forked
    monkeypatch.setenv("SPLITBRAIN_FORK_SERVER", "0")
    anew = worker("a", seed=5)
    monkeypatch.setenv("SPLITBRAIN_FORK_SERVER", "1")
    a1, a2, b = worker("a", seed=5), worker("a", seed=5), worker("b", seed=5)
    if not sys.platform.startswith("linux"):
        pytest.skip("the fork server is Linux only")
    assert all(isinstance(w._proc, Forked) for w in (a1, a2, b))
    assert not isinstance(anew._proc, Forked)
    want = anew.call("portrait")
    got = a1.call("portrait")
    assert {**got, "redis_loaded": None} == {**want, "redis_loaded": None}
    assert a2.call("portrait")["hash"] == want["hash"] != b.call("portrait")["hash"]
    import psutil
    assert psutil.Process(a1.pid).ppid() == psutil.Process(a2.pid).ppid() != \
        psutil.Process(b.pid).ppid()
    a1.kill()
    with pytest.raises(WorkerDied, match="killed by signal SIGKILL"):
        a1.call("add", 1, 2)



def test_gradings_that_share_a_zygote_folder_fork_from_one_host(worker, monkeypatch, request):
    """Two grading processes naming one zygote folder share its host, which imported the
    libraries once: each connection gets a private zygote forked from it (never one that served
    another grading), and a worker from there is one started anew. The host stops once its
    socket is gone."""
    import time

    import psutil

    from splitbrain.sandbox import zygote
    if not sys.platform.startswith("linux"):
        pytest.skip("the fork server is Linux only")
    monkeypatch.setenv("SPLITBRAIN_FORK_SERVER", "0")
    want = worker("a", seed=5).call("portrait")
    monkeypatch.setenv("SPLITBRAIN_FORK_SERVER", "1")
    from splitbrain.grading.runner import zygote_folder
    made = zygote_folder()          # where a grading puts it: short enough for a socket path
    folder = made.__enter__()
    request.addfinalizer(lambda: made.__exit__(None, None, None))
    monkeypatch.setenv(zygote.SHARE_ENV, str(folder))
    monkeypatch.setattr(zygote, "_zygotes", {})
    first = worker("a", seed=5)
    monkeypatch.setattr(zygote, "_zygotes", {})      # as another grading process would
    second = worker("a", seed=5)
    for w in (first, second):
        assert isinstance(w._proc, zygote.Forked)
        assert {**w.call("portrait"), "redis_loaded": None} == {**want, "redis_loaded": None}
    own = [psutil.Process(w.pid).parent() for w in (first, second)]
    hosts = [z.parent() for z in own]
    assert own[0].pid != own[1].pid and hosts[0].pid == hosts[1].pid
    assert "--host" in hosts[0].cmdline()
    (sock,) = folder.glob("z-*.sock")
    sock.unlink()
    end = time.monotonic() + 10
    while hosts[0].is_running() and hosts[0].status() != psutil.STATUS_ZOMBIE \
            and time.monotonic() < end:
        time.sleep(0.05)
    assert not hosts[0].is_running() or hosts[0].status() == psutil.STATUS_ZOMBIE
    assert first.call("add", 1, 2) == 3               # its workers outlive it


def test_a_zygote_folder_whose_socket_path_is_too_long_falls_back_to_an_own_zygote(
        worker, monkeypatch, tmp_path):
    from splitbrain.sandbox import zygote
    if not sys.platform.startswith("linux"):
        pytest.skip("the fork server is Linux only")
    folder = tmp_path / ("x" * 120)
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("SPLITBRAIN_FORK_SERVER", "1")
    monkeypatch.setenv(zygote.SHARE_ENV, str(folder))
    monkeypatch.setattr(zygote, "_zygotes", {})
    w = worker("a")
    assert isinstance(w._proc, zygote.Forked) and w.call("add", 1, 2) == 3
    assert not list(folder.glob("z-*.sock"))

def test_import_errors_fail_the_spawn(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text("import not_a_module_anywhere\n")
    with pytest.raises(RemoteError, match="ModuleNotFoundError|No module named"):
        spawn(p, "x", {})


def test_workers_spawned_without_waiting_start_together(component, tmp_path):
    a = spawn(component, "a", {}, wait=False, log_dir=tmp_path)
    b = spawn(component, "b", {}, wait=False, log_dir=tmp_path)
    try:
        assert a.pid > 0 and b.pid > 0
        assert a.call("add", 1, 2) == 3 and "Thing" in b.ready().names
    finally:
        a.close()
        b.close()
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('broken at import')\n")
    w = spawn(bad, "c", {}, wait=False, log_dir=tmp_path)
    try:
        for _ in range(2):  # the import error answers every operation, not just the first
            with pytest.raises(RemoteError, match="broken at import"):
                w.call("anything")
    finally:
        w.close()


def test_hidden_folders_are_unreadable_to_a_worker_and_nothing_outside_changes(open_tmp):
    """As root a worker's own mount namespace covers what it must not read; where namespaces
    are refused, the folders are held closed and given back as they were."""
    from splitbrain.sandbox import hide
    if os.geteuid() != 0:
        pytest.skip("without root a worker runs as the grader's user (documented)")
    tmp_path = open_tmp
    secret = tmp_path / "solutions"
    secret.mkdir()
    (secret / "answer.py").write_text("SECRET = 42\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(secret, 0o755)
    comp = tmp_path / "peek.py"
    comp.write_text("import os\n\ndef peek(p):\n    try:\n        return sorted(os.listdir(p))\n"
                    "    except OSError as e:\n        return type(e).__name__\n")
    os.chmod(comp, 0o644)
    before = secret.stat().st_mode
    if hide.namespaces_work():
        w = spawn(comp, "peek", hide=[secret])
        try:
            assert w.call("peek", str(secret)) == "PermissionError"
            assert w.call("peek", str(tmp_path)) == ["peek.py", "solutions"]
        finally:
            w.close()
    with hide.held_closed(tmp_path, [secret]):
        assert secret.stat().st_mode & 0o777 == 0o700
        with hide.held_closed(tmp_path, [secret]):      # a second grading of the same checkout
            pass
        assert secret.stat().st_mode & 0o777 == 0o700   # still held by the first
    assert secret.stat().st_mode == before             # the last one out gives it back


@pytest.fixture
def open_tmp():
    """A folder every user can reach (pytest's own tmp_path is private to its user)."""
    import shutil
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp(prefix="sb-open-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_modes_left_closed_by_a_killed_grading_are_given_back(tmp_path):
    from splitbrain.sandbox import hide
    d = tmp_path / "autograder"
    d.mkdir()
    os.chmod(d, 0o755)
    code = ("import os, sys\nfrom pathlib import Path\nfrom splitbrain.sandbox import hide\n"
            f"with hide.held_closed(Path({str(tmp_path)!r}), [Path({str(d)!r})]):\n"
            "    os._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert d.stat().st_mode & 0o777 == 0o700
    assert hide.restore_stale(tmp_path) is True
    assert d.stat().st_mode & 0o777 == 0o755 and hide.restore_stale(tmp_path) is False
