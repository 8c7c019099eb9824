"""grading.env: thin wrappers over splitbrain.services; a service failure is an InfraError
(never charged to the submission), and a worker only learns the namespace's restricted URLs."""
from __future__ import annotations

import pytest

from splitbrain.grading.env import InfraError, ensure_up, open_namespace, resources_of
from splitbrain.services import Endpoints
from splitbrain.services.namespace import Namespace


def test_a_service_failure_is_an_infra_error():
    with pytest.raises(InfraError, match="services mysql are not available: unknown service"):
        ensure_up(["mysql"])
    refused = Endpoints(postgres_url="postgresql://sb:pw@127.0.0.1:1/postgres",
                        backend="external")
    with pytest.raises(InfraError, match="could not open a namespace"):
        open_namespace(refused)


def test_resources_are_the_restricted_urls_only():
    ep = Endpoints(postgres_url="postgresql://admin:secret@h/postgres", redis_url="redis://h/0",
                   kafka_bootstrap="h:9092")
    ns = Namespace(name="sb_x", prefix="sb_x:", pg_url="postgresql://sb_x:pw@h/sb_x",
                   pg_admin_url="postgresql://admin:secret@h/sb_x",
                   redis_url="redis://sb_x:pw@h/0", redis_admin_url="redis://h/0")
    assert resources_of(ns, ep) == {"pg_url": "postgresql://sb_x:pw@h/sb_x",
                                    "redis_url": "redis://sb_x:pw@h/0",
                                    "kafka_bootstrap": "h:9092", "prefix": "sb_x:"}
