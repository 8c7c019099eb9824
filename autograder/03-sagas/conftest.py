"""Fixtures of lab 03's hidden tests: `rig` is the participants (inventory, payment, shipping) on
the namespace database plus one sandboxed worker running the submission's Orchestrator; its faults
go through the test's `nemesis` (see the lab's rig/saga_rig.py).

The rig is imported inside the fixture: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest


@pytest.fixture
def rig(ns, spawn, history, nemesis):
    from rig.saga_rig import SagaRig
    r = SagaRig.open(ns, spawn, history, nemesis)
    yield r
    r.close()
