"""The kit parses Python from several threads at once (a batch prepares gradings side by side):
every parse goes through ``splitbrain.pyast.parse``, which CPython 3.11's shared AST-converter
state cannot trip."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from splitbrain import pyast

KIT = Path(pyast.__file__).parent


def test_the_kit_parses_only_through_the_lock():
    direct = [f"{p.relative_to(KIT)}:{i}" for p in sorted(KIT.rglob("*.py")) if p.name != "pyast.py"
              for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"\bast\.parse\(", line)]
    assert not direct, f"use splitbrain.pyast.parse, not ast.parse: {direct}"


class _Finalized:
    def __del__(self) -> None:
        time.sleep(0)       # gives the interpreter to another thread, from inside the collector


def test_threads_parsing_at_once_while_the_collector_runs_finalizers():
    """Cyclic garbage with finalizers makes the collector run Python code in the middle of a
    parse; plain ast.parse fails here now and then with "AST constructor recursion depth
    mismatch" on CPython 3.11."""
    source = Path(pyast.__file__).read_text(encoding="utf-8") * 20
    errors: list[BaseException] = []
    stop = threading.Event()

    def parse() -> None:
        while not stop.is_set():
            garbage = _Finalized()
            garbage.self = garbage
            del garbage
            try:
                pyast.parse(source)
            except SystemError as e:
                errors.append(e)
    import gc
    old = gc.get_threshold()
    gc.set_threshold(50)
    try:
        threads = [threading.Thread(target=parse) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        gc.set_threshold(*old)
    assert not errors, errors[:3]
