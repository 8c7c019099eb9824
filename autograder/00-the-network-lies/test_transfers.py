"""Lab 00 hidden tests: a transfer client whose requests and answers the network delays, loses,
holds and resets, and whose bank loses an answer after doing the work or stalls before it.

Every verdict comes from the grader's own view: the history of calls it made and of the requests
the bank received, and the bank's own table of transfers (``bank.transfers``, which the
learner's code cannot read), judged against every guarantee of the chapter at once
(``expect``; ``rig.checkers.check_transfers``). Each test gives every transfer its own amount,
so the bank's table says which call each row belongs to."""
import pytest

TWICE_HINT = ("The bank moved the money more than once for one transfer(). Its answer was lost, "
              "not its work: the retry looked like a new transfer. Make one Idempotency-Key per "
              "transfer() call, before the first attempt, and send it with every attempt.")
UNKNOWN_HINT = ("transfer() answered 'failed', but the bank moved the money: no answer is not a "
                "refusal. When no attempt got an answer, the honest answer is 'unknown'.")


@pytest.mark.points(10)
def test_01_a_quiet_day(world, app, expect):
    """No fault: transfers go through, a refused one fails, and the same payment made twice is
    two payments."""
    app.transfer("alice", "bob", world.amount(), expect="ok")
    app.transfer("alice", "bob", world.amount(), expect="ok")
    app.transfer("dave", "bob", world.amount(), expect="failed")    # dave has 5: declined
    twice = world.amount()
    app.transfer("carol", "alice", twice, expect="ok")               # two payments of the same
    app.transfer("carol", "alice", twice, expect="ok")               # amount: both must move
    expect("On a quiet day every transfer must go through once and say so; two calls "
           "with the same arguments are two transfers (a key per call, not per content).")


@pytest.mark.points(20)
@pytest.mark.faults("lost-reply")
def test_02_lost_reply_is_retried_with_the_same_key(world, app, nemesis, expect):
    """The bank moves the money, then its answer is lost: the client times out. A retry must
    reach the bank as the same transfer, and learn that it was done."""
    nemesis.inject("lost-reply", "bank")                     # the first answer never comes
    app.transfer("alice", "bob", world.amount(), expect="ok")
    nemesis.inject("lost-reply", "bank", times=2)            # nor the second
    app.transfer("bob", "carol", world.amount(), expect="ok")
    expect(TWICE_HINT, lesson="duplicate-effect")


@pytest.mark.points(20)
@pytest.mark.faults("latency")
def test_03_late_answers_mean_unknown(world, app, nemesis, expect):
    """Every answer arrives a second late, after the client gave up: each request was carried
    out, and no answer came back in time."""
    with nemesis.fault("latency", "network", ms=1000):       # every reply one second late
        app.transfer("alice", "bob", world.amount())
    world.drain()
    app.transfer("alice", "carol", world.amount(), expect="ok")   # the network is back
    expect(UNKNOWN_HINT + " A late answer is a lost answer to a client that stopped "
                          "waiting, and the request it answers was carried out.",
           lesson="unknown-reported-as-failed")


@pytest.mark.points(15)
@pytest.mark.faults("blackhole")
def test_04_requests_held_in_the_network_land_later(world, app, nemesis, expect):
    """The network holds every request (a partition) until after the client gave up; then they
    all arrive at the bank."""
    with nemesis.fault("blackhole", "network"):
        app.transfer("carol", "bob", world.amount())
    world.drain()                                            # the held requests land now
    app.transfer("bob", "alice", world.amount(), expect="ok")
    expect("A request you gave up on is not gone: it can still be in the network and "
           "arrive later. Every attempt of one transfer must carry the same "
           "Idempotency-Key, and the answer after the last timeout is 'unknown'.")


@pytest.mark.points(15)
@pytest.mark.faults("reset", "lost-reply")
def test_05_a_reset_is_not_a_refusal(world, app, nemesis, expect):
    """Connections are reset: by the network before the request reached the bank, and by the
    bank after it moved the money. The client cannot tell which."""
    with nemesis.fault("reset", "network"):                  # reset before the bank saw it
        app.transfer("alice", "dave", world.amount())
    world.drain()
    nemesis.inject("lost-reply", "bank", how="reset", times=3)   # reset after the bank did it
    app.transfer("bob", "dave", world.amount())
    nemesis.inject("lost-reply", "bank", how="close")        # closed without an answer, once
    app.transfer("carol", "dave", world.amount(), expect="ok")
    expect("A connection reset (or closed without an answer) says nothing about whether "
           "the bank carried out the request: it may have, and then lost the answer. "
           "Treat it like a timeout: retry with the same key, and answer 'unknown' when "
           "no attempt got an answer.", lesson="unknown-reported-as-failed")


@pytest.mark.points(10)
@pytest.mark.faults("held-request")
def test_06_a_stalled_request_is_carried_out_later(world, app, nemesis, expect):
    """The bank holds the first request (a stalled server thread); the client times out and
    retries, the retry goes through, and then the stalled request is carried out too."""
    stuck = nemesis.inject("held-request", "bank")
    app.transfer("alice", "carol", world.amount(), expect="ok")
    stuck.heal()                                             # the stalled thread carries on
    expect(TWICE_HINT + " Here the first request was not lost: it was slow, and it is "
                        "carried out after the retry.", lesson="duplicate-effect")
