"""Lab 04's trusted code (the grader's side of a sharded key-value store), imported as ``rig``.

* ``rig.partitioning``: the world every scenario builds: :class:`~rig.partitioning.Shards`, the
  private Redis shard servers of one test (read directly: where every key really is), and
  :func:`~rig.partitioning.store`, a sandboxed worker with the learner's ``ShardedStore``; the key
  sets the scenarios write; reference partitioners for the notebook's pictures; and
  :func:`~rig.partitioning.expect_reads`, a failed read check with its picture cut down to a few
  keys.
* ``rig.checkers``: the lab's checkers (``misrouted-read``, ``lost-write``, ``moved-too-many``,
  ``imbalanced``, ``unplaced-key``).
* ``rig.faults``: the faults only this lab has: ``add-shard`` and ``remove-shard`` act on a
  test's shards; ``hash-seed``, ``skewed-keys`` and ``stale-map`` are conditions of the scenario,
  recorded around the part of a test where they hold. They join the kit's fault registry when the
  grader loads the rig, and whenever ``rig.partitioning`` is imported (as the notebook does).

The hidden tests, the public tests, the notebook and the bench use them; no worker ever runs this
code (the grader reads and starts the shards itself).
"""
