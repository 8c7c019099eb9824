"""A fork server for sandboxed workers: most of a worker's start is importing its clients.

A worker that starts from nothing spends most of its start-up importing redis-py, psycopg and
confluent-kafka (about 0.2 s of CPU each time, and a grading starts twenty workers or more). A
*zygote* is a trusted process that has imported them once and then forks a worker per request:
the child takes the worker's file descriptors, its session, its hidden folders (a mount
namespace of its own), its user id, its folder and environment, and only then imports the
learner's component, exactly as ``python -m splitbrain.sandbox.worker`` would.

What the child cannot change after start-up is fixed when the zygote starts, so the grader keeps
one zygote per combination of them: the interpreter and its path, and ``PYTHONHASHSEED`` (a worker
named ``a`` in every test of a grading has the same seed, so one zygote serves all of them, and a
worker ``b`` gets its own, so two workers still hash differently, as two real processes do).
The zygote never imports learner code: only a fixed list of client libraries, of which it loads
those the component or the lab's rig names. ``SPLITBRAIN_FORK_SERVER=0`` starts every worker
from nothing instead.

Run as ``python -s -m splitbrain.sandbox.zygote CTRL_FD PRELOAD``: CTRL_FD is one end of a
SOCK_SEQPACKET socket pair; each request is one JSON packet carrying three descriptors (the
worker's request pipe, its answer pipe, its log); the answer is ``{"pid": N}`` (or ``{"error":
...}``), and ``{"exit": pid, "rc": rc}`` follows when a child ends (rc < 0: killed by a signal).

Shared: the grading processes of one ``check`` or of one batch name a folder only the grader can
enter (``SPLITBRAIN_ZYGOTE_DIR``); the first that needs a zygote starts it there as a *host*
(``python -s -m splitbrain.sandbox.zygote --host SOCKET PRELOAD``), which imports the libraries
once and then, for each grading process that connects, forks a private zygote serving that
connection alone, exactly as above. The host never reads a request, so no zygote carries what
another grading asked for (its workers' resources) into the workers it forks. A host stops when
its socket is removed (the grading or batch is over) or after a minute with no connection.
"""
from __future__ import annotations

import ast
import atexit
import functools
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

# Client libraries a zygote may load ahead of a worker (never anything else): a component or
# rig that imports one of these gets it without paying for the import.
PRELOADABLE = ("redis", "psycopg", "confluent_kafka", "requests", "httpx", "pika")
_MAX_ZYGOTES = 12    # per grading process; the least recently used one stops first
SHARE_ENV = "SPLITBRAIN_ZYGOTE_DIR"   # settings.zygote_dir: the folder of the shared hosts
HOST_IDLE_S = 60.0                    # a host with no connection for this long stops

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18


# -- the zygote's side --------------------------------------------------------------------------
def _libc():
    import ctypes
    return ctypes, ctypes.CDLL(None, use_errno=True)


def _check(ctypes, rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _hide(paths: list[str]) -> None:
    """A mount namespace of this process's own, where an empty unreadable tmpfs covers each
    path (what ``hide.wrap`` does with unshare(1) and mount(8))."""
    ctypes, libc = _libc()
    _check(ctypes, libc.unshare(CLONE_NEWNS), "unshare")
    _check(ctypes, libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate")
    for p in paths:
        _check(ctypes, libc.mount(b"splitbrain-hidden", os.fsencode(p), b"tmpfs",
                                  MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k,mode=000"),
               f"mount tmpfs on {p}")


def _clear_inheritable_caps() -> None:
    """setpriv --inh-caps=-all: no capability survives into a program the worker runs."""
    ctypes, libc = _libc()

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()   # _LINUX_CAPABILITY_VERSION_3
    _check(ctypes, libc.capget(ctypes.byref(header), data), "capget")
    data[0].inheritable = data[1].inheritable = 0
    _check(ctypes, libc.capset(ctypes.byref(header), data), "capset")


def _become_worker(req: dict, fds: list[int]) -> int:
    """In the forked child: take the worker's descriptors, session, namespace, user, folder and
    environment, then run the worker's loop (which imports the component)."""
    req_r, ans_w, log = fds
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in (null, log):
        os.close(fd)
    if req.get("hide"):
        _hide(req["hide"])
    if req.get("uid") is not None:
        if os.geteuid() == 0:
            _clear_inheritable_caps()
        os.setgroups([])
        os.setgid(req["gid"])
        os.setuid(req["uid"])
    os.chdir(req["cwd"])
    sys.path[0] = req["cwd"]                  # what `python -m` started there would have
    os.environ.clear()
    os.environ.update(req["env"])
    import tempfile
    tempfile.tempdir = None
    from splitbrain.faults import crash
    crash.disarm_all()
    crash.arm_from_env()
    from splitbrain.sandbox import worker
    return worker.main(["worker", str(req_r), str(ans_w)])


def _status(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def serve(ctrl: socket.socket) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    def send(msg: dict) -> None:
        try:
            ctrl.send(json.dumps(msg).encode())
        except OSError:
            pass

    while True:
        try:
            ready, _, _ = select.select([ctrl, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                send({"exit": pid, "rc": _status(status)})
        if ctrl not in ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(ctrl, 1 << 20, 3)
        except OSError:
            return
        if not msg:
            return                                   # the grader is gone
        try:
            req = json.loads(msg)
            if len(fds) != 3:
                raise ValueError(f"expected 3 descriptors, got {len(fds)}")
            pid = os.fork()
        except Exception as e:  # noqa: BLE001 - the grader starts this worker the slow way
            for fd in fds:
                os.close(fd)
            send({"error": f"{type(e).__name__}: {e}"})
            continue
        if pid == 0:
            code = 70
            try:
                ctrl.close()
                os.close(wake_r)
                os.close(wake_w)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = _become_worker(req, fds)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:  # noqa: BLE001 - the child must never return to the loop
                import traceback
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        send({"pid": pid})


def host(listener: socket.socket, path: str) -> None:
    """Fork a private zygote (a copy of this process, which has read no request) for each
    connection, until the socket file is gone or nobody has connected for ``HOST_IDLE_S``."""
    import time
    me = os.stat(path).st_ino
    live: set[int] = set()
    idle_since = time.monotonic()
    while True:
        try:
            ready, _, _ = select.select([listener], [], [], 0.5)
        except InterruptedError:
            ready = []
        while live:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                live.clear()
                break
            if pid == 0:
                break
            live.discard(pid)
        if live:
            idle_since = time.monotonic()
        try:
            gone = os.stat(path).st_ino != me
        except OSError:
            gone = True
        if gone or (not live and not ready and time.monotonic() - idle_since > HOST_IDLE_S):
            return
        if listener not in ready:
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        try:
            pid = os.fork()
        except OSError:
            conn.close()
            continue
        if pid == 0:
            code = 0
            try:
                listener.close()
                serve(conn)
            except BaseException:  # noqa: BLE001 - the child must never return to the loop
                code = 70
            finally:
                os._exit(code)
        conn.close()
        live.add(pid)
        idle_since = time.monotonic()


def main(argv: list[str]) -> int:
    listener = path = None
    if argv[1] == "--host":             # shared: bind first, so that connecting can start now
        path = argv[2]
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(path)
        listener.listen(64)
        argv = [argv[0], *argv[2:]]
    ctrl = None if listener is not None else socket.socket(fileno=int(argv[1]))
    # client libraries come from site-packages only: not from the folder the kit sits in (a
    # stray redis.py beside splitbrain/ must not run in this process), nor from the cwd
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if p not in ("", "/") and not os.path.isdir(
        os.path.join(p, "splitbrain"))]
    for name in filter(None, (argv[2] if len(argv) > 2 else "").split(",")):
        if name in PRELOADABLE:
            try:
                __import__(name)
            except Exception:  # noqa: BLE001 - the worker will report it when it imports it
                pass
    sys.path[:] = saved
    import splitbrain.faults.clock  # noqa: F401 - what every worker loads
    import splitbrain.sandbox.worker  # noqa: F401
    if listener is not None:
        try:
            host(listener, path)
        finally:
            listener.close()
    else:
        serve(ctrl)
    return 0


# -- the grader's side ----------------------------------------------------------------------------
class Forked:
    """A worker forked by a zygote, with the part of ``subprocess.Popen`` the sandbox uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def _ended(self, rc: int) -> None:
        self.returncode = rc
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
        return self.returncode  # type: ignore[return-value]


def _connect_shared(folder: str, python: str, env: dict[str, str],
                    preload: tuple[str, ...]) -> socket.socket:
    """A connection to the host for this interpreter, environment and preload list in
    ``folder`` (started now if there is none yet; one process starts it, the others wait)."""
    import fcntl
    import hashlib
    import time
    key = hashlib.sha256(json.dumps([python, sorted(env.items()), list(preload)]).encode())
    path = os.path.join(folder, f"z-{key.hexdigest()[:24]}.sock")

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        return s

    try:
        return connect()
    except OSError:
        pass
    with open(path[:-5] + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return connect()
        except OSError:
            pass
        try:
            os.unlink(path)              # a host that died leaves its socket file behind
        except FileNotFoundError:
            pass
        proc = subprocess.Popen(
            [python, "-s", "-m", "splitbrain.sandbox.zygote", "--host", path, ",".join(preload)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", env=env, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                return connect()
            except OSError:
                time.sleep(0.005)
        raise OSError(f"the shared fork server did not start (exit {proc.poll()})")


class Zygote:
    def __init__(self, python: str, env: dict[str, str], preload: tuple[str, ...],
                 shared: str | None = None) -> None:
        self.proc: subprocess.Popen | None = None
        if shared:
            self.sock = _connect_shared(shared, python, env, preload)
        else:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self.proc = subprocess.Popen(
                    [python, "-s", "-m", "splitbrain.sandbox.zygote", str(theirs.fileno()),
                     ",".join(preload)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, cwd="/", env=env, pass_fds=(theirs.fileno(),),
                    start_new_session=True)
            finally:
                theirs.close()
            self.sock = ours
        self._lock = threading.Lock()        # one fork request in flight at a time
        self._replies: queue.Queue = queue.Queue()
        self._children: dict[int, Forked] = {}
        self._early: dict[int, int] = {}     # exits read before their fork's answer was taken
        self._state = threading.Lock()
        self.alive = True
        threading.Thread(target=self._read, daemon=True, name="splitbrain-zygote").start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            msg = json.loads(data)
            if "exit" in msg:
                with self._state:
                    child = self._children.pop(msg["exit"], None)
                    if child is None:
                        self._early[msg["exit"]] = msg["rc"]
                if child is not None:
                    child._ended(msg["rc"])
            else:
                self._replies.put(msg)
        self.alive = False
        self._replies.put({"error": "the fork server stopped"})
        with self._state:    # its children were orphaned: nobody can tell how they end
            orphans, self._children = list(self._children.values()), {}
        for child in orphans:
            threading.Thread(target=_watch_orphan, args=(child,), daemon=True).start()

    def fork(self, req: dict, fds: tuple[int, int, int]) -> Forked:
        with self._lock:
            if not self.alive:
                raise OSError("the fork server stopped")
            socket.send_fds(self.sock, [json.dumps(req).encode()], list(fds))
            try:
                reply = self._replies.get(timeout=30)
            except queue.Empty:
                raise OSError("the fork server did not answer") from None
        if "pid" not in reply:
            raise OSError(reply.get("error", "the fork server failed"))
        child = Forked(reply["pid"])
        with self._state:
            rc = self._early.pop(child.pid, None)
            if rc is None:
                self._children[child.pid] = child
        if rc is not None:
            child._ended(rc)
        return child

    def close(self) -> None:
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.proc is None:            # a shared host's private zygote: it ends with the link
            return
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _watch_orphan(child: Forked) -> None:
    import time
    while child.returncode is None:
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            child._ended(-9)
            return
        except PermissionError:
            pass
        time.sleep(0.05)


_zygotes: dict[tuple, Zygote] = {}
_zlock = threading.Lock()


def enabled() -> bool:
    from splitbrain.settings import settings
    return sys.platform.startswith("linux") and \
        str(settings.fork_server).strip().lower() not in ("0", "false", "no", "off")


def preload_for(*sources: Path) -> tuple[str, ...]:
    """The preloadable client libraries the given Python files (or folders of them) import."""
    names: set[str] = set()
    for src in sources:
        for f in (sorted(src.rglob("*.py")) if src.is_dir() else [src]):
            try:
                st = f.stat()
            except OSError:
                continue
            names.update(_imports(str(f), st.st_mtime_ns, st.st_size))
    return tuple(n for n in PRELOADABLE if n in names)


@functools.lru_cache(maxsize=256)
def _imports(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """Top-level names a file imports (read again only when it changes)."""
    try:
        from splitbrain.pyast import parse      # safe from several threads at once
    except ImportError:                         # this file run on its own, outside the kit
        parse = ast.parse
    try:
        tree = parse(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return frozenset(names)


def zygote_for(python: str, env: dict[str, str], preload: tuple[str, ...]) -> Zygote:
    """The zygote for this interpreter, start-up environment and preload list (started on first
    use; the least recently used stops when there are too many)."""
    from splitbrain.settings import settings
    shared = str(settings.zygote_dir) if settings.zygote_dir else None
    if shared and not os.path.isdir(shared):
        shared = None
    key = (python, tuple(sorted(env.items())), preload, shared)
    with _zlock:
        z = _zygotes.pop(key, None)
        if z is None or not z.alive:
            try:
                z = Zygote(python, env, preload, shared)
            except OSError:
                if not shared:
                    raise
                z = Zygote(python, env, preload)    # a fork server of its own, as unshared
        _zygotes[key] = z                      # most recently used last
        old = [k for k in _zygotes if k != key][:max(0, len(_zygotes) - _MAX_ZYGOTES)]
        stale = [_zygotes.pop(k) for k in old]
    for s in stale:
        s.close()
    return z


@atexit.register
def stop_all() -> None:
    with _zlock:
        zs = list(_zygotes.values())
        _zygotes.clear()
    for z in zs:
        try:
            z.close()
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
