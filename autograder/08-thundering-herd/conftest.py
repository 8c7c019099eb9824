"""Fixtures of lab 08's hidden tests.

``world`` is one test's world: the namespace with its origin (an expensive Postgres query that
writes down every call it serves), clients (``world.clients(8)``: workers running the learner's
``HerdCache``, started side by side), a private Redis with a door per client
(``world.store()``), and ``world.expect(hint, ...)``: every guarantee of the chapter judged over
the whole history and what the origin and the doors really saw (``rig.checkers.judge``).

The rig is imported inside the fixtures: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
from __future__ import annotations

import pytest

from splitbrain.grading import expect_valid

HINTS = {
    "stampede": "The origin computed one key several times at once. Let one caller per key "
                "recompute, under a lease in Redis (SET lease NX PX lease_ms), and have the others "
                "wait for its value instead of calling the origin themselves.",
    "expiry-wave": "Keys cached at the same moment with the same TTL expire at the same moment. "
                   "Draw each TTL a little short of ttl_ms at random (from rng), and refresh a "
                   "value early, with a probability that grows as its expiry nears (XFetch).",
    "retry-storm": "Clients that wait the same fixed delay retry together, in waves, for as long "
                   "as the dependency is down. Wait a random time between 0 and "
                   "min(cap_ms, base_ms * 2**attempt) (full jitter), from rng, before every "
                   "retry, toward the origin and toward Redis alike.",
    "stale-forever": "A get() returned a value older than the source had a TTL before. A cached "
                     "value must expire on its own, ttl_ms after it was computed: do not extend "
                     "it when it is read.",
    "slow-caller": "A caller waited too long. A waiter must be served the holder's value as "
                   "soon as it is written, a lease must run out by itself (PX) when its "
                   "holder dies, and a holder that gives up must let go of its lease at once.",
    "hot-key-expired": "A key read all the time expired, and its readers waited for its "
                       "recomputation. Refresh it early instead, with a probability that grows "
                       "as its expiry nears (XFetch): one caller recomputes while the others "
                       "keep serving the value they have.",
    "retry-budget": "A get() that gave up did not make exactly `attempts` tries: that is its "
                    "retry budget, no more and no fewer.",
}


class World:
    def __init__(self, ns, spawn, nemesis, history, seed):
        from rig.world import Origin
        self.ns, self.spawn, self.nemesis = ns, spawn, nemesis
        self.history, self.seed = history, seed
        self.origin = Origin(ns)
        self._stores = []

    def clients(self, n, redis_urls=None, **over):
        from rig.world import clients
        names = [chr(ord("a") + i) for i in range(n)]
        return clients(self.spawn, self.ns, names, self.seed, redis_urls=redis_urls, **over)

    def store(self):
        from rig.world import CacheStore
        s = CacheStore().start()
        self._stores.append(s)
        return s

    def calls(self):
        from rig.world import origin_calls
        return origin_calls(self.ns, self.history)

    def window(self, fault):
        """The (start, end) of the last ``fault`` in the history."""
        w = [x for x in self.history.fault_windows([fault])][-1]
        return (w.start, w.end if w.end is not None else self.history.now())

    def judge(self, storms=(), expiry=None, hot=(), handover=None, holding=None):
        from rig.checkers import judge
        return judge(self.history, self.calls(), storms=storms, expiry=expiry, hot=hot,
                     handover=handover, holding=holding)

    def expect(self, hint=None, *, lesson=None, storms=(), expiry=None, hot=(), handover=None,
               holding=None, context=""):
        v = self.judge(storms, expiry, hot, handover, holding)
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
def world(ns, spawn, nemesis, history, seed):
    from rig.world import prepare
    prepare(ns)
    w = World(ns, spawn, nemesis, history, seed)
    yield w
    nemesis.heal_all()
    w.close()
