"""Fixtures of lab 04's hidden tests: private Redis shard servers (`shards(n)`) and workers that
each run the learner's ShardedStore (`store(name, shard_urls)`), all sharing one control prefix.
A shard added or removed during a test goes through the nemesis (`rig.faults`).

The rig (``rig.partitioning``) is imported inside the fixtures: pytest imports this conftest before
the grading plugin's ``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest


@pytest.fixture
def shards():
    from rig import partitioning as part
    made = []

    def start(n):
        s = part.Shards.start(n)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


@pytest.fixture
def store(spawn, ns):
    """``store(name, urls) -> (worker, remote ShardedStore)``; the worker is killed at teardown."""
    from rig import partitioning as part

    def make(name, urls):
        return part.store(spawn, ns, name, urls)
    return make
