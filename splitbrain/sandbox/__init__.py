"""Learner code never runs in the grader's process: it runs in workers started here.

```python
w = spawn("counter.py", name="a", resources={"redis_url": ...}, limits=Limits(memory_mb=512))
counter = w.new("Counter", Ref("redis"), key="k", clock=Ref("clock"))
counter.increment()            # one RPC; recorded in the worker's history when it has one
fut = counter.increment.async_()   # concurrent from the grader's side; the worker runs calls in order
w.pause(); w.resume(); w.kill(); w.restart(); w.skew_clock(2.0); w.arm_crash("after_commit")
# (tests inject these through the nemesis, which records them: nemesis.inject("pause", w))
```
"""
# Names are loaded on first use (PEP 562): a sandboxed worker imports splitbrain.sandbox.worker,
# and with it this package, at every start; it must not pay for the grader's side (client,
# history, hiding), which is most of the kit's share of a worker's start-up time.
_NAMES = {"spawn": "client", "Worker": "client", "hash_seed": "client",
          "RemoteObject": "remote", "RemoteMethod": "remote", "Limits": "isolation",
          "CallTimeout": "protocol", "Ref": "protocol", "RemoteError": "protocol",
          "SandboxError": "protocol", "WorkerDied": "protocol"}

__all__ = ["spawn", "Worker", "Limits", "Ref", "RemoteObject", "RemoteMethod", "RemoteError",
           "CallTimeout", "WorkerDied", "SandboxError", "hash_seed"]


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
