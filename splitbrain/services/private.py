"""Private server instances for faults that pause, kill or restart a server, so that parallel
gradings never share them. Each is a child of the calling process, in its own process group;
``close()`` (or leaving the ``with`` block, or the process exiting) stops it and deletes its data.

    with spawn_postgres() as pg, pg.standby(apply_delay_ms=200) as sb:
        ...                      # pg.url, pg.kill(), pg.restart(), sb.lag(), sb.promote()
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
from pathlib import Path

from . import procs
from .kafka import KafkaServer
from .pg_standby import StandbyMixin
from .postgres import PostgresServer, copy_template
from .redis_server import RedisServer
from .runtime import logs_dir, private_dir

# strong references: a handle dropped without close() is still stopped when the process exits
_live: set = set()


def _owners_dir() -> Path:
    d = private_dir() / "owners"
    d.mkdir(exist_ok=True)
    return d


def sweep_orphans() -> int:
    """Stop private servers whose owning process died without closing them (SIGKILL, a
    timeout) and delete their data. A server is signalled only if it is still the very
    process recorded (pid and start time). Returns how many were cleaned up."""
    n = 0
    for f in _owners_dir().glob("*.json"):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if procs.is_same_process(*rec["owner"]):
            continue
        pid, started = rec.get("server") or (None, None)
        if pid and procs.is_same_process(pid, started):
            procs.kill_tree(pid, 10.0)
        if rec.get("dir"):
            shutil.rmtree(rec["dir"], ignore_errors=True)
        f.unlink(missing_ok=True)
        n += 1
    return n


class _Private:
    """Mixed into a server class: close() stops and deletes; context manager; cleanup at exit,
    and by the next spawn if this process dies without cleaning up."""

    _dir: Path | None = None
    _closed = False
    _tag: str | None = None

    def start(self, timeout: float = 60.0):
        out = super().start(timeout)
        self._register()
        return out

    def _register(self) -> None:
        if self._tag is None:
            self._tag = secrets.token_hex(6)
        rec = {"owner": [os.getpid(), procs.start_time(os.getpid())],
               "server": [self.pid, self.started], "dir": str(self._dir) if self._dir else None}
        (_owners_dir() / f"{self._tag}.json").write_text(json.dumps(rec))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for child in list(getattr(self, "_children", [])):
            child.close()
        try:
            self.kill()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            if self._tag is not None:
                (_owners_dir() / f"{self._tag}.json").unlink(missing_ok=True)
            _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _port(service: str, port: int | None) -> tuple[int, bool]:
    if port is None:
        return procs.free_port(), True
    procs.check_port_free(service, port)
    return port, False


def _new_dir(kind: str) -> Path:
    return private_dir() / f"{kind}-{secrets.token_hex(4)}"


class PrivatePostgres(_Private, PostgresServer):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._children: list = []

    def standby(self, apply_delay_ms: int | None = None, start: bool = True) -> "PrivateStandby":
        """A streaming standby of this server (pg_basebackup -R). ``apply_delay_ms`` sets
        ``recovery_min_apply_delay``: commits become visible there that much later."""
        from .pg_standby import make_standby
        sb = make_standby(self, apply_delay_ms, PrivateStandby)
        self._children.append(sb)
        _live.add(sb)
        if start:
            sb.start()
            sb.wait_streaming()
        return sb


class PrivateStandby(StandbyMixin, PrivatePostgres):
    pass


class PrivateRedis(_Private, RedisServer):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._children: list = []

    def replica(self, start: bool = True) -> "PrivateRedis":
        """A replica of this server (REPLICAOF, diskless sync: attached in well under a
        second); ``promote()`` makes it a primary."""
        d = _new_dir("redis-replica")
        port, auto = _port("Redis", None)
        r = PrivateRedis(d, port, logs_dir() / "private" / f"{d.name}.log", password=self.password,
                         replica_of=self, auto_port=auto)
        r._dir = d
        self._children.append(r)
        _live.add(r)
        if start:
            r.start()
        return r


class PrivateKafka(_Private, KafkaServer):
    pass


def spawn_postgres(settings: dict[str, str] | None = None, port: int | None = None) -> PrivatePostgres:
    """A new Postgres on its own data dir (a copy of the cached template), started and ready.
    ``settings`` override the kit's defaults (e.g. {"synchronous_commit": "on"})."""
    sweep_orphans()
    d = _new_dir("pg")
    password = copy_template(d)
    port, auto = _port("Postgres", port)
    pg = PrivatePostgres(d, port, password, logs_dir() / "private" / f"{d.name}.log",
                         settings=settings, auto_port=auto)
    pg._dir = d
    _live.add(pg)
    try:
        pg.start()
    except BaseException:
        pg.close()
        raise
    return pg


def spawn_redis(port: int | None = None, password: str | None = None) -> PrivateRedis:
    """A new Redis (no persistence; a restart starts empty), started and answering PING."""
    sweep_orphans()
    d = _new_dir("redis")
    port, auto = _port("Redis", port)
    r = PrivateRedis(d, port, logs_dir() / "private" / f"{d.name}.log", password=password,
                     auto_port=auto)
    r._dir = d
    _live.add(r)
    try:
        r.start()
    except BaseException:
        r.close()
        raise
    return r


def spawn_kafka(advertise_port: int | None = None, port: int | None = None) -> PrivateKafka:
    """A new tansu broker (memory storage: a restart loses every topic and offset).

    Behind a fault proxy, pass the proxy's port as ``advertise_port``: clients connect to the
    advertised address after bootstrap and would otherwise go around the proxy."""
    sweep_orphans()
    name = f"kafka-{secrets.token_hex(4)}"
    port, auto = _port("Kafka", port)
    k = PrivateKafka(port, logs_dir() / "private" / f"{name}.log", advertise_port=advertise_port,
                     auto_port=auto and advertise_port is None)
    _live.add(k)
    try:
        k.start()
    except BaseException:
        k.close()
        raise
    return k


@atexit.register
def _close_all() -> None:
    for h in list(_live):
        try:
            h.close()
        except Exception:
            pass
