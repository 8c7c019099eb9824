"""Fixtures of lab 02's hidden tests: ``world`` (schema, private broker behind a fault proxy,
topic, worker helpers, faults through the test's nemesis); see the lab's rig/world.py.

The rig is imported inside the fixture: pytest imports this conftest before the grading plugin's
``pytest_configure`` has loaded the lab's rig as ``rig``."""
import pytest


@pytest.fixture
def world(ns, spawn, history, seed, lab, nemesis):
    from rig.world import World
    w = World(ns, spawn, history, seed, lab.memory_mb, nemesis=nemesis)
    yield w
    w.close()
