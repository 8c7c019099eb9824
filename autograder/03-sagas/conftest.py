"""Fixtures of lab 03's hidden tests: `rig` is the participants (inventory, payment, shipping) on
the namespace database plus one sandboxed worker running the submission's Orchestrator."""
import pytest

from splitbrain.labsupport.saga_rig import SagaRig


@pytest.fixture
def rig(ns, spawn, history):
    r = SagaRig.open(ns, spawn, history)
    yield r
    r.close()
