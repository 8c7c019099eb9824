"""Lab 00's trusted code (the bank and the network a transfer crosses), imported as ``rig``.

* ``rig.bank``: ``Bank``, the transfer service: an HTTP server in the grader's (or the
  notebook's) process over Postgres, with the accounts and every transfer in its own schema (the
  ground truth), idempotency keys, a status lookup, and the faults the nemesis arms on it.
* ``rig.world``: ``World``, the bank, the fault proxy in front of it (the network) and the
  learner's ``TransferClient`` in sandboxed workers; it makes transfers, waits until nothing is
  left in flight, and judges.
* ``rig.checkers``: the lab's checkers (``duplicate-effect``, ``unknown-reported-as-failed``,
  ``phantom-success``, ``needless-unknown``, ``overdue``, ...), pure functions of the history and
  the bank's table.
* ``rig.faults``: the lab's own faults, ``lost-reply`` and ``held-request`` (what happens to one
  request at the bank). The network's faults are the kit's (``latency``, ``blackhole``,
  ``reset``, ``stall``) on the proxy.

No worker runs this code: the learner's client is plain HTTP (the standard library is enough).
"""
