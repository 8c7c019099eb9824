"""Lab 07, the solution: leader election with terms that fence, a step-down before the lease can
have run out by anyone's clock, and a lease that counts only once the store's replica has it.

The interface is the handout's (labs/07-leader-election/leader_election.py); SOLUTION.md explains
each choice.
"""

from __future__ import annotations

import psycopg
import redis as redis_lib

from splitbrain import Clock

# Elect or renew in one atomic step. The lease's value is "term:node": a renewal extends only this
# node's own lease of this node's own term; an election draws the next term from a counter that
# never expires, in the same step as it takes the lease.
ELECT = """
local cur = redis.call('GET', KEYS[1])
if cur then
    if cur == ARGV[3] .. ':' .. ARGV[1] then
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return tonumber(ARGV[3])
    end
    return false
end
local term = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], term .. ':' .. ARGV[1], 'PX', ARGV[2])
return term
"""

# The share of the lease a node lets itself count on: it stops leading this much before the lease
# can have run out, counted from before the request left, on its monotonic clock (room for the
# store's clock and this node's to run at slightly different rates).
SAFE_SHARE = 0.8


class LeaderElection:
    """A lease with a term: the term grows with every election, travels with every charge, and
    the database refuses a charge whose term is older than one it has seen."""

    def __init__(self, redis: redis_lib.Redis, pg: psycopg.Connection, name: str, node: str,
                 lease_ms: int = 1000, clock: Clock | None = None, replicas: int = 0) -> None:
        if lease_ms <= 0:
            raise ValueError(f"lease_ms must be a positive number of milliseconds, got {lease_ms!r}")
        self.redis, self.pg = redis, pg
        self.name, self.node = name, node
        self.lease_ms = int(lease_ms)
        self.clock = clock or Clock()
        self.replicas = int(replicas)
        self.keys = [f"{name}:leader", f"{name}:term"]
        self._elect = redis.register_script(ELECT)
        self.term: int | None = None      # the term of the lease this node last held
        self.until = 0.0                  # monotonic: leads until then, no longer

    def campaign(self) -> int | None:
        sent = self.clock.monotonic()     # the lease starts counting no earlier than this
        try:
            term = self._elect(keys=self.keys, args=[self.node, self.lease_ms, self.term or 0])
            if term is not None and self.replicas:
                # The lease counts once the replica that may replace this primary has it.
                wait_ms = max(1, self.lease_ms // 4)
                if int(self.redis.wait(self.replicas, wait_ms)) < self.replicas:
                    term = None
        except redis_lib.RedisError:
            term = None                   # unknown: the lease may be gone, so step down
        if term is None:
            self.term, self.until = None, 0.0
            return None
        self.term = int(term)
        self.until = sent + self.lease_ms / 1000 * SAFE_SHARE
        return self.leading()

    def leading(self) -> int | None:
        if self.term is not None and self.clock.monotonic() < self.until:
            return self.term
        return None

    def tick(self, n: int) -> bool:
        term = self.leading()
        if term is None:
            return False
        # Fence and charge in one transaction: the fence row's lock orders the charges, a term
        # older than the largest seen is refused, and a tick already charged is not charged again.
        with self.pg.transaction():
            fenced = self.pg.execute(
                "INSERT INTO fence (name, term) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                "SET term = excluded.term WHERE fence.term <= excluded.term RETURNING term",
                (self.name, term)).fetchone()
            if fenced is None:
                return False
            charged = self.pg.execute(
                "INSERT INTO charges (tick, term, node) SELECT %s, %s, %s "
                "WHERE NOT EXISTS (SELECT 1 FROM charges WHERE tick = %s) RETURNING seq",
                (n, term, self.node, n)).fetchone()
        return charged is not None
