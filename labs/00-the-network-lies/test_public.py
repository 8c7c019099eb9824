"""Public tests for lab 00: they run your transfer.py in a worker process against the real bank,
through the fault proxy, like the hidden tests. `splitbrain check 00` runs them with the hidden
tests; on their own (one command, from the checkout's root):

    .venv/bin/python -m pytest -q -p splitbrain.grading.plugin --lab 00-the-network-lies
        --submission labs/00-the-network-lies/transfer.py labs/00-the-network-lies/test_public.py
"""
import pytest

from splitbrain.grading import expect_valid

# Public tests are worth no points: they show how the grader drives your code.
pytestmark = pytest.mark.points(0)


@pytest.fixture
def world(ns, spawn, nemesis, history, seed):
    from rig.world import World
    with World.open(ns, spawn, history, nemesis, seed=seed) as w:
        yield w


def judge(world, hint):
    world.nemesis.heal_all()
    world.drain()                     # every request still in the network has landed
    expect_valid(world.judge(), world.history, hint=hint)


def test_a_quiet_day(world):
    app = world.client("app", timeout_s=0.25, attempts=3)
    assert app.transfer("alice", "bob", world.amount(), expect="ok") == "ok"
    assert app.transfer("dave", "bob", world.amount(), expect="failed") == "failed"  # dave has 5
    judge(world, "On a quiet day a transfer answers 'ok', and one the bank declines 'failed'.")


@pytest.mark.faults("lost-reply")
def test_a_lost_answer_does_not_move_the_money_twice(world, nemesis):
    app = world.client("app", timeout_s=0.25, attempts=3)
    nemesis.inject("lost-reply", "bank")      # the bank moves the money; its answer is lost
    app.transfer("alice", "bob", world.amount(), expect="ok")
    judge(world, "The retry reached the bank as a new transfer: send one Idempotency-Key per "
                 "transfer() call with every attempt.")


@pytest.mark.faults("latency")
def test_late_answers_are_unknown_not_failed(world, nemesis):
    app = world.client("app", timeout_s=0.25, attempts=3)
    with nemesis.fault("latency", "network", ms=1000):   # every answer a second late
        answer = app.transfer("alice", "bob", world.amount())
    judge(world, "No answer is not a refusal: when no attempt got an answer, say 'unknown'.")
    assert answer == "unknown", (f"transfer() answered {answer!r}; when no answer came it must "
                                 f"say 'unknown'")
