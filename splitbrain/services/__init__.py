"""Postgres, Redis and Kafka for labs, grading and the kit's tests, on three backends
(embedded, external, docker), with per-test namespaces and private instances for faults that
kill or restart a server. See CONTRIBUTING.md, "Services"."""
from __future__ import annotations

from .errors import (BadInput, BinaryMissing, DockerUnavailable, NotConfigured, PortInUse,
                     ServerDied, ServiceError, StaleState, Unreachable)
from .manager import BACKENDS, SERVICES, Endpoints, current, down, ensure_up, status, using

__all__ = [
    "Endpoints", "ensure_up", "current", "down", "status", "using", "SERVICES", "BACKENDS",
    "open_namespace", "Namespace",
    "spawn_postgres", "spawn_redis", "spawn_kafka",
    "ServiceError", "BinaryMissing", "PortInUse", "ServerDied", "StaleState",
    "DockerUnavailable", "NotConfigured", "Unreachable", "BadInput",
]


def __getattr__(name: str):  # heavier parts load on first use
    if name in ("open_namespace", "Namespace"):
        from . import namespace
        return getattr(namespace, name)
    if name in ("spawn_postgres", "spawn_redis", "spawn_kafka"):
        from . import private
        return getattr(private, name)
    raise AttributeError(name)
