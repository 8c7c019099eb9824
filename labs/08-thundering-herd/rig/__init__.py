"""Lab 08's trusted code (the grader's side of a read-through cache and its herd of clients),
imported as ``rig``.

* ``rig.world``: the world every scenario builds: the origin (an expensive Postgres query that
  counts every call it serves, :func:`~rig.world.prepare`, :func:`~rig.world.origin_calls`,
  :func:`~rig.world.bump`, :class:`~rig.world.Origin`), the clients (workers running the learner's
  ``HerdCache``: :func:`~rig.world.clients`, :func:`~rig.world.together`,
  :class:`~rig.world.Readers`) and :class:`~rig.world.CacheStore`, a private Redis with a door per
  client that counts every reconnection.
* ``rig.origin``: the only part that runs inside a worker: the origin callable, a Redis client
  without retries of its own, and the seeded ``random.Random`` each cache jitters with.
* ``rig.checkers``: the lab's checkers (``stampede``, ``expiry-wave``, ``retry-storm``,
  ``stale-forever``, ``slow-caller``) and :func:`~rig.checkers.judge`, all of them at once.
* ``rig.scenario``: the notebook's experiments and the picture of the origin's load.
* ``rig.faults``: the one fault only this lab has, ``origin-down``.
"""
