"""The external backend against servers someone else runs (CI's Postgres and Redis)."""
from __future__ import annotations

import psycopg
import pytest
import redis

from splitbrain.services import ensure_up, open_namespace, status
from splitbrain.services import procs
from splitbrain.testing import require

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def machine_services(isolated_home, monkeypatch):
    require(procs.port_open(5432), "a Postgres on 127.0.0.1:5432 (CI runs one)")
    require(procs.port_open(6379), "a Redis on 127.0.0.1:6379 (CI runs one)")
    monkeypatch.setenv("SPLITBRAIN_POSTGRES_URL", PG)
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", REDIS)
    return isolated_home


def test_configured_urls_select_the_external_backend(machine_services):
    ep = ensure_up(["postgres", "redis"])
    assert ep.backend == "external" and ep.started == ()      # nothing of ours to start
    assert ep.postgres_url == PG and ep.redis_url == REDIS
    st = status()["services"]
    assert st["postgres"] == {"backend": "external", "url": PG, "healthy": True}


def test_config_file_works_like_the_environment(machine_services, monkeypatch):
    monkeypatch.delenv("SPLITBRAIN_POSTGRES_URL")
    (machine_services / "splitbrain.toml").write_text(f'[services]\npostgres_url = "{PG}"\n')
    assert ensure_up(["postgres"]).backends == {"postgres": "external"}


def test_namespaces_on_external_servers(machine_services):
    ep = ensure_up(["postgres", "redis"])
    ns = open_namespace(ep)
    try:
        with psycopg.connect(ns.pg_url, autocommit=True) as c:
            c.execute("create table t(x int)")
            assert c.execute("select current_user").fetchone() == (ns.name,)
        r = redis.Redis.from_url(ns.redis_url)
        assert r.incr(ns.key("n")) == 1
        if ns.redis_acl:
            with pytest.raises(redis.exceptions.NoPermissionError):
                r.get("outside")
        r.close()
    finally:
        ns.drop()
    with psycopg.connect(PG) as c:
        assert c.execute("select count(*) from pg_database where datname=%s",
                         (ns.name,)).fetchone() == (0,)


def test_embedded_and_external_mix(machine_services, monkeypatch):
    monkeypatch.delenv("SPLITBRAIN_REDIS_URL")
    ep = ensure_up(["postgres", "kafka"])
    assert ep.backends == {"postgres": "external", "kafka": "embedded"}
    assert ep.backend == "mixed"
