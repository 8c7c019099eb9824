"""Is a lab complete? The checklist ``splitbrain verify`` applies before it grades anything.

Each :class:`Item` is one thing a lab must have, with what to do when it is missing. The list is
the checklist CONTRIBUTING gives for adding a lab, and ``splitbrain new-lab`` writes templates
whose TODO markers this check finds, so a new lab says what is left to write.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from splitbrain.lab import LabInfo
from splitbrain import pyast

__all__ = ["Item", "completeness", "missing"]

TODO = re.compile(r"\bTODO\b")


@dataclass(frozen=True)
class Item:
    what: str          # the thing a lab must have
    ok: bool
    fix: str = ""      # what to do when it is missing

    def line(self) -> str:
        return f"[{'x' if self.ok else ' '}] {self.what}" + ("" if self.ok else f": {self.fix}")


def _todo(path: Path) -> bool:
    try:
        return bool(TODO.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False


def _rel(lab: LabInfo, path: Path) -> str:
    try:
        return str(path.relative_to(lab.root))
    except ValueError:
        return str(path)


def _defines(path: Path, names: tuple[str, ...]) -> tuple[list[str], str | None]:
    """(names of ``names`` the module does not define at top level, its docstring)."""
    try:
        tree = pyast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return list(names), None
    top = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            top.add(node.name)
        elif isinstance(node, ast.Assign):
            top.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return [n for n in names if n not in top], ast.get_docstring(tree)


def _tests(path: Path) -> list[ast.FunctionDef]:
    try:
        tree = pyast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]


def _marker(fn: ast.FunctionDef, name: str) -> bool:
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if isinstance(target, ast.Attribute) and target.attr == name:
            return True
    return False


def _notebook_items(lab: LabInfo) -> list[Item]:
    path = lab.notebook_path
    rel = _rel(lab, path)
    if not path.is_file():
        return [Item("a notebook that shows the anomaly", False, f"write {rel}")]
    try:
        import nbformat
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - any unreadable notebook is the same problem
        return [Item("a notebook that shows the anomaly", False, f"{rel} is not a notebook: {e}")]
    outputs = sum(1 for c in nb.cells if c.cell_type == "code" and (c.get("outputs") or
                                                                     c.get("execution_count")))
    todo = any(TODO.search(c.source) for c in nb.cells)
    return [Item("a notebook that shows the anomaly", not todo,
                 f"{rel} still has TODO cells"),
            Item("the notebook is committed without outputs", outputs == 0,
                 f"{rel} has {outputs} cell(s) with outputs; clear them (Jupyter: Edit > Clear "
                 f"Outputs of All Cells) before committing")]


def _fault_items(lab: LabInfo) -> list[Item]:
    from splitbrain import rig
    from splitbrain.faults.registry import FAULTS
    try:
        rig.load(lab)
    except Exception as e:  # noqa: BLE001 - a broken rig is reported, not raised
        return [Item("the rig loads", False, f"{_rel(lab, lab.rig_dir)} fails to import: "
                                             f"{type(e).__name__}: {e}")]
    try:
        unknown = [f for f in lab.faults if f not in FAULTS]
        return [Item("faults named in lab.toml", bool(lab.faults),
                     "list the faults the hidden tests inject in lab.toml `faults`"),
                Item("every fault is in the registry", not unknown,
                     f"{unknown} are neither the kit's faults nor registered by the rig "
                     f"(rig/faults.py); `splitbrain faults` lists the known ones")]
    finally:
        rig.unload()


def _anomaly_items(lab: LabInfo) -> list[Item]:
    """Each taught anomaly kind must be something a checker can report: its slug appears in the
    lab's rig, its hidden tests or the kit's checkers."""
    import splitbrain.checkers as kit_checkers
    sources = [*lab.rig_dir.rglob("*.py"), *lab.autograder_dir.glob("*.py"),
               *Path(kit_checkers.__file__).parent.glob("*.py")]
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sources
                     if p.is_file())
    unreachable = [a for a in lab.taught_anomalies if f'"{a}"' not in text and f"'{a}'" not in text]
    return [Item("taught anomalies named in lab.toml", bool(lab.taught_anomalies),
                 "list the anomaly kinds the broken handout must show in `taught_anomalies`"),
            Item("every taught anomaly is one a checker reports", not unreachable,
                 f"no checker of the rig, the hidden tests or the kit reports {unreachable}")]


def completeness(lab: LabInfo) -> list[Item]:
    """Every item of the checklist, in the order a lab is written."""
    items: list[Item] = []
    toml = lab.toml_path
    items.append(Item("lab.toml filled in", not _todo(toml), f"{_rel(lab, toml)} has TODOs"))
    items.append(Item("the lab's line in the tables of labs", bool(lab.you_fix.strip()) and
                      "`" in lab.you_see and not TODO.search(lab.you_fix + lab.you_see),
                      "write `you_fix` and `you_see` (naming a taught anomaly in backquotes) in "
                      "lab.toml, then `splitbrain book --tables`"))
    items.append(Item("hints", bool(lab.hints) and not any(TODO.search(h) for h in lab.hints),
                      "write at least one hint in lab.toml `hints`"))
    items.append(Item("the chapter", lab.chapter_path.is_file() and not _todo(lab.chapter_path),
                      f"write {_rel(lab, lab.chapter_path)} (the failure story first; TODOs "
                      f"left)" if lab.chapter_path.is_file() else
                      f"write {_rel(lab, lab.chapter_path)}"))
    items.append(Item("the lab's README", (lab.lab_dir / "README.md").is_file()
                      and not _todo(lab.lab_dir / "README.md"),
                      f"write {_rel(lab, lab.lab_dir / 'README.md')}"))
    items += _notebook_items(lab)
    missing_names, doc = _defines(lab.component_path, lab.requires)
    items.append(Item("the broken handout", lab.component_path.is_file() and not missing_names
                      and not _todo(lab.component_path),
                      f"write {_rel(lab, lab.component_path)}" + (
                          f" (it must define {missing_names})" if missing_names else "")))
    items.append(Item("the handout documents its interface", bool(doc) and not TODO.search(doc or
                                                                                      ""),
                      f"put the interface the grader calls in the module docstring of "
                      f"{_rel(lab, lab.component_path)} (the lab page shows it)"))
    sol_missing, _ = _defines(lab.solution_path, lab.requires)
    same = (lab.solution_path.is_file() and lab.component_path.is_file()
            and lab.solution_path.read_bytes() == lab.component_path.read_bytes())
    items.append(Item("the solution", lab.solution_path.is_file() and not sol_missing
                      and not _todo(lab.solution_path) and not same,
                      f"write {_rel(lab, lab.solution_path)}" + (
                          " (it is the handout)" if same else "")))
    explained = lab.solution_dir / "SOLUTION.md"
    items.append(Item("the explained solution", explained.is_file() and not _todo(explained),
                      f"write {_rel(lab, explained)}"))
    publics = lab.public_tests()
    items.append(Item("public tests", any(_tests(p) for p in publics) and
                      not any(_todo(p) for p in publics),
                      f"write {_rel(lab, lab.lab_dir / 'test_public.py')} (worth 0 points)"))
    hidden = lab.hidden_tests()
    tests = [fn for p in hidden for fn in _tests(p)]
    items.append(Item("hidden tests", bool(tests) and not any(_todo(p) for p in hidden),
                      f"write the hidden tests in {_rel(lab, lab.autograder_dir)}/test_*.py"))
    unmarked = [fn.name for fn in tests if not _marker(fn, "points")]
    items.append(Item("each hidden test carries its points", not unmarked,
                      f"add @pytest.mark.points(n) to {unmarked}"))
    explore = [fn.name for fn in tests if _marker(fn, "explore")]
    items.append(Item("a seeded exploring test", bool(explore),
                      "mark a hidden test @pytest.mark.explore that runs a seeded random fault "
                      "schedule from the lab's faults (`splitbrain check --explore N` reruns it)"))
    items += _anomaly_items(lab)
    items += _guarantee_items(lab)
    if (lab.rig_dir / "__init__.py").is_file() or lab.faults:
        items += _fault_items(lab)
    items += _variant_items(lab)
    items += _figure_items(lab)
    return items


def _guarantee_items(lab: LabInfo) -> list[Item]:
    """The chapter's guarantees are listed, each taught anomaly belongs to one, and each names a
    checker that exists (the rig is loaded to look)."""
    if not lab.guarantees:
        return [Item("the chapter's guarantees in lab.toml", False,
                     "list each guarantee the chapter teaches as [[guarantees]] (name, kind, says, "
                     "anomalies, checker)")]
    covered = {a for g in lab.guarantees for a in g.anomalies}
    orphans = [a for a in lab.taught_anomalies if a not in covered]
    out = [Item("the chapter's guarantees in lab.toml", True),
           Item("every taught anomaly belongs to a guarantee", not orphans,
                f"{orphans} belong to no [[guarantees]] entry")]
    import importlib
    from splitbrain import rig
    missing_checkers = []
    try:
        rig.load(lab)
        for g in lab.guarantees:
            mod, _, fn = g.checker.partition(":")
            try:
                if not callable(getattr(importlib.import_module(mod), fn, None)):
                    missing_checkers.append(g.checker)
            except ImportError:
                missing_checkers.append(g.checker)
    except Exception:  # noqa: BLE001 - a rig that fails to import is reported by _fault_items
        pass
    finally:
        rig.unload()
    out.append(Item("every guarantee's checker exists", not missing_checkers,
                    f"no such checker: {missing_checkers}"))
    return out


def _variant_items(lab: LabInfo) -> list[Item]:
    from splitbrain.grading.variants import VariantError, load_variants
    where = _rel(lab, lab.variants_dir / "variants.toml")
    try:
        vs = load_variants(lab)
    except VariantError as e:
        return [Item("graded variants", False, str(e))]
    return [Item("a different correct design among the variants", any(v.correct for v in vs),
                 f"add one to {where} (it must get full marks)"),
            Item("subtle mistakes among the variants", any(not v.correct for v in vs),
                 f"add them to {where}, each losing the test that teaches it")]


def _figure_items(lab: LabInfo) -> list[Item]:
    if not lab.figures:
        return [Item("a figure drawn from a recorded history", False,
                     "add a [[figures]] table to lab.toml and record it with "
                     f"`splitbrain book --record {lab.slug[:2]}`")]
    out = []
    for fig in lab.figures:
        h = lab.figures_dir / f"{fig.name}.history.jsonl"
        v = lab.figures_dir / f"{fig.name}.verdict.json"
        good = h.is_file() and v.is_file()
        if good:
            try:
                json.loads(v.read_text(encoding="utf-8"))
            except ValueError:
                good = False
        out.append(Item(f"figure {fig.name} recorded", good and not TODO.search(fig.title),
                        f"record it with `splitbrain book --record {lab.slug[:2]}` (writes "
                        f"{_rel(lab, h)} and its verdict)"))
    return out


def missing(lab: LabInfo) -> list[Item]:
    return [i for i in completeness(lab) if not i.ok]
