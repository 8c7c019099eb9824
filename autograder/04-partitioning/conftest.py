"""Fixtures of lab 04's hidden tests: private Redis shard servers (`shards(n)`, or
`shards(n, dbs=k)` for shards that are databases 0..k-1 of a few servers), each worker's own links to
them (`links(shards)`: a fault proxy per worker and server, for stalls), and workers that each run
the learner's ShardedStore (`store(name, shard_urls, links=None)`), all sharing one control prefix.
A shard added or removed during a test goes through the nemesis (`rig.faults`).

The rig is imported inside the fixtures: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest


@pytest.fixture
def shards():
    from rig import partitioning as part
    made = []

    def start(n, dbs=None):
        s = part.Shards.start_dbs(n, dbs) if dbs else part.Shards.start(n)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


@pytest.fixture
def links(ns, nemesis, seed):
    """``links(shards)`` -> a ``rig.links.Links`` over the control Redis and the test's shards.
    At teardown every fault heals before the proxies close."""
    from rig.links import Links
    made = []

    def make(shards):
        lk = Links({"control": ns.redis_url, **shards.urls(list(shards.handles))}, seed=seed)
        made.append(lk)
        return lk

    yield make
    nemesis.heal_all()
    for lk in made:
        lk.close()


@pytest.fixture
def store(spawn, ns):
    """``store(name, urls, links=None) -> (worker, remote ShardedStore)``; the worker is killed at
    teardown. ``store(["a", "b"], urls)`` starts several workers at once (they boot side by side)
    and returns a list of pairs."""
    from rig import partitioning as part

    def make(name, urls, links=None, prefix="kv:"):
        if isinstance(name, str):
            return part.store(spawn, ns, name, urls, prefix=prefix, links=links)
        workers = [spawn(n) for n in name]
        return [(w, part.store_in(w, urls, ns, prefix, links)) for w in workers]
    return make
