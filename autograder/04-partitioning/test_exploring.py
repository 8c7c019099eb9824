"""Lab 04 hidden test: a seeded exploration. Two writers rewrite their keys and read each other's
without pause while the migrator moves the store back and forth between four and five shards; in
each move, a stall drawn from the seed holds one process (the migrator or a writer) right before
(or right after) one of its requests to one server, and the test lets the others run on at that
moment — or kills the migrator there and reruns the move from a new process. Every guarantee is
judged over the whole history and what the shards hold at the end.

The same seed draws the same plan (``splitbrain check 04 --seed N`` replays it);
``splitbrain check 04 --explore 20`` runs 20 more seeds."""
import random

import pytest

from rig import partitioning as part
from rig.checkers import check_available, check_lost_writes, check_move, check_routing
from splitbrain.faults.schedule import Schedule
from splitbrain.grading import expect_valid

ROUNDS = 2              # moves: 4 -> 5 -> 4 shards (more seeds: `check --explore N`)
MAX_AFTER = 12          # a stall falls before one of a process's first 13 requests on a link
BLOCK_S = 0.3           # how long the others may be held up while a stall holds the migrator
SERVERS = ("control", "s0", "s1", "s2", "s3", "s4")
PROCS = ("m", "w0", "w1")


def plan(seed, rounds=ROUNDS):
    """One stall (or kill of the migrator) per move, drawn from ``seed``: (fault, process, server,
    stream, after)."""
    links_ = [f"{p}->{s}" for p in PROCS for s in SERVERS]
    sched = Schedule.from_seed(seed, {"stall": {"after": (0, MAX_AFTER)},
                                      "kill": {"after": (0, MAX_AFTER)}},
                               duration_s=1000.0,
                               targets={"stall": links_, "kill": [f"m->{s}" for s in SERVERS]})
    rng = random.Random(f"lab04-explore/{seed}")
    out = []
    for e in list(sched)[:rounds]:
        proc, server = e.target.split("->")
        stream = "downstream" if e.fault == "kill" else rng.choice(("upstream", "downstream"))
        out.append((e.fault, proc, server, stream, e.params["after"]))
    return out


class Watch:
    """Waits for the migrator's calls while watching the round's stall: the moment it holds the
    migrator, the writers run on (then the migrator goes on, or is killed right there); while it
    holds a writer, the move goes on without it."""

    def __init__(self, stall, fault, proc, traffic, nemesis, wm):
        self.stall, self.fault, self.proc = stall, fault, proc
        self.traffic, self.nemesis, self.wm = traffic, nemesis, wm
        self.engaged = self.killed = False

    def __call__(self, fut):
        while not self.engaged and not fut.done():
            if self.stall.wait(0.005):
                self.engaged = True
                if self.proc == "m":
                    self.traffic.progress(2, BLOCK_S)      # the writers act right now
                    if self.fault == "kill":
                        self.nemesis.inject("kill", self.wm)
                        self.killed = True
                    self.stall.heal()
        return part._settle(fut)


def drive(m, target, watch):
    """The migrator's move to ``target``, call by call: begin, migrate(5) until it reports 0,
    finish. Stops early if the migrator was killed or a call failed."""
    ok, _ = watch(m.begin_rebalance.async_(target))
    for _ in range(40):
        if not ok or watch.killed:
            return
        ok, n = watch(m.migrate.async_(5))
        if ok and not n:
            break
    if ok and not watch.killed:
        watch(m.finish_rebalance.async_())


@pytest.mark.points(10)
@pytest.mark.explore
@pytest.mark.faults("add-shard", "remove-shard", "stall", "concurrency")
def test_08_a_seeded_schedule_of_stalls_and_kills_under_live_traffic(shards, links, store, history,
                                                                     nemesis, ns, seed):
    s = shards(5)
    lk = links(s)
    four, five = s.urls(["s0", "s1", "s2", "s3"]), s.urls()
    (wm, m), (w0, a), (w1, b) = store(list(PROCS), four, links=lk)
    keys_of = [part.keys(20), part.keys(20, 20)]
    part.write_many(a, ((k, f"init-{k}") for k in keys_of[0]))
    part.write_many(b, ((k, f"init-{k}") for k in keys_of[1]))
    steps = plan(seed)
    traffic = part.Traffic([a, b], keys_of)
    target = four
    with nemesis.fault("concurrency"):
        traffic.start()
        try:
            for rnd, (fault, proc, server, stream, after) in enumerate(steps):
                target = five if target == four else four
                last = rnd == len(steps) - 1
                shard_fault = (nemesis.inject("add-shard", s.shard("s4")) if target == five else
                               nemesis.inject("remove-shard", s.shard("s4")) if last else None)
                stall = nemesis.inject("stall", lk.link(proc, server), after=after,
                                       stream=stream)
                watch = Watch(stall, fault, proc, traffic, nemesis, wm)
                drive(m, target, watch)
                if watch.killed:                         # the operator reruns the move
                    nemesis.inject("restart", wm)
                    m = part.store_in(wm, four, ns, links=lk)
                    drive(m, target, Watch(stall, "stall", "nobody", traffic, nemesis, wm))
                stall.heal()
                traffic.progress(1, BLOCK_S)
                if shard_fault is not None:
                    shard_fault.heal()                   # the last removal shuts s4 down
        finally:
            traffic.stop()
    everything = keys_of[0] + keys_of[1]
    r = part.store_in(wm, four, ns, links=lk)
    part.read_many(r, everything)
    r.shards()
    placement = s.placement(everything)
    hint = (f"The exploration (seed {seed}) drew: "
            + "; ".join(f"{f} {p}->{sv} {st} after {n}" for f, p, sv, st, n in steps)
            + ". Replay it with `splitbrain check 04 --seed {seed}`.")
    part.expect_reads(history, placement, checker=check_lost_writes, hint=hint)
    part.expect_reads(history, placement, checker=check_routing, hint=hint)
    expect_valid(check_available(history), history, hint=hint)
    expect_valid(check_move(history, four), history, hint=hint)
