"""Lab 04 hidden tests: where keys live. Every process must route a key to the same shard, whatever
its hash seed or the shard list it was started with; a change of the shard set must move only the
keys it has to, copy each of them once and end on the new set; and the shards must share the keys
evenly, for ten shards as for four, with keys that share long prefixes."""
import pytest

from rig import partitioning as part
from rig.checkers import (check_available, check_balance, check_lost_writes, check_move,
                          check_movement, check_placement, check_routing)
from splitbrain.grading import expect_valid

N_KEYS = 400
PLACED = "put() must store each key on a shard, as a Redis string named exactly the key."
SHARED_MAP = ("A process joins the cluster's shard set: the `shards` it is given only seed a "
              "cluster that does not exist yet. Route with the shard set stored in the control "
              "Redis, never with your own list.")
COUNTS = ("migrate(limit) must copy at most `limit` keys and return exactly how many it copied "
          "(0 only when nothing is left, also when no rebalance is in progress); shards() must "
          "return the new shard set once the move is over.")


@pytest.mark.points(15)
@pytest.mark.faults("hash-seed", "other-shard-list")
def test_01_every_process_finds_what_another_process_wrote(shards, store, history, nemesis):
    s = shards(5, dbs=5)                        # s4 runs, but is not part of the cluster
    four = s.urls(["s0", "s1", "s2", "s3"])
    (wa, a), (wb, b) = store(["a", "b"], four)
    wd, d = store("d", s.urls())                # started with a config listing five shards
    ks, late = part.keys(200), part.keys(60, 200)
    with nemesis.fault("hash-seed", workers=[wa, wb, wd]):   # three processes, three seeds
        acked = part.write_many(a, ((k, f"a-{k}") for k in ks))
        part.read_many(b, ks)
        with nemesis.fault("other-shard-list", wd, listed=sorted(s.urls())):
            acked.update(part.write_many(d, ((k, f"d-{k}") for k in late)))
            part.read_many(d, ks[::4])
            part.read_many(a, late)
            part.read_many(b, late[::2])
    placement = s.placement(ks + late)
    expect_valid(check_placement(acked, placement), history, hint=PLACED)
    expect_valid(check_available(history), history,
                 hint="put() and get() must succeed when nothing is moving.")
    part.expect_reads(
        history, placement, checker=check_routing,
        hint="Each worker process runs with its own PYTHONHASHSEED, so Python's hash() of the "
             "same string differs between them: route with a hash that is the same in every "
             "process (hashlib). " + SHARED_MAP)
    part.expect_reads(history, placement, checker=check_lost_writes,
                      hint="Every acknowledged write must be readable from every process.")


def migrate_counted(history, s, m, keys_, limit, rounds=40):
    """``m.migrate(limit)`` until it reports 0, the grader counting the copies of each call:
    ``{invoke index: copies}``."""
    copies = {}
    for _ in range(rounds):
        ok, n, inv, seen, _ = part.counted_call(history, s, keys_, m.migrate, limit)
        copies[inv] = seen
        if not ok or not n:
            return copies
    raise AssertionError(f"migrate({limit}) still reported copies after {rounds} calls for "
                         f"{len(keys_)} keys: a copy must happen once per key")


@pytest.mark.points(10)
@pytest.mark.faults("add-shard")
def test_02_adding_a_fifth_shard_moves_about_a_fifth_of_the_keys(shards, store, history, nemesis,
                                                                  ns):
    s = shards(5, dbs=5)                      # five databases of one server; s4 joins later
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    wa, a = store("a", four)
    ks = part.keys(N_KEYS)
    acked = part.write_many(a, ((k, f"v1-{k}") for k in ks))
    before = s.placement(ks)
    expect_valid(check_placement(acked, before), history, hint=PLACED)
    added = nemesis.inject("add-shard", s.shard("s4"))
    a.begin_rebalance(five)
    copies = migrate_counted(history, s, a, ks, 50)         # the copy, in batches of 50
    _, _, inv, copies_at_finish, after = part.counted_call(history, s, ks, a.finish_rebalance)
    copies[inv] = copies_at_finish
    added.heal()
    _, _, inv, seen, _ = part.counted_call(history, s, ks, a.migrate)   # nothing moves now
    copies[inv] = seen
    expect_valid(check_movement(before, after, four, five), history,
                 hint="With hash(key) % N almost every key changes shard when N changes. "
                      "Consistent hashing (a ring of shard points) or jump/rendezvous hashing "
                      "moves only the keys the new shard takes over.")
    expect_valid(check_balance(after, five), history,
                 hint="After the move the new shard must hold its share of the keys: the "
                      "rebalance must actually copy keys to it.")
    b = part.store_in(wa, five, ns)                  # a store that starts after the move
    part.read_many(b, ks[::2])
    b.shards()
    expect_valid(check_move(history, five, copies), history, hint=COUNTS)
    part.expect_reads(history, after, checker=check_lost_writes,
                      hint="After finish_rebalance() returns, every key must be readable from "
                           "any process.")
    part.expect_reads(history, after, checker=check_routing,
                      hint="After finish_rebalance() returns, every process must look for a key "
                           "where the move put it.")


@pytest.mark.points(10)
@pytest.mark.faults("add-shard", "remove-shard")
def test_03_a_shard_added_then_removed_moves_only_its_keys_and_keeps_every_write(
        shards, store, history, nemesis, ns):
    s = shards(5, dbs=4)                      # s0-s3: databases of one server; s4 its own
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    wa, a = store("a", four)
    ks = part.keys(300)
    part.write_many(a, ((k, f"v1-{k}") for k in ks))
    added = nemesis.inject("add-shard", s.shard("s4"))
    a.rebalance(five)
    added.heal()
    part.write_many(a, ((k, f"v2-{k}") for k in ks))       # every key changes on its new owner
    b = part.store_in(wa, five, ns)            # a store that knows the five-shard map ...
    part.read_many(b, ks[::3])
    before = s.placement(ks)
    with nemesis.fault("remove-shard", s.shard("s4")):     # and s4 goes again
        a.rebalance(four)
    # the heal shut s4 down (decommissioned): what it held is gone
    after = s.placement(ks)
    expect_valid(check_movement(before, after, five, four), history,
                 hint="Removing one of five shards must move only the keys that shard held "
                      "(about a fifth), not reshuffle the others.")
    # ... and reads on: s4 is gone, the map changed; its first read is of a key s4 held, so it
    # meets the refused connection before any fence tells it the map changed
    held = [k for k in ks[1::2] if "s4" in before[k]]
    part.read_many(b, held + [k for k in ks[1::2] if k not in held])
    c = part.store_in(wa, four, ns)            # a store that starts after the move
    part.read_many(c, ks[::2])
    c.shards()
    expect_valid(check_available(history), history,
                 hint="A process whose shard map names a shard that was removed and shut down "
                      "must reload the map and go on (a refused connection is a sign of a "
                      "stale map), not fail.")
    expect_valid(check_move(history, four), history, hint=COUNTS)
    part.expect_reads(
        history, after, checker=check_lost_writes,
        hint="rebalance() must copy every key off the removed shard before it returns: the "
             "operator shuts the shard down right after. A copy must not be skipped because the "
             "old owner still holds an old copy from an earlier move: delete the copies a shard "
             "no longer owns once the move is switched over.")
    part.expect_reads(history, after, checker=check_routing,
                      hint="After the move every process must look where the key now lives.")


@pytest.mark.points(10)
@pytest.mark.faults("skewed-keys")
def test_04_ten_shards_hold_equal_shares_of_skewed_keys(shards, store, history, seed, nemesis):
    s = shards(10, dbs=5)                     # ten shards: databases of two Redis servers
    _, a = store("a", s.urls())
    with nemesis.fault("skewed-keys", keys=1000, seed=seed):
        ks = part.skewed_keys(1000, seed)
        acked = part.write_many(a, ((k, "x") for k in ks))
    placement = s.placement(ks)
    expect_valid(check_placement(acked, placement), history, hint=PLACED)
    expect_valid(check_balance(placement, s.urls()), history,
                 hint="Keys share long prefixes (a few tenants own most of them), so a range "
                      "or prefix split piles them on one shard, and a ring with one or a few "
                      "points per shard gives unequal arcs: the spread of a shard's share "
                      "shrinks like 1/sqrt(points), so ten shards need 100-200 points each "
                      "(virtual nodes). Jump or rendezvous hashing are even by construction.")
