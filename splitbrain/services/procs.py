"""Process and port helpers: launch servers, recognise the kit's own processes, find and kill
process trees (psutil, so a server's children die on macOS as on Linux), wait on conditions
with deadlines."""
from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import psutil

from ..settings import settings
from .errors import PortInUse

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_port_free(service: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # servers set SO_REUSEADDR too: a port left in TIME_WAIT is free for them
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOCALHOST, port))
            s.listen()
        except OSError:
            raise PortInUse(service, port) from None


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.01,
               fail: Callable[[], None] | None = None) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` passes; ``fail`` is called each round and may
    raise (a server that died). Returns whether ``cond`` held."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if fail is not None:
            fail()
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.1)


def tail(path: str | Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# --- identity of processes (psutil: the same code on Linux and macOS) -------------------------

_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)   # a zombie runs no code: it counts as gone
_LINUX = sys.platform.startswith("linux")
_TICKS = os.sysconf("SC_CLK_TCK") if _LINUX else 0


def process(pid: int | None) -> psutil.Process | None:
    """A psutil handle on ``pid`` (None if there is no such process). A handle remembers which
    process it names: it will not signal another process that later reuses the pid."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def running(p: psutil.Process) -> bool:
    """The process of handle ``p`` still runs (not exited, not a zombie, pid not reused)."""
    try:
        return p.is_running() and p.status() not in _GONE
    except psutil.NoSuchProcess:   # ZombieProcess too
        return False
    except psutil.AccessDenied:    # it exists; we may just not look at it
        return True


def start_time(pid: int) -> str | None:
    """An opaque token that changes when ``pid`` is reused by another process.

    Linux: the kernel's start time in clock ticks since boot (the token earlier releases
    recorded); unlike a wall-clock start it does not move when the clock is stepped. Elsewhere:
    the creation time the kernel recorded, in seconds since the epoch."""
    p = process(pid)
    if p is None:
        return None
    try:
        if _LINUX:
            return str(round((p.create_time() - psutil.boot_time()) * _TICKS))
        return f"{p.create_time():.6f}"
    except psutil.Error:
        return None


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as dead)."""
    p = process(pid)
    return p is not None and running(p)


def is_same_process(pid: int | None, started: str | None) -> bool:
    """The process recorded as (pid, start time) still runs and is that very process."""
    if not pid or not alive(pid):
        return False
    return started is None or start_time(pid) == started


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" if it is gone; its name if we may not read more)."""
    p = process(pid)
    if p is None:
        return ""
    try:
        return " ".join(p.cmdline())
    except psutil.AccessDenied:
        try:
            return p.name()
        except psutil.Error:
            return ""
    except psutil.Error:
        return ""


def group_members(pgid: int) -> list[int]:
    """Live pids in process group ``pgid``."""
    out = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
        except OSError:
            continue
        p = process(pid)
        if p is not None and running(p):
            out.append(pid)
    return out


def processes(pid: int) -> list[psutil.Process]:
    """Handles on ``pid`` and its live descendants (Postgres backends make themselves group
    leaders, so a process group does not hold them all)."""
    p = process(pid)
    if p is None:
        return []
    try:
        kids = p.children(recursive=True)
    except psutil.NoSuchProcess:
        kids = []
    return [q for q in (p, *kids) if running(q)]


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    return [p.pid for p in processes(pid)]


def send(victims: Iterable[psutil.Process], sig: int) -> list[psutil.Process]:
    """Send ``sig`` to each process still running; returns those that got it."""
    hit = []
    for p in victims:
        try:
            p.send_signal(sig)
            hit.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return hit


def kill_tree(pid: int, timeout: float = 10.0) -> bool:
    """SIGKILL ``pid``, its process group and every descendant; wait until all are gone."""
    victims = processes(pid)
    signal_group(pid, signal.SIGKILL)
    send(victims, signal.SIGKILL)
    return wait_until(lambda: not any(running(v) for v in victims) and not group_members(pid),
                      timeout)


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- launching -------------------------------------------------------------------------------

def service_user() -> str | None:
    """The unprivileged account servers run under when the kit runs as root (Postgres refuses
    root). ``SPLITBRAIN_SERVICE_USER`` wins; default ``nobody``. None when not root."""
    if os.geteuid() != 0:
        return None
    name = settings.service_user
    pwd.getpwnam(name)  # KeyError names an unknown account
    return name


def chown_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for n in files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _demote_kwargs(user: str | None) -> dict:
    if user is None:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra or {})
    return env


def launch(argv: list[str], log_path: Path, *, user: str | None = None, cwd: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server as a child of this process, in its own process group, output to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=cwd, env=env if env is not None else clean_env(),
            **_demote_kwargs(user))


_DETACH = r"""
import json, subprocess, sys
spec = json.loads(sys.argv[1])
log = open(spec["log"], "ab")
kw = {}
if spec["uid"] is not None:
    kw = {"user": spec["uid"], "group": spec["gid"], "extra_groups": []}
p = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True, cwd=spec["cwd"], env=spec["env"], **kw)
print(p.pid)
"""


def launch_detached(argv: list[str], log_path: Path, *, user: str | None = None,
                    cwd: str | None = None, env: dict[str, str] | None = None) -> int:
    """Start a server that outlives this process: a short-lived helper starts it in a new
    session and exits, so the server is nobody's child here (no zombie if it dies). Returns
    its pid, which is also its process group id."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    uid = gid = None
    if user is not None:
        pw = pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    spec = {"argv": argv, "log": str(log_path), "uid": uid, "gid": gid, "cwd": cwd,
            "env": env if env is not None else clean_env()}
    out = subprocess.run([sys.executable, "-c", _DETACH, json.dumps(spec)], capture_output=True,
                         text=True, timeout=30, start_new_session=True)
    if out.returncode != 0:
        raise OSError(f"could not start {argv[0]}: {out.stderr.strip()}")
    return int(out.stdout.strip())


def stop_pid(pid: int, started: str | None, sig: int = signal.SIGTERM, timeout: float = 10.0,
             group: bool = True) -> bool:
    """Signal a process the kit started (after checking it is still that process), wait until
    it, its descendants and its group are gone, SIGKILL what is left on timeout. Returns False
    if it was not ours / not running."""
    if not is_same_process(pid, started):
        return False
    victims = processes(pid)   # found first: a parent that exits at once orphans its children
    if group:
        signal_group(pid, sig)
    else:
        send(victims[:1], sig)
    if wait_until(lambda: not any(running(v) for v in victims)
                  and (not group or not group_members(pid)), timeout):
        return True
    send(victims, signal.SIGKILL)
    kill_tree(pid, 5.0)
    # a descendant in a session of its own is no longer in pid's tree once pid is gone: wait for
    # the ones found first too, so that none is still dying when this returns
    wait_until(lambda: not any(running(v) for v in victims), 5.0)
    return True
