"""Lab 02's own fault (``redeliver``) on a ``Replay``, and the ``crash`` fault on a worker whose
crash point fired: both through a nemesis, recorded in the history."""
from __future__ import annotations

import pytest

from rig.world import Crashable, Replay
from splitbrain.faults import Nemesis
from splitbrain.faults.registry import FAULTS, FaultError
from splitbrain.history import History


def test_redeliver_is_registered_with_the_rig():
    cls = FAULTS["redeliver"]
    assert cls.kind == "delivery" and cls.description and cls.instant


def test_redeliver_moves_the_replay_back_and_is_recorded_as_an_instant():
    h = History()
    nemesis = Nemesis(h)
    got: list[int] = []
    feed = Replay([1, 2, 3, 4], name="consumer")
    feed.play(got.append)
    nemesis.inject("redeliver", feed, events=2)
    feed.play(got.append)
    assert got == [1, 2, 3, 4, 3, 4]
    [window] = h.fault_windows()
    assert (window.name, window.target, window.params) == ("redeliver", "consumer", {"events": 2})
    assert window.end is not None
    nemesis.inject("redeliver", feed, events=10)          # never before the first event
    assert feed.pos == 0


def test_redeliver_refuses_what_cannot_rewind_and_bad_counts():
    with pytest.raises(FaultError, match="rewind"):
        Nemesis(History()).inject("redeliver", object())
    with pytest.raises(FaultError, match="events"):
        Nemesis(History()).inject("redeliver", Replay([1]), events=0)


class _Worker:
    """Stands in for a sandboxed worker: a crash point that fired leaves it dead."""

    name = "app"

    def __init__(self) -> None:
        self.alive, self.armed = True, {}

    def arm_crash(self, point, after=0):
        self.armed[point] = after

    def disarm_crash(self, point):
        assert self.alive, "disarm_crash on a dead worker"
        self.armed.pop(point, None)


def test_a_crash_that_fired_heals_without_touching_the_dead_worker():
    h = History()
    nemesis = Nemesis(h)
    w = _Worker()
    crash = nemesis.inject("crash", Crashable(w), point="after_commit", after=0)
    assert w.armed == {"after_commit": 0}
    w.alive = False                                        # it died at its COMMIT
    crash.heal()
    [window] = h.fault_windows()
    assert (window.name, window.target, window.params["point"]) == ("crash", "app",
                                                                     "after_commit")
    assert window.end is not None
    w2 = _Worker()
    crash = nemesis.inject("crash", Crashable(w2), point="before_commit")
    crash.heal()                                           # it did not fire: disarmed
    assert w2.armed == {}
