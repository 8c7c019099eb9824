"""A lab's trusted code: the package ``labs/NN-slug/rig/``, imported as ``rig``.

Everything one lab needs beyond the kit lives there: the world its tests build (schemas, shard
servers, participants), its own checkers, its notebook helpers, and the faults only it injects
(``rig/faults.py``, registered in the kit's fault registry when the rig is loaded). The kit never
imports a lab by name; it loads the rig of the lab it is working on:

* a notebook runs in ``labs/NN-slug/``, so ``import rig`` finds it;
* public tests run from ``labs/NN-slug/`` (pytest puts that folder on ``sys.path``);
* the grading plugin calls :func:`load` for ``--lab`` before any hidden test is imported;
* a sandboxed worker is told the rig's path by the grader and registers it by path
  (:func:`register`) *before* it imports the learner's file, so a submission can never stand in
  for the rig.

Only one lab's rig is loaded in a process at a time; :func:`load` of another lab replaces it.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from splitbrain.lab import LabInfo

__all__ = ["NAME", "register", "load", "loaded_path", "unload"]

NAME = "rig"


def unload() -> None:
    """Forget the loaded rig and its submodules (and the faults it registered)."""
    # list(sys.modules) is one C-level copy; another thread importing meanwhile cannot change it
    for mod in [m for m in list(sys.modules) if m == NAME or m.startswith(NAME + ".")]:
        sys.modules.pop(mod, None)
    if "splitbrain.faults.registry" in sys.modules:   # a worker never loads the registry
        sys.modules["splitbrain.faults.registry"].forget_lab_faults()


def loaded_path() -> Path | None:
    """The folder of the rig loaded in this process, if any."""
    mod = sys.modules.get(NAME)
    path = getattr(mod, "__path__", None)
    return Path(list(path)[0]).resolve() if path else None


def register(rig_dir: str | Path, with_faults: bool = True) -> ModuleType:
    """Import the package at ``rig_dir`` as ``rig`` (by path: ``sys.path`` plays no part), then
    its ``faults`` module if it has one (``with_faults``), so the lab's faults are in the
    registry. A sandboxed worker registers the rig without its faults: it never injects any."""
    rig_dir = Path(rig_dir).resolve()
    if loaded_path() == rig_dir:
        return sys.modules[NAME]
    unload()
    init = rig_dir / "__init__.py"
    if not init.is_file():
        raise ImportError(f"{rig_dir}: a lab's rig is a package; it needs an __init__.py")
    spec = importlib.util.spec_from_file_location(NAME, init,
                                                  submodule_search_locations=[str(rig_dir)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    try:
        spec.loader.exec_module(module)
        if with_faults and (rig_dir / "faults.py").is_file():
            importlib.import_module(f"{NAME}.faults")
    except BaseException:
        unload()
        raise
    return module


def load(lab: "LabInfo") -> ModuleType | None:
    """Load ``lab``'s rig as ``rig``; None (and nothing loaded) for a lab without one."""
    if not (lab.rig_dir / "__init__.py").is_file():
        unload()
        return None
    return register(lab.rig_dir)
