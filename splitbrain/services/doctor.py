"""`splitbrain doctor`: what this machine lacks for the kit, and the one command that fixes it."""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from . import binaries, external, state
from .errors import ServiceError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    optional: bool = False


def _try(name: str, fn, fix: str, optional: bool = False) -> Check:
    try:
        return Check(name, True, str(fn() or ""))
    except (ServiceError, OSError, KeyError) as e:
        return Check(name, False, str(e).split(". ")[0], fix, optional)


def run_checks() -> list[Check]:
    venv_bin = Path(sys.executable).parent
    checks = [
        Check("python >= 3.11", sys.version_info >= (3, 11), sys.version.split()[0],
              "install Python 3.11 or newer, then recreate the venv"),
        _try("postgres binaries", lambda: binaries.postgres_bin_dir(), binaries.PG_FIX.rstrip(".")),
        _try("redis-server", binaries.redis_server, binaries.REDIS_FIX.split(", or set")[0]),
        _try("tansu (Kafka)", binaries.tansu, binaries.TANSU_FIX.split(", or set")[0]),
    ]
    if os.geteuid() == 0:
        from .procs import service_user
        checks.append(_try("unprivileged user for Postgres", service_user,
                           "`useradd --system nobody`, or set SPLITBRAIN_SERVICE_USER to an "
                           "existing unprivileged account"))
    shm = Path("/dev/shm")
    checks.append(Check("tmpfs for server data", shm.is_dir() and os.access(shm, os.W_OK),
                        "/dev/shm" if shm.is_dir() else "none: data goes to ~/.cache (slower)",
                        "nothing to do: servers use the disk instead", optional=True))
    for tool, pkg in (("jupyter", "jupyterlab"), ("mkdocs", "mkdocs-material")):
        found = (venv_bin / tool).is_file() or shutil.which(tool) is not None
        checks.append(Check(tool, found, "found" if found else "not found",
                            f"`{venv_bin / 'pip'} install {pkg}`"))
    for name, var in external.ENV.items():
        u = external.configured_url(name)
        if u:
            problem = external.check(name, u)
            checks.append(Check(f"external {name}", problem is None, external.redact(u)
                                if problem is None else problem,
                                f"start that server, or unset {var} to use the embedded one"))
    try:
        from .docker_backend import engine_check
        engine_check()
        checks.append(Check("docker engine", True, "answers", optional=True))
    except ServiceError:
        checks.append(Check("docker engine", False, "not running (only needed for --backend "
                            "docker)", "start Docker, or keep the embedded backend", optional=True))
    recs = state.read()
    from .embedded import is_ours
    stale = [n for n, r in recs.items() if r.get("backend") == "embedded" and not is_ours(r)]
    checks.append(Check("state file", not stale,
                        f"stale entries: {', '.join(stale)}" if stale else str(state.state_path()),
                        "`splitbrain up` cleans it and starts fresh services"))
    return checks
