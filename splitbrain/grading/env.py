"""The services and namespaces a grading uses, through ``splitbrain.services``.

When the services package offers ``ensure_up`` / ``open_namespace`` they are used as they are.
A minimal stand-in covers a checkout whose services package is older: it reads the service URLs from
``SPLITBRAIN_POSTGRES_URL`` / ``SPLITBRAIN_REDIS_URL`` / ``SPLITBRAIN_KAFKA_BOOTSTRAP`` and
isolates a
test with its own database and key prefix.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class InfraError(RuntimeError):
    """A service the grading needs is missing or died: never charged to the submission."""


@dataclass
class EnvEndpoints:
    postgres_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap: str | None = None
    backend: str = "external"


def ensure_up(names: list[str] | tuple[str, ...]):
    try:
        from splitbrain.services import ensure_up as real
    except ImportError:
        real = None
    try:
        if real is not None:
            return real(list(names))
    except Exception as e:  # services could not be started: the infrastructure's fault
        raise InfraError(f"services {', '.join(names)} are not available: {e}") from e
    ep = EnvEndpoints(os.environ.get("SPLITBRAIN_POSTGRES_URL"),
                      os.environ.get("SPLITBRAIN_REDIS_URL"),
                      os.environ.get("SPLITBRAIN_KAFKA_BOOTSTRAP"))
    missing = [n for n, v in (("postgres", ep.postgres_url), ("redis", ep.redis_url),
                              ("kafka", ep.kafka_bootstrap)) if n in names and not v]
    if missing:
        raise InfraError(f"no URL for {', '.join(missing)}: run `splitbrain up` or set "
                         f"SPLITBRAIN_{missing[0].upper()}_URL")
    return ep


class EnvNamespace:
    """One test's world on shared servers: its own database, key prefix, topic and group names."""

    def __init__(self, ep) -> None:
        self.ep = ep
        self.id = uuid.uuid4().hex[:10]
        self.prefix = f"sb:{self.id}:"
        self.redis_url = ep.redis_url
        self.kafka_bootstrap = getattr(ep, "kafka_bootstrap", None)
        self.pg_admin_url = self.pg_url = None
        self.dbname = f"sb_{self.id}"
        if ep.postgres_url:
            import psycopg
            with psycopg.connect(ep.postgres_url, autocommit=True, connect_timeout=5) as c:
                c.execute(f'CREATE DATABASE "{self.dbname}"')
            parts = urlsplit(ep.postgres_url)
            self.pg_url = self.pg_admin_url = urlunsplit(parts._replace(path="/" + self.dbname))

    def key(self, name: str) -> str:
        return self.prefix + name

    def topic(self, name: str) -> str:
        return f"sb-{self.id}-{name}"

    def group(self, name: str) -> str:
        return f"sb-{self.id}-{name}"

    def drop(self) -> None:
        if self.redis_url:
            import redis
            r = redis.Redis.from_url(self.redis_url)
            keys = list(r.scan_iter(match=self.prefix + "*", count=500))
            if keys:
                r.delete(*keys)
            r.close()
        if self.pg_admin_url:
            import psycopg
            with psycopg.connect(self.ep.postgres_url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def open_namespace(ep):
    try:
        from splitbrain.services import open_namespace as real
    except ImportError:
        real = None
    try:
        return real(ep) if real is not None else EnvNamespace(ep)
    except Exception as e:
        raise InfraError(f"could not open a namespace on the services: {e}") from e


def resources_of(ns, ep) -> dict:
    """What a worker may know: the namespace's restricted URLs, never the admin ones."""
    res = {"redis_url": getattr(ns, "redis_url", None), "pg_url": getattr(ns, "pg_url", None),
           "kafka_bootstrap": getattr(ns, "kafka_bootstrap", None) or
           getattr(ep, "kafka_bootstrap", None), "prefix": getattr(ns, "prefix", "")}
    return {k: v for k, v in res.items() if v is not None}


def services_down(ep) -> list[str]:
    """Which of the shared services no longer answer (checked after a test fails, so that a
    server that died mid-test is reported as infra_error, not charged to the submission)."""
    import socket
    down = []
    url = getattr(ep, "redis_url", None)
    if url:
        try:
            import redis
            redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        except Exception:  # noqa: BLE001
            down.append("redis")
    url = getattr(ep, "postgres_url", None)
    if url:
        try:
            import psycopg
            psycopg.connect(url, connect_timeout=3).close()
        except Exception:  # noqa: BLE001
            down.append("postgres")
    boot = getattr(ep, "kafka_bootstrap", None)
    if boot:
        host, _, port = boot.split(",")[0].rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
        except (OSError, ValueError):
            down.append("kafka")
    return down
