"""Lab 05's trusted code (the grader's side of a rate limiter shared by gateway processes over
Redis), imported as ``rig``.

* ``rig.ratelimit``: the world every scenario builds: :class:`~rig.ratelimit.Config` (a limit,
  its window, the timeout and the bound on a decision), :class:`~rig.ratelimit.Gateway`, one API
  gateway process (a sandboxed worker with the learner's ``RateLimiter``), and
  :func:`~rig.ratelimit.gateways` to start several; the drivers (:func:`~rig.ratelimit.race`,
  :func:`~rig.ratelimit.stream`, :func:`~rig.ratelimit.alternate`, :func:`~rig.ratelimit.hammer`,
  :func:`~rig.ratelimit.paced`, :func:`~rig.ratelimit.bursts`, ...); the exploration that controls
  the moment: :func:`~rig.ratelimit.convoy` (every gateway held at the same boundary between two
  round trips by the ``stall`` fault), :func:`~rig.ratelimit.find_release` (when a limiter lets
  go of a burst) and :class:`~rig.ratelimit.Storm` (a seeded fault schedule, noting when each
  fault surely held); :func:`~rig.ratelimit.declared_policy` (the ``FAILURE_POLICY`` read from
  source), :func:`~rig.ratelimit.key_ttls` (what the limiter left in Redis), and
  :func:`~rig.ratelimit.judge_history`, every guarantee of lab.toml over a whole history.
* ``rig.checkers``: the lab's checkers, one per guarantee (``over-limit`` against the token
  bucket's envelope; ``starved``: a quiet burst, a steady client or a busy one refused what it is
  owed; ``hung-decision`` and ``bad-decision``; ``policy-broken``; ``unbounded-keys``) over
  :class:`~rig.checkers.Decision` records read from a history.
* ``rig.scenario``: the notebook's :class:`~rig.scenario.Scenario` (an experiment with gateways
  and a fault proxy in front of Redis, every fault through its nemesis) and
  :func:`~rig.scenario.plot_admissions`, one client's admissions against the envelope.
* ``rig.faults``: the one fault only this lab has, the ``window-boundary`` condition.

The hidden tests, the public tests, the notebook and the bench use them; no worker ever runs this
code (the gateways run only the learner's ``limiter.py``).
"""
