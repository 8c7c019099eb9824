"""Grader side of lab 08 (the thundering herd), shared by the hidden tests, the public tests, the
notebook and the bench.

* :func:`prepare` gives a namespace's database the origin: ``source`` (each key's version),
  ``origin_calls`` (one row per call, written by the origin itself) and ``origin_fetch``, the
  expensive query (``pg_sleep`` of ``cost_ms``), callable by the namespace's role and nothing else.
* :func:`origin_calls` reads every call the origin really served, in the history's time: the
  ground truth the checkers count. :func:`bump` gives a key a new version (recorded as ``bump``).
* :class:`Origin` is the target of the lab's ``origin-down`` fault: while it is down every call is
  still counted, and answers "down" at once.
* :class:`Client` is one application process (a worker running the learner's ``HerdCache``);
  :func:`clients` starts several side by side; :func:`together` releases one call per client at
  once; :class:`Readers` keeps clients reading in a loop, and :func:`read_inside` has one
  client read for a while, until it calls the origin, or once: both read inside the client's
  worker, a millisecond apart, so that a key's expiry is met within a millisecond or two
  however busy the machine.
* :class:`CacheStore` is a private Redis behind one :class:`Door` per client (a forwarder that
  writes down the moment of every connection a client opens): the target of the kit's
  ``restart`` fault, and the grader's own count of reconnections.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

COST_MS = 60          # one origin call: the expensive query
TTL_MS = 600          # how long a cached value may be served
LEASE_MS = 300        # how long one caller may hold the right to recompute a key
BASE_MS = 40          # the retry policy: first backoff ...
CAP_MS = 400          # ... its cap ...
ATTEMPTS = 10         # ... and the most tries one get() may make (its retry budget)

SCHEMA = """
CREATE TABLE IF NOT EXISTS source (key text PRIMARY KEY, version int NOT NULL);
CREATE TABLE IF NOT EXISTS origin_calls (
  seq bigserial PRIMARY KEY, key text NOT NULL, client text NOT NULL,
  started timestamptz NOT NULL, finished timestamptz NOT NULL, ok boolean NOT NULL, value text);
CREATE TABLE IF NOT EXISTS origin_state (
  id int PRIMARY KEY, down boolean NOT NULL, cost_ms int NOT NULL);
CREATE OR REPLACE FUNCTION origin_fetch(k text, c text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE t0 timestamptz := clock_timestamp(); st origin_state; v int; out text;
BEGIN
  SELECT * INTO st FROM origin_state WHERE id = 1;
  IF st.down THEN
    INSERT INTO origin_calls (key, client, started, finished, ok)
      VALUES (k, c, t0, clock_timestamp(), false);
    RETURN NULL;
  END IF;
  PERFORM pg_sleep(st.cost_ms / 1000.0);
  SELECT version INTO v FROM source WHERE key = k;
  out := k || '@v' || coalesce(v, 0);
  INSERT INTO origin_calls (key, client, started, finished, ok, value)
    VALUES (k, c, t0, clock_timestamp(), true, out);
  RETURN out;
END $$;
"""


def prepare(ns: Any, cost_ms: int = COST_MS) -> None:
    """Create the origin in the namespace's database (idempotent): its role may call
    ``origin_fetch`` and nothing else."""
    role = conninfo_to_dict(ns.pg_url).get("user")
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO origin_state VALUES (1, false, %s) ON CONFLICT (id) DO UPDATE "
                     "SET down = false, cost_ms = excluded.cost_ms", (cost_ms,))
        if role and role != conninfo_to_dict(ns.pg_admin_url).get("user"):
            r = sql.Identifier(role)
            for t in ("source", "origin_calls", "origin_state"):
                conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(t), r))
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION origin_fetch(text, text) TO {}")
                         .format(r))


def bump(ns: Any, history: Any, key: str) -> int:
    """Give ``key`` a new version at the source (the grader's ``bump``); its new version."""
    ev = history.invoke("grader", "bump", {"key": key})
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        (v,) = conn.execute("INSERT INTO source VALUES (%s, 1) ON CONFLICT (key) DO UPDATE SET "
                            "version = source.version + 1 RETURNING version", (key,)).fetchone()
    history.complete(ev, "ok", {"key": key, "version": v})
    return v


@dataclass(frozen=True)
class Call:
    """One call the origin served: ``start``/``end`` in the history's time, ``ok`` False when it
    answered "down"."""

    seq: int
    key: str
    client: str
    start: float
    end: float
    ok: bool
    value: str | None = None


def origin_calls(ns: Any, history: Any) -> list[Call]:
    """Every call the origin received, in the order it began, in the history's time."""
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        rows = conn.execute("SELECT seq, key, client, extract(epoch FROM started)::float8, "
                            "extract(epoch FROM finished)::float8, ok, value FROM origin_calls "
                            "ORDER BY started, seq").fetchall()
    off = time.time() - history.now()
    return [Call(s, k, c, t0 - off, t1 - off, ok, v) for s, k, c, t0, t1, ok, v in rows]


class Origin:
    """The origin as a fault target (``origin-down``): ``down()`` makes every call answer "down"
    at once (still counted), ``up()`` brings it back."""

    name = "origin"

    def __init__(self, ns: Any) -> None:
        self.ns = ns

    def _set(self, down: bool) -> None:
        with psycopg.connect(self.ns.pg_admin_url, autocommit=True) as conn:
            conn.execute("UPDATE origin_state SET down = %s WHERE id = 1", (down,))

    def down(self) -> None:
        self._set(True)

    def up(self) -> None:
        self._set(False)


def computing(ns: Any, pending: Any = None, timeout: float = 10.0) -> bool:
    """Wait until a session of the namespace's database is inside the origin's expensive query
    (True), or ``pending`` finished first (False)."""
    dbname = conninfo_to_dict(ns.pg_admin_url).get("dbname")
    deadline = time.monotonic() + timeout
    with psycopg.connect(ns.pg_admin_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                "wait_event = 'PgSleep'", (dbname,)).fetchone()
            if n:
                return True
            if pending is not None and pending.done():
                return False
            time.sleep(0.002)
    raise TimeoutError(f"no origin call began within {timeout} s")


# -- clients -----------------------------------------------------------------------------------
@dataclass
class Client:
    """One application process: a worker running the learner's ``HerdCache``. ``get`` is an RPC
    recorded in the history; the worker is the target of ``kill`` and ``pause``."""

    name: str
    worker: Any
    cache: Any
    alive: bool = True

    def get(self, key: str) -> Any:
        return self.cache.get(key)

    def get_async(self, key: str) -> Any:
        return self.cache.get.async_(key)

    def kill(self) -> None:
        self.alive = False
        self.worker.kill()


def settings(**over: Any) -> dict[str, Any]:
    """The keyword arguments every ``HerdCache`` gets (``over`` replaces some)."""
    return {"ttl_ms": TTL_MS, "lease_ms": LEASE_MS, "base_ms": BASE_MS, "cap_ms": CAP_MS,
            "attempts": ATTEMPTS, **over}


def clients(spawn: Callable[..., Any], ns: Any, names: Iterable[str], seed: int,
            redis_urls: dict[str, str] | None = None, prefix: str | None = None,
            **over: Any) -> list[Client]:
    """Several clients of one cache, their workers started side by side. ``redis_urls``: a Redis
    URL per client (default: the namespace's); ``over``: settings to replace."""
    from splitbrain.sandbox import Ref
    names = list(names)
    workers = [spawn(name=n, resources={"redis_url": redis_urls[n]})
               if redis_urls else spawn(name=n) for n in names]
    out = []
    for i, (n, w) in enumerate(zip(names, workers)):
        cache = w.new("HerdCache", Ref("rig.origin:redis_client"),
                      Ref("rig.origin:make", client=n), n, prefix=prefix or ns.key("cache:"),
                      clock=Ref("clock"), rng=Ref("rig.origin:rng", seed=seed * 1009 + i),
                      **settings(**over))
        out.append(Client(n, w, cache))
    return out


def outcome(fut: Any, timeout: float = 30.0) -> Any:
    """A call's result, or the exception it ended with (the history holds it either way)."""
    try:
        return fut.result(timeout=timeout)
    except Exception as e:  # noqa: BLE001 - the checkers judge it from the history
        return e


def together(cs: list[Client], keys: list[str] | str) -> list[Any]:
    """One get() per client, all sent at once (``keys``: one key for all or one per client);
    each result, or the exception it ended with."""
    ks = [keys] * len(cs) if isinstance(keys, str) else list(keys)
    futs = [c.get_async(k) for c, k in zip(cs, ks)]
    return [outcome(f) for f in futs]


def record_reads(c: Client, keys: list[str], reads: list[list]) -> int:
    """Put the reads ``rig.origin:read_loop`` made in ``c``'s worker into the history as ``get``
    operations, at the moments the worker took them; how many."""
    from splitbrain.history import call_value
    history = c.worker.history
    if history is None:
        return len(reads)
    off = time.time() - history.now()
    for k, t0, t1, ok, value in reads:
        history.append(c.name, "invoke", "get", call_value([keys[k]]), at=t0 - off)
        history.append(c.name, "ok" if ok else "fail", "get", value, at=t1 - off)
    return len(reads)


def read_inside(c: Client, keys: list[str] | str, seconds: float = 10.0, *,
                until_origin: bool = False, reads: int = 0) -> int:
    """``c`` reads ``keys`` inside its worker, a millisecond apart, for ``seconds``, or until
    one of its gets calls the origin (``until_origin``: an early refresh, when the key is
    cached), or for ``reads`` gets; how many it made, each in the history at the moments the
    worker took it. No round trip stands between two reads, and the worker's own clock dates
    each one: read one by one from here on a busy machine, a key that XFetch would refresh in
    its last tens of milliseconds could expire between two reads, and a get's end would be the
    moment its answer reached the grader, tens of milliseconds late."""
    ks = [keys] if isinstance(keys, str) else list(keys)
    done = c.worker.call("rig.origin:read_loop", c.cache, ks, seconds, until_origin=until_origin,
                         reads=reads)
    return record_reads(c, ks, done)


class Readers:
    """Each client calls get() on its keys (round-robin) in a loop until ``stop()``: the load a
    hot key expires under. The loop runs inside the client's worker (``rig.origin:read_loop``),
    one read a millisecond, in chunks of ``chunk_s``; each chunk's reads go into the history at
    the moments the worker took them. Sent one by one from here, reads would arrive 20-60 ms
    apart on a busy machine: a key's expiry would be dated late, and a hot key could expire and
    be recomputed with no reader there to wait for it. A failed get is in the history; a dead
    worker stops its loop."""

    def __init__(self, cs: list[Client], keys: dict[str, list[str]] | list[str],
                 chunk_s: float = 0.25) -> None:
        self.cs, self.chunk_s = cs, chunk_s
        self.keys = keys if isinstance(keys, dict) else {c.name: list(keys) for c in cs}
        self.reads = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in cs]

    def _run(self, c: Client) -> None:
        from splitbrain.sandbox import WorkerDied
        ks = self.keys[c.name]
        while not self._stop.is_set() and c.alive:
            try:
                reads = c.worker.call("rig.origin:read_loop", c.cache, ks, self.chunk_s)
            except WorkerDied:
                return
            except Exception:  # noqa: BLE001 - the call's failure is in the history; a loop
                return         # that cannot run would only fail again at once
            n = record_reads(c, ks, reads)
            with self._lock:
                self.reads += n

    def start(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(what: Callable[[], bool], timeout: float = 10.0, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError(why or f"condition not met within {timeout} s")
        time.sleep(0.005)


# -- a private Redis, one door per client ------------------------------------------------------
class Door:
    """A TCP forwarder in front of the cache's Redis for one client: it writes down the moment
    (history time) of every connection the client opens, and closes it at once when Redis does
    not answer."""

    def __init__(self, client: str, upstream_port: int, clock: Callable[[], float]) -> None:
        self.client, self.upstream_port, self.clock = client, upstream_port, clock
        self.accepts: list[float] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepts.append(self.clock())
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=1.0)
            except OSError:
                conn.close()
                continue
            up.settimeout(None)
            with self._lock:
                self._open.update((conn, up))
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            with self._lock:
                self._open.discard(s)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        with self._lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._open.clear()


@dataclass
class CacheStore:
    """A private Redis for one test, reached by each client through its own :class:`Door`: the
    target of the kit's ``restart`` fault (``down=True``: killed, started again by the heal, empty
    as a Redis without persistence comes back)."""

    name: str = "cache-redis"
    server: Any = None
    doors: dict[str, Door] = field(default_factory=dict)

    def start(self) -> CacheStore:
        from splitbrain.services.private import spawn_redis
        self.server = spawn_redis()
        return self

    def door(self, client: str, clock: Callable[[], float]) -> str:
        """A door for ``client``; the Redis URL it connects through."""
        d = Door(client, self.server.port, clock)
        self.doors[client] = d
        url = self.server.url
        return url.replace(f":{self.server.port}/", f":{d.port}/")

    def attempts(self) -> dict[str, list[float]]:
        return {c: list(d.accepts) for c, d in self.doors.items()}

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.server.restart()

    def close(self) -> None:
        for d in self.doors.values():
            d.close()
        if self.server is not None:
            self.server.close()
