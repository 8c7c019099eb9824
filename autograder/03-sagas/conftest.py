"""Fixtures of lab 03's hidden tests: `rig` is the participants (inventory, payment, shipping) on
the namespace database plus one sandboxed worker running the submission's Orchestrator."""
from splitbrain.labsupport.saga_rig import rig  # noqa: F401  (fixture)
