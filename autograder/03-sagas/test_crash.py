"""Lab 03 hidden tests, part 2: the orchestrator dies, or stalls, at every boundary between two of
its round trips, and another process recovers. Every verdict comes from the participants' own
ledgers.

test_04 kills an orchestrator at each call of a saga, right as the participant receives it and
right after the participant committed it, forward and while compensating: one process per kill,
all started at once, then one new process runs recover() for all of them.

test_05 goes through every boundary of a saga on both of the orchestrator's links (each Postgres
request; each participant request and reply) with the kit's ``stall``: at each boundary where what
a recovery would find changed, a fresh saga is held there while another replica runs recover()
(the chapter's "a recovery starts while a slow original is still running"); and at each boundary
between two state writes that no kill at a call reaches, the orchestrator is killed there."""
import pytest

from rig.boundaries import Links, Snapshots, distinct, kill_at, novel_kills, race, walk
from rig.saga_rig import POOR
from splitbrain.grading import expect_valid

CALLS_BACK = ["inventory.reserve", "payment.charge", "shipping.schedule", "payment.refund",
              "inventory.release"]
#: (what the order is like, its fields, the call, the moment): one process killed at each
KILLS = ([("back", {"address": "Atlantis"}, op, when)
          for op in CALLS_BACK for when in ("before", "after")]
         + [("done", {}, "shipping.schedule", when) for when in ("before", "after")]
         + [("card", {"account": POOR}, "payment.charge", "after")])
CRASH_HINT = ("The orchestrator was killed {where}, and a new process ran recover(). Persist "
              "the saga's state before each step (which step may have started), in one write per "
              "transition, so that a new process can resume it forward or undo it backward, with "
              "the same idempotency keys as the first attempt.")


@pytest.mark.points(20)
@pytest.mark.faults("kill")
def test_04_killed_at_every_call_then_recovered_by_a_new_process(make_rig):
    rig = make_rig(replicas=1 + len(KILLS))          # a recoverer, and one process per kill
    recoverer, *victims = rig.replicas.values()
    pending = []
    for (kind, over, op, when), victim in zip(KILLS, victims):
        sid = f"{kind}-{when}-{op.split('.')[1]}"
        rig.crash(op, when, sid, replica=victim)
        rig.expect(sid, "either" if kind == "done" else "compensated")
        pending.append(victim.book_async(sid, rig.order(**over)))
    for f in pending:
        f.result()
    recoverer.recover()
    rig.expect("after", "done")
    recoverer.book("after", rig.order())
    expect_valid(rig.judge(), rig.history, hint=CRASH_HINT.format(
        where="right as a participant received one of its calls, or right after the "
              "participant committed it (forward, and while compensating)"))


def warm_up(rig, a, shape, prefix, n=6):
    """A few sagas of the same shape first: a client library's first runs of a statement differ
    from the later ones (psycopg prepares a statement on its fifth run), and a boundary is found
    again in a fresh saga by counting the messages before it."""
    for i in range(n):
        rig.expect(f"{prefix}-{i}", "compensated")
        a.book(f"{prefix}-{i}", rig.order(**shape))


@pytest.mark.points(15)
@pytest.mark.faults("stall", "kill", "refuse")
def test_05_stalled_or_killed_between_any_two_round_trips(make_rig, proxy):
    rig = make_rig(replicas=1)                          # b: direct links
    b = rig.main
    pg = proxy("postgres")
    links = Links(pg, rig.participants_proxy())
    a = rig.replica("orchestrator-a", pg_url=pg.url, saga_url=links.participants.url,
                    step_timeout_s=1.0)                # a: both links through fault proxies
    snaps = Snapshots(rig.admin_url)
    try:
        shape = {"address": "Atlantis"}                # forward, refused, and back
        warm_up(rig, a, shape, "warm")
        boundaries = walk(rig, a, links, "walk", rig.order(**shape), snaps)
        rig.expect("walk", "compensated")
        for i, at in enumerate(distinct(boundaries)):
            sid = f"race-{i}"
            race(rig, a, b, links, at, sid, rig.order(**shape), snaps)
            rig.expect(sid, "compensated")
        kills = novel_kills(boundaries)
        for i, at in enumerate(kills):
            sid = f"kill-{i}"
            if a.dead:
                a.restart(recover=False)
                warm_up(rig, a, shape, f"warm-{i}")
            kill_at(rig, a, links, at, sid, rig.order(**shape))
            rig.expect(sid, "compensated")
            b.recover()
    finally:
        snaps.close()
    rig.expect("after", "done")
    b.book("after", rig.order())
    expect_valid(rig.judge(), rig.history, hint=(
        "Another replica ran recover() while this saga's orchestrator was stalled between two "
        "of its round trips, or the orchestrator was killed between two of its state writes. "
        "A recovery must not turn back (or repeat) a saga that a slow original is still "
        "driving: hold a lock per saga for the whole drive (a Postgres advisory lock is "
        "released when its session dies). And write each transition in one statement or one "
        "transaction, so that a crash never leaves half of it."))
