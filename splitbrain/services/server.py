"""One server process the kit owns: start (wait until ready, explain a death), stop, kill,
restart. Subclasses say how to build the command line and how to tell it is ready."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from . import procs
from .errors import ServerDied


class _Died(Exception):
    pass


def since(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Server:
    """Base: ``detached`` servers outlive this Python process (shared services recorded in the
    state file); others are children of it, stopped when their handle closes."""

    service = "server"
    stop_signal = signal.SIGTERM
    run_as_service_user = False
    port_taken_marks = ("already in use", "Address in use", "AddrInUse")

    def __init__(self, port: int, log_path: Path, *, detached: bool = False, auto_port: bool = False):
        self.port, self.log_path = port, Path(log_path)
        self.detached, self.auto_port = detached, auto_port
        self.pid: int | None = None
        self.started: str | None = None
        self._popen: subprocess.Popen | None = None

    # subclasses ------------------------------------------------------------------------------
    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return procs.port_open(self.port)

    def before_start(self) -> None:
        pass

    # lifecycle -------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.pid is not None and procs.is_same_process(self.pid, self.started)

    def _dead(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is not None
        return self.pid is None or not procs.alive(self.pid)

    def start(self, timeout: float = 60.0):
        for attempt in range(4):
            if not self.auto_port:
                procs.check_port_free(self.service, self.port)
            self.before_start()
            mark = self.log_path.stat().st_size if self.log_path.exists() else 0
            user = procs.service_user() if self.run_as_service_user else None
            if self.detached:
                self._popen = None
                self.pid = procs.launch_detached(self.argv(), self.log_path, user=user)
            else:
                self._popen = procs.launch(self.argv(), self.log_path, user=user)
                self.pid = self._popen.pid
            self.started = procs.start_time(self.pid)

            def died() -> None:
                if self._dead():
                    raise _Died()
            try:
                if procs.wait_until(self.ready, timeout, fail=died):
                    return self
            except _Died:
                self._reap()
                text = since(self.log_path, mark)
                if self.auto_port and attempt < 3 and any(m in text for m in self.port_taken_marks):
                    self.port = procs.free_port()
                    continue
                if any(m in text for m in self.port_taken_marks):
                    from .errors import PortInUse
                    raise PortInUse(self.service, self.port) from None
                raise ServerDied(self.service, str(self.log_path), procs.tail(self.log_path)) from None
            self.kill()
            raise ServerDied(self.service, str(self.log_path), procs.tail(self.log_path),
                             why=f"did not become ready within {timeout:.0f} s")
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 15.0) -> None:
        """Orderly shutdown; SIGKILL if it does not finish within ``timeout``."""
        if self.pid is not None:
            if getattr(self, "_paused", None):
                self.resume()   # a stopped process would hold the signal until SIGCONT
            procs.stop_pid(self.pid, self.started, self.stop_signal, timeout)
            self._reap()

    def kill(self) -> None:
        """SIGKILL the server and every process it started; wait until all of them are gone."""
        if self.pid is not None and procs.is_same_process(self.pid, self.started):
            procs.kill_tree(self.pid, 10.0)
        self._reap()

    def pause(self) -> None:
        """SIGSTOP the server and its children (a stalled server: calls hang, nothing fails)."""
        if self.running():
            self._paused = procs.send(procs.processes(self.pid), signal.SIGSTOP)

    def resume(self) -> None:
        paused = getattr(self, "_paused", None) or [procs.process(self.pid)]
        procs.send([p for p in paused if p is not None], signal.SIGCONT)
        self._paused = []

    def restart(self, timeout: float = 60.0):
        if self.running():
            self.stop()
        return self.start(timeout)

    def _reap(self) -> None:
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def record(self) -> dict:
        return {"pid": self.pid, "started": self.started, "port": self.port,
                "log": str(self.log_path), "cmd": Path(self.argv()[0]).name}
