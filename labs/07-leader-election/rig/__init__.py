"""Lab 07's trusted code (the grader's side of leader election), imported as ``rig``.

* ``rig.world``: the world every scenario builds: :func:`~rig.world.prepare` applies the lab's
  ``schema.sql`` (``charges`` and ``fence``), :func:`~rig.world.charges` reads every charge the
  job really made, :func:`~rig.world.nodes` spawns workers running the learner's
  ``LeaderElection``, and :class:`~rig.world.LeaseStore` is a private Redis primary with a
  replica behind a fault proxy (the target of the kit's ``replica-failover``).
* ``rig.checkers``: the lab's checkers (``split-brain``, ``stale-leader-write``,
  ``duplicate-tick``, ``no-leader``), each over the whole history and the charges.

The hidden tests, the public tests and the notebook use both; no worker ever runs this code. The
lab injects only the kit's faults, so there is no ``rig/faults.py``.
"""
