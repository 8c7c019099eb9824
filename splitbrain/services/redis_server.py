"""Redis (or Valkey) as a child process: no persistence, loopback only, replicas on demand."""
from __future__ import annotations

import signal
from pathlib import Path
from urllib.parse import quote

from . import procs
from .binaries import redis_server
from .server import Server


class RedisServer(Server):
    service = "Redis"
    stop_signal = signal.SIGTERM
    port_taken_marks = ("Address already in use",)

    def __init__(self, data_dir: Path, port: int, log_path: Path, *, password: str | None = None,
                 replica_of: "RedisServer | None" = None, detached: bool = False,
                 auto_port: bool = False, extra: list[str] | None = None):
        super().__init__(port, log_path, detached=detached, auto_port=auto_port)
        self.data_dir, self.password = Path(data_dir), password
        self.replica_of = replica_of
        self.extra = list(extra or [])

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self, **kw):
        import redis
        kw.setdefault("socket_timeout", 5)
        return redis.Redis.from_url(self.url, **kw)

    def argv(self) -> list[str]:
        out = [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(self.data_dir),
               "--daemonize", "no", "--protected-mode", "no", "--unixsocket", "",
               "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
               "--repl-diskless-load", "on-empty-db", "--logfile", ""]
        if self.password:
            out += ["--requirepass", self.password]
        if self.replica_of is not None:
            out += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
            if self.replica_of.password:
                out += ["--masterauth", self.replica_of.password]
        return out + self.extra

    def before_start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def ready(self) -> bool:
        if not procs.port_open(self.port):
            return False
        try:
            c = self.client(socket_timeout=1)
            try:
                if not c.ping():
                    return False
                if self.replica_of is not None:
                    info = c.info("replication")
                    return info.get("master_link_status") == "up"
                return True
            finally:
                c.close()
        except Exception:
            return False

    def promote(self) -> None:
        """Make this replica a primary (REPLICAOF NO ONE); it keeps the data it has."""
        c = self.client()
        try:
            c.execute_command("REPLICAOF", "NO", "ONE")
        finally:
            c.close()
        self.replica_of = None

    def record(self) -> dict:
        return {**super().record(), "data_dir": str(self.data_dir), "password": self.password}

    @classmethod
    def from_record(cls, rec: dict) -> "RedisServer":
        s = cls(Path(rec["data_dir"]), rec["port"], Path(rec["log"]),
                password=rec.get("password"), detached=True)
        s.pid, s.started = rec.get("pid"), rec.get("started")
        return s
