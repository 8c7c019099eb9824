"""Fixtures of lab 05's hidden tests: `gateway(name)` spawns one API gateway process with the
learner's RateLimiter; the verdicts come from `rig.ratelimit.judge`."""
from __future__ import annotations

import uuid

import pytest

from rig import ratelimit as rl


@pytest.fixture
def prefix(ns):
    return ns.key("rl:")


@pytest.fixture
def client():
    """A client id no other test uses."""
    return f"client-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def gateway(spawn, prefix):
    def make(name: str, redis_url: str | None = None, prefix_: str | None = None) -> rl.Gateway:
        return rl.Gateway(spawn, name, prefix_ or prefix, redis_url=redis_url)
    return make


@pytest.fixture
def policy(component):
    return rl.declared_policy(component)
