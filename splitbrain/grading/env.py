"""The services and namespaces a grading uses, through ``splitbrain.services``: thin wrappers
that turn a service failure into :class:`InfraError` (never charged to the submission)."""
from __future__ import annotations

from splitbrain import services


class InfraError(RuntimeError):
    """A service the grading needs is missing or died: never charged to the submission."""


def ensure_up(names: list[str] | tuple[str, ...]) -> services.Endpoints:
    try:
        return services.ensure_up(list(names))
    except Exception as e:  # services could not be started: the infrastructure's fault
        raise InfraError(f"services {', '.join(names)} are not available: {e}") from e


def open_namespace(ep: services.Endpoints) -> services.Namespace:
    try:
        return services.open_namespace(ep)
    except Exception as e:
        raise InfraError(f"could not open a namespace on the services: {e}") from e


def resources_of(ns: services.Namespace, ep: services.Endpoints) -> dict:
    """What a worker may know: the namespace's restricted URLs, never the admin ones."""
    res = {"redis_url": ns.redis_url, "pg_url": ns.pg_url,
           "kafka_bootstrap": ns.kafka_bootstrap or ep.kafka_bootstrap, "prefix": ns.prefix}
    return {k: v for k, v in res.items() if v is not None}


def services_down(ep: services.Endpoints) -> list[str]:
    """Which of the shared services no longer answer (checked after a test fails, so that a
    server that died mid-test is reported as infra_error, not charged to the submission)."""
    import socket
    down = []
    url = ep.redis_url
    if url:
        try:
            import redis
            redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        except Exception:  # noqa: BLE001
            down.append("redis")
    url = ep.postgres_url
    if url:
        try:
            import psycopg
            psycopg.connect(url, connect_timeout=3).close()
        except Exception:  # noqa: BLE001
            down.append("postgres")
    boot = ep.kafka_bootstrap
    if boot:
        host, _, port = boot.split(",")[0].rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
        except (OSError, ValueError):
            down.append("kafka")
    return down
