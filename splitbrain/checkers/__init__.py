"""Pure checkers: ``check_xxx(history or plain data, ...) -> Verdict`` (see ``base``).

Generic checkers, one module per property, each documenting its anomaly kinds:

* ``mutex``: ``check_fencing`` (stale-write), ``check_mutual_exclusion`` (overlapping-holders)
* ``delivery``: ``check_delivery`` (lost-event, phantom-event, duplicate-event),
  ``check_order`` (out-of-order)
* ``ratelimit``: ``check_rate`` (over-limit, starved) over every sliding window
* ``saga``: ``check_sagas`` (dangling-saga, double-charge, double-refund, not-conserved)
* ``sessions``: ``check_sessions`` (stale-read, non-monotonic-read)
* ``linearizable``: ``check_register`` (not-linearizable; "unknown" when out of budget)

A lab's own checkers, built on the same Verdict, live with the lab in its rig
(``labs/NN-slug/rig/``), not here.
"""
from splitbrain.checkers.base import Anomaly, Verdict, verdict

__all__ = ["Anomaly", "Verdict", "verdict"]
