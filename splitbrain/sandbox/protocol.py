"""The wire format between the grader and a sandboxed worker, and the errors a call can raise.

One JSON object per line on a dedicated pair of pipes (never the worker's stdout, which belongs to
the learner's prints). Requests: ``{"id": n, "op": "new"|"call"|"set_clock_offset"|"jump_clock"|
"arm_crash"|"ping"|"init", ...}``; answers: ``{"id": n, "ok": value}`` or ``{"id": n, "error":
{"type", "message", "traceback"}}``. Arguments may contain references that the worker builds from
its own resources (``{"__ref__": name, "kwargs": {...}}``) and handles of remote objects
(``{"__obj__": id}``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Ref", "RemoteError", "CallTimeout", "WorkerDied", "SandboxError", "encode", "dumps"]


@dataclass(frozen=True)
class Ref:
    """An argument built inside the worker from its resources.

    ``Ref("redis")``: a new ``redis.Redis`` client for ``resources["redis_url"]``;
    ``Ref("pg")``: a new psycopg connection (autocommit off) to ``resources["pg_url"]``;
    ``Ref("clock")``: the worker's Clock (the one the nemesis skews);
    ``Ref("redis_url")``, ``Ref("pg_url")``, ``Ref("kafka_bootstrap")`` or any other resource key:
    the plain value; ``Ref("rig.x:make_thing", option=1)``: the trusted helper
    ``make_thing(resources, option=1)`` called inside the worker (only modules of the lab's rig,
    ``rig.``, or of the kit, ``splitbrain.``).
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, name: str, **kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Ref needs a resource name such as 'redis', got {name!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "kwargs", kwargs)

    def to_wire(self) -> dict:
        return {"__ref__": self.name, "kwargs": self.kwargs}


class SandboxError(Exception):
    """Base of everything a sandboxed call can raise in the grader."""


class RemoteError(SandboxError):
    """The learner's code raised: ``type`` and ``message`` of the exception, and its traceback."""

    def __init__(self, type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message
        self.traceback = traceback


class CallTimeout(SandboxError):
    """A call did not answer within its time limit; the worker was killed (outcome unknown)."""


class WorkerDied(SandboxError):
    """The worker process is gone (crash, os._exit, kill, memory limit)."""

    def __init__(self, message: str, returncode: int | None = None, log_tail: str = "") -> None:
        super().__init__(message + (f"\n--- last lines of its output ---\n{log_tail}"
                                    if log_tail.strip() else ""))
        self.returncode = returncode
        self.signal = -returncode if returncode is not None and returncode < 0 else None
        self.log_tail = log_tail


def encode(value: Any) -> Any:
    """Turn call arguments into JSON-able wire values (Refs and remote handles become markers)."""
    if isinstance(value, Ref):
        return value.to_wire()
    handle = getattr(value, "_sb_handle", None)
    if handle is not None:
        return {"__obj__": handle}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"dictionary keys sent to a worker must be strings, got {bad[0]!r}")
        return {k: encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot send {type(value).__name__} {value!r} to a worker: arguments must be "
                    f"JSON values, Ref(...) or objects made by worker.new(...)")


def dumps(msg: dict) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()
