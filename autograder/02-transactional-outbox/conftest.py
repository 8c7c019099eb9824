"""Fixtures of lab 02's hidden tests: ``world`` (schema, private broker behind a fault proxy,
topic, worker helpers); see splitbrain/labsupport/outbox_world.py."""
from splitbrain.labsupport.outbox_world import world  # noqa: F401  (fixture)
