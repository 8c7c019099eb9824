"""The embedded backend: shared Postgres, Redis and Kafka started from wheels/PATH on free
loopback ports, detached so they outlive the command that started them. Data lives under the
run dir (tmpfs when there is one) and is kept across `down`/`up` for a warm start."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from . import procs
from .kafka import KafkaServer
from .postgres import PostgresServer, copy_template
from .redis_server import RedisServer
from .runtime import logs_dir, run_dir

_CLASSES = {"postgres": PostgresServer, "redis": RedisServer, "kafka": KafkaServer}


def start(name: str) -> dict:
    """Start the shared ``name`` server; returns its state record."""
    if name == "postgres":
        s = _postgres()
    elif name == "redis":
        s = RedisServer(run_dir() / "redis", _port("redis"), logs_dir() / "redis.log",
                        password=_secret("redis"), detached=True, auto_port=True)
    elif name == "kafka":
        s = KafkaServer(_port("kafka"), logs_dir() / "kafka.log", detached=True, auto_port=True)
    else:
        raise KeyError(name)
    s.start()
    remember_port(name, s.port)
    return {"backend": "embedded", "url": s.url, **s.record()}


def _postgres() -> PostgresServer:
    data = run_dir() / "postgres"
    pwfile = run_dir() / "postgres.pw"
    if (data / "PG_VERSION").is_file() and pwfile.is_file():
        password = pwfile.read_text().strip()       # warm start: keep the data dir
    else:
        password = copy_template(data)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
    return PostgresServer(data, _port("postgres"), password, logs_dir() / "postgres.log",
                          detached=True, auto_port=True)


def _secret(name: str) -> str:
    """A password kept in the run dir (owner-only), so URLs stay valid across `down`/`up`."""
    f = run_dir() / f"{name}.pw"
    if f.is_file():
        return f.read_text().strip()
    pw = secrets.token_urlsafe(18)
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pw + "\n")
    return pw


def _port(name: str) -> int:
    """The port this service had last time, if it is free (URLs in open notebooks stay
    valid across `down`/`up`); else a new free one."""
    import json
    f = run_dir() / "ports.json"
    try:
        last = json.loads(f.read_text()).get(name)
    except (OSError, ValueError):
        last = None
    if last:
        try:
            procs.check_port_free(name, int(last))
            return int(last)
        except Exception:
            pass
    return procs.free_port()


def remember_port(name: str, port: int) -> None:
    import json
    f = run_dir() / "ports.json"
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = port
    f.write_text(json.dumps(data))


def server(name: str, rec: dict):
    return _CLASSES[name].from_record(rec)


def is_ours(rec: dict) -> bool:
    """The recorded process still runs and is the one the kit started: same pid, same start
    time, and the program recorded (a reused pid fails at least one of these)."""
    if not procs.is_same_process(rec.get("pid"), rec.get("started")):
        return False
    cmd = rec.get("cmd")
    return not cmd or cmd in procs.cmdline(rec["pid"])


def healthy(name: str, rec: dict) -> bool:
    return is_ours(rec) and procs.port_open(rec["port"])


def stop(name: str, rec: dict) -> bool:
    """Stop the recorded server if it is still the kit's own process; False if it was gone."""
    if not is_ours(rec):
        return False
    server(name, rec).stop()
    return True


def purge() -> None:
    """Delete the kept data (the next start is a cold start)."""
    import shutil
    shutil.rmtree(run_dir(), ignore_errors=True)


def data_dir_of(rec: dict) -> Path | None:
    d = rec.get("data_dir")
    return Path(d) if d else None
