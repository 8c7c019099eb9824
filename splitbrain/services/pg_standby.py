"""Postgres streaming standbys: made with ``pg_basebackup -R``; replay can be delayed
(``recovery_min_apply_delay``), paused and resumed; the standby can be promoted."""
from __future__ import annotations

import secrets
import subprocess

from . import procs
from .binaries import postgres_bin_dir
from .errors import ServerDied
from .runtime import logs_dir, private_dir


def make_standby(primary, apply_delay_ms: int | None, cls):
    """Base-backup ``primary`` into a new data dir; returns an unstarted ``cls`` server."""
    d = private_dir() / f"pg-standby-{secrets.token_hex(4)}"
    d.mkdir(mode=0o700)
    user = procs.service_user()
    procs.chown_to(d, user)
    log = logs_dir() / "private" / f"{d.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(postgres_bin_dir() / "pg_basebackup"), "-D", str(d), "-R", "-X", "stream",
            "--no-sync", "-c", "fast",
            "-d", f"host=127.0.0.1 port={primary.port} user=postgres application_name={d.name}"]
    with open(log, "wb") as f:
        rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=procs.clean_env({"PGPASSWORD": primary.password}), timeout=120,
                            **procs._demote_kwargs(user)).returncode
    if rc != 0:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
        raise ServerDied("Postgres standby (pg_basebackup)", str(log), procs.tail(log), why="failed")
    settings = dict(primary.settings)
    settings.pop("recovery_min_apply_delay", None)
    if apply_delay_ms is not None:
        # in postgresql.auto.conf, not on the command line, so ALTER SYSTEM can change it later
        with open(d / "postgresql.auto.conf", "a") as f:
            f.write(f"recovery_min_apply_delay = '{int(apply_delay_ms)}ms'\n")
    sb = cls(d, procs.free_port(), primary.password, log, settings=settings, auto_port=True)
    sb._dir, sb.primary = d, primary
    return sb


class StandbyMixin:
    """What a standby can do beyond a server."""

    primary = None

    def _one(self, sql: str, params=()):
        with self.connect() as c:
            return c.execute(sql, params).fetchone()[0]

    def wait_streaming(self, timeout: float = 30.0) -> None:
        ok = procs.wait_until(
            lambda: self._one("select count(*) from pg_stat_wal_receiver where status='streaming'") > 0,
            timeout)
        if not ok:
            raise ServerDied("Postgres standby", str(self.log_path), procs.tail(self.log_path),
                             why=f"did not start streaming within {timeout:.0f} s")

    def pause_replay(self, timeout: float = 10.0) -> None:
        """Stop applying WAL (reads see a frozen past) until ``resume_replay``."""
        self._one("select pg_wal_replay_pause()::text")
        procs.wait_until(lambda: self._one("select pg_get_wal_replay_pause_state()") == "paused",
                         timeout)

    def resume_replay(self) -> None:
        self._one("select pg_wal_replay_resume()::text")

    def set_apply_delay(self, ms: int) -> None:
        """Change ``recovery_min_apply_delay`` on the running standby."""
        with self.connect() as c:
            c.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(ms)}ms'")
            c.execute("select pg_reload_conf()")

    def lag_bytes(self) -> int:
        """WAL bytes the primary has written that this standby has not replayed yet."""
        with self.primary.connect() as p:
            head = p.execute("select pg_current_wal_insert_lsn()::text").fetchone()[0]
        return int(self._one("select pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())",
                             (head,)))

    def lag(self) -> float:
        """Seconds this standby is behind: 0.0 when it has replayed all the primary wrote,
        else the age of the last transaction it replayed."""
        if self.lag_bytes() <= 0:
            return 0.0
        v = self._one("select extract(epoch from now() - pg_last_xact_replay_timestamp())")
        return float(v) if v is not None else float("inf")

    def wait_caught_up(self, timeout: float = 30.0) -> bool:
        """Wait until this standby has replayed everything the primary wrote before the call.
        The primary first writes a marker (a logical message, in a transaction of its own, so it
        is flushed): the insert position it reports can lie past a page or segment header that
        no record reaches until the next write, and comparing with it can wait for seconds on an
        idle primary."""
        with self.primary.connect() as p:
            mark = p.execute("select pg_logical_emit_message(true, 'splitbrain', 'caught-up?')"
                             "::text").fetchone()[0]
        return procs.wait_until(
            lambda: self._one("select coalesce(pg_last_wal_replay_lsn() > %s::pg_lsn, false)",
                              (mark,)), timeout)

    def promote(self, timeout: float = 30.0) -> None:
        """End recovery: the standby becomes a primary that accepts writes."""
        if not self._one("select pg_promote(true, %s)", (int(timeout),)):
            raise ServerDied("Postgres standby", str(self.log_path), procs.tail(self.log_path),
                             why=f"did not finish promotion within {timeout:.0f} s")
