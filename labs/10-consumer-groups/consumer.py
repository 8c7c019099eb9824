"""A member of a consumer group that applies each record's effect to Postgres.

Several processes run `EffectConsumer` in one group; Kafka splits the topic's partitions
between them and moves partitions when a member joins, leaves, dies or goes quiet.

`EffectConsumer(effects, topic, group)`: a member of `group`, subscribed to `topic`.
`effects` is the lab's trusted helper (the rig builds it inside your process):

* `effects.consumer(group, conf)` makes the `confluent_kafka.Consumer`: the broker, the group
  and the lab's timings are fixed (session.timeout.ms 1000, heartbeat.interval.ms 300,
  max.poll.interval.ms 2000); `conf` sets everything else (commits, assignment strategy, ...).
* `effects.connect()` opens a Postgres connection (tables: `effects`, `balances`, and
  `consumer_offsets`, yours to use; see schema.sql).
* `effects.apply(conn, msg)` applies one record inside `conn`'s current transaction. It does
  not commit, and it is not idempotent: applying a record twice adds its amount twice.

The grader drives the member one poll at a time:

* `step() -> int`: one poll of the consumer, then the effects of what it returned; returns how
  many records it applied. Between two steps the member does nothing (no thread of its own).
* `close()`: leave the group cleanly.

Each record must be applied exactly once, whatever happens to the members: killed mid-batch,
stuck on a slow record, paused longer than the session timeout, or joined by a new member.
"""
from confluent_kafka import KafkaError

BATCH = 100          # records taken per poll
POLL_S = 0.5         # how long one poll waits for records


class EffectConsumer:
    def __init__(self, effects, topic, group):
        self.effects = effects
        # Offsets are committed for us in the background, every 200 ms: after a crash or a
        # rebalance the group redoes at most a fraction of a second of work.
        self.consumer = effects.consumer(group, {
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 200,
        })
        self.consumer.subscribe([topic])
        self.conn = effects.connect(autocommit=True)

    def step(self):
        applied = 0
        for msg in self.consumer.consume(BATCH, POLL_S):
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print("consumer error:", msg.error())
                continue
            self.effects.apply(self.conn, msg)       # autocommit: one transaction per record
            applied += 1
        return applied

    def close(self):
        self.consumer.close()
        self.conn.close()
