"""Lab 04 hidden tests: moving keys while the store is in use. Writes that land during the copy
must survive the switch-over, a shard can be removed under live traffic, and a migration killed
halfway is finished by running it again."""
import threading

import pytest

from rig import partitioning as part
from rig.checkers import check_balance, check_placement
from splitbrain.grading import expect_valid

MAX_BATCHES = 40
LOST_HINT = ("A write that lands on the old owner after its key was copied is lost when the "
             "rebalance switches over. While keys move, send writes where the key is going "
             "(or to both places) and read the new owner first; make sure no process keeps "
             "writing with an out-of-date shard map (check an epoch on the shard itself).")


def migrate_fully(m, rounds=50):
    """Call ``migrate()`` until it reports nothing left (bounded, so a liar cannot hang us)."""
    for _ in range(rounds):
        if not m.migrate():
            return
    raise AssertionError(f"migrate() with no limit still reported copied keys after {rounds} "
                         f"calls; it must return 0 once every key is where it belongs")


@pytest.mark.points(20)
@pytest.mark.faults("add-shard", "stale-map")
def test_05_writes_during_the_copy_survive_the_switch_over(shards, store, history, nemesis):
    s = shards(4)
    four = s.urls()
    wa, a = store("a", four)               # an application server that never restarts
    _, m = store("m", four)                # the operator's migration process
    ks = part.keys(400)
    acked = part.write_all(a, ((k, f"v1-{k}") for k in ks))
    expect_valid(check_placement(acked, s.placement(ks)), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    added = nemesis.inject("add-shard", s.shard("s4"))    # starts the shard server s4
    five = s.urls()
    stale = nemesis.inject("stale-map", wa)   # a loaded the four-shard map and keeps using it
    m.begin_rebalance(five)
    part.write_all(a, ((k, f"v2-{k}") for k in ks[:100]))          # before any copy
    part.write_all(a, ((k, f"v2-{k}") for k in part.keys(50, 400)))  # new keys
    migrate_fully(m)
    part.write_all(a, ((k, f"v3-{k}") for k in ks[100:200]))       # after the copy
    part.write_all(a, ((k, f"v3-{k}") for k in part.keys(50, 450)))  # new keys again
    m.finish_rebalance()
    added.heal()
    everything = ks + part.keys(100, 400)
    _, b = store("b", five)
    part.read_all(b, everything)
    part.read_all(a, everything[::3])
    stale.heal()
    placement = s.placement(everything)
    part.expect_reads(history, placement, hint=LOST_HINT)
    expect_valid(check_balance(placement, five), history,
                 hint="After finish_rebalance() the new shard must hold its share of the keys.")


@pytest.mark.points(15)
@pytest.mark.faults("remove-shard", "concurrency")
def test_06_a_shard_is_removed_under_live_traffic(shards, store, history, nemesis):
    s = shards(5)
    five, four = s.urls(), s.urls(["s0", "s1", "s2", "s3"])
    writers = [store(f"w{i}", five)[1] for i in range(2)]
    _, m = store("m", five)
    ks = part.keys(300)
    mine = [ks[i::2] for i in range(2)]
    for w, own in zip(writers, mine):
        part.write_all(w, ((k, f"0-{k}") for k in own))
    # During the copy the writers overwrite one half of their keys, during the switch-over the
    # other half: a write lost in the copy cannot be hidden by a later overwrite of the same key.
    traffic = Traffic(writers, [own[0::2] for own in mine])
    with nemesis.fault("concurrency"):      # two writers and the migrator at once
        traffic.start()
        removed = nemesis.inject("remove-shard", s.shard("s4"))
        try:
            m.begin_rebalance(four)
            traffic.wait_rounds(2)
            for _ in range(MAX_BATCHES):    # the copy runs in batches, and between two
                if not m.migrate(25):       # batches every writer completes at least one
                    break                   # full round of overwrites
                traffic.wait_rounds(2)
            else:
                raise AssertionError(f"migrate(25) still reported copies after {MAX_BATCHES} "
                                     f"calls for 300 keys: a copy must happen once per key, and "
                                     f"never over a value a writer stored on the new owner")
            traffic.use([own[1::2] for own in mine])
            traffic.wait_rounds(2)          # no write to the first half is in flight any more
            m.finish_rebalance()
            traffic.wait_rounds(1)
        finally:
            traffic.stop()
    removed.heal()                          # s4 decommissioned as soon as the move said it was done
    _, r = store("r", four)
    part.read_all(r, ks)
    for w, own in zip(writers, mine):
        part.read_all(w, own[::4])
    part.expect_reads(history, s.placement(ks), hint=LOST_HINT)


class Traffic:
    """Writers overwriting their own keys in a loop, one grader thread each, until stopped."""

    def __init__(self, writers, keys_of, deadline_s=30.0):
        self.writers, self.keys_of, self.deadline_s = writers, keys_of, deadline_s
        self.rounds = [0] * len(writers)
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(len(writers))]

    def use(self, keys_of):
        """Write these keys from the next round on (a round in flight keeps its keys)."""
        with self._cv:
            self.keys_of = keys_of

    def start(self):
        for t in self._threads:
            t.start()

    def _run(self, i):
        try:
            r = 0
            while not self._stop.is_set():
                r += 1
                with self._cv:
                    own = self.keys_of[i]
                part.write_all(self.writers[i], ((k, f"{r}-{k}") for k in own[r % 3::3]))
                with self._cv:
                    self.rounds[i] = r
                    self._cv.notify_all()
        except BaseException as e:          # noqa: BLE001 - re-raised by the test thread
            with self._cv:
                self.errors.append(e)
                self._cv.notify_all()

    def wait_rounds(self, n):
        """Block until every writer completed ``n`` more rounds (or one of them failed)."""
        with self._cv:
            goal = [r + n for r in self.rounds]
            ok = self._cv.wait_for(lambda: self.errors or all(
                r >= g for r, g in zip(self.rounds, goal)), timeout=self.deadline_s)
            if self.errors:
                raise self.errors[0]
            if not ok:
                raise AssertionError(f"the writers did not complete a round of puts within "
                                     f"{self.deadline_s:g} s while the shard was being removed")

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        if self.errors:
            raise self.errors[0]


@pytest.mark.points(15)
@pytest.mark.faults("kill", "add-shard")
def test_07_a_migration_killed_halfway_is_finished_by_running_it_again(shards, store, history,
                                                                      nemesis):
    s = shards(4)
    four = s.urls()
    _, a = store("a", four)
    mw, m = store("m", four)
    ks = part.keys(400)
    acked = part.write_all(a, ((k, f"v1-{k}") for k in ks))
    expect_valid(check_placement(acked, s.placement(ks)), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    added = nemesis.inject("add-shard", s.shard("s4"))    # starts the shard server s4
    five = s.urls()
    m.begin_rebalance(five)
    m.migrate(20)                           # part of the keys copied ...
    part.write_all(a, ((k, f"v2-{k}") for k in ks[::3]))
    nemesis.inject("kill", mw)              # ... and the migrator dies (SIGKILL)
    part.write_all(a, ((k, f"v3-{k}") for k in ks[1::3]))   # the store stays writable
    part.write_all(a, ((k, f"v3-{k}") for k in part.keys(40, 400)))
    nemesis.inject("restart", mw)
    m2 = part.store_in(mw, four)
    m2.rebalance(five)                       # the operator runs the same command again
    added.heal()
    everything = ks + part.keys(40, 400)
    _, b = store("b", five)
    part.read_all(b, everything)
    placement = s.placement(everything)
    part.expect_reads(
        history, placement,
        hint="A migrator can die at any point. Keep the move's state (the target shard set) "
             "outside the process, make copying idempotent (never overwrite a newer value), "
             "and let rebalance() with the same target pick up where the dead one stopped.")
    expect_valid(check_balance(placement, five), history,
                 hint="After the rerun the new shard must hold its share of the keys.")
