"""A member of a consumer group that applies each record's effect to Postgres, exactly once.

`EffectConsumer(effects, topic, group)`, `step() -> int`, `close()`: see the handout's docstring.

* The position of each partition lives in Postgres (`consumer_offsets`), written in the same
  transaction as the record's effect: the effect and "this record is done" commit together or
  not at all. On assignment the member seeks to the stored positions; Kafka's own committed
  offsets are never relied on (auto-commit is off).
* Each record's transaction first locks its partition's row and skips a record below the stored
  position: a member that lost its partition while it was stuck or paused (a zombie) and wakes
  up mid-batch finds its records already done by the new owner, and applies none of them twice.
* Work per poll is bounded in time (`BUDGET_S`, well under max.poll.interval.ms): what the poll
  returned beyond the budget is left for the next step (the member seeks back to it), so a run
  of slow records never keeps the member from polling long enough to be thrown out of its group.
* cooperative-sticky assignment: a join moves only the partitions that change owner, and the
  others keep being consumed through the rebalance.
"""
import time

from confluent_kafka import KafkaError, KafkaException, TopicPartition

BATCH = 20           # records taken per poll, at most
POLL_S = 0.2         # how long one poll waits for records
BUDGET_S = 0.5       # time one step may spend applying (max.poll.interval.ms is 2 s)

CLAIM = """
INSERT INTO consumer_offsets (group_id, topic, "partition", next_offset) VALUES (%s, %s, %s, 0)
ON CONFLICT DO NOTHING
"""
POSITION = """
SELECT next_offset FROM consumer_offsets
 WHERE group_id = %s AND topic = %s AND "partition" = %s FOR UPDATE
"""
ADVANCE = """
UPDATE consumer_offsets SET next_offset = %s WHERE group_id = %s AND topic = %s AND "partition" = %s
"""


class EffectConsumer:
    def __init__(self, effects, topic, group):
        self.effects, self.topic, self.group = effects, topic, group
        self.conn = effects.connect()
        self.consumer = effects.consumer(group, {
            "enable.auto.commit": False,
            "partition.assignment.strategy": "cooperative-sticky",
        })
        self.consumer.subscribe([topic], on_assign=self._on_assign)

    def _stored(self, partition):
        with self.conn.transaction():
            row = self.conn.execute(
                'SELECT next_offset FROM consumer_offsets WHERE group_id = %s AND topic = %s '
                'AND "partition" = %s', (self.group, self.topic, partition)).fetchone()
        return row[0] if row else 0

    def _on_assign(self, consumer, partitions):
        consumer.incremental_assign(
            [TopicPartition(p.topic, p.partition, self._stored(p.partition)) for p in partitions])

    def _apply_once(self, msg):
        """Apply ``msg`` unless its partition's stored position is already past it."""
        key = (self.group, msg.topic(), msg.partition())
        with self.conn.transaction():
            self.conn.execute(CLAIM, key)
            (next_offset,) = self.conn.execute(POSITION, key).fetchone()
            if msg.offset() < next_offset:
                return False                  # done already (by us before a crash, or another)
            self.effects.apply(self.conn, msg)
            self.conn.execute(ADVANCE, (msg.offset() + 1, *key))
        return True

    def step(self):
        applied, left = 0, {}
        deadline = time.monotonic() + BUDGET_S
        for msg in self.consumer.consume(BATCH, POLL_S):
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print("consumer error:", msg.error())
                continue
            p = msg.partition()
            if p in left or time.monotonic() >= deadline:
                left.setdefault(p, msg.offset())      # over budget: the next step takes it
                continue
            applied += self._apply_once(msg)
        for p, offset in left.items():
            try:
                self.consumer.seek(TopicPartition(self.topic, p, offset))
            except KafkaException as e:                # revoked meanwhile: its new owner has it
                print("seek:", e)
        return applied

    def close(self):
        self.consumer.close()
        self.conn.close()
