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
from splitbrain.sandbox.client import Worker, hash_seed, spawn
from splitbrain.sandbox.remote import RemoteMethod, RemoteObject
from splitbrain.sandbox.isolation import Limits
from splitbrain.sandbox.protocol import CallTimeout, Ref, RemoteError, SandboxError, WorkerDied

__all__ = ["spawn", "Worker", "Limits", "Ref", "RemoteObject", "RemoteMethod", "RemoteError",
           "CallTimeout", "WorkerDied", "SandboxError", "hash_seed"]
