"""Outbox relay throughput beside raw produce throughput to the same broker, in the same run.

Target: the relay (the lab's solution, ``Relay.run_once``) drains a full outbox at >= 0.5 of the
rate at which a bare producer with the same settings (acks=all, idempotent, same keys and payloads)
writes the same number of records. Run:
    .venv/bin/python autograder/02-transactional-outbox/bench.py [EVENTS] [BATCH] [ROUNDS]
Postgres comes from SPLITBRAIN_POSTGRES_URL or the kit's services; the broker is a private tansu.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid

import psycopg
from confluent_kafka import Producer

from splitbrain import rig
from splitbrain.lab import find_lab
from splitbrain.services import ensure_up, open_namespace, spawn_kafka

LAB = find_lab("02")
rig.load(LAB)

from rig.outbox import connect, create_topic, read_topic  # noqa: E402  (the rig loaded above)
from rig.world import prepare  # noqa: E402

TARGET = 0.5


def load_solution():
    path = LAB.solution_path
    spec = importlib.util.spec_from_file_location("outbox_solution", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def events(n: int) -> list[tuple[str, str, str]]:
    out = []
    for i in range(n):
        oid = f"o{i:07d}"
        e = {"event_id": str(uuid.uuid4()), "type": "OrderPlaced", "order_id": oid,
             "customer": f"c{i % 97}", "amount": 10 + i % 90}
        out.append((oid, e["event_id"], json.dumps(e)))
    return out


def fill_outbox(admin_url: str, evs: list[tuple[str, str, str]]) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        with conn.cursor().copy("COPY outbox (aggregate_id, event_id, payload) FROM STDIN") as cp:
            for row in evs:
                cp.write_row(row)
        conn.execute("ANALYZE outbox")


def raw_produce(bootstrap: str, topic: str, evs: list[tuple[str, str, str]]) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2})
    p.produce(topic + "-warm", value=b"warm-up")     # connections and metadata outside the timing
    p.flush(30)
    t = time.perf_counter()
    for key, _, payload in evs:
        while True:
            try:
                p.produce(topic, key=key, value=payload)
                break
            except BufferError:
                p.poll(0.05)
    left = p.flush(60)
    dt = time.perf_counter() - t
    if left:
        raise RuntimeError(f"raw producer: {left} records not acknowledged")
    return len(evs) / dt


def relay_drain(relay, n: int, batch: int) -> float:
    t = time.perf_counter()
    done = 0
    while done < n:
        got = relay.run_once(batch, 30.0)
        if got == 0:
            break
        done += got
    dt = time.perf_counter() - t
    relay.close()
    if done != n:
        raise RuntimeError(f"relay published {done} of {n} events")
    return n / dt


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    ep = ensure_up(["postgres"])
    ns = open_namespace(ep)
    kafka = spawn_kafka()
    try:
        prepare(ns)
        create_topic(kafka.bootstrap, "raw-warm", 1)
        create_topic(kafka.bootstrap, "relay", 3)
        # warm the relay the same way as the raw producer: one event through it, untimed
        the_relay = load_solution().Relay(lambda: connect(ns.pg_url), kafka.bootstrap, "relay")
        fill_outbox(ns.pg_admin_url, events(1))
        the_relay.run_once(1, 30.0)
        raws, relays = [], []
        for r in range(rounds):       # alternate, best of each: the machine may be shared
            evs = events(n)
            create_topic(kafka.bootstrap, f"raw-{r}", 3)
            raws.append(raw_produce(kafka.bootstrap, f"raw-{r}", evs))
            fill_outbox(ns.pg_admin_url, evs)
            relays.append(relay_drain(the_relay, n, batch))
        got = read_topic(kafka.bootstrap, "relay", timeout_s=60)
        raw, relay = max(raws), max(relays)
        ratio = relay / raw
        print(f"events            {n} per round, {rounds} rounds (relay batch {batch}, "
              f"3 partitions, tansu memory storage)")
        print(f"raw produce       {raw:>10.0f} events/s  (best; all: "
              f"{', '.join(f'{x:.0f}' for x in raws)})")
        print(f"outbox relay      {relay:>10.0f} events/s  (best; all: "
              f"{', '.join(f'{x:.0f}' for x in relays)})")
        print(f"relay / raw       {ratio:>10.2f}   (target >= {TARGET})")
        print(f"records on topic  {len(got.records)} (read to the end: {got.complete}; "
              f"expected {n * rounds + 1} with the warm-up event)")
        return 0 if ratio >= TARGET else 1
    finally:
        kafka.stop()
        try:
            ns.drop()
        except Exception as e:  # noqa: BLE001 - cleanup must not hide the figures
            print(f"(could not drop namespace {ns.name}: {e})", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
