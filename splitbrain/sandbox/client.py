"""The grader's side of a sandboxed worker: spawn it, call into it, pause, kill and restart it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from splitbrain.history import call_value
from splitbrain.sandbox.hide import namespaces_work, wrap
from splitbrain.sandbox.isolation import GID, Limits, UserSlot, interpreter, private_dir
from splitbrain.sandbox.protocol import (CallTimeout, RemoteError, WorkerDied, dumps, encode)
from splitbrain.sandbox.remote import RemoteMethod, RemoteObject

# exceptions whose outcome is unknown (the operation may have happened): recorded as "info"
_UNKNOWN_OUTCOME = ("Timeout", "ConnectionError", "OperationalError", "BrokenPipe",
                    "ConnectionReset", "InterfaceError")


def hash_seed(seed: int | str, name: str) -> int:
    """PYTHONHASHSEED for a worker: the same for the same test seed and worker name."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 4294967295 + 1


class Worker:
    """One sandboxed process running the learner's component. Create with ``spawn(...)``."""

    def __init__(self, component_path: str | Path, name: str, resources: dict | None = None,
                 limits: Limits | None = None, history=None, env: dict | None = None,
                 seed: int | str = 0, log_dir: str | Path | None = None,
                 module: str | None = None, wait: bool = True,
                 rig: str | Path | None = None, hide: list[Path] | None = None) -> None:
        self.component_path = Path(component_path).resolve()
        if not self.component_path.is_file():
            raise FileNotFoundError(f"component not found: {self.component_path}")
        self.name = name
        self.resources = dict(resources or {})
        self.limits = limits or Limits()
        self.history = history
        self.env = dict(env or {})
        self.seed = seed
        self.module = module or self.component_path.stem
        self.rig = str(Path(rig).resolve()) if rig else None
        self.hide = [Path(p) for p in hide or ()]
        self._slot = UserSlot()
        self._dir = private_dir(self._slot, f"sb-{name}-")
        logs = Path(log_dir) if log_dir else self._dir.parent / (self._dir.name + "-log")
        self._own_logs = None if log_dir else logs   # made here: removed by close()
        self.log_path = logs / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[Future, str, Any]] = {}
        self._calls: list[list] = []  # calls in flight, in order: [future, method, timer]
        self._next = 0
        self._dead: WorkerDied | None = None
        self.names: list[str] = []
        self._eager = wait
        try:
            self._start()
        except BaseException:  # the component failed to import: nothing may stay behind
            self.close()
            raise

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def _crash_report(self) -> Path:
        return self._dir / "crash-report"

    def _start(self) -> None:
        self._crash_report.unlink(missing_ok=True)
        shutil.copyfile(self.component_path, self._dir / f"{self.module}.py")
        os.chmod(self._dir / f"{self.module}.py", 0o644)
        rig = None
        if self.rig:  # a copy the worker's user can read, wherever the checkout lives
            rig = self._dir / ".rig"
            if not rig.is_dir():
                shutil.copytree(self.rig, rig, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.pyc", "tests"))
                for d, _, files in os.walk(rig):
                    os.chmod(d, 0o755)
                    for f in files:
                        os.chmod(os.path.join(d, f), 0o644)
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        # what a Python process fixes when it starts (a fork server is kept per combination)
        startup = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                   "PYTHONHASHSEED": str(hash_seed(self.seed, self.name)),
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                   "MALLOC_ARENA_MAX": "2"}
        env = {**startup, "HOME": str(self._dir), "TMPDIR": str(self._dir), "PWD": str(self._dir),
               "SPLITBRAIN_CRASH_REPORT": str(self._crash_report),
               **{k: str(v) for k, v in self.env.items()}}
        found = interpreter(self._slot.uid is not None)
        if found is None:  # nobody else can run Python here: run as the grader's user
            self._slot.release()
            self._slot = UserSlot(drop=False)
            found = interpreter(False)
        python, extra = found
        env.update(extra)
        startup.update(extra)
        uid = self._slot.uid
        hide = [str(p) for p in self.hide] if uid is not None and self.hide and \
            namespaces_work() else []
        log = open(self.log_path, "ab")
        try:
            self._proc = self._forked(python, startup, env, uid, hide,
                                      (req_r, ans_w, log.fileno()))
            if self._proc is None:
                argv = [python, "-s", "-m", "splitbrain.sandbox.worker", str(req_r), str(ans_w)]
                if hide:
                    argv, uid = wrap(argv, uid, GID, self.hide), None  # drops to the uid itself
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self._dir, env=env, pass_fds=(req_r, ans_w), start_new_session=True,
                    user=uid, group=GID if uid is not None else None,
                    extra_groups=[] if uid is not None else None)
        finally:
            log.close()
            os.close(req_r)
            os.close(ans_w)
        self._out = os.fdopen(req_w, "wb", buffering=0)
        self._in = os.fdopen(ans_r, "rb")
        self._dead = None
        self._reader = threading.Thread(target=self._read_loop, args=(self._proc, self._in),
                                        name=f"sandbox-{self.name}", daemon=True)
        self._reader.start()
        fut = self._send({"op": "init", "component": str(self._dir / f"{self.module}.py"),
                          "module": self.module, "resources": self.resources,
                          "rig": str(rig) if rig else None,
                          "limits": self.limits.to_wire(self._slot.uid is not None)})
        self._init: Future | None = fut
        if self._eager:
            self.ready()

    def _forked(self, python: str, startup: dict, env: dict, uid: int | None, hide: list[str],
                fds: tuple[int, int, int]):
        """The worker forked by a fork server that has imported its client libraries already
        (``splitbrain.sandbox.zygote``); None when there is none to use (then it starts anew)."""
        from splitbrain.sandbox import zygote
        if not zygote.enabled() or any(k.startswith("PYTHON") for k in self.env):
            return None
        sources = [self.component_path] + ([Path(self.rig)] if self.rig else [])
        try:
            z = zygote.zygote_for(python, startup, zygote.preload_for(*sources))
            return z.fork({"uid": uid, "gid": GID if uid is not None else None, "hide": hide,
                           "cwd": str(self._dir), "env": env}, fds)
        except OSError:
            return None

    def ready(self) -> "Worker":
        """Wait until the worker has started and imported the component (a RemoteError if the
        import failed, every time it is asked). Every operation waits for this first, so workers
        spawned one after the other start at the same time."""
        if self._init is not None:
            info = self._wait(self._init, self.limits.start_timeout_s, "start")
            self.names = info.get("names", [])
            self._init = None
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc else -1

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._dead is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig: int) -> None:
        if self._proc and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    # Faults on the worker. They record nothing: a test injects them through the nemesis
    # (``nemesis.inject("pause", worker)``), the one route that records every fault.
    def pause(self) -> None:
        """SIGSTOP the worker (a GC pause); calls in flight stall until ``resume()``."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the worker and everything it started; its objects are gone."""
        self._terminate()

    def restart(self) -> None:
        """Kill (if alive) and start again: the component is re-imported, old objects are gone."""
        self._terminate()
        self._start()

    def close(self) -> None:
        self._terminate()
        self._slot.release()
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._own_logs is not None:  # no log_dir given: nobody will look for this log later
            shutil.rmtree(self._own_logs, ignore_errors=True)

    def _terminate(self) -> None:
        with self._lock:
            for entry in self._calls:
                if entry[2] is not None:
                    entry[2].cancel()
            self._calls.clear()
        if self._proc is None:
            return
        from splitbrain.services.procs import processes, send
        # the worker and everything it started, in its group or in sessions of its own (as root
        # the uid sweep below catches even orphans; without root this is what there is)
        victims = processes(self._proc.pid) if self._proc.poll() is None else []
        self._signal(signal.SIGKILL)
        send(victims, signal.SIGKILL)
        self._signal(signal.SIGCONT)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._slot.sweep()
        self._reader.join(timeout=5)
        for f in (self._out, self._in):
            try:
                f.close()
            except OSError:
                pass

    # -- faults inside the worker --------------------------------------------------------------
    def skew_clock(self, seconds: float) -> dict:
        """Put the worker's Clock ``seconds`` away from real time (positive = ahead)."""
        self.ready()
        return self._wait(self._send({"op": "set_clock_offset", "seconds": seconds}),
                          self.limits.call_timeout_s, "set_clock_offset")

    def jump_clock(self, seconds: float, monotonic: bool = False) -> dict:
        """Step the worker's wall clock (or, with ``monotonic``, its monotonic clock too)."""
        self.ready()
        return self._wait(self._send({"op": "jump_clock", "seconds": seconds,
                                      "monotonic": monotonic}),
                          self.limits.call_timeout_s, "jump_clock")

    def set_clock_rate(self, rate: float) -> dict:
        """Make the worker's clocks run at ``rate`` times real time (drift)."""
        self.ready()
        return self._wait(self._send({"op": "set_clock_rate", "rate": rate}),
                          self.limits.call_timeout_s, "set_clock_rate")

    def arm_crash(self, name: str, after: int = 0) -> None:
        """Make ``crash_point(name)`` kill this worker after ``after`` more passes (0: next hit)."""
        self.ready()
        self._wait(self._send({"op": "arm_crash", "name": name, "after": after}),
                   self.limits.call_timeout_s, "arm_crash")

    def disarm_crash(self, name: str) -> None:
        self.ready()
        self._wait(self._send({"op": "disarm_crash", "name": name}),
                   self.limits.call_timeout_s, "disarm_crash")

    def ping(self) -> dict:
        self.ready()
        return self._wait(self._send({"op": "ping"}), self.limits.call_timeout_s, "ping")

    # -- calls ------------------------------------------------------------------------------
    def new(self, factory: str, *args: Any, **kwargs: Any) -> RemoteObject:
        """Build ``factory(*args, **kwargs)`` (a class or function of the component) there."""
        self.ready()
        fut = self._send({"op": "new", "factory": factory, "args": encode(list(args)),
                          "kwargs": encode(kwargs)})
        h = self._wait(fut, self.limits.call_timeout_s, f"new {factory}")
        return RemoteObject(self, h["__obj__"], h.get("type", factory))

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call a module-level function of the component, or a trusted helper of the lab's rig
        or the kit (``"rig.x:read_loop"``) that runs in the worker beside it: a loop timed on the
        worker's own clock, with no round trip per step."""
        return self._call(None, function, args, kwargs).result()

    def fn(self, function: str) -> RemoteMethod:
        """A module-level function as a callable (``w.fn("transfer").async_(...)``)."""
        return RemoteMethod(self, None, function)

    def _call(self, obj: int | None, method: str, args: tuple, kwargs: dict) -> Future:
        self.ready()
        wire_args, wire_kwargs = encode(list(args)), encode(kwargs)
        inv = None
        if self.history is not None:
            inv = self.history.invoke(self.name, method, call_value(wire_args, wire_kwargs))
        out: Future = Future()
        try:
            fut = self._send({"op": "call", "obj": obj, "method": method, "args": wire_args,
                              "kwargs": wire_kwargs})
        except WorkerDied as e:
            self._complete(inv, "info", {"error": "WorkerDied", "message": str(e).splitlines()[0]})
            out.set_exception(e)
            return out
        entry: list = [fut, method, None]
        with self._lock:
            self._calls.append(entry)
            if len(self._calls) == 1:
                self._arm(entry)

        def done(f: Future) -> None:
            with self._lock:
                if entry[2] is not None:
                    entry[2].cancel()
                if entry in self._calls:
                    self._calls.remove(entry)
                if self._calls and self._calls[0][2] is None:
                    self._arm(self._calls[0])
            exc = f.exception()
            if exc is None:
                value = self._wrap(f.result())
                self._complete(inv, "ok", f.result())
                out.set_result(value)
                return
            if isinstance(exc, RemoteError):
                unknown = any(s in exc.type for s in _UNKNOWN_OUTCOME)
                self._complete(inv, "info" if unknown else "fail",
                               {"error": exc.type, "message": exc.message})
            else:
                first = str(exc).splitlines()[0] if str(exc) else ""
                self._complete(inv, "info", {"error": type(exc).__name__, "message": first})
            out.set_exception(exc)

        fut.add_done_callback(done)
        return out

    def _arm(self, entry: list) -> None:
        """Start the clock of the call at the head of the queue: the worker runs calls one at a
        time, so a call's time limit counts from when the worker could start it."""
        timer = threading.Timer(self.limits.call_timeout_s, self._on_timeout,
                                args=(entry[0], entry[1]))
        timer.daemon = True
        entry[2] = timer
        timer.start()

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "__obj__" in value and len(value) <= 2:
                return RemoteObject(self, value["__obj__"], value.get("type", ""))
            return {k: self._wrap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        return value

    def _complete(self, inv, type_: str, value: Any) -> None:
        if inv is not None:
            self.history.complete(inv, type_, value)

    def _on_timeout(self, fut: Future, what: str) -> None:
        if fut.done():
            return
        self._dead = self._dead or WorkerDied(f"{self.name} killed after a call timed out")
        err = CallTimeout(f"{self.name}.{what}() did not answer within "
                          f"{self.limits.call_timeout_s:g} s; the worker was killed (an infinite "
                          f"loop, a blocking call without a timeout, or a deadlock?)")
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for f, _, _ in pending:
            if not f.done():
                f.set_exception(err if f is fut else WorkerDied(
                    f"{self.name} was killed because an earlier call timed out"))
        self._signal(signal.SIGKILL)
        self._signal(signal.SIGCONT)

    def _send(self, msg: dict) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._dead is not None or self._proc is None or self._proc.poll() is not None:
                raise self._dead or self._died()
            self._next += 1
            msg["id"] = self._next
            self._pending[self._next] = (fut, msg["op"], None)
            try:
                self._out.write(dumps(msg))
            except (BrokenPipeError, ValueError, OSError):
                self._pending.pop(self._next, None)
                raise self._died() from None
        return fut

    def _wait(self, fut: Future, timeout: float, what: str) -> Any:
        try:
            return fut.result(timeout=timeout)
        except TimeoutError:
            self._on_timeout(fut, what)
            raise CallTimeout(f"{self.name}: {what} did not answer within {timeout:g} s; the "
                              f"worker was killed") from None

    def _died(self) -> WorkerDied:
        rc = self._proc.poll() if self._proc else None
        if self._proc and rc is None:
            try:
                rc = self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                rc = None
        how = (f"killed by signal {signal.Signals(-rc).name}" if rc is not None and rc < 0 else
               f"exited with status {rc}" if rc is not None else "stopped answering")
        hint = " (memory limit?)" if rc is not None and rc < 0 and -rc in (6, 11) else ""
        try:
            point = self._crash_report.read_text().split()[0]
            hint = f" at crash point {point!r} (armed by the test)"
        except (OSError, IndexError):
            pass
        return WorkerDied(f"worker {self.name} died: {how}{hint}", rc, self.log_tail())

    def _read_loop(self, proc: subprocess.Popen, stream) -> None:
        try:
            for line in stream:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    entry = self._pending.pop(msg.get("id"), None)
                if entry is None:
                    continue
                fut = entry[0]
                if fut.done():
                    continue
                if "error" in msg:
                    e = msg["error"]
                    fut.set_exception(RemoteError(e.get("type", "Error"), e.get("message", ""),
                                                  e.get("traceback", "")))
                else:
                    fut.set_result(msg.get("ok"))
        except (OSError, ValueError):
            pass
        if self._proc is not proc:
            return
        died = self._dead or self._died()
        self._dead = died
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for fut, _, _ in pending:
            if not fut.done():
                fut.set_exception(died)

    def __repr__(self) -> str:
        return f"<Worker {self.name} pid={self.pid} {'alive' if self.alive else 'dead'}>"


def spawn(component_path: str | Path, name: str, resources: dict | None = None,
          limits: Limits | None = None, **kw: Any) -> Worker:
    """Start a sandboxed worker running ``component_path``. Keyword options: history, env, seed,
    log_dir, module (the import name; default the file's stem), wait (default True: return once
    the component is imported; False: return at once, the first operation waits), rig (the lab's
    rig folder, so that ``Ref("rig.x:make")`` helpers can be built in the worker), hide (folders
    the worker must not read; see ``splitbrain.sandbox.hide``)."""
    return Worker(component_path, name, resources, limits, **kw)
