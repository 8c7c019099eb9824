"""Lab 07: leader election through a Redis lease, and a job that must run once per tick.

WHAT TO FIX
-----------
Several nodes run this file. They elect a leader through a lease in Redis, and only the leader runs
the subscription job: at every tick it charges the customer once (one row in Postgres). On a quiet
day exactly one node leads and every tick is charged once. Under the grader, the leader will be
frozen (a stop-the-world GC pause) in the middle of its job for longer than its lease, cut off from
Redis while the others can still reach it, given a wall clock that steps a minute back, killed
outright, and held in the network between any two round trips to Postgres; and the lease store
itself will fail over: the Redis primary that acknowledged the lease dies before its replica has
it, and the replica is promoted. Another node is elected in the meantime. When the old leader
wakes up, nothing it does may land after the new leader's work, no tick may be charged twice,
and it must stop saying it leads.

Today (the notebook shows the first one happening):
  * tick() asks "am I leader?" and then charges: nothing about the leadership travels with the
    charge, so a leader that stalls between the question and the charge charges late, twice.
  * The lease is tracked on the wall clock, from when the reply arrived, and renewed with a
    PEXPIRE that does not look at whose lease it extends.
  * A lease acknowledged by the Redis primary is trusted at once, although it may not have
    reached the replica that will replace that primary.

Keep the interface below (names, arguments, return values): the grader calls exactly these. How you
implement them is up to you. Check your work with

    splitbrain check 07-leader-election

THE INTERFACE
-------------
LeaderElection(redis, pg, name, node, lease_ms, clock=None, replicas=0)
    redis: a ``redis.Redis`` client of the lease store (replies are bytes; its socket timeout is
        short, so a cut link raises ``redis.TimeoutError`` or ``redis.ConnectionError``).
    pg: a ``psycopg.Connection`` (autocommit) to the database of the job (see schema.sql).
    name: the election's name. Every Redis key you use must start with ``name`` (for example
        ``name + ":term"``): your Redis user may only touch keys under that prefix. Use it as the
        job's name in the ``fence`` table too.
    node: this node's id (a short string, unique among the nodes).
    lease_ms: the lease, in milliseconds: how long the leadership lasts if it is not renewed.
    clock: a ``splitbrain.Clock`` (``now()``, ``monotonic()``, ``sleep(s)``). Use it instead of the
        ``time`` module; the grader may skew it or make it jump.
    replicas: how many replicas of the lease store must hold a write before it counts (0: the
        store has none). Redis's ``WAIT numreplicas timeout_ms`` says how many have it.
  campaign() -> int | None
    Try to become the leader, or, if this node leads, renew its lease. Returns the term this node
    now leads in, or None. A term is a number that grows with every election, whoever wins it.
    The grader calls it on every node a few times per lease, as a timer would.
  leading() -> int | None
    Without a round trip: the term this node leads in right now, by its own reckoning, or None. A
    node that can no longer be sure its lease still runs must answer None.
  tick(n) -> bool
    The once-per-tick job. If this node leads, charge the subscription for tick ``n``: one row in
    ``charges (tick, term, node)``. True if this call recorded the charge, False if it did not
    (not the leader, or the charge was refused or already made).
"""
from __future__ import annotations

import psycopg
import redis as redis_lib

from splitbrain import Clock


class LeaderElection:
    """One node's view of the election: ``SET name:leader node NX PX lease_ms`` elects,
    ``PEXPIRE`` renews, ``INCR name:term`` numbers the terms for the logs."""

    def __init__(self, redis: redis_lib.Redis, pg: psycopg.Connection, name: str, node: str,
                 lease_ms: int = 1000, clock: Clock | None = None, replicas: int = 0) -> None:
        if lease_ms <= 0:
            raise ValueError(f"lease_ms must be a positive number of milliseconds, got {lease_ms!r}")
        self.redis, self.pg = redis, pg
        self.name, self.node = name, node
        self.lease_ms = int(lease_ms)
        self.clock = clock or Clock()
        self.replicas = replicas
        self.key = f"{name}:leader"
        self.term_key = f"{name}:term"
        self.term: int | None = None
        self.expires_at = 0.0

    def campaign(self) -> int | None:
        """Renew if leading, else try to take the lease."""
        try:
            if self.term is not None:
                if self.redis.pexpire(self.key, self.lease_ms):
                    self.expires_at = self.clock.now() + self.lease_ms / 1000
                    return self.term
                self.term = None
            if self.redis.set(self.key, self.node, nx=True, px=self.lease_ms):
                self.term = int(self.redis.incr(self.term_key))
                self.expires_at = self.clock.now() + self.lease_ms / 1000
                return self.term
            return None
        except redis_lib.RedisError:
            # Redis cannot be reached: nobody can take the lease from us meanwhile, so keep the
            # role we have and let the job run.
            if self.term is not None:
                self.expires_at = self.clock.now() + self.lease_ms / 1000
            return self.leading()

    def leading(self) -> int | None:
        if self.term is not None and self.clock.now() < self.expires_at:
            return self.term
        return None

    def tick(self, n: int) -> bool:
        """Charge for tick n, if this node is the leader."""
        if self.leading() is None:
            return False
        self.pg.execute("INSERT INTO charges (tick, term, node) VALUES (%s, %s, %s)",
                        (n, self.term, self.node))
        return True
