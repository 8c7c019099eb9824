"""Fixtures of lab 01's hidden tests.

``world`` is one test's world: the namespace with the `resource` table and its audit trail,
holders (``world.holders(dict(name="a", ttl_ms=400), ...)``: workers with the learner's lock and
store, started side by side, optionally behind fault proxies), the lock server as the nemesis's
target (``world.jump()``: the server's clock steps ahead and every lease on it runs out now), and
``world.expect(hint)``: every guarantee of the chapter judged over the whole history and what
Postgres really stored (``rig.checkers.check_lock``). ``must_acquire`` fails a test at once with a
liveness verdict when a worker cannot take a lock it must get.

The rig (``rig.fencing``) is imported inside the fixtures: pytest imports this conftest before the
grading plugin's ``pytest_configure`` has loaded the lab's rig as ``rig``."""
from __future__ import annotations

import pytest

from splitbrain.checkers.base import Anomaly, verdict
from splitbrain.grading import expect_valid

# What to look at, per anomaly the checkers report (the first one found leads the message).
HINTS = {
    "stale-write": "The holder whose lease ran out still wrote, and the storage took it. Only the "
                   "storage sees both writes: make write() refuse a token smaller than the last "
                   "one stored, in the same statement that writes.",
    "token-order": "A later acquisition must get a larger token, however the holders' clocks or "
                   "the network behave. Issue tokens from one counter that never goes back (Redis "
                   "INCR), in the same atomic step as the SET that takes the lease (one Lua "
                   "script): a holder that stalls between two calls comes back with a token "
                   "larger than the next holder's.",
    "overlapping-holders": "release() must delete the key only if it still holds this lock's own "
                           "random owner value, checked and deleted in one atomic step (a Lua "
                           "script): between a GET and a DEL the lease can run out and the lock "
                           "become someone else's.",
    "rejected-write": "The newest holder's write must land: refuse only a token smaller than the "
                      "one stored (equal tokens are the same holder writing again).",
    "misreported-write": "write() must say what happened: True if the row was written, False if "
                         "the fence refused it (INSERT ... RETURNING tells you).",
    "misreported-release": "release() returns True only if this call deleted this lock's own "
                           "lease, and False otherwise (the Lua script's DEL says so).",
    "stuck-lock": "A waiting worker must get the lock once it is free: leases expire by "
                  "themselves (PX on the SET), and acquire() keeps trying, every few "
                  "milliseconds, until wait_s seconds of the monotonic clock it was given are "
                  "over (a wall clock steps when NTP corrects it).",
    "wait-overrun": "acquire(wait_s) must stop once wait_s seconds have passed on the clock it "
                    "was given (clock.monotonic()): the grader moves that clock, not time.",
    "busy-wait": "Pause between two attempts (clock.sleep of a few milliseconds): a waiter that "
                 "retries in a tight loop floods the Redis every holder depends on.",
    "lost-update": "The stalled worker's increment was computed from a value that is long gone. "
                   "Its token is older than the ones stored since; the storage must refuse it.",
}


class World:
    """One hidden test's world (see the module docstring)."""

    def __init__(self, ns, spawn, proxy, nemesis, history):
        from rig.fencing import LockServer
        self.ns, self.spawn, self.proxy = ns, spawn, proxy
        self.nemesis, self.history = nemesis, history
        self.ttl_s: dict[str, float] = {}
        self.server = LockServer(ns)
        self._clocks = None

    def holders(self, *specs):
        from rig.fencing import holders
        if self._clocks is None and any(s.get("shared_clock") for s in specs):
            import os
            import tempfile
            self._clocks = tempfile.TemporaryDirectory(prefix="splitbrain-clocks-")
            os.chmod(self._clocks.name, 0o755)     # the workers (other users) read their clocks
        made = holders(self.spawn, self.ns, list(specs), self.proxy,
                       self._clocks.name if self._clocks else None)
        for h in made:
            self.ttl_s[h.name] = h.ttl_ms / 1000
        return made

    def jump(self, step: float = 3600):
        """The lock server's clock steps ahead: every lease on it runs out now."""
        return self.nemesis.inject("server-clock-jump", self.server, step=step)

    def applied(self):
        from rig.fencing import applied
        return applied(self.ns)

    def judge(self, *extra, busy=()):
        from rig.checkers import check_lock
        return check_lock(self.history, self.applied(), self.ttl_s, extra, busy)

    def expect(self, hint: str | None = None, *extra, lesson: str | None = None,
               context: str = "", busy=()):
        """Pass if every guarantee held (``extra``: verdicts of the test's own ground truth;
        ``busy``: requests counted on waiting workers' links, see ``rig.checkers.check_waits``).
        The hint: this test's ``hint`` when the anomaly it teaches (``lesson``) is among those
        found, else the hint of the first anomaly found; ``context`` follows it (an exploring
        test's schedule)."""
        v = self.judge(*extra, busy=busy)
        if not v.ok:
            kinds = [a.kind for a in v.anomalies]
            if not (hint and (lesson is None or lesson in kinds)):
                hint = HINTS.get(kinds[0] if kinds else "", hint)
            if context:
                hint = f"{hint}\n{context}" if hint else context
        expect_valid(v, self.history, hint=hint)
        return v

    def close(self):
        self.server.close()
        if self._clocks is not None:
            self._clocks.cleanup()


@pytest.fixture
def db(ns):
    from rig import fencing
    fencing.prepare(ns)
    return ns


@pytest.fixture
def world(db, spawn, proxy, nemesis, history):
    w = World(db, spawn, proxy, nemesis, history)
    yield w
    w.close()


@pytest.fixture
def must_acquire(history):
    """Acquire or fail the test with a liveness verdict that names who could not get the lock."""
    def run(h, wait_s, why):
        token = h.acquire(wait_s)
        if token is None:
            expect_valid(verdict("liveness", [Anomaly(
                "stuck-lock", f"{h.name} could not take the lock within {wait_s:g} s: {why}")]),
                history, hint=HINTS["stuck-lock"])
        return token
    return run
