"""Lab 02's trusted code (the transactional outbox), imported as ``rig``.

* ``rig.outbox``: the worker side, ``connector`` (``Ref("rig.outbox:connector")``), which hands
  the learner's component a ``connect()`` whose connections carry the ``before_commit`` /
  ``after_commit`` crash points; and the grader side's topic reader (``read_topic``,
  ``create_topic``), which reads a topic to its end without trusting tansu's watermarks.
* ``rig.world``: one test's world (``world`` fixture, ``World``): the schema in the test's own
  database, a private tansu broker behind a fault proxy, helpers that spawn the learner's
  ``OrderService`` / ``Relay`` / ``OrderProjection`` and drive them, and ``Replay``, the grader
  playing events into the consumer as a consumer group does.
* ``rig.checkers``: ``check_outbox`` (the topic against the database's truth) and
  ``check_projection`` (the read model against it).
* ``rig.faults``: the lab's own fault, ``redeliver`` (a consumer group rewinds and delivers the
  same events again).

Only ``rig.outbox`` runs inside a sandboxed worker (from a copy of this folder); it reads no file.
"""
