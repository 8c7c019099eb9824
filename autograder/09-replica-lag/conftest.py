"""Fixtures of lab 09's hidden tests.

``cluster`` is one private Postgres primary with two streaming standbys, shared by every test
the process runs, hidden and public (``rig.world.shared_cluster``: starting standbys costs
seconds); every test gets a fresh table and leaves every standby replaying again. ``world`` is
one test's world: ``world.app()`` starts an application server (a worker running the learner's
``SessionStore``), ``world.other(key, value)`` is another user's write on the primary,
``world.window()`` / ``world.close(win)`` mark a stretch in which the grader knows what each
standby holds, and ``world.expect(hint)`` judges every guarantee of the chapter over the whole
history (``rig.checkers.check_sessions``).

The rig is imported inside the fixtures: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
from __future__ import annotations

import re
import time

import pytest

from splitbrain.grading import expect_valid

HINTS = {
    "stale-read": "A session read an older version than it had written itself: the standby that "
                  "answered had not replayed the write yet. Give each session a token, the WAL "
                  "position (LSN) of its last write, taken after the COMMIT "
                  "(pg_current_wal_insert_lsn()), and let a standby serve the read only once "
                  "pg_last_wal_replay_lsn() has reached it; else wait briefly, then ask the primary.",
    "non-monotonic-read": "A session read a newer version, then an older one: its reads went to "
                          "servers at different points of the WAL. The token must also carry the "
                          "position of what the session has read (the standby's "
                          "pg_last_wal_replay_lsn(), or the primary's pg_current_wal_insert_lsn(), "
                          "returned by the same statement that read).",
    "needless-primary-read": "Standbys that held everything a session needed were not used: the "
                             "primary served reads it did not have to. Read the primary only when "
                             "no standby has replayed as far as the session's token, not whenever "
                             "a standby is behind the primary.",
}


class World:
    def __init__(self, cluster, ns, spawn, nemesis, history):
        from rig.world import make_table
        self.cluster, self.spawn = cluster, spawn
        self.nemesis, self.history = nemesis, history
        self.table = make_table(cluster, "kv_" + re.sub(r"\W", "_", ns.name).lower())
        self.windows: list[dict] = []
        for s in cluster.standbys:
            nemesis.add_target(s.name, s)

    @property
    def a(self):
        return self.cluster.standbys[0]

    @property
    def b(self):
        return self.cluster.standbys[1]

    def on_both(self, fault, **params):
        """The same fault on both standbys (replay paused, or commits applied late, on each)."""
        for s in (self.a, self.b):
            self.nemesis.inject(fault, s, **params)

    def app(self, name="app", standbys=None, max_wait_ms=50):
        from rig.world import app
        return app(self.spawn, self.cluster, self.table, name, standbys, max_wait_ms)

    def other(self, key, value):
        from rig.world import other_write
        other_write(self.cluster, self.history, self.table, key, value)

    def caught_up(self, standbys=None):
        from rig.world import caught_up
        caught_up(self.cluster, standbys)

    def replayed(self, standby):
        """Wait until ``standby`` has replayed all it received (after a ``stream-cut``)."""
        from rig.world import replayed_received
        replayed_received(standby)

    def wait_asked(self, standby, read, timeout=10.0):
        """Send ``read`` (a callable that sends a get and returns its Future), then wait until the
        application has asked ``standby`` something since (it has seen where the standby is) or
        the read is done. Returns the Future."""
        from rig.world import asked_since, standby_now
        since = standby_now(standby)
        fut = read()
        deadline = time.monotonic() + timeout
        while not (fut.done() or asked_since(standby, since)) and time.monotonic() < deadline:
            time.sleep(0.002)
        return fut

    def window(self):
        from rig.world import Window
        return Window(self.history)

    def close(self, win, standbys=None):
        from rig.world import snapshot
        self.windows.append(win.close(snapshot(self.cluster, self.table, standbys)))

    def judge(self):
        from rig.checkers import check_sessions
        return check_sessions(self.history, self.windows)

    def expect(self, hint=None, lesson=None, context=""):
        v = self.judge()
        if not v.ok:
            kinds = [a.kind for a in v.anomalies]
            if not (hint and (lesson is None or lesson in kinds)):
                hint = HINTS.get(kinds[0] if kinds else "", hint)
            if context:
                hint = f"{hint}\n{context}" if hint else context
        expect_valid(v, self.history, hint=hint)
        return v


@pytest.fixture(scope="module")
def cluster():
    from rig.world import shared_cluster
    return shared_cluster()


@pytest.fixture
def world(cluster, ns, spawn, nemesis, history):
    w = World(cluster, ns, spawn, nemesis, history)
    try:
        yield w
    finally:
        nemesis.heal_all()
        cluster.heal()
