"""``ast.parse`` that is safe to call from several threads at once.

CPython 3.11 keeps the depth counter of its AST converter in state every thread shares: two
threads parsing at once (a batch preparing gradings side by side) can fail with ``SystemError:
AST constructor recursion depth mismatch``. Every parse of the kit goes through one lock; a parse
takes milliseconds, so the lock costs nothing a grading would notice.
"""
from __future__ import annotations

import ast
import threading

__all__ = ["parse"]

_LOCK = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename)
