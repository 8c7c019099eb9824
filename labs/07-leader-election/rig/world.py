"""Grader side of lab 07 (leader election), shared by the hidden tests, the public tests and the
notebook.

* :func:`prepare` applies the lab's ``schema.sql`` to a namespace with the admin URL and lets the
  namespace's role read and insert charges (never change or delete one) and use the fence table.
* :func:`charges` reads, with the admin URL, every charge the job really made, in the order it was
  made: the ground truth the checkers compare against the history.
* :class:`Node` is one worker process running the learner's ``leader_election.py``;
  :func:`nodes` starts several side by side, optionally behind fault proxies.
* :class:`LeaseStore` is a private Redis primary with one replica, fed through a fault proxy (the
  replication link, which the nemesis can cut), behind a client address that follows a failover
  the way a virtual IP or a Sentinel-aware client does: the target of the kit's
  ``replica-failover``.
* :func:`elect` keeps a node campaigning until it leads (a wait on a condition, with a deadline);
  :func:`round_` runs one tick: every live node campaigns, then every live node is asked to tick.
* :func:`boundaries`, :func:`engaged`, :func:`until_blocked`: a stall placed at every boundary
  between the round trips of one operation on one link (as in lab 01).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

REDIS_TIMEOUT_S = 0.25      # the nodes' Redis socket timeout: a cut link fails fast


def schema_path() -> Path:
    return Path(__file__).resolve().parent.parent / "schema.sql"


def prepare(ns: Any) -> None:
    """Create ``charges`` and ``fence`` in the namespace's database (idempotent)."""
    role = conninfo_to_dict(ns.pg_url).get("user")
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        conn.execute(schema_path().read_text())
        if role and role != conninfo_to_dict(ns.pg_admin_url).get("user"):
            r = sql.Identifier(role)
            conn.execute(sql.SQL("REVOKE ALL ON charges FROM {}").format(r))
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON charges TO {}").format(r))
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE charges_seq_seq TO {}").format(r))
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON fence TO {}").format(r))


def charges(ns: Any) -> list[dict[str, Any]]:
    """Every charge in the order it was made: ``{"seq", "tick", "term", "node"}``."""
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        rows = conn.execute("SELECT seq, tick, term, node FROM charges ORDER BY seq").fetchall()
    return [{"seq": s, "tick": t, "term": term, "node": n} for s, t, term, n in rows]


@dataclass
class Node:
    """One worker running the learner's ``LeaderElection``. Calls are RPCs into the sandboxed
    code, recorded in the history (``campaign``, ``leading``, ``tick``). A node is a fault target
    under its own name: ``pause`` freezes its worker, ``kill`` kills it (the clock faults take
    its ``worker``)."""

    name: str
    worker: Any
    election: Any
    lease_ms: int
    redis_px: Any = None
    pg_px: Any = None
    alive: bool = True

    def campaign(self) -> Any:
        return self.election.campaign()

    def leading(self) -> Any:
        return self.election.leading()

    def tick(self, n: int) -> Any:
        return self.election.tick(n)

    def pause(self) -> None:
        self.worker.pause()

    def resume(self) -> None:
        self.worker.resume()

    def kill(self) -> None:
        self.alive = False
        self.worker.kill()


def nodes(spawn: Callable[..., Any], ns: Any, specs: list[dict[str, Any]],
          proxy: Callable[..., Any] | None = None, redis_url: str | None = None,
          name: str | None = None) -> list[Node]:
    """Several nodes of one election, their workers started side by side. Each spec: ``name``,
    ``lease_ms``, ``redis_proxy`` / ``pg_proxy`` (True: a fault proxy from ``proxy`` in front of
    that service for this node), ``replicas``, ``redis_timeout_s`` (the Redis client's socket
    timeout, default ``REDIS_TIMEOUT_S``: longer lets a held reply arrive late instead of failing). ``redis_url``: the lease store (default: the
    namespace's Redis); ``name``: the election's name (default ``ns.key("election")``)."""
    from splitbrain.sandbox import Ref
    started = []
    for s in specs:
        rpx = proxy("redis") if s.get("redis_proxy") else None
        ppx = proxy("postgres") if s.get("pg_proxy") else None
        res = {}
        if rpx is not None or redis_url:
            res["redis_url"] = rpx.url if rpx is not None else redis_url
        if ppx is not None:
            res["pg_url"] = ppx.url
        w = spawn(name=s["name"], resources=res) if res else spawn(name=s["name"])
        started.append((s, w, rpx, ppx))
    out = []
    for s, w, rpx, ppx in started:
        timeout = s.get("redis_timeout_s", REDIS_TIMEOUT_S)
        e = w.new("LeaderElection", Ref("redis", socket_timeout=timeout,
                                        socket_connect_timeout=REDIS_TIMEOUT_S),
                  Ref("pg", autocommit=True), name or ns.key("election"), s["name"],
                  s["lease_ms"], clock=Ref("clock"), replicas=s.get("replicas", 0))
        out.append(Node(s["name"], w, e, s["lease_ms"], rpx, ppx))
    return out


def elect(node: Node, timeout: float = 10.0, pace: float = 0.01) -> int:
    """Campaign until ``node`` leads; its term. Raises TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        term = node.campaign()
        if term is not None:
            return term
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node.name} was not elected within {timeout} s")
        time.sleep(pace)


def round_(ns_nodes: list[Node], n: int, campaigns: bool = False) -> dict[str, Any]:
    """One tick: every live node campaigns, then every live node runs tick(n). Returns each
    node's answer to tick(n) (``campaigns=True``: to campaign()). An error is returned, not
    raised: the checkers judge it from the history."""
    from splitbrain.sandbox.protocol import RemoteError
    live = [x for x in ns_nodes if x.alive]
    terms: dict[str, Any] = {}
    for x in live:
        try:
            terms[x.name] = x.campaign()
        except RemoteError as e:
            terms[x.name] = e
    out: dict[str, Any] = {}
    for x in live:
        try:
            out[x.name] = x.tick(n)
        except RemoteError as e:
            out[x.name] = e
    return terms if campaigns else out


# -- the lease store with a replica ----------------------------------------------------------------
@dataclass
class LeaseStore:
    """A private Redis primary and its replica. The replica follows the primary through
    ``repl_px`` (a fault proxy: partition it and the primary's writes stop reaching the replica);
    the nodes reach the primary through ``client_px``, which ``promote()`` points at the replica
    once it is the primary (the address a failover moves). ``url``: the nodes' address."""

    name: str = "lease-store"
    primary: Any = None
    replica: Any = None
    repl_px: Any = None
    client_px: Any = None
    spare: Any = None
    password: str = field(default_factory=lambda: secrets.token_hex(8))

    def start(self) -> "LeaseStore":
        from splitbrain.faults.proxy import FaultProxy
        from splitbrain.services.private import spawn_redis
        self.primary = spawn_redis(password=self.password)
        self.repl_px = FaultProxy("replication")
        self.repl_px.start(("127.0.0.1", self.primary.port))
        self.replica = self.primary.replica()
        c = self.replica.client()
        try:
            c.execute_command("REPLICAOF", "127.0.0.1", str(self.repl_px.port))
            deadline = time.monotonic() + 20
            while True:
                info = c.info("replication")
                if info.get("master_port") == self.repl_px.port and \
                        info.get("master_link_status") == "up":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the replica did not follow the primary through the proxy")
                time.sleep(0.01)
        finally:
            c.close()
        self.client_px = FaultProxy("lease-store")
        self.client_px.start(("127.0.0.1", self.primary.port))
        return self

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.client_px.port}/0"

    def promote(self) -> None:
        """The replica becomes the primary, the nodes' address moves to it, and it gets a new
        replica of its own (as a failover that restores redundancy does)."""
        self.replica.promote()
        self.client_px._server.update(self.client_px.name,
                                      {"upstream": f"127.0.0.1:{self.replica.port}"})
        self.spare = self.replica.replica()

    def kill(self) -> None:
        self.primary.kill()

    def close(self) -> None:
        for x in (self.client_px, self.repl_px):
            if x is not None:
                x.stop()
        for x in (self.spare, self.replica, self.primary):
            if x is not None:
                x.close()


# -- stalls at every boundary ---------------------------------------------------------------------
@dataclass
class Boundary:
    stream: str
    k: int
    stall: Any
    pending: Any


def engaged(stall: Any, pending: Any, timeout: float = 10.0) -> bool:
    """Wait until the stall engaged (True) or the operation finished without it (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stall.wait(0.003):
            return True
        if pending.done():
            return stall.wait(0)
    raise TimeoutError(f"the operation neither finished nor reached the stall within {timeout} s")


def boundaries(nemesis: Any, px: Any, start: Callable[[], Any],
               through: Callable[[Any], Any] | None = None,
               streams: tuple[str, ...] = ("upstream", "downstream"),
               limit: int = 12) -> Iterator[Boundary]:
    """For each stream, for k = 0, 1, 2, ...: stall the link after ``k`` messages, start the
    operation (``start()`` returns its future), and yield once the stall engaged; a stream's walk
    ends at the first ``k`` the operation gets through (``through(result)`` is called then)."""
    for stream in streams:
        for k in range(limit):
            stall = nemesis.inject("stall", px, after=k, stream=stream)
            pending = start()
            try:
                hit = engaged(stall, pending)
            except BaseException:
                stall.heal()
                raise
            if not hit:
                stall.heal()
                result = pending.result(timeout=10)
                if through is not None:
                    through(result)
                break
            try:
                yield Boundary(stream, k, stall, pending)
            finally:
                stall.heal()
        else:
            raise AssertionError(f"the operation made more than {limit} round trips on one link")


def until_blocked(ns: Any, pending: Any, timeout: float = 10.0) -> bool:
    """Wait until ``pending`` finished (False) or a session of the namespace's database waits for
    a lock (True)."""
    dbname = conninfo_to_dict(ns.pg_admin_url).get("dbname")
    deadline = time.monotonic() + timeout
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if pending.done():
                return False
            (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                "wait_event_type = 'Lock'", (dbname,)).fetchone()
            if n:
                return True
            time.sleep(0.003)
    raise TimeoutError(f"the tick neither finished nor waited for a lock within {timeout} s")
