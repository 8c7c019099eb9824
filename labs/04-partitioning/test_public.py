"""Public tests for lab 04. They use the grader's fixtures and helpers (rig/) and run your
partitioner.py in worker processes (each with its own PYTHONHASHSEED) against real Redis shard
servers, like the hidden tests. Run them from this folder with

    python -m pytest -q -p splitbrain.grading.plugin --lab 04-partitioning --submission partitioner.py test_public.py

Passing them is necessary, not sufficient: the hidden tests add writes during the copy, a shard
removed under live traffic, skewed keys and a migrator killed halfway.
"""
import pytest

from rig import partitioning as part
from rig.checkers import check_movement, check_placement, check_reads
from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture
def shards():
    """``shards(n)`` starts n private Redis servers, the shards s0 ... s(n-1)."""
    made = []

    def start(n):
        made.append(part.Shards.start(n))
        return made[-1]

    yield start
    for s in made:
        s.close()


def test_one_process_reads_what_it_wrote(shards, spawn, ns, history):
    s = shards(3)
    _, a = part.store(spawn, ns, "a", s.urls())
    acked = part.write_all(a, ((k, f"v-{k}") for k in part.keys(50)))
    assert part.read_all(a, acked) == acked
    expect_valid(check_placement(acked, s.placement(acked)), history)


def test_a_second_process_reads_what_the_first_wrote(shards, spawn, ns, history):
    s = shards(3)
    _, a = part.store(spawn, ns, "a", s.urls())
    _, b = part.store(spawn, ns, "b", s.urls())
    acked = part.write_all(a, ((k, f"v-{k}") for k in part.keys(50)))
    part.read_all(b, acked)
    expect_valid(check_reads(history, s.placement(acked)), history)


@pytest.mark.faults("add-shard")
def test_adding_a_shard_keeps_every_key_and_moves_few(shards, spawn, ns, history, nemesis):
    s = shards(3)
    three = s.urls()
    _, a = part.store(spawn, ns, "a", three)
    ks = part.keys(300)
    part.write_all(a, ((k, f"v-{k}") for k in ks))
    before = s.placement(ks)
    with nemesis.fault("add-shard", s.shard("s3")):     # starts a fourth shard server, s3
        four = s.urls()
        a.rebalance(four)
    after = s.placement(ks)
    part.read_all(a, ks)
    expect_valid(check_reads(history, after), history)
    expect_valid(check_movement(before, after, three, four), history)
