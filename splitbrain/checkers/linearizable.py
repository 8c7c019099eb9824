"""A linearizable register, checked by search (Wing & Gong, with Lowe's memoization).

A history is linearizable if every operation can be given one instant between its invoke and its
completion such that, in that order, a single register explains every result. It is the guarantee
people assume of "a key in a database" and the one replication lag, stale caches and split brains
break. Deciding it is NP-complete in general, so the search has a budget: out of budget the verdict
is ``"unknown"``, never valid.

Operations (``f``): ``write`` (args: the value), ``read`` (ok result: the value read), ``cas``
(args ``[expected, new]``; ok result True = swapped, False = did not swap). Completion types:
``ok`` (happened, result known), ``fail`` (certainly did not happen: ignored), ``info`` or no
completion (may have happened at any time after the invoke, or never).

``check_register(history, initial=None, max_states=100_000, key=None)`` anomaly kinds:

* ``not-linearizable`` — no order of the operations explains the results; the anomaly names the
  operations that could not be placed and the register value(s) they contradicted.

``key``: when the history holds several registers (args ``{"key": k, "value": v}``), check the one
named ``k``; registers are independent, so check each key separately.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.history import History

__all__ = ["check_register"]

_INF = float("inf")


@dataclass(frozen=True)
class _Op:
    n: int
    process: str
    f: str
    arg: Any
    result: Any
    call: int
    ret: float            # completion index, or inf for an unknown outcome
    required: bool
    events: tuple[int, ...]

    def label(self) -> str:
        shown = self.arg if self.f != "read" else self.result
        return f"{self.process}:{self.f}({_show(shown)})" + ("?" if not self.required else "")


def _show(v: Any) -> str:
    return json.dumps(v, default=repr) if not isinstance(v, str) else repr(v)


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _unwrap(op: Any, key: Any) -> tuple[bool, Any]:
    """(this op is on the register, its argument): ``write(value)`` / ``cas(expected, new)`` /
    ``read()``, or with ``key``: ``write(key, value)`` / ``cas(key, expected, new)`` /
    ``read(key)``."""
    first = 0 if key is None else 1
    if key is not None and op.arg(0, "key") != key:
        return False, None
    if op.f == "read":
        return True, None
    if op.f == "write":
        return True, op.arg(first, "value")
    return True, [op.arg(first, "expected"), op.arg(first + 1, "new")]


def _ops(history: History, key: Any) -> list[_Op]:
    out = []
    for op in history.operations():
        if op.f not in ("read", "write", "cas") or op.type == "fail":
            continue
        mine, arg = _unwrap(op, key)
        if not mine:
            continue
        required = op.type == "ok"
        if op.f == "read" and not required:
            continue                      # a read with no answer constrains nothing
        if op.f == "cas" and not (isinstance(arg, (list, tuple)) and len(arg) == 2):
            raise ValueError(f"cas needs args [expected, new], got {arg!r} (event {op.invoke.index})")
        result = op.result
        if op.f == "read" and isinstance(result, Mapping) and key is not None:
            result = result.get("value")
        out.append(_Op(len(out), op.process, op.f, _freeze(arg), _freeze(result),
                       op.invoke.index, op.complete.index if required else _INF, required,
                       (op.invoke.index,) + ((op.complete.index,) if op.complete else ())))
    return out


def _step(op: _Op, state: Any) -> tuple[bool, Any]:
    """Apply ``op`` to the register: (consistent?, new state)."""
    if op.f == "write":
        return True, op.arg
    if op.f == "read":
        return op.result == state, state
    expected, new = op.arg
    swapped = op.result is not False if op.required else True
    if swapped:
        return state == expected, new
    return state != expected, state


def check_register(history: History, initial: Any = None, max_states: int = 100_000,
                   key: Any = None) -> Verdict:
    """Is the register history linearizable? True, False, or "unknown" (out of budget)."""
    ops = _ops(history, key)
    required_mask = sum(1 << o.n for o in ops if o.required)
    start = (0, _freeze(initial))
    seen = {start}
    stack = [start]
    explored = 0
    best = start
    while stack:
        mask, state = stack.pop()
        if mask & required_mask == required_mask:
            return verdict("linearizable-register", [], operations=len(ops), states=explored)
        explored += 1
        if explored > max_states:
            return Verdict("unknown", (), "linearizable-register",
                           {"operations": len(ops), "states": explored,
                            "why": f"more than {max_states} states; raise max_states or check a "
                                   "shorter history"})
        if bin(mask & required_mask).count("1") > bin(best[0] & required_mask).count("1"):
            best = (mask, state)
        pending = [o for o in ops if not mask >> o.n & 1]
        horizon = min((o.ret for o in pending if o.required), default=_INF)
        for o in pending:
            if o.call > horizon:
                continue
            ok, new = _step(o, state)
            if ok:
                node = (mask | 1 << o.n, new)
                if node not in seen:
                    seen.add(node)
                    stack.append(node)
    return verdict("linearizable-register", [_explain(ops, best)], operations=len(ops),
                   states=explored)


def _explain(ops: list[_Op], best: tuple[int, Any]) -> Anomaly:
    mask, state = best
    pending = [o for o in ops if not mask >> o.n & 1]
    horizon = min((o.ret for o in pending if o.required), default=_INF)
    stuck = [o for o in pending if o.call <= horizon and o.required]
    done = sum(1 for o in ops if mask >> o.n & 1)
    events = tuple(sorted({e for o in stuck for e in o.events}))
    return Anomaly(
        "not-linearizable",
        f"no single order explains the results: after placing {done} operation(s), the register "
        f"holds {_show(state)} and none of {', '.join(o.label() for o in stuck[:6])} can come next",
        events, {"state": state, "stuck": [o.label() for o in stuck]})
