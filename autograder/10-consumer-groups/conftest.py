"""Fixtures of lab 10's hidden tests: ``world`` (schema, a private broker, the topic, the
group, the grader's producer, member helpers; see the lab's rig/world.py).

The rig is imported inside the fixture: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest


@pytest.fixture
def world(ns, spawn, history, seed, lab, nemesis):
    from rig.world import World
    w = World(ns, spawn, history, seed, lab.memory_mb, nemesis=nemesis)
    yield w
    w.close()
