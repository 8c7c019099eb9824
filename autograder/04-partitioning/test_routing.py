"""Lab 04 hidden tests: where keys live. Every process must route a key to the same shard, a change
of the shard set must move only the keys it has to, and the shards must share the keys evenly."""
import pytest

from rig import partitioning as part
from rig.checkers import check_balance, check_movement, check_placement
from splitbrain.grading import expect_valid

N_KEYS = 600


@pytest.mark.points(15)
@pytest.mark.faults("hash-seed")
def test_01_every_process_finds_what_another_process_wrote(shards, store, history, nemesis):
    s = shards(4)
    wa, a = store("a", s.urls())
    wb, b = store("b", s.urls())
    wc, c = store("c", s.urls())
    ks = part.keys(200)
    with nemesis.fault("hash-seed", workers=[wa, wb, wc]):   # three processes, three seeds
        acked = part.write_all(a, ((k, f"a-{k}") for k in ks))
        part.read_all(b, ks)
        part.read_all(c, ks[::2])
    placement = s.placement(ks)
    expect_valid(check_placement(acked, placement), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key; the grader reads the shards directly.")
    part.expect_reads(
        history, placement,
        hint="Each worker process runs with its own PYTHONHASHSEED, so Python's hash() of "
             "the same string differs between them. Route with a hash that is the same in "
             "every process (hashlib).")


@pytest.mark.points(15)
@pytest.mark.faults("add-shard")
def test_02_adding_a_fifth_shard_moves_about_a_fifth_of_the_keys(shards, store, history, nemesis):
    s = shards(4)
    four = s.urls()
    _, a = store("a", four)
    ks = part.keys(N_KEYS)
    acked = part.write_all(a, ((k, f"v1-{k}") for k in ks))
    before = s.placement(ks)
    expect_valid(check_placement(acked, before), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    added = nemesis.inject("add-shard", s.shard("s4"))    # starts the shard server s4
    five = s.urls()
    a.rebalance(five)
    added.heal()
    after = s.placement(ks)
    expect_valid(check_movement(before, after, four, five), history,
                 hint="With hash(key) % N almost every key changes shard when N changes. "
                      "Consistent hashing (a ring of shard points) or jump/rendezvous hashing "
                      "moves only the keys the new shard takes over.")
    expect_valid(check_balance(after, five), history,
                 hint="After the move the new shard must hold its share of the keys: the "
                      "rebalance must actually copy keys to it.")
    _, b = store("b", five)
    part.read_all(b, ks)
    part.expect_reads(
        history, after,
        hint="After rebalance() returns, every key must be readable from any process.")


@pytest.mark.points(10)
@pytest.mark.faults("remove-shard")
def test_03_removing_a_shard_moves_only_the_keys_it_held(shards, store, history, nemesis):
    s = shards(5)
    five, four = s.urls(), s.urls(["s0", "s1", "s2", "s3"])
    _, a = store("a", five)
    ks = part.keys(N_KEYS)
    acked = part.write_all(a, ((k, f"v1-{k}") for k in ks))
    before = s.placement(ks)
    expect_valid(check_placement(acked, before), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    with nemesis.fault("remove-shard", s.shard("s4")):
        a.rebalance(four)
    # the heal shut s4 down (decommissioned): what it held is gone
    after = s.placement(ks)
    expect_valid(check_movement(before, after, five, four), history,
                 hint="Removing one of five shards must move only the keys that shard held "
                      "(about a fifth), not reshuffle the others.")
    _, b = store("b", four)
    part.read_all(b, ks)
    part.expect_reads(
        history, after,
        hint="rebalance() must copy every key off the removed shard before it returns: the "
             "operator shuts the shard down right after.")


@pytest.mark.points(10)
@pytest.mark.faults("skewed-keys")
def test_04_shards_hold_equal_shares_of_skewed_keys(shards, store, history, seed, nemesis):
    s = shards(5)
    _, a = store("a", s.urls())
    with nemesis.fault("skewed-keys", keys=1000, seed=seed):
        ks = part.skewed_keys(1000, seed)
        acked = part.write_all(a, ((k, "x") for k in ks))
    placement = s.placement(ks)
    expect_valid(check_placement(acked, placement), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    expect_valid(check_balance(placement, s.urls()), history,
                 hint="Keys share long prefixes (a few tenants own most of them), so a range "
                      "or prefix split piles them on one shard; a ring with one point per shard "
                      "gives unequal arcs. Hash the whole key and give each shard many points "
                      "on the ring (virtual nodes), or use jump or rendezvous hashing.")
