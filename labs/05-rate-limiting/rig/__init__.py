"""Lab 05's trusted code (the grader's side of a rate limiter shared by gateway processes over
Redis), imported as ``rig``.

* ``rig.ratelimit``: the world every scenario builds: :class:`~rig.ratelimit.Gateway`, one API
  gateway process (a sandboxed worker with the learner's ``RateLimiter``); the drivers
  :func:`~rig.ratelimit.race`, :func:`~rig.ratelimit.stream`, :func:`~rig.ratelimit.alternate`;
  :func:`~rig.ratelimit.declared_policy` (the ``FAILURE_POLICY`` read from source),
  :func:`~rig.ratelimit.key_ttls` (what the limiter left in Redis), the window arithmetic, and
  :func:`~rig.ratelimit.judge`, the verdict a test fails with.
* ``rig.checkers``: the lab's checkers (``over-limit`` against the token bucket's envelope,
  ``starved``, ``hung-decision``, ``policy-broken``, ``bad-decision``, ``unbounded-keys``) over
  :class:`~rig.checkers.Decision` records read from a history.
* ``rig.scenario``: the notebook's :class:`~rig.scenario.Scenario` (an experiment with gateways
  and a fault proxy in front of Redis, every fault through its nemesis) and
  :func:`~rig.scenario.plot_admissions`, one client's admissions against the envelope.
* ``rig.faults``: the one fault only this lab has, the ``window-boundary`` condition.

The hidden tests, the public tests, the notebook and the bench use them; no worker ever runs this
code (the gateways run only the learner's ``limiter.py``).
"""
