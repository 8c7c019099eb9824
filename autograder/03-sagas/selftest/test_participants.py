"""Lab 03's participants (rig.saga_server) against real Postgres: idempotency keys, refusals, armed
faults, and the wall between them and the learner's restricted role. The checker's truth is their ledger, so
these properties are what make a saga verdict trustworthy."""
from __future__ import annotations

import threading

import psycopg
import pytest

from rig.checkers import check_saga_ledger
from rig.saga import BadRequest, Declined, OutcomeUnknown, ParticipantClient
from rig.saga_server import Participants

ORDER = {"sku": "widget", "qty": 2, "account": "alice", "amount": 30, "address": "Main St 1"}


@pytest.fixture
def parts(ns):
    p = Participants(ns.pg_admin_url)
    p.stock({"widget": 5})
    p.accounts({"alice": 100, "bob": 10})
    p.block("Atlantis")
    with p:
        yield p


@pytest.fixture
def client(parts):
    return ParticipantClient(parts.url, timeout_s=2.0)


def test_a_repeated_key_replays_the_first_outcome_and_does_nothing_new(parts, client):
    first = client.reserve(key="k", saga_id="s1", sku="widget", qty=2)
    again = client.reserve(key="k", saga_id="s1", sku="widget", qty=2)
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert parts.balances()["stock"]["widget"] == 3
    assert len(parts.ledger()) == 1


def test_a_new_key_is_a_new_operation(parts, client):
    client.refund(key="u1", saga_id="s1", account="alice", amount=30)
    client.refund(key="u2", saga_id="s1", account="alice", amount=30)
    assert parts.balances()["accounts"]["alice"] == 160


def test_refusals_are_definite_and_replay_as_refusals(parts, client):
    with pytest.raises(Declined, match="declined"):
        client.charge(key="c", saga_id="s1", account="bob", amount=30)
    with pytest.raises(Declined):
        client.charge(key="c", saga_id="s1", account="bob", amount=30)
    with pytest.raises(Declined, match="Atlantis"):
        client.schedule(key="p", saga_id="s1", address="Atlantis")
    with pytest.raises(Declined, match="stock"):
        client.reserve(key="r", saga_id="s1", sku="widget", qty=6)
    assert parts.balances() == {"stock": {"widget": 5}, "accounts": {"alice": 100, "bob": 10}}


def test_a_key_reused_for_another_request_is_a_clear_error(client):
    client.charge(key="k", saga_id="s1", account="alice", amount=30)
    with pytest.raises(BadRequest, match="already used for payment.charge"):
        client.refund(key="k", saga_id="s1", account="alice", amount=30)


def test_bad_calls_name_what_is_wrong(parts):
    with pytest.raises(BadRequest, match="idempotency key"):
        ParticipantClient(parts.url).charge(key="", saga_id="s1", account="alice", amount=3)
    with pytest.raises(BadRequest, match="unknown operation"):
        ParticipantClient(parts.url).call("payment", "steal", key="k", saga_id="s1")
    with pytest.raises(BadRequest, match="positive integer"):
        ParticipantClient(parts.url).charge(key="k", saga_id="s1", account="alice", amount=-3)
    with pytest.raises(ValueError, match="http://127.0.0.1:PORT"):
        ParticipantClient("127.0.0.1:80")


def test_a_lost_reply_commits_then_answers_nothing_and_the_same_key_tells(parts):
    parts.arm("payment.charge", "lost-reply", "s1", hold_s=5.0)
    fast = ParticipantClient(parts.url, timeout_s=0.3)
    with pytest.raises(OutcomeUnknown, match="no answer within 0.3"):
        fast.charge(key="c", saga_id="s1", account="alice", amount=30)
    assert parts.balances()["accounts"]["alice"] == 70          # the work was done
    assert fast.charge(key="c", saga_id="s1", account="alice", amount=30)["replayed"] is True
    assert parts.fired == [{"op": "payment.charge", "saga_id": "s1", "kind": "lost-reply"}]


def test_a_lost_reply_drops_the_connection_for_a_caller_without_timeout(parts):
    parts.arm("payment.refund", "lost-reply", hold_s=0.2)
    with pytest.raises(OutcomeUnknown, match="connection lost"):
        ParticipantClient(parts.url).refund(key="u", saga_id="s1", account="alice", amount=1)


def test_unavailable_does_nothing_and_crash_faults_call_the_grader(parts, client):
    parts.arm("payment.refund", "unavailable", "s1", times=2)
    for _ in range(2):
        with pytest.raises(OutcomeUnknown, match="unavailable"):
            client.refund(key="u", saga_id="s1", account="alice", amount=30)
    assert parts.balances()["accounts"]["alice"] == 100
    client.refund(key="u", saga_id="s1", account="alice", amount=30)
    fired = threading.Event()
    parts.arm("inventory.reserve", "crash-after", "s2", on_fire=fired.set)
    with pytest.raises(OutcomeUnknown):
        client.reserve(key="r", saga_id="s2", sku="widget", qty=1)
    assert fired.is_set() and parts.balances()["stock"]["widget"] == 4
    with pytest.raises(ValueError, match="needs on_fire"):
        parts.arm("inventory.reserve", "crash-before")


def test_an_armed_decline_refuses_that_step_of_that_saga_until_disarmed(parts, client):
    armed = parts.arm("payment.charge", "decline", "s1")
    with pytest.raises(Declined, match="card of alice declined"):
        client.charge(key="c1", saga_id="s1", account="alice", amount=30)
    with pytest.raises(Declined):                       # a new key is refused too
        client.charge(key="c2", saga_id="s1", account="alice", amount=30)
    client.charge(key="c3", saga_id="s2", account="alice", amount=30)   # another saga is not
    assert parts.balances()["accounts"]["alice"] == 70
    assert [(r.key, r.status) for r in parts.ledger()] == [
        ("c1", "declined"), ("c2", "declined"), ("c3", "ok")]
    assert parts.unfired() == []                        # a decline is no planned call
    parts.disarm(armed)
    with pytest.raises(Declined):                       # the same key replays the refusal
        client.charge(key="c1", saga_id="s1", account="alice", amount=30)
    assert client.charge(key="c4", saga_id="s1", account="alice", amount=30)["status"] == "ok"
    with pytest.raises(ValueError, match="compensation"):
        parts.arm("payment.refund", "decline", "s1")


def test_an_armed_fault_is_spent_after_its_calls_and_disarmed_alone(parts, client):
    spent = threading.Event()    # called by the server's thread, once the answer has gone
    first = parts.arm("payment.refund", "unavailable", "s1", times=2, on_spent=spent.set)
    other = parts.arm("inventory.release", "unavailable", "s1")
    assert len(parts.unfired()) == 2
    parts.disarm(other)
    assert parts.unfired() == [{"op": "payment.refund", "saga_id": "s1", "kind": "unavailable"}]
    for _ in range(2):
        assert not spent.is_set()
        with pytest.raises(OutcomeUnknown, match="unavailable"):
            client.refund(key="u", saga_id="s1", account="alice", amount=30)
    assert spent.wait(5) and first.fired == 2
    client.release(key="r", saga_id="s1", sku="widget", qty=1)     # disarmed: served
    client.refund(key="u", saga_id="s1", account="alice", amount=30)
    with pytest.raises(ValueError, match="unknown operation"):
        parts.arm("payment.steal", "unavailable")


def test_the_learners_role_cannot_read_or_write_the_participants_schemas(parts, ns):
    with psycopg.connect(ns.pg_url, autocommit=True) as conn:
        for sql in ("SELECT * FROM payment.ledger", "UPDATE payment.accounts SET balance = 0",
                    "DELETE FROM inventory.ledger", "DROP SCHEMA shipping CASCADE"):
            with pytest.raises(psycopg.Error):
                conn.execute(sql)
        conn.execute("CREATE TABLE mine (id int)")   # its own tables are fine


def test_the_ledger_feeds_the_checker(parts, client):
    client.reserve(key="r", saga_id="s1", sku="widget", qty=2)
    client.charge(key="c", saga_id="s1", account="alice", amount=30)
    client.schedule(key="p", saga_id="s1", address="Main St 1")
    assert check_saga_ledger(parts.ledger(), {"s1": ORDER}, {"s1": "done"}).valid is True
    client.refund(key="u", saga_id="s1", account="alice", amount=30)
    assert "dangling-saga" in check_saga_ledger(parts.ledger(), {"s1": ORDER}).kinds()
