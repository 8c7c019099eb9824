"""Lab 03's trusted code (sagas and compensations), imported as ``rig``.

* ``rig.saga``: what the learner's orchestrator imports: ``ParticipantClient`` (the HTTP client of
  inventory, payment and shipping), its errors (``Declined``, ``OutcomeUnknown``, ``BadRequest``)
  and ``participants``, the worker-side helper ``Ref("rig.saga:participants")``. It runs inside a
  sandboxed worker (from a copy of this folder): standard library only, it reads no file.
* ``rig.saga_server``: the participants themselves (``Participants``), an HTTP server in the
  grader's process with its own schemas in the test's database, its ledgers (the truth the
  checker reads) and the faults the nemesis arms on it.
* ``rig.saga_rig``: ``SagaRig`` (and the ``rig`` fixture): the participants plus one sandboxed
  worker running the learner's ``Orchestrator``; books orders, kills the orchestrator at a
  participant's call, restarts it, and judges every saga from the ledgers.
* ``rig.checkers``: ``check_saga_ledger`` (saga atomicity from the ledgers) and ``effects`` (the
  ledgers as the kit's generic saga checker reads them).
* ``rig.faults``: the lab's own faults, ``decline``, ``lost-reply`` and ``unavailable`` (what a
  participant does to one call). The orchestrator's death at a participant's call is the kit's
  ``kill``; a booking sent twice is the kit's ``duplicate``.
"""
