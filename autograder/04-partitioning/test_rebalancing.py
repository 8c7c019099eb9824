"""Lab 04 hidden tests: moving keys while the store is in use.

Each test goes through the boundaries between the round trips of one process, one at a time: the
kit's ``stall`` fault holds that process's next request on one of its links (``rig.links``: every
worker reaches every server through its own fault proxy), the test makes the others act at that
exact moment, then lets it go. A round starts from a fresh world (the shards emptied, a new
cluster prefix, new stores) and holds the process one request later than the round before, until
the call finishes without reaching the stall: then every boundary on that link has been visited.

* test_05: the migrator held between the requests of its copy (``migrate``) while a process
  reads keys it has not copied yet, then rewrites the others and reads them (the keys: a few that
  a dry move sent to the new shard, among keys that stayed);
* test_06: a process that still has the old shard map writes behind the copy: the migrator held
  inside ``begin_rebalance`` while a process started now and the old one write the same key, and
  the old process held inside its own ``put`` while the move starts and copies;
* test_07: the migrator killed right after each request it makes to the control Redis inside
  ``migrate`` (the server did it, the migrator never learns), and killed between two steps while
  the store keeps serving; the operator reruns ``rebalance`` from another process.
"""
import pytest

from rig import partitioning as part
from rig.checkers import (check_available, check_lost_writes, check_move, check_placement,
                          check_routing)
from rig.links import Held, finished
from splitbrain.grading import expect_valid

MAX_ROUNDS = 12         # more boundaries than any sensible design has on one link in one call
BLOCK_S = 1.0           # a correct store may block a write while the move is half announced
KEYS = part.keys(20)    # few keys, so that a handful of them move in each round

COPY_HINT = ("A copy must never overwrite a newer write: a writer may store a newer value on the "
             "new owner between your check and your copy. Create the key only if it is absent, in "
             "one round trip (SET ... NX), and while keys move read the new owner first, then the "
             "old one.")
FENCE_HINT = ("A process that loaded the shard map before the move must not be able to write the "
              "old owner once any process wrote with the new map: raise an epoch fence on every "
              "shard BEFORE publishing the new map, and check the fence in the same atomic step as "
              "the write (one Lua script, or WATCH/MULTI), never in a separate round trip.")
RESUME_HINT = ("A migrator can die between any two requests. Whatever it records as done must "
               "already be done (copy first, then record progress), the move's state must live "
               "in the control Redis, and rebalance() run again from any process must finish it. "
               "While the migrator lies dead the store must keep serving puts and gets.")


def fresh(s, ns, workers, shard_urls, links, rnd):
    """A new round: the shards emptied, a cluster of its own (prefix ``kv<rnd>:``) and a new store
    in each worker, built before the move starts."""
    s.flush()
    return [part.store_in(w, shard_urls, ns, f"kv{rnd}:", links) for w in workers]


def judge_round(history, since, s, keys_, hint):
    """The reads and writes of this round (the events from ``since`` on) against where the keys
    sit now. Every round empties the shards and writes every key again first, so a round stands
    on its own, and judging only its own events keeps a test with many rounds linear."""
    from splitbrain.history import History
    placement = s.placement(keys_)
    own = History.from_events(history.events[since:])
    part.expect_reads(own, placement, checker=check_lost_writes, hint=hint)
    part.expect_reads(own, placement, checker=check_routing, hint=hint)


def dry_move(s, ns, workers, four, five, lk, nemesis, keys_):
    """A move of ``keys_`` from four shards to five, judged by nothing: the keys the store sends
    to the new shard s4, the keys that stay, and where each key sat before the move."""
    m, a = fresh(s, ns, workers, four, lk, "dry")
    part.write_many(a, ((k, f"v0-{k}") for k in keys_))
    before = s.placement(keys_)
    with nemesis.fault("add-shard", s.shard("s4")):
        m.rebalance(five)
    after = s.placement(keys_)
    moving = [k for k in keys_ if "s4" in after[k] and "s4" not in before[k] and before[k]]
    assert moving, ("no key moved to the new shard s4 when it was added to four shards: "
                    "rebalance() must copy to s4 the keys it now owns")
    return moving, [k for k in keys_ if k not in moving], before


def settle(*futures):
    for f in futures:
        if f is not None:
            part._settle(f)


@pytest.mark.points(15)
@pytest.mark.faults("add-shard", "stall", "concurrency")
def test_05_a_write_racing_the_copy_survives_it(shards, links, store, history, nemesis, ns):
    s = shards(5)
    lk = links(s)
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    workers = [w for w, _ in store(["m", "w"], four, links=lk)]
    # four keys that move to s4 (two rewritten while they move, two only read) among keys that
    # stay: the walk below holds m before each request it makes to s4 inside migrate(), one round
    # each, so it visits every copy within MAX_ROUNDS, both round trips of a check-then-copy
    # included; a key that stays costs no round
    moving, staying, _ = dry_move(s, ns, workers, four, five, lk, nemesis, part.keys(60))
    keys_ = moving[0:4:2] + staying[:6]          # rewritten while the copy is held
    still = moving[1:4:2] + staying[6:9]         # written once per round, then only read
    for rnd in range(MAX_ROUNDS):
        since = len(history)
        m, w = fresh(s, ns, workers, four, lk, rnd)
        part.write_many(w, ((k, f"v0.{rnd}-{k}") for k in keys_ + still))
        added = nemesis.inject("add-shard", s.shard("s4"))
        m.begin_rebalance(five)
        # m held before its (rnd+1)-th request to the new shard s4 inside migrate()
        held = Held(nemesis, lk.link("m", "s4"), lambda: m.migrate.async_(), after=rnd)
        if held.engaged:
            with nemesis.fault("concurrency"):      # the writer reads and writes right there
                part.read_many(w, still)            # some not copied yet: on the old owner only
                part.write_many(w, ((k, f"v1.{rnd}-{k}") for k in keys_))
                part.read_many(w, keys_)
        held.outcome()
        part.read_many(w, keys_)                     # during the move, the copy over
        m.finish_rebalance()
        added.heal()
        part.read_many(m, keys_ + still)
        judge_round(history, since, s, keys_ + still, COPY_HINT)
        if not held.engaged:                          # every boundary on m->s4 visited
            break
    expect_valid(check_available(history), history,
                 hint="Puts and gets must keep working while keys move: a write to a moving key "
                      "goes to its new owner, a read tries the new owner, then the old one.")
    w.shards()
    expect_valid(check_move(history, five), history,
                 hint="finish_rebalance() must end the move: shards() returns the new set.")


@pytest.mark.points(15)
@pytest.mark.faults("add-shard", "stale-map", "stall")
def test_06_a_process_with_the_old_map_cannot_write_behind_the_copy(shards, links, store,
                                                                     history, nemesis, ns):
    s = shards(5)
    lk = links(s)
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    workers = [w for w, _ in store(["m", "a"], four, links=lk)]
    wm, wa = workers
    # a dry move first: which key moves to the new shard s4, and from which old owner
    moving, _, before = dry_move(s, ns, workers, four, five, lk, nemesis, KEYS)
    key, old = moving[0], sorted(before[moving[0]])[0]
    rnd = 0
    # (i) m held before its (j+1)-th request to the key's old owner inside begin_rebalance(); a
    # process started now writes the key, then the process that still has the old map writes it
    for j in range(MAX_ROUNDS):
        since = len(history)
        m, a = fresh(s, ns, workers, four, lk, rnd := rnd + 1)
        part.write_many(a, ((k, f"v0.{rnd}-{k}") for k in KEYS))   # a loads the old map
        part.read_many(m, KEYS)                      # m's links to the old shards are open
        added = nemesis.inject("add-shard", s.shard("s4"))
        stale = nemesis.inject("stale-map", wa)
        held = Held(nemesis, lk.link("m", old), lambda: m.begin_rebalance.async_(five), after=j)
        late = stale_put = None
        if held.engaged:
            f = part.store_in(wa, four, ns, f"kv{rnd}:", lk)     # a store that starts now
            late = f.put.async_(key, f"new.{rnd}")
            if finished(late, BLOCK_S):              # (a correct store may make it wait)
                stale_put = a.put.async_(key, f"old.{rnd}")
                finished(stale_put, BLOCK_S)
        held.outcome()
        settle(late, stale_put)
        m.migrate()
        m.finish_rebalance()
        stale.heal()
        added.heal()
        part.read_many(m, [key] + KEYS[::4])
        part.read_many(a, [key])
        judge_round(history, since, s, KEYS, FENCE_HINT)
        if not held.engaged:
            break
    # (ii) a, with the old map, held before its (j+1)-th request to the old owner inside put();
    # meanwhile the move starts and copies the key
    for j in range(MAX_ROUNDS):
        since = len(history)
        m, a = fresh(s, ns, workers, four, lk, rnd := rnd + 1)
        part.write_many(a, ((k, f"v0.{rnd}-{k}") for k in KEYS))
        added = nemesis.inject("add-shard", s.shard("s4"))
        stale = nemesis.inject("stale-map", wa)
        held = Held(nemesis, lk.link("a", old), lambda: a.put.async_(key, f"old.{rnd}"),
                    after=j)
        if held.engaged:
            m.begin_rebalance(five)
            m.migrate()
        held.outcome()
        m.rebalance(five)
        stale.heal()
        added.heal()
        part.read_many(m, [key] + KEYS[::4])
        part.read_many(a, [key])
        judge_round(history, since, s, KEYS, FENCE_HINT)
        if not held.engaged:
            break
    expect_valid(check_available(history), history,
                 hint="A process refused by a fence must reload the shard map and retry, and "
                      "succeed once the new map is published.")
    m.shards()
    expect_valid(check_move(history, five), history,
                 hint="rebalance() must end the move: shards() returns the new set.")


@pytest.mark.points(15)
@pytest.mark.faults("add-shard", "remove-shard", "stall", "kill", "restart")
def test_07_a_migrator_killed_at_any_step_is_finished_by_running_it_again(shards, links, store,
                                                                         history, nemesis, ns):
    s = shards(5)
    lk = links(s)
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    (wm, _), (wa, a) = store(["m", "a"], four, links=lk)
    ks = part.keys(40)
    acked = part.write_many(a, ((k, f"v1-{k}") for k in ks))
    expect_valid(check_placement(acked, s.placement(ks)), history,
                 hint="put() must store each key on a shard, as a Redis string named exactly the "
                      "key.")
    target = four
    # (A) m killed right after its (j+1)-th request to the control Redis inside migrate() ran:
    # the server did it, m never learns; the operator reruns rebalance() from a
    for j in range(MAX_ROUNDS):
        target = five if target == four else four
        m = part.store_in(wm, target, ns, links=lk)
        added = nemesis.inject("add-shard", s.shard("s4")) if target == five else None
        m.begin_rebalance(target)
        m.migrate(2)                                   # part of the keys copied ...
        held = Held(nemesis, lk.link("m", "control"), lambda: m.migrate.async_(), after=j,
                    stream="downstream")
        if held.engaged:
            nemesis.inject("kill", wm)                 # ... and the migrator dies (SIGKILL)
            held.outcome()
            nemesis.inject("restart", wm)
            a.rebalance(target)                        # the same command again, from a
        else:
            m.finish_rebalance()
        if added is not None:
            added.heal()
        part.read_many(a, ks[j % 3::3])
        if not held.engaged:
            break
    # (B) m killed between two steps: the store keeps serving while it lies dead
    target = five if target == four else four
    m = part.store_in(wm, target, ns, links=lk)
    added = nemesis.inject("add-shard", s.shard("s4")) if target == five else None
    m.begin_rebalance(target)
    m.migrate(5)
    nemesis.inject("kill", wm)
    part.write_many(a, ((k, f"v3-{k}") for k in ks[::2]))
    part.write_many(a, ((k, f"v3-{k}") for k in part.keys(20, 40)))
    part.read_many(a, ks[1::2])
    nemesis.inject("restart", wm)
    m = part.store_in(wm, target, ns, links=lk)
    if target == four:
        with nemesis.fault("remove-shard", s.shard("s4")):
            m.rebalance(target)                        # the operator's rerun; s4 shut down after
    else:
        m.rebalance(target)                            # the operator's rerun ...
        added.heal()
        with nemesis.fault("remove-shard", s.shard("s4")):
            a.rebalance(four)                          # ... and the fifth shard goes again
    everything = ks + part.keys(20, 40)
    r = part.store_in(wm, four, ns, links=lk)          # a store that starts after it all
    part.read_many(r, everything)
    r.shards()
    placement = s.placement(everything)
    part.expect_reads(history, placement, checker=check_lost_writes, hint=RESUME_HINT)
    part.expect_reads(history, placement, checker=check_routing, hint=RESUME_HINT)
    expect_valid(check_available(history), history, hint=RESUME_HINT)
    expect_valid(check_move(history, four), history, hint=RESUME_HINT)
