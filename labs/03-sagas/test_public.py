"""Public tests for lab 03: run them with

    pytest labs/03-sagas/test_public.py -p splitbrain.grading.plugin

They use the same world as the hidden tests: the participants (inventory, payment, shipping) with
their own schemas in a database of your own, and your Orchestrator running in a sandboxed worker
that the grader may kill at any step. Verdicts come from the participants' ledgers.
"""
import pytest

from rig.saga_rig import POOR, rig_fixture  # noqa: F401  (the `rig` fixture)
from splitbrain.grading import expect_valid

# Public tests are worth no points: they are here so you can see how the grader drives your code.
pytestmark = pytest.mark.points(0)


def test_an_order_that_can_complete_is_booked(rig):
    """No faults: the item is reserved, the card charged and the parcel scheduled, once each."""
    rig.book("s1", rig.order(), expect="done")
    expect_valid(rig.judge(), rig.history)


def test_a_declined_card_releases_the_item(rig):
    """The payment is declined: the reservation before it must be released."""
    rig.book("s1", rig.order(account=POOR), expect="compensated")
    expect_valid(rig.judge(), rig.history)


def test_a_crash_right_after_the_charge_is_recovered(rig):
    """The orchestrator dies the moment the payment commits; a new process runs recover()."""
    rig.crash("payment.charge", "after", "s1")
    assert rig.book("s1", rig.order()) is None, "the orchestrator should have been killed"
    rig.restart_and_recover()
    expect_valid(rig.judge(), rig.history)
