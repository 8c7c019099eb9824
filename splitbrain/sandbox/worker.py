"""The sandboxed worker: ``python -m splitbrain.sandbox.worker RPC_IN_FD RPC_OUT_FD``.

It is one single-threaded process, like a Jepsen process: it reads one JSON request at a time from
its RPC pipe, runs it, and writes one answer. The learner's component is imported here and only
here; its prints go to the worker's stdout/stderr, which the grader points at a log file.
The first request is ``init``: it applies the resource limits, keeps the resources and imports the
component (an import error is the answer to ``init``).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys
import traceback
from typing import Any

class Failure(Exception):
    """An error the worker reports with a plain message (no learner traceback to show)."""


def apply_limits(limits: dict) -> None:
    """rlimits of this process: address space, open files, no core files, and processes when the
    worker runs as its own user (RLIMIT_NPROC counts every process of the user)."""
    mb = limits.get("memory_mb")
    if mb:
        resource.setrlimit(resource.RLIMIT_AS, (mb * 1024 * 1024, mb * 1024 * 1024))
    n = limits.get("open_files")
    if n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    procs = limits.get("processes")
    if procs and limits.get("own_user"):
        resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))


class WorkerState:
    def __init__(self, init: dict) -> None:
        self.resources: dict[str, Any] = dict(init.get("resources") or {})
        self.objects: dict[int, Any] = {}
        self.next_id = 1
        self.module = None
        self.component = init["component"]
        stem = os.path.splitext(os.path.basename(self.component))[0]
        self.module_name = init.get("module") or stem
        self.rig = init.get("rig")
        self._clock = None

    # -- resources ------------------------------------------------------------------------
    @property
    def clock(self):
        if self._clock is None:
            from splitbrain.faults.clock import Clock
            self._clock = Clock()
        return self._clock

    def resolve_ref(self, name: str, kwargs: dict) -> Any:
        res = self.resources
        if name == "redis":
            import redis
            return redis.Redis.from_url(self._need("redis_url"), **kwargs)
        if name == "pg":
            import psycopg
            return psycopg.connect(self._need("pg_url"), **kwargs)
        if name == "clock":
            return self.clock
        if ":" in name:
            return self.helper(name, f"Ref({name!r})")(res, **kwargs)
        if name in res:
            return res[name]
        raise Failure(f"Ref({name!r}): unknown resource; this worker has redis, pg, clock and "
                      f"{', '.join(sorted(res)) or 'no other resources'}")

    def helper(self, name: str, what: str) -> Any:
        """The trusted function ``module:function`` of the lab's rig (``rig.``) or of the kit
        (``splitbrain.``): what a Ref builds with, or what ``call`` runs beside the component."""
        mod, _, fn = name.partition(":")
        if not (mod.startswith("splitbrain.") or mod == "rig" or mod.startswith("rig.")):
            raise Failure(f"{what}: a helper is trusted code: a module of the lab's "
                          f"rig (rig.x:make_thing) or of the kit (splitbrain.x:make_thing)")
        if (mod == "rig" or mod.startswith("rig.")) and not self.rig:
            raise Failure(f"{what}: this worker was spawned without its lab's rig")
        try:
            return getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise Failure(f"{what}: cannot load the helper: {e}") from None

    def _need(self, key: str) -> str:
        if not self.resources.get(key):
            raise Failure(f"this worker was spawned without resources[{key!r}]; the test must "
                          f"ask for the service in lab.toml `services`")
        return self.resources[key]

    def decode(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "__ref__" in value:
                return self.resolve_ref(value["__ref__"], value.get("kwargs") or {})
            if "__obj__" in value:
                return self.get_obj(value["__obj__"])
            return {k: self.decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        return value

    def get_obj(self, handle: int) -> Any:
        try:
            return self.objects[handle]
        except KeyError:
            raise Failure(f"object #{handle} does not exist in this worker (it was restarted?)") \
                from None

    def keep(self, obj: Any) -> dict:
        h = self.next_id
        self.next_id += 1
        self.objects[h] = obj
        return {"__obj__": h, "type": type(obj).__name__}

    def result(self, value: Any) -> Any:
        """A JSON answer; sets become sorted lists, bytes text, other objects remote handles."""
        if isinstance(value, (set, frozenset)):
            value = sorted(value, key=repr)
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "backslashreplace")
        if isinstance(value, (list, tuple)):
            return [self.result(v) for v in value]
        if isinstance(value, dict):
            return {k if isinstance(k, str) else str(k): self.result(v)
                    for k, v in value.items()}
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        return self.keep(value)

    # -- ops --------------------------------------------------------------------------------
    def load(self) -> dict:
        if self.rig:  # the lab's trusted package, registered by path before any learner code
            from splitbrain import rig
            rig.register(self.rig, with_faults=False)
        spec = importlib.util.spec_from_file_location(self.module_name, self.component)
        if spec is None or spec.loader is None:
            raise Failure(f"cannot import {self.component}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[self.module_name] = mod
        spec.loader.exec_module(mod)
        self.module = mod
        return {"names": sorted(n for n in vars(mod) if not n.startswith("_")), "pid": os.getpid()}

    def lookup(self, name: str) -> Any:
        if ":" in name:         # a trusted helper run in the worker, beside the component
            return self.helper(name, f"call {name!r}")
        try:
            return getattr(self.module, name)
        except AttributeError:
            raise Failure(f"the component {os.path.basename(self.component)} defines no "
                          f"{name!r}; the lab needs it (see `requires` in lab.toml)") from None

    def op_new(self, req: dict) -> Any:
        factory = self.lookup(req["factory"])
        obj = factory(*self.decode(req.get("args") or []), **self.decode(req.get("kwargs") or {}))
        return self.keep(obj)

    def op_call(self, req: dict) -> Any:
        target = req.get("obj")
        method = req["method"]
        if target is None:
            fn = self.lookup(method)
        else:
            obj = self.get_obj(target)
            try:
                fn = getattr(obj, method)
            except AttributeError:
                raise Failure(f"{type(obj).__name__} has no method {method!r}") from None
        return self.result(fn(*self.decode(req.get("args") or []),
                              **self.decode(req.get("kwargs") or {})))

    def op_set_clock_offset(self, req: dict) -> Any:
        self.clock.set_offset(req["seconds"])
        return self.clock.state()

    def op_jump_clock(self, req: dict) -> Any:
        self.clock.jump(req["seconds"], monotonic=bool(req.get("monotonic")))
        return self.clock.state()

    def op_set_clock_rate(self, req: dict) -> Any:
        self.clock.set_rate(req["rate"])
        return self.clock.state()

    def op_arm_crash(self, req: dict) -> Any:
        from splitbrain.faults import crash
        crash.arm(req["name"], after=req.get("after", 0))
        return True

    def op_disarm_crash(self, req: dict) -> Any:
        from splitbrain.faults import crash
        crash.disarm(req["name"])
        return True

    def op_ping(self, req: dict) -> Any:
        return {"pid": os.getpid()}


def main(argv: list[str]) -> int:
    rin = os.fdopen(int(argv[1]), "rb")
    wout = os.fdopen(int(argv[2]), "wb", buffering=0)
    state: WorkerState | None = None
    main_pid = os.getpid()

    def answer(msg: dict) -> None:
        if os.getpid() != main_pid:  # a child the learner forked must never speak for the worker
            os._exit(0)
        wout.write((json.dumps(msg, separators=(",", ":")) + "\n").encode())

    def answer_raw(data: str) -> None:
        if os.getpid() != main_pid:
            os._exit(0)
        wout.write((data + "\n").encode())

    for line in rin:
        if os.getpid() != main_pid:
            os._exit(0)
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            if req["op"] == "init":
                apply_limits(req.get("limits") or {})
                state = WorkerState(req)
                value = state.load()
            elif state is None:
                raise Failure("the worker was not initialised")
            else:
                handler = getattr(state, "op_" + req["op"], None)
                if handler is None:
                    raise Failure(f"unknown worker op {req['op']!r}")
                value = handler(req)
            try:
                data = json.dumps({"id": rid, "ok": value}, separators=(",", ":"))
            except (TypeError, ValueError) as e:
                raise Failure(f"the result is not JSON: {e}") from None
            answer_raw(data)
        except BaseException as e:  # learner code may raise anything, SystemExit included
            if isinstance(e, KeyboardInterrupt):
                raise
            tb = "" if isinstance(e, Failure) else _learner_traceback(e)
            kind = "SandboxError" if isinstance(e, Failure) else type(e).__name__
            try:
                answer({"id": rid, "error": {"type": kind, "message": str(e), "traceback": tb}})
            except (TypeError, ValueError):
                answer({"id": rid, "error": {"type": kind, "message": repr(e), "traceback": tb}})
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _learner_traceback(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    keep = [f for f in frames if "splitbrain/sandbox" not in f.filename
            and not f.filename.startswith("<frozen")]
    lines = traceback.format_list(keep) + traceback.format_exception_only(type(e), e)
    return "".join(lines)[-4000:]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
