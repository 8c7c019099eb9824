"""Fixtures of lab 07's hidden tests.

``world`` is one test's world: the namespace with ``charges`` and ``fence``, nodes
(``world.nodes(dict(name="a", lease_ms=400), ...)``: workers running the learner's
``LeaderElection``, started side by side, optionally behind fault proxies or on a private lease
store with a replica, ``world.store()``), and ``world.expect(hint)``: every guarantee of the
chapter judged over the whole history and the charges Postgres really holds
(``rig.checkers.check_election``).

The rig is imported inside the fixtures: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
from __future__ import annotations

import pytest

from splitbrain.checkers.base import Anomaly, verdict
from splitbrain.grading import expect_valid

HINTS = {
    "duplicate-tick": "A tick was charged twice: the old leader checked that it led, then stalled, "
                      "and charged after the new leader had. Send the term with the charge and let "
                      "the database refuse a term older than the largest it has seen, in the same "
                      "transaction as the charge, which also skips a tick already charged.",
    "stale-leader-write": "The database accepted a charge from an older term after one from a "
                          "newer term. Only the database sees both: fence every charge with its "
                          "term (a row holding the largest term seen, updated only upwards, in "
                          "the same transaction as the charge).",
    "split-brain": "Two nodes believed they led at once. Renew only your own lease of your own "
                   "term (check and extend in one Lua script); count the lease from before the "
                   "request left, on the monotonic clock, and step down well before it can have "
                   "run out; a lease the primary acknowledged is not safe until its replica has "
                   "it (WAIT), or a failover hands the same term to someone else.",
    "phantom-charge": "tick(n) answered True, and the database holds no charge of that call: "
                      "answer True only when this call's charge was recorded, and False when the "
                      "node does not lead, the fence refused it, or the tick was already charged "
                      "(the caller counts on the answer).",
    "unreported-charge": "The database holds a charge that tick(n) answered False for: a call "
                         "that charged must say so.",
    "no-leader": "A tick went uncharged although a node could lead: a lease must run out by "
                 "itself (PX), a node must campaign again once it is free, and the newest leader's "
                 "charges must land.",
}


class World:
    def __init__(self, ns, spawn, proxy, nemesis, history):
        self.ns, self.spawn, self.proxy = ns, spawn, proxy
        self.nemesis, self.history = nemesis, history
        self.lease_s: dict[str, float] = {}
        self._stores = []

    def nodes(self, *specs, store=None):
        from rig.world import nodes
        made = nodes(self.spawn, self.ns, list(specs), self.proxy,
                     redis_url=store.url if store is not None else None)
        for x in made:
            self.lease_s[x.name] = x.lease_ms / 1000
        return made

    def store(self):
        from rig.world import LeaseStore
        s = LeaseStore().start()
        self._stores.append(s)
        return s

    def charges(self):
        from rig.world import charges
        return charges(self.ns)

    def judge(self, *extra):
        from rig.checkers import check_election
        return check_election(self.history, self.charges(), self.lease_s, extra)

    def expect(self, hint=None, *extra, lesson=None, context=""):
        v = self.judge(*extra)
        if not v.ok:
            kinds = [a.kind for a in v.anomalies]
            if not (hint and (lesson is None or lesson in kinds)):
                hint = HINTS.get(kinds[0] if kinds else "", hint)
            if context:
                hint = f"{hint}\n{context}" if hint else context
        expect_valid(v, self.history, hint=hint)
        return v

    def close(self):
        for s in self._stores:
            s.close()


@pytest.fixture
def world(ns, spawn, proxy, nemesis, history):
    from rig.world import prepare
    prepare(ns)
    w = World(ns, spawn, proxy, nemesis, history)
    yield w
    nemesis.heal_all()
    w.close()


@pytest.fixture
def must_elect(history):
    """Campaign until the node leads, or fail the test with a liveness verdict."""
    def run(node, why, timeout=5.0):
        from rig.world import elect
        try:
            return elect(node, timeout)
        except TimeoutError:
            expect_valid(verdict("liveness", [Anomaly(
                "no-leader", f"{node.name} was not elected within {timeout:g} s: {why}")]),
                history, hint=HINTS["no-leader"])
    return run
