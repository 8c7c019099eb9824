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

Only use these on processes the harness started: never on a pid you did not create.
"""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from typing import Callable, Iterator

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


def state(pid: int) -> str | None:
    """The kernel's one-letter state (R, S, D, T, t, Z, ...) or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return data[data.rindex(")") + 2]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    return state(pid) not in (None, "Z", "X")


def descendants(pid: int) -> list[int]:
    """Pids of all descendants of ``pid`` (children, grandchildren, ...) right now."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                data = fh.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not cond():
        if time.monotonic() > deadline:
            raise ProcessFaultError(f"{what} within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _signal(pids: list[int], sig: int) -> list[int]:
    hit = []
    for p in pids:
        try:
            os.kill(p, sig)
            hit.append(p)
        except ProcessLookupError:
            pass
    return hit


def pause(pid: int, tree: bool = False, timeout: float = 5.0) -> list[int]:
    """SIGSTOP ``pid`` (and its descendants with ``tree``); returns once all are stopped."""
    _check_pid(pid)
    if not alive(pid):
        raise ProcessFaultError(f"cannot pause pid {pid}: no such running process")
    pids = [pid] + (descendants(pid) if tree else [])
    hit = _signal(pids, signal.SIGSTOP)
    _wait(lambda: all(state(p) in ("T", "t", None, "Z") for p in hit), timeout,
          f"pid {pid} did not stop")
    return hit


def resume(pid: int, tree: bool = False, timeout: float = 5.0) -> list[int]:
    """SIGCONT ``pid`` (and its descendants with ``tree``); returns once none is stopped."""
    _check_pid(pid)
    pids = [pid] + (descendants(pid) if tree else [])
    hit = _signal(pids, signal.SIGCONT)
    _wait(lambda: all(state(p) not in ("T", "t") for p in hit), timeout,
          f"pid {pid} did not resume")
    return hit


def kill(pid: int, tree: bool = False, timeout: float = 10.0, sig: int = signal.SIGKILL) -> None:
    """SIGKILL ``pid`` (and its descendants with ``tree``); returns once all are gone.

    A child of the caller is reaped; for other processes "gone" includes being a zombie whose
    parent has not reaped it yet (it runs no code any more).
    """
    _check_pid(pid)
    pids = [pid] + (descendants(pid) if tree else [])
    if pid in pids[1:]:
        pids = pids[:1]
    hit = _signal(pids, sig)

    def gone() -> bool:
        for p in hit:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
        return not any(alive(p) for p in hit)
    _wait(gone, timeout, f"pid {pid} did not exit after signal {sig}")


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
    pids = pause(pid, tree=tree)
    try:
        yield pids
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
