"""Lab 07, a different correct design: the election is an optimistic Redis transaction (WATCH the
lease, MULTI, INCR the term and SET the lease, EXEC), the lease is a hash holding the node and its
term, and the fence is a row locked with SELECT ... FOR UPDATE, compared and raised in the same
transaction as the charge. Leadership ends a fixed share of the lease early, on the monotonic clock,
counted from before the request left."""
from __future__ import annotations

import psycopg
import redis as redis_lib

from splitbrain import Clock


class LeaderElection:
    def __init__(self, redis: redis_lib.Redis, pg: psycopg.Connection, name: str, node: str,
                 lease_ms: int = 1000, clock: Clock | None = None, replicas: int = 0) -> None:
        if lease_ms <= 0:
            raise ValueError("lease_ms must be positive")
        self.redis, self.pg, self.name, self.node = redis, pg, name, node
        self.lease_ms, self.clock, self.replicas = int(lease_ms), clock or Clock(), int(replicas)
        self.lease_key, self.term_key = f"{name}:lease", f"{name}:terms"
        self.term: int | None = None
        self.until = 0.0

    def _try(self) -> int | None:
        """One optimistic transaction: renew our own lease, or take a free one with the next
        term; retried when another node touched the lease or the term counter meanwhile."""
        with self.redis.pipeline() as p:
            for _ in range(5):
                try:
                    p.watch(self.lease_key, self.term_key)
                    held = p.hgetall(self.lease_key)
                    if held:
                        mine = (self.term is not None and held.get(b"node") == self.node.encode()
                                and held.get(b"term") == str(self.term).encode())
                        if not mine:
                            p.reset()
                            return None
                        p.multi()
                        p.pexpire(self.lease_key, self.lease_ms)
                        return self.term if p.execute()[0] else None
                    term = int(p.get(self.term_key) or 0) + 1
                    p.multi()
                    p.set(self.term_key, term)
                    p.hset(self.lease_key, mapping={"node": self.node, "term": term})
                    p.pexpire(self.lease_key, self.lease_ms)
                    p.execute()
                    return term
                except redis_lib.WatchError:
                    continue
        return None

    def campaign(self) -> int | None:
        sent = self.clock.monotonic()
        try:
            term = self._try()
            if term is not None and self.replicas and \
                    int(self.redis.wait(self.replicas, max(1, self.lease_ms // 4))) < self.replicas:
                term = None
        except redis_lib.RedisError:
            term = None
        if term is None:
            self.term, self.until = None, 0.0
            return None
        self.term, self.until = term, sent + self.lease_ms * 0.75 / 1000
        return self.leading()

    def leading(self) -> int | None:
        return self.term if self.term is not None and self.clock.monotonic() < self.until else None

    def tick(self, n: int) -> bool:
        term = self.leading()
        if term is None:
            return False
        with self.pg.transaction():
            self.pg.execute("INSERT INTO fence (name, term) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                            (self.name,))
            (seen,) = self.pg.execute("SELECT term FROM fence WHERE name = %s FOR UPDATE",
                                      (self.name,)).fetchone()
            if seen > term:
                return False
            self.pg.execute("UPDATE fence SET term = %s WHERE name = %s", (term, self.name))
            if self.pg.execute("SELECT 1 FROM charges WHERE tick = %s", (n,)).fetchone():
                return False
            self.pg.execute("INSERT INTO charges (tick, term, node) VALUES (%s, %s, %s)",
                            (n, term, self.node))
        return True
