"""Crash points: lines where the harness may kill the process, as production would.

A relay commits a row, then publishes the message. A deploy, an OOM kill or a power cut can land
between those two lines, and then the row exists and the message never leaves. Components mark such
lines with ``crash_point("after_commit")``. Normally that call does nothing. When the harness has
*armed* the name for this process, the process kills itself there with SIGKILL: no ``finally``
blocks, no ``atexit``, no buffered output flushed, no connection closed politely. That is a crash.

Arming is process-global:

* ``arm("after_commit")`` fires on the next hit; ``arm("after_commit", after=2)`` lets two hits
  pass and fires on the third;
* the environment variable ``SPLITBRAIN_CRASH_POINTS="after_commit,before_publish:2"`` arms points
  when this module is imported (``name:N`` means ``after=N``), so a worker can be armed at spawn;
* ``disarm(name)`` and ``disarm_all()`` undo it; ``hits(name)`` counts how often a point was passed.

If ``SPLITBRAIN_CRASH_REPORT`` names a file, the point's name is appended to it (one unbuffered
write) just before the kill, so the harness can tell "died at the crash point" from any other death.
"""
from __future__ import annotations

import os
import re
import signal
import threading

from splitbrain.settings import Settings, settings

__all__ = ["crash_point", "arm", "disarm", "disarm_all", "armed", "hits", "arm_from_env",
           "ENV_POINTS", "ENV_REPORT"]

ENV_POINTS = Settings.crash_points.env
ENV_REPORT = Settings.crash_report.env
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

_lock = threading.Lock()
_armed: dict[str, int] = {}    # name -> hits still to let pass before firing
_hits: dict[str, int] = {}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"crash point names are identifiers like 'after_commit' (letters, digits, _ . -), "
            f"got {name!r}")
    return name


def crash_point(name: str) -> None:
    """Do nothing, unless the harness armed ``name`` for this process: then die here (SIGKILL)."""
    _check_name(name)
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if name not in _armed:
            return
        if _armed[name] > 0:
            _armed[name] -= 1
            return
    _die(name)


def _die(name: str) -> None:
    report = settings.crash_report
    if report:
        try:
            fd = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            os.write(fd, f"{name} {os.getpid()}\n".encode())
            os.close(fd)
        except OSError:
            pass   # the crash matters more than the report
    os.kill(os.getpid(), signal.SIGKILL)


def arm(name: str, after: int = 0) -> None:
    """Arm ``name``: the hit after ``after`` more passes kills this process."""
    _check_name(name)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError(f"arm({name!r}, after=...) needs a whole number >= 0, got {after!r}")
    with _lock:
        _armed[name] = after


def disarm(name: str) -> None:
    with _lock:
        _armed.pop(name, None)


def disarm_all() -> None:
    with _lock:
        _armed.clear()


def armed() -> dict[str, int]:
    """Armed points and how many hits each still lets pass."""
    with _lock:
        return dict(_armed)


def hits(name: str) -> int:
    """How many times ``crash_point(name)`` was reached in this process (armed or not)."""
    with _lock:
        return _hits.get(name, 0)


def parse_spec(spec: str) -> dict[str, int]:
    """``"a,b:2"`` -> ``{"a": 0, "b": 2}``; raises ValueError naming the bad part."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, count = part.partition(":")
        try:
            after = int(count) if count else 0
        except ValueError:
            raise ValueError(f"{ENV_POINTS}: {part!r} should be NAME or NAME:COUNT, e.g. "
                             f"'after_commit:2'") from None
        if after < 0:
            raise ValueError(f"{ENV_POINTS}: count in {part!r} must be >= 0")
        out[_check_name(name.strip())] = after
    return out


def arm_from_env(environ: dict | None = None) -> dict[str, int]:
    """Arm the points listed in SPLITBRAIN_CRASH_POINTS; returns what was armed."""
    spec = (settings if environ is None else Settings(environ)).crash_points
    points = parse_spec(spec)
    for name, after in points.items():
        arm(name, after)
    return points


arm_from_env()
