"""Process faults: pause (a GC pause), resume, kill -9, restart — on processes the harness owns.

A process that stops for two seconds does not know it stopped. A lock holder paused by a garbage
collector, a VM migration or a swap storm wakes up, believes its lease is still good and writes.
``pause(pid)`` does that to a real process with SIGSTOP; ``resume(pid)`` sends SIGCONT. ``kill``
sends SIGKILL: no cleanup, no goodbye, half-written state stays half-written. ``restart`` kills and
then calls a callback that starts the process again (the harness knows how; this module does not).

Each call waits, with a deadline, until the kernel reports the new state (``T`` stopped, running
again, or gone) so the next step of a test starts from a known state. ``tree=True`` applies the
signal to the process and all its descendants (a Postgres postmaster and its backends); after
SIGKILL of a postmaster the children linger for a moment, and ``kill`` waits for them too.
Processes are found and watched through psutil, so this works the same on Linux and macOS.

Only use these on processes the harness started: never on a pid you did not create.
"""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    import psutil

__all__ = ["pause", "resume", "kill", "restart", "paused", "state", "alive", "descendants",
           "ProcessFaultError"]


class ProcessFaultError(RuntimeError):
    """A process fault could not be applied (no such process, or it did not reach the state)."""


def _check_pid(pid: int) -> int:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise ProcessFaultError(f"process faults need the pid (an int > 1) of a process the harness "
                                f"started, got {pid!r}")
    if pid == os.getpid():
        raise ProcessFaultError("refusing to pause or kill the grader's own process "
                                f"(pid {pid}); target a worker or a service")
    return pid


# psutil's status names -> the kernel's one-letter states (as ps shows them). psutil itself is
# imported inside the functions: a sandboxed worker imports the fault registry, which imports
# this module, and a worker must start cheaply.
_LETTER = {"running": "R", "sleeping": "S", "disk-sleep": "D", "stopped": "T",
           "tracing-stop": "t", "zombie": "Z", "dead": "X", "wake-kill": "K", "waking": "W",
           "parked": "P", "idle": "I", "locked": "L", "waiting": "W"}
_STOPPED = ("T", "t")


def _handle(pid: int) -> psutil.Process | None:
    import psutil
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, ValueError):   # ValueError: a negative pid
        return None


def _state(p: psutil.Process) -> str | None:
    import psutil
    try:
        if not p.is_running():      # exited, or the pid now names another process
            return None
        status = p.status()
    except psutil.ZombieProcess:
        return "Z"
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return "?"
    return _LETTER.get(status, "?")


def state(pid: int) -> str | None:
    """The kernel's one-letter state (R, S, D, T, t, Z, ...) or None when the process is gone."""
    p = _handle(pid)
    return None if p is None else _state(p)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    return state(pid) not in (None, "Z", "X")


def _tree(pid: int, tree: bool) -> list[psutil.Process]:
    import psutil
    p = _handle(pid)
    if p is None:
        return []
    if not tree:
        return [p]
    try:
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [p]


def descendants(pid: int) -> list[int]:
    """Pids of all descendants of ``pid`` (children, grandchildren, ...) right now."""
    return [p.pid for p in _tree(pid, True)[1:]]


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not cond():
        if time.monotonic() > deadline:
            raise ProcessFaultError(f"{what} within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _signal(procs: list[psutil.Process], sig: int) -> list[psutil.Process]:
    import psutil
    hit = []
    for p in procs:
        try:
            p.send_signal(sig)
            hit.append(p)
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            raise ProcessFaultError(
                f"not allowed to send signal {sig} to pid {p.pid} (it runs as another user); "
                f"process faults are for processes the harness started") from None
    return hit


def _gone(p: psutil.Process) -> bool:
    """Exited (a zombie counts: it runs no code). A zombie child of this process is reaped."""
    import psutil
    s = _state(p)
    if s == "Z":
        try:
            p.wait(timeout=0)       # a child of ours is reaped; another's is its parent's job
        except psutil.Error:
            pass
    return s in (None, "Z", "X")


def _pause(pid: int, tree: bool, timeout: float) -> list[psutil.Process]:
    _check_pid(pid)
    if not alive(pid):
        raise ProcessFaultError(f"cannot pause pid {pid}: no such running process")
    hit = _signal(_tree(pid, tree), signal.SIGSTOP)
    _wait(lambda: all(_state(p) in (*_STOPPED, None, "Z") for p in hit), timeout,
          f"pid {pid} did not stop")
    return hit


def pause(pid: int, tree: bool = False, timeout: float = 5.0) -> list[int]:
    """SIGSTOP ``pid`` (and its descendants with ``tree``); returns once all are stopped."""
    return [p.pid for p in _pause(pid, tree, timeout)]


def resume(pid: int, tree: bool = False, timeout: float = 5.0) -> list[int]:
    """SIGCONT ``pid`` (and its descendants with ``tree``); returns once none is stopped."""
    _check_pid(pid)
    hit = _signal(_tree(pid, tree), signal.SIGCONT)
    _wait(lambda: all(_state(p) not in _STOPPED for p in hit), timeout,
          f"pid {pid} did not resume")
    return [p.pid for p in hit]


def kill(pid: int, tree: bool = False, timeout: float = 10.0, sig: int = signal.SIGKILL) -> None:
    """SIGKILL ``pid`` (and its descendants with ``tree``); returns once all are gone.

    A child of the caller is reaped; for other processes "gone" includes being a zombie whose
    parent has not reaped it yet (it runs no code any more).
    """
    _check_pid(pid)
    hit = _signal(_tree(pid, tree), sig)
    # every one is checked each round (not all() with a generator): each zombie child is reaped
    _wait(lambda: all([_gone(p) for p in hit]), timeout,
          f"pid {pid} did not exit after signal {sig}")


def restart(pid: int | None, start: Callable[[], int | None], tree: bool = True,
            timeout: float = 10.0) -> int | None:
    """Kill ``pid`` (if given and alive) and its descendants, wait for them, then call ``start``.

    ``start`` is how the harness starts the process again; what it returns (the new pid) is
    returned. Killing the whole tree first matters: a Postgres postmaster's children keep the data
    directory and the port until they exit.
    """
    if pid is not None and alive(pid):
        kill(pid, tree=tree, timeout=timeout)
    return start()


@contextmanager
def paused(pid: int, tree: bool = False) -> Iterator[list[int]]:
    """``with paused(pid):`` — the process is stopped inside the block and resumed after."""
    hit = _pause(pid, tree, 5.0)
    try:
        yield [p.pid for p in hit]
    finally:
        _signal(hit, signal.SIGCONT)
