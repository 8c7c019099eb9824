"""Lab 04 hidden tests: moving keys while the store is in use. Writes that land during the copy
must survive the switch-over, a shard can be removed under live traffic, and a migration killed
halfway is finished by running it again."""
import threading

import pytest

from splitbrain.checkers.partitioning import check_balance, check_placement, check_reads
from splitbrain.grading import expect_valid
from splitbrain.labsupport import partitioning as part

LOST_HINT = ("A write that lands on the old owner after its key was copied is lost when the "
             "rebalance switches over. While keys move, send writes where the key is going "
             "(or to both places) and read the new owner first; make sure no process keeps "
             "writing with an out-of-date shard map (check an epoch on the shard itself).")


def migrate_fully(m, rounds=10_000):
    """Call ``migrate()`` until it reports nothing left (bounded, so a liar cannot hang us)."""
    for _ in range(rounds):
        if not m.migrate():
            return
    raise AssertionError(f"migrate() still copied keys after {rounds} calls")


@pytest.mark.points(20)
@pytest.mark.faults("add-shard", "stale-map")
def test_05_writes_during_the_copy_survive_the_switch_over(shards, store, history):
    s = shards(5)
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    _, a = store("a", four)                # an application server that never restarts
    _, m = store("m", four)                # the operator's migration process
    ks = part.keys(400)
    acked = part.write_all(a, ((k, f"v1-{k}") for k in ks))
    expect_valid(check_placement(acked, s.placement(ks)), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    history.fault("add-shard", "s4", phase="start")
    m.begin_rebalance(five)
    part.write_all(a, ((k, f"v2-{k}") for k in ks[:100]))          # before any copy
    part.write_all(a, ((k, f"v2-{k}") for k in part.keys(50, 400)))  # new keys
    migrate_fully(m)
    part.write_all(a, ((k, f"v3-{k}") for k in ks[100:200]))       # after the copy
    part.write_all(a, ((k, f"v3-{k}") for k in part.keys(50, 450)))  # new keys again
    m.finish_rebalance()
    history.fault("add-shard", "s4", phase="end")
    everything = ks + part.keys(100, 400)
    _, b = store("b", five)
    part.read_all(b, everything)
    part.read_all(a, everything[::3])
    placement = s.placement(everything)
    expect_valid(check_reads(history, placement), history, hint=LOST_HINT)
    expect_valid(check_balance(placement, five), history,
                 hint="After finish_rebalance() the new shard must hold its share of the keys.")


@pytest.mark.points(15)
@pytest.mark.faults("remove-shard", "live-traffic")
def test_06_a_shard_is_removed_under_live_traffic(shards, store, history):
    s = shards(5)
    five, four = s.urls(), s.urls(["s0", "s1", "s2", "s3"])
    writers = [store(f"w{i}", five)[1] for i in range(2)]
    _, m = store("m", five)
    ks = part.keys(300)
    mine = [ks[i::2] for i in range(2)]
    for w, own in zip(writers, mine):
        part.write_all(w, ((k, f"0-{k}") for k in own))
    done = threading.Event()
    rounds = [0, 0]
    errors: list[BaseException] = []

    def traffic(i):
        try:                               # keep overwriting until the move is over, then once more
            r = 0
            while True:
                last = done.is_set()
                r += 1
                part.write_all(writers[i], ((k, f"{r}-{k}") for k in mine[i][r % 5::5]))
                rounds[i] = r
                if last:
                    return
        except BaseException as e:         # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    history.fault("remove-shard", "s4", phase="start")
    try:
        m.rebalance(four)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
    s.stop("s4")                            # decommissioned as soon as the move said it was done
    history.fault("remove-shard", "s4", phase="end")
    if errors:
        raise errors[0]
    _, r = store("r", four)
    part.read_all(r, ks)
    for w, own in zip(writers, mine):
        part.read_all(w, own[::4])
    expect_valid(check_reads(history, s.placement(ks)), history, hint=LOST_HINT)


@pytest.mark.points(15)
@pytest.mark.faults("kill", "add-shard")
def test_07_a_migration_killed_halfway_is_finished_by_running_it_again(shards, store, history):
    s = shards(5)
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    _, a = store("a", four)
    mw, m = store("m", four)
    ks = part.keys(400)
    acked = part.write_all(a, ((k, f"v1-{k}") for k in ks))
    expect_valid(check_placement(acked, s.placement(ks)), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly "
                      "the key.")
    history.fault("add-shard", "s4", phase="start")
    m.begin_rebalance(five)
    m.migrate(20)                           # part of the keys copied ...
    part.write_all(a, ((k, f"v2-{k}") for k in ks[::3]))
    mw.kill()                               # ... and the migrator dies (SIGKILL)
    part.write_all(a, ((k, f"v3-{k}") for k in ks[1::3]))   # the store stays writable
    part.write_all(a, ((k, f"v3-{k}") for k in part.keys(40, 400)))
    mw.restart()
    m2 = part.store_in(mw, s.urls(["s0", "s1", "s2", "s3"]))
    m2.rebalance(five)                       # the operator runs the same command again
    history.fault("add-shard", "s4", phase="end")
    everything = ks + part.keys(40, 400)
    _, b = store("b", five)
    part.read_all(b, everything)
    placement = s.placement(everything)
    expect_valid(check_reads(history, placement), history,
                 hint="A migrator can die at any point. Keep the move's state (the target shard "
                      "set) outside the process, make copying idempotent (never overwrite a "
                      "newer value), and let rebalance() with the same target pick up where "
                      "the dead one stopped.")
    expect_valid(check_balance(placement, five), history,
                 hint="After the rerun the new shard must hold its share of the keys.")
