"""Fixtures of lab 04's hidden tests: private Redis shard servers (`shards(n)`) and workers that
each run the learner's ShardedStore (`store(name, shard_urls)`), all sharing one control prefix."""
import pytest

from splitbrain.labsupport import partitioning as part


@pytest.fixture
def shards():
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
    def make(name, urls):
        return part.store(spawn, ns, name, urls)
    return make
