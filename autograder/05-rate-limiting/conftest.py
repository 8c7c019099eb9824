"""Fixtures of lab 05's hidden tests: `gateway(name)` spawns one API gateway process with the
learner's RateLimiter; `gateways(names)` several at once; the verdicts come from
`rig.ratelimit.expect_guarantees`, every guarantee of lab.toml over the test's whole history."""
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
    def make(name: str, redis_url: str | None = None, prefix_: str | None = None,
             config: rl.Config | None = None) -> rl.Gateway:
        return rl.Gateway(spawn, name, prefix_ or prefix, redis_url=redis_url, config=config)
    return make


@pytest.fixture
def gateways(spawn, prefix):
    def make(names, urls=None, config: rl.Config | None = None) -> list[rl.Gateway]:
        return rl.gateways(spawn, names, prefix, urls=urls, config=config)
    return make


@pytest.fixture
def policy(component):
    return rl.declared_policy(component)


@pytest.fixture
def admin_url(ns):
    """The grader's own view of this test's Redis (to read what the limiter left behind)."""
    return getattr(ns, "redis_admin_url", None) or ns.redis_url
