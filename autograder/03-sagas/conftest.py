"""Fixtures of lab 03's hidden tests (see the lab's rig/saga_rig.py and rig/boundaries.py).

``rig``: the participants (inventory, payment, shipping) on the namespace database plus one
sandboxed worker running the submission's Orchestrator. ``make_rig(replicas=N, **kw)``: the same
with N orchestrator replicas on the same database, all started at once. Faults go through the
test's ``nemesis``.

The rig is imported inside the fixtures: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest


@pytest.fixture
def make_rig(ns, spawn, history, nemesis):
    from rig.saga_rig import SagaRig
    made = []

    def make(replicas=1, **kw):
        r = SagaRig.open(ns, spawn, history, nemesis, replicas=replicas, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def rig(make_rig):
    return make_rig()
