"""Lab {number}'s hidden tests: TODO: name each test for the behaviour it checks and carry its points.
Every fault goes through the nemesis; the verdict comes from a checker over the history and the
grader's own view of what the services really hold."""
import pytest

from splitbrain.checkers.base import Anomaly, verdict
from splitbrain.grading import expect_valid
from splitbrain.sandbox import Ref


@pytest.mark.points(100)
@pytest.mark.faults("pause")
def test_01_todo(spawn, nemesis, history):
    w = spawn("a")
    thing = w.new("{cls}", Ref("pg"))
    with nemesis.fault("pause", w):
        pass
    # TODO: drive `thing`, then judge the history with the lab's checker
    expect_valid(verdict("todo", [Anomaly("todo-anomaly", "TODO: the hidden tests are not written yet")]),
                 history, hint="TODO")
