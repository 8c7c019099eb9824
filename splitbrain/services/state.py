"""The state file: which services `splitbrain up` (or ``ensure_up``) started, on which backend,
with the pids, ports and data dirs needed to find and stop exactly those later.

Written atomically (temp file + rename) and only under the state lock; readable by the owner only
(it holds the superuser passwords)."""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..paths import state_dir
from .runtime import file_lock

VERSION = 1


def state_path() -> Path:
    return state_dir() / "services.json"


def lock_path() -> Path:
    return state_dir() / "services.lock"


def read() -> dict:
    """The recorded services ({} when none). A damaged file is moved aside, never trusted."""
    p = state_path()
    try:
        data = json.loads(p.read_text())
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError("unknown format")
        return dict(data.get("services", {}))
    except FileNotFoundError:
        return {}
    except (ValueError, OSError):
        try:
            p.rename(p.with_suffix(f".damaged-{int(time.time())}"))
        except OSError:
            pass
        return {}


def write(services: dict) -> None:
    p = state_path()
    tmp = p.with_suffix(f".tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"version": VERSION, "services": services}, f, indent=2, sort_keys=True)
    os.replace(tmp, p)


@contextmanager
def locked(timeout: float = 180.0) -> Iterator[None]:
    """Hold the state lock: one process at a time starts or stops shared services."""
    with file_lock(lock_path(), timeout=timeout):
        yield
