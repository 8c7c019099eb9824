"""Process and port helpers: launch servers, recognise the kit's own processes, wait on
conditions with deadlines. Linux reads /proc; elsewhere `ps` answers."""
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
from typing import Callable

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


# --- identity of processes -------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int) -> str | None:
    """An opaque token that changes when ``pid`` is reused by another process."""
    f = _stat_fields(pid)
    if f is not None:
        return f[19]  # field 22: starttime in clock ticks since boot
    if sys.platform.startswith("linux"):
        return None
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as dead)."""
    f = _stat_fields(pid)
    if f is not None:
        return f[0] not in ("Z", "X")
    if sys.platform.startswith("linux"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_same_process(pid: int | None, started: str | None) -> bool:
    """The process recorded as (pid, start time) still runs and is that very process."""
    if not pid or not alive(pid):
        return False
    return started is None or start_time(pid) == started


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        pass
    try:
        return subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def group_members(pgid: int) -> list[int]:
    """Live pids in process group ``pgid`` (Linux: /proc; elsewhere just the leader)."""
    if not Path("/proc/self/stat").exists():
        return [pgid] if alive(pgid) else []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None and f[2] == str(pgid) and f[0] not in ("Z", "X"):
                out.append(int(d))
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (Postgres backends make themselves group leaders, so
    a process group does not hold them all)."""
    if not Path("/proc/self/stat").exists():
        return [pid] if alive(pid) else []
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None and f[0] not in ("Z", "X"):
                children.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p == pid and not alive(pid):
            pass
        else:
            out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill_tree(pid: int, timeout: float = 10.0) -> bool:
    """SIGKILL ``pid``, its process group and every descendant; wait until all are gone."""
    victims = tree(pid)
    signal_group(pid, signal.SIGKILL)
    for v in victims:
        try:
            os.kill(v, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return wait_until(lambda: not any(alive(v) for v in victims) and not group_members(pid),
                      timeout)


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_group_gone(pgid: int, timeout: float) -> bool:
    return wait_until(lambda: not group_members(pgid), timeout)


# --- launching -------------------------------------------------------------------------------

def service_user() -> str | None:
    """The unprivileged account servers run under when the kit runs as root (Postgres refuses
    root). ``SPLITBRAIN_SERVICE_USER`` wins; default ``nobody``. None when not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SPLITBRAIN_SERVICE_USER", "nobody")
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
    its group is gone, SIGKILL on timeout. Returns False if it was not ours / not running."""
    if not is_same_process(pid, started):
        return False
    if group:
        signal_group(pid, sig)
    else:
        os.kill(pid, sig)
    victims = tree(pid)
    if wait_until(lambda: not any(alive(v) for v in victims)
                  and (not group or not group_members(pid)), timeout):
        return True
    kill_tree(pid, 5.0)
    return True
