"""Lab 10's trusted code (consumer groups), imported as ``rig``.

* ``rig.effects``: the worker side, ``make`` (``Ref("rig.effects:make", member=...)``): the
  ``effects`` object a member is built with -- its ``confluent_kafka.Consumer`` with the lab's
  timings fixed, its Postgres connections, and ``apply(conn, msg)``, a record's effect with the
  ``apply`` crash point and the slow-record gate in it.
* ``rig.world``: one test's world (``world`` fixture, ``World``): the schema in the test's own
  database, a private broker, the topic and the group, the grader's producer (``Feed``), members
  stepped one poll at a time, and the grader's ground truth (effects, committed offsets).
* ``rig.checkers``: ``check_applied_once`` (lost-record, duplicate-effect, stuck-partition) and
  ``check_steps`` (rebalance-storm).
* ``rig.faults``: the lab's own fault, ``slow-record``.

Only ``rig.effects`` runs inside a sandboxed worker (from a copy of this folder); it reads no file.
"""
