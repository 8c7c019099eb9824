"""The nemesis: the faults the grader injects, each with ``inject()`` and ``heal()``.

Modules: ``clock`` (Clock), ``crash`` (crash points), ``proxy`` (FaultProxy, the kit's TCP fault
proxy with Toxiproxy's HTTP API), ``toxiproxy`` (a client for that API), ``process`` (pause, resume,
kill, restart), ``delivery`` (duplicate, delay, reorder), ``registry`` (FAULTS: name -> fault
class), ``schedule`` (seeded Schedule, Nemesis, Pace). Names are imported lazily so that importing
``splitbrain`` stays cheap for learner code.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Clock": "clock", "crash_point": "crash",
    "FaultProxy": "proxy", "ProxyServer": "proxy",
    "ToxiproxyClient": "toxiproxy", "Proxy": "toxiproxy",
    "pause": "process", "resume": "process", "kill": "process", "restart": "process",
    "paused": "process",
    "Delivery": "delivery",
    "FAULTS": "registry", "Fault": "registry", "FaultError": "registry", "make_fault": "registry",
    "ToxicError": "toxics",
    "Schedule": "schedule", "FaultEvent": "schedule", "Nemesis": "schedule", "Pace": "schedule",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
