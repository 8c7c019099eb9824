"""What a sandboxed worker must not read, hidden without changing what the instructor keeps.

A worker runs the learner's code as its own unprivileged user (when the grader runs as root). The
checkout is usually readable by everyone, and it holds what a submission could read to move its
own grade: the hidden tests (``autograder/``), the solutions (``solutions/``), the repository's
history (``.git``) and the kit's state (``.splitbrain/``: artifacts of earlier gradings).

Two ways, chosen once per process:

* **a mount namespace** (Linux, root with CAP_SYS_ADMIN: a VM, a CI runner, a privileged
  container). Each worker starts in a namespace of its own where an empty, unreadable tmpfs covers
  those folders; then it drops to its user id and runs Python. Nothing outside the worker changes.
* **modes, held and given back** (root without CAP_SYS_ADMIN, e.g. a default Docker container):
  while at least one grading runs, the folders are closed to other users (mode 0700); the last
  grading to finish restores each folder's own mode. The modes in force before are kept in a
  journal beside a lock file in the temp folder, so a grading that was killed is cleaned up by the
  next one, by ``splitbrain`` itself at its next start, or by ``splitbrain doctor``.

Without root the worker runs as the grader's own user and can read what that user can; the
instructors' page says to grade as root or in a container.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["hidden_paths", "namespaces_work", "wrap", "held_closed", "restore_stale"]

_PROBE: bool | None = None


def hidden_paths(root: Path, extra: tuple[Path, ...] = ()) -> list[Path]:
    """The folders of checkout ``root`` that a worker must not read (those that exist)."""
    from splitbrain import paths
    state = paths.state_dir() if paths.state_dir().resolve().is_relative_to(root.resolve()) \
        else None
    cands = [root / "autograder", root / "solutions", root / ".git", *(x for x in [state] if x),
             *extra]
    out: list[Path] = []
    for p in sorted((c.resolve() for c in cands), key=lambda c: len(c.parts)):
        # a folder inside one already covered is covered too (and its mount point is gone)
        if p.is_dir() and not any(p == q or p.is_relative_to(q) for q in out):
            out.append(p)
    return out


def namespaces_work() -> bool:
    """Whether this process can give a worker a mount namespace of its own (probed once)."""
    global _PROBE
    if _PROBE is None:
        _PROBE = False
        if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv"):
            try:
                _PROBE = subprocess.run(
                    ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                     "mount -t tmpfs -o size=4k splitbrain-probe /mnt 2>/dev/null || "
                     "mount -t tmpfs -o size=4k splitbrain-probe \"$0\"", tempfile.gettempdir()],
                    capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                _PROBE = False
    return _PROBE


_SCRIPT = ('set -e; uid="$1"; gid="$2"; shift 2; '
           'while [ "$1" != "--" ]; do '
           'mount -t tmpfs -o size=4k,mode=000,nosuid,nodev,noexec splitbrain-hidden "$1"; '
           'shift; done; shift; '
           'exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all -- "$@"')


def wrap(argv: list[str], uid: int, gid: int, hide: list[Path]) -> list[str]:
    """``argv`` run in a mount namespace where ``hide`` is covered, as ``uid``/``gid``."""
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _SCRIPT,
            "splitbrain-worker", str(uid), str(gid), *map(str, hide), "--", *argv]


# -- the fallback: modes held closed while gradings run ---------------------------------------------
def _journal(root: Path) -> Path:
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"splitbrain-hidden-{tag}.json"


def _alive(holder: str | int) -> bool:
    pid = int(str(holder).split(":")[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _locked(journal: Path) -> Iterator[dict]:
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal.with_suffix(".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            state = json.loads(journal.read_text()) if journal.is_file() else {}
        except ValueError:
            state = {}
        state.setdefault("modes", {})
        state.setdefault("holders", [])
        yield state
        if state["holders"] or state["modes"]:
            tmp = journal.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.chmod(tmp, 0o600)
            os.replace(tmp, journal)
        else:
            journal.unlink(missing_ok=True)


def _give_back(state: dict) -> None:
    for path, mode in state["modes"].items():
        try:
            os.chmod(path, int(mode))
        except OSError:
            pass
    state["modes"] = {}


def restore_stale(root: Path) -> bool:
    """Give back the modes a killed grading left closed (True if it did)."""
    journal = _journal(root)
    if not journal.is_file():
        return False
    with _locked(journal) as state:
        state["holders"] = [p for p in state["holders"] if _alive(p)]
        if state["holders"] or not state["modes"]:
            return False
        _give_back(state)
        return True


@contextmanager
def held_closed(root: Path, hide: list[Path]) -> Iterator[None]:
    """Close ``hide`` to other users while the block runs (and other gradings of the same
    checkout hold it); the last one out restores the modes as they were."""
    import uuid
    journal = _journal(root)
    me = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with _locked(journal) as state:
        state["holders"] = [p for p in state["holders"] if _alive(p)] + [me]
        for p in hide:
            key = str(p)
            if key not in state["modes"]:
                try:
                    state["modes"][key] = p.stat().st_mode & 0o7777
                    os.chmod(p, 0o700)
                except OSError:
                    state["modes"].pop(key, None)
    try:
        yield
    finally:
        with _locked(journal) as state:
            state["holders"] = [p for p in state["holders"] if p != me and _alive(p)]
            if not state["holders"]:
                _give_back(state)
