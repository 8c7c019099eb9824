"""Public tests for lab 09. They use the grader's fixtures and run your session_store.py in a
worker process against a real Postgres primary and two streaming standbys, like the hidden tests.
Run them from the checkout's root with

    .venv/bin/python -m pytest -q -p splitbrain.grading.plugin --lab 09-replica-lag --submission labs/09-replica-lag/session_store.py labs/09-replica-lag/test_public.py

Passing them is necessary, not sufficient: the hidden tests pause replay, delay it a minute,
leave one standby far behind the other, promote a standby, and let the lag outlast any window.
"""
import re

import pytest
from rig import world
from rig.checkers import check_sessions

from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture(scope="module")
def cluster():
    return world.shared_cluster()     # one primary and two standbys for the whole run


def test_a_quiet_day(cluster, ns, spawn, history):
    table = world.make_table(cluster, "kv_" + re.sub(r"\W", "_", ns.name).lower())
    app = world.app(spawn, cluster, table)
    app.put("alice", "k", "alice-1")
    assert app.get("alice", "k") == "alice-1", "alice must read her own write"
    world.caught_up(cluster)
    assert app.get("bob", "k") == "alice-1", "every server has alice's write by now"
    assert app.get("bob", "nothing") is None, "a key nobody wrote reads as None"
    expect_valid(check_sessions(history), history)
