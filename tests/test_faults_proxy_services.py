"""The fault proxy in front of Postgres and Kafka: the protocols pass, the faults bite."""
from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest

from splitbrain.faults.proxy import FaultProxy

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_proxy(services):
    u = urlsplit(services.postgres_url)
    with FaultProxy(name=f"pg-{uuid.uuid4().hex[:6]}") as fp:
        fp.start(upstream=(u.hostname, u.port))
        yield fp, fp.url_for(services.postgres_url)


def test_postgres_queries_pass_and_reset_kills_an_in_flight_query(pg_proxy):
    fp, url = pg_proxy
    with psycopg.connect(url, autocommit=True) as c:
        assert c.execute("SELECT 41 + 1").fetchone()[0] == 42
        outcome = {}

        def slow_query():
            try:
                outcome["value"] = c.execute("SELECT pg_sleep(0.5), 1").fetchone()
            except psycopg.OperationalError as e:
                outcome["error"] = e
        t = threading.Thread(target=slow_query)
        t.start()
        time.sleep(0.1)          # the query is on the wire; its reply will trigger the reset
        with fp.reset_peer():
            t.join(10)
    assert "error" in outcome, outcome
    with psycopg.connect(url, autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_postgres_latency_and_refused_connections(pg_proxy):
    fp, url = pg_proxy
    with psycopg.connect(url, autocommit=True) as c:
        with fp.latency(100):
            start = time.monotonic()
            c.execute("SELECT 1").fetchone()
            assert time.monotonic() - start >= 0.1
    with fp.refuse():
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)


def test_kafka_through_the_proxy_and_a_partition_stops_delivery():
    from confluent_kafka import Consumer, Producer
    from splitbrain.services import spawn_kafka
    from splitbrain.services.procs import free_port
    port = free_port()
    with FaultProxy(name=f"kafka-{port}") as fp:
        listen = fp.start(upstream=("127.0.0.1", port))
        with spawn_kafka(advertise_port=listen, port=port):
            bootstrap = f"127.0.0.1:{listen}"
            topic = f"t-{uuid.uuid4().hex[:8]}"
            prod = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 1500})
            prod.produce(topic, key=b"k", value=b"one")
            assert prod.flush(30) == 0
            with fp.blackhole():
                failed = []
                prod.produce(topic, key=b"k", value=b"lost",
                             on_delivery=lambda err, msg: failed.append(err))
                prod.flush(10)
                assert failed and failed[0] is not None     # timed out behind the partition
            cons = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                             "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
            try:
                cons.subscribe([topic])
                got = None
                deadline = time.monotonic() + 30
                while got is None and time.monotonic() < deadline:
                    msg = cons.poll(0.5)
                    if msg is not None and not msg.error():
                        got = msg.value()
                assert got == b"one"
            finally:
                cons.close()
