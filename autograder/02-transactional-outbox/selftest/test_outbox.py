"""Lab 02's trusted side (rig.outbox): the commit crash points fire on every way of committing,
and the topic reader returns every record (without its sentinels) even though tansu's watermarks
lie.

The crash points are tried in child processes (they SIGKILL themselves); each registers this rig
by path, as a sandboxed worker does, before it imports ``rig.outbox``."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

import rig.outbox
from rig.outbox import create_topic, read_topic

RIG = str(Path(rig.outbox.__file__).resolve().parent)

COMMITS = {
    "commit()": "conn.execute(INSERT, (tag,)); conn.commit()",
    "with conn.transaction()": "with conn.transaction():\n    conn.execute(INSERT, (tag,))",
    "with conn": "with conn:\n    conn.execute(INSERT, (tag,))",
    "COMMIT statement": "conn.execute(INSERT, (tag,)); conn.execute('COMMIT')",
    "autocommit write": "conn.autocommit = True; conn.execute(INSERT, (tag,))",
}


def run_armed(url: str, point: str, body: str, tag: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent("""
        import sys
        from splitbrain import rig
        from splitbrain.faults import crash
        rig.register(sys.argv[4], with_faults=False)
        from rig.outbox import connect
        url, point, tag = sys.argv[1:4]
        INSERT = "INSERT INTO marks (tag) VALUES (%s)"
        conn = connect(url)
        crash.arm(point)
    """) + body + "\nprint('survived')\n"
    return subprocess.run([sys.executable, "-c", script, url, point, tag, RIG],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def marks(ns):
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marks (tag text PRIMARY KEY)")
        conn.execute(f'GRANT ALL ON marks TO "{ns.name}"')
    return ns


def committed(ns, tag: str) -> bool:
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM marks WHERE tag = %s", (tag,)).fetchone() is not None


@pytest.mark.parametrize("way", list(COMMITS))
def test_after_commit_kills_the_process_once_the_row_is_durable(marks, way):
    tag = f"after-{way}"
    out = run_armed(marks.pg_url, "after_commit", COMMITS[way], tag)
    assert out.returncode == -signal.SIGKILL, (out.returncode, out.stdout, out.stderr[-2000:])
    assert committed(marks, tag), f"{way}: the process died but the row did not commit"


@pytest.mark.parametrize("way", [w for w in COMMITS if w != "autocommit write"])
def test_before_commit_kills_the_process_before_anything_is_durable(marks, way):
    tag = f"before-{way}"
    out = run_armed(marks.pg_url, "before_commit", COMMITS[way], tag)
    assert out.returncode == -signal.SIGKILL, (out.returncode, out.stdout, out.stderr[-2000:])
    assert not committed(marks, tag), f"{way}: the row committed although the process died first"


def test_unarmed_connections_just_work(marks):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from splitbrain import rig
        rig.register(sys.argv[2], with_faults=False)
        from rig.outbox import connect
        conn = connect(sys.argv[1])
        with conn.transaction():
            conn.execute("INSERT INTO marks (tag) VALUES ('plain')")
        try:
            with conn.transaction():
                conn.execute("INSERT INTO marks (tag) VALUES ('rolled-back')")
                raise LookupError("changed my mind")
        except LookupError:
            pass
        conn.execute("INSERT INTO marks (tag) VALUES ('committed')")
        conn.commit()
        print('ok')
    """), marks.pg_url, RIG], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
    assert committed(marks, "plain") and committed(marks, "committed")
    assert not committed(marks, "rolled-back")


def test_read_topic_counts_every_record_and_hides_its_sentinels(services):
    from confluent_kafka import Producer
    import uuid
    topic = f"sb-outbox-reader-{uuid.uuid4().hex[:8]}"
    create_topic(services.kafka_bootstrap, topic, 3)
    p = Producer({"bootstrap.servers": services.kafka_bootstrap, "linger.ms": 20})
    for i in range(50):                       # multi-record batches: the watermark case
        p.produce(topic, key=f"k{i % 7}", value=f'{{"i": {i}}}')
    p.produce(topic, key="bad", value=b"not json")
    assert p.flush(10) == 0
    first = read_topic(services.kafka_bootstrap, topic)
    second = read_topic(services.kafka_bootstrap, topic)   # earlier sentinels stay hidden
    for got in (first, second):
        assert got.complete and got.partitions == 3
        assert sorted(r.value["i"] for r in got.records if r.value) == list(range(50))
        assert [r.raw for r in got.records if r.value is None] == ["not json"]
