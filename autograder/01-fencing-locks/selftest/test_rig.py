"""Lab 01's rig without services: the shared clock a holder reads, the server-clock-jump fault,
and the walk over the boundaries of an operation (with stand-ins for the stall and the future)."""
import os
import stat
from concurrent.futures import Future

import pytest
from rig.clocks import FileClock, SharedClock, shared
from rig.faults import ServerClockJump
from rig.fencing import Boundary, boundaries, engaged

from splitbrain.faults import Nemesis
from splitbrain.faults.registry import FAULTS, FaultError


def test_a_shared_clock_reaches_the_worker_side_at_its_next_look(tmp_path):
    grader = SharedClock("a", tmp_path)
    worker = shared({}, grader.path)
    assert isinstance(worker, FileClock)
    assert abs(worker.monotonic() - grader.monotonic()) < 0.05
    grader.jump(3600, monotonic=True)
    assert worker.monotonic() - grader.monotonic() == pytest.approx(0, abs=0.05)
    assert worker.now() == pytest.approx(grader.now(), abs=0.05)
    grader.set_offset(-60)
    assert worker.now() == pytest.approx(grader.now(), abs=0.05)
    grader.set_rate(4.0)
    worker.monotonic()
    assert worker.rate == 4.0
    assert stat.S_IMODE(os.stat(grader.path).st_mode) == 0o644   # the worker only reads it


def test_a_shared_clock_outlives_its_folder(tmp_path):
    folder = tmp_path / "clocks"
    folder.mkdir()
    grader = SharedClock("a", folder)
    os.remove(grader.path)
    folder.rmdir()
    grader.jump(1.0)                         # the nemesis heals after the test tidied up


def test_the_server_clock_jump_is_a_registered_instant():
    assert FAULTS["server-clock-jump"] is ServerClockJump and ServerClockJump.instant

    class Server:
        name = "lock-server"

        def __init__(self):
            self.steps = []

        def age(self, step_ms):
            self.steps.append(step_ms)
            return 1

    s = Server()
    n = Nemesis()
    n.inject("server-clock-jump", s, step=2.5)
    assert s.steps == [2500]
    (w,) = n.history.fault_windows()
    assert (w.name, w.target, w.params["step"]) == ("server-clock-jump", "lock-server", 2.5)
    assert w.end is not None
    with pytest.raises(FaultError):
        ServerClockJump(object())
    with pytest.raises(FaultError):
        ServerClockJump(s, step=0)


class FakeStall:
    """A stall that engages when the operation sends its (after+1)-th message."""

    def __init__(self, op, after):
        self.op, self.after, self.healed = op, after, False

    def wait(self, timeout=0):
        return self.op.sent > self.after

    def heal(self):
        self.healed = True
        self.op.finish()


class FakeOp:
    """An operation of ``messages`` round trips that stops at the stall, if it engages."""

    def __init__(self, messages):
        self.messages, self.sent, self.future = messages, 0, Future()

    def run(self, stall):
        self.stall = stall
        self.sent = min(self.messages, stall.after + 1)
        if self.sent <= stall.after:
            self.future.set_result("done")

    def finish(self):
        if not self.future.done():
            self.future.set_result("done late")


class FakeNemesis:
    def __init__(self, messages):
        self.messages, self.log = messages, []

    def inject(self, name, px, after, stream):
        self.log.append((stream, after))
        self.op = FakeOp(self.messages)
        self.stall = FakeStall(self.op, after)
        return self.stall


def test_boundaries_visit_every_place_between_round_trips():
    nem = FakeNemesis(messages=3)
    seen, through = [], []

    def start():
        nem.op.run(nem.stall)
        return nem.op.future

    for step in boundaries(nem, "px", start, through=through.append, streams=("upstream",)):
        assert isinstance(step, Boundary) and not step.pending.done()
        seen.append(step.k)
    assert seen == [0, 1, 2] and through == ["done"] and nem.log[-1] == ("upstream", 3)


def test_engaged_tells_a_finished_operation_from_a_stalled_one():
    done = Future()
    done.set_result(1)

    class Never:
        def wait(self, timeout=0):
            return False

    class Now:
        def wait(self, timeout=0):
            return True

    assert engaged(Never(), done) is False
    assert engaged(Now(), Future()) is True
    with pytest.raises(TimeoutError):
        engaged(Never(), Future(), timeout=0.05)
