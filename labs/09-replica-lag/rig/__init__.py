"""Lab 09's trusted code (the grader's side of replica lag), imported as ``rig``.

* ``rig.world``: the world every scenario builds: :class:`~rig.world.Cluster`, a private primary
  with two streaming standbys (fault targets of ``replay-pause``, ``standby-lag``, ``promote``,
  ``restart`` and ``stream-cut``);
  :func:`~rig.world.make_table`, one test's fresh table; :func:`~rig.world.app`, a worker running
  the learner's ``SessionStore`` with connections built by the trusted helper
  ``Ref("rig.world:connect", url=...)``; :func:`~rig.world.other_write`, another user's write;
  :func:`~rig.world.snapshot`, what each standby really holds.
* ``rig.checkers``: the lab's checkers (``stale-read``, ``non-monotonic-read``,
  ``needless-primary-read``), each over the whole history.
* ``rig.faults``: the lab's own fault, ``stream-cut`` (a standby receives no more WAL).
"""
