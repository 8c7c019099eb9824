"""The external backend: servers someone else runs (a course server, CI's services, a Postgres
already on this machine). URLs come from the environment, else from ``splitbrain.toml``:

    [services]
    postgres_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url = "redis://127.0.0.1:6379/0"
    kafka_bootstrap = "127.0.0.1:9092"
    backend = "external"        # optional: the default backend when none is asked for
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from ..paths import project_root, state_dir
from ..settings import Settings, settings
from .errors import NotConfigured, Unreachable

# a service's key in splitbrain.toml's [services] is also its field in the settings
CONFIG_KEY = {"postgres": "postgres_url", "redis": "redis_url", "kafka": "kafka_bootstrap"}
ENV = {name: Settings.var(key).env for name, key in CONFIG_KEY.items()}


def config_files() -> list[Path]:
    if settings.config:
        return [settings.config]
    return [project_root() / "splitbrain.toml", state_dir() / "splitbrain.toml"]


def config() -> dict:
    """The [services] table of the first config file that exists ({} when none)."""
    for p in config_files():
        if p.is_file():
            try:
                data = tomllib.loads(p.read_text())
            except tomllib.TOMLDecodeError as e:
                from .errors import BadInput
                raise BadInput(f"{p} is not valid TOML ({e}); fix the file or delete it.") from None
            return dict(data.get("services", {}))
    return {}


def configured_url(name: str) -> str | None:
    return getattr(settings, CONFIG_KEY[name]) or config().get(CONFIG_KEY[name]) or None


def url(name: str) -> str:
    u = configured_url(name)
    if not u:
        raise NotConfigured(name, ENV[name])
    return u


def check(name: str, u: str, timeout: float = 3.0) -> str | None:
    """None if the server answers, else what went wrong (one line)."""
    try:
        if name == "postgres":
            import psycopg
            with psycopg.connect(u, connect_timeout=max(1, int(timeout)), autocommit=True) as c:
                c.execute("select 1")
        elif name == "redis":
            import redis
            c = redis.Redis.from_url(u, socket_timeout=timeout, socket_connect_timeout=timeout)
            try:
                c.ping()
            finally:
                c.close()
        else:
            import socket
            host, _, port = u.split(",")[0].rpartition(":")
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                pass
    except Exception as e:  # the message is shown to the user as is
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return None


def record(name: str) -> dict:
    """Check the configured server answers; its state record."""
    u = url(name)
    # A server that refuses is down: say so at once. One that does not answer within the timeout
    # may only be busy (a grading host under load): ask twice more before calling it unreachable.
    for _ in range(3):
        problem = check(name, u)
        if not problem or "timeout" not in problem.lower():
            break
    if problem:
        raise Unreachable(name, redact(u), problem)
    return {"backend": "external", "url": u}


def redact(u: str) -> str:
    """The URL with any password replaced by ***, for messages and status output."""
    from urllib.parse import urlsplit, urlunsplit
    try:
        parts = urlsplit(u)
    except ValueError:
        return u
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return u
