"""Where servers keep their data and logs: tmpfs when the machine has one (fast, and nothing to
fsync), else the state directory."""
from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..paths import state_dir
from ..settings import settings


def _fast_root() -> Path:
    if settings.runtime_dir:
        return settings.runtime_dir
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"splitbrain-{os.geteuid()}"
    if os.geteuid() == 0:
        # servers run as an unprivileged user, who cannot enter /root
        import tempfile
        return Path(tempfile.gettempdir()) / "splitbrain-0"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "splitbrain"


def cache_dir() -> Path:
    """Shared by every checkout of this user: the initdb'd Postgres template lives here."""
    p = _fast_root() / "cache"
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, 0o711)  # servers running as another user must reach their data dirs
    return p


def run_dir(create: bool = True) -> Path:
    """Data of the shared servers of this state directory (one per checkout); ``create=False``
    only names it (``splitbrain down`` says what it keeps there)."""
    sd = state_dir().resolve()
    tag = hashlib.sha1(str(sd).encode()).hexdigest()[:10]
    p = _fast_root() / f"run-{tag}"
    if create:
        p.mkdir(parents=True, exist_ok=True, mode=0o711)
    return p


def private_dir() -> Path:
    """Parent of private instances' data dirs (each removed when its handle closes)."""
    p = _fast_root() / "private"
    p.mkdir(parents=True, exist_ok=True, mode=0o711)
    return p


def logs_dir() -> Path:
    p = state_dir() / "logs"
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextmanager
def file_lock(path: Path, timeout: float = 120.0, what: str = "the service state") -> Iterator[None]:
    """An exclusive lock between processes (flock), released when the block ends or the holder
    dies. Waits up to ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"waited {timeout:.0f} s for the lock on {what} ({path}); another "
                        f"`splitbrain` process holds it. Wait for it to finish, or stop it.")
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)
