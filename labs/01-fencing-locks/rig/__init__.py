"""Lab 01's trusted code (the grader's side of locks and fencing tokens), imported as ``rig``.

* ``rig.fencing``: the world every scenario builds: :func:`~rig.fencing.prepare` applies the
  lab's ``schema.sql`` (the ``resource`` table and its audit trail) to a namespace,
  :func:`~rig.fencing.applied` reads what the storage really accepted, and
  :func:`~rig.fencing.holder` spawns a worker with the learner's ``RedisLock`` and ``FencedStore``.
* ``rig.checkers``: the lab's checkers (``stale-write``, ``rejected-write``, ``lost-update``), with
  the kit's ``check_mutual_exclusion`` (``overlapping-holders``) beside them.

The hidden tests, the public tests and the notebook use both; no worker ever runs this code. The
lab injects only the kit's faults (pause, partition, clock-skew, kill), so there is no
``rig/faults.py``.
"""
