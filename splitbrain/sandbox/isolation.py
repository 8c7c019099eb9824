"""Who a worker runs as and what it may use: limits, a private user id, a private directory.

As root, every worker runs as its own unprivileged user id (no /etc/passwd entry needed) taken from
a pool guarded by file locks, so that RLIMIT_NPROC caps that worker alone (the embedded Postgres
runs as ``nobody``; a fork bomb under a shared user would starve it) and so that the kit can kill
every process the worker left behind (``kill(-1)`` as that user). Without root the worker runs as
the caller, with the same rlimits except the process count.
"""
from __future__ import annotations

import fcntl
import os
import signal
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

UID_BASE = 420000
UID_SLOTS = 4096
GID = 65534  # nogroup
# One registry of taken uids per machine, whatever TMPDIR each grading process was given: two
# graders with different temp folders must still never hand out the same uid.
_LOCK_DIR = Path("/tmp") / "splitbrain-sandbox-uids"


@dataclass(frozen=True)
class Limits:
    """Per-worker limits.

    memory_mb: address-space limit (RLIMIT_AS) in MiB; a Python worker with redis, psycopg and
        a librdkafka client uses ~250 MiB of address space, so keep this >= 384.
    call_timeout_s: a call that has not answered this long after the worker could start it (calls
        run one at a time, so queued calls wait their turn first) is a CallTimeout and the worker
        is killed.
    start_timeout_s: time allowed to start and import the component.
    open_files: RLIMIT_NOFILE.
    processes: RLIMIT_NPROC (threads count too; librdkafka starts ~10 per client), only applied
        when the worker runs as its own user.
    """

    memory_mb: int = 512
    call_timeout_s: float = 10.0
    start_timeout_s: float = 30.0
    open_files: int = 256
    processes: int = 128

    def to_wire(self, own_user: bool) -> dict:
        return {**asdict(self), "own_user": own_user}


def is_root() -> bool:
    return os.geteuid() == 0


class UserSlot:
    """A private uid held for the life of a worker (including restarts)."""

    def __init__(self, drop: bool = True) -> None:
        self.uid: int | None = None
        self._fh = None
        if not drop or not is_root():
            return
        _LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        start = (os.getpid() * 7919) % UID_SLOTS
        for i in range(UID_SLOTS):
            slot = (start + i) % UID_SLOTS
            fh = open(_LOCK_DIR / f"{slot}.lock", "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            self.uid, self._fh = UID_BASE + slot, fh
            self.sweep()  # a grader that died may have left processes under this uid
            return
        raise RuntimeError("no free sandbox user id: too many workers are running at once")

    def sweep(self) -> None:
        """SIGKILL every process running as this uid (forked children included)."""
        if self.uid is None:
            return
        pid = os.fork()
        if pid == 0:  # child: become the uid, kill everything it owns (itself last)
            try:
                os.setgid(GID)
                os.setuid(self.uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    def release(self) -> None:
        if self._fh is not None:
            self.sweep()
            self._fh.close()
            self._fh = None


def _searchable(path: Path) -> bool:
    """Can a user with no groups in common pass through ``path`` and every parent?"""
    path = path.resolve()
    try:
        return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))
    except OSError:
        return False


def worker_tmp_root() -> Path:
    """Where a worker's private folders go: the temp folder, unless other users cannot enter it
    (root's TMPDIR under a 0700 folder, pytest's /tmp/pytest-of-root); then a folder of the
    kit's own in the system's temp folder, that others may pass through but not list."""
    base = Path(tempfile.gettempdir())
    if _searchable(base):
        return base
    own = Path("/tmp") / f"splitbrain-workers-{os.getuid()}"
    try:
        own.mkdir(mode=0o711)
    except FileExistsError:
        pass
    st = os.lstat(own)
    if own.is_symlink() or st.st_uid != os.getuid():  # not ours: someone else made that name
        own = Path(tempfile.mkdtemp(prefix="splitbrain-workers-", dir="/tmp"))
    os.chmod(own, 0o711)
    return own


def private_dir(slot: UserSlot, prefix: str) -> Path:
    if slot.uid is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=worker_tmp_root()))
    if slot.uid is not None:
        os.chown(d, slot.uid, GID)
    return d


def _world_usable(path: Path) -> bool:
    """Can a user with no groups in common run ``path`` (every parent searchable by others)?"""
    path = path.resolve()
    if not path.is_file() or not path.stat().st_mode & 0o001:
        return False
    return _searchable(path.parent)


def interpreter(own_user: bool) -> tuple[str, dict[str, str]] | None:
    """The Python that runs a worker, and the environment it needs.

    The grader's own interpreter when the sandbox user can run it. An interpreter or a venv in a
    folder other users cannot enter (pyenv under /root, a venv in a ``mktemp -d`` folder) cannot
    be used by another user; then the system's Python of the same minor version runs the worker,
    with the grader's site-packages on PYTHONPATH when the worker's user can read them, else with
    a staged copy of what a worker imports (``splitbrain.staging.worker_site``). None when no such
    interpreter exists (the caller then runs the worker as its own user).
    """
    import site
    import sys
    if not own_user or _world_usable(Path(sys.executable)):
        return sys.executable, {}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for cand in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if Path(cand).exists() and _world_usable(Path(cand)):
            from splitbrain import staging
            pkg_parent = Path(__file__).resolve().parents[2]
            dirs = [pkg_parent, *map(Path, site.getsitepackages())]
            if not all(staging.reachable(d) for d in dirs):
                dirs = [staging.worker_site()]
            return cand, {"PYTHONPATH": os.pathsep.join(map(str, dirs))}
    return None
