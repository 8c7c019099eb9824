"""What a learner hands in, turned into one component file the grader can run.

A submission is the component ``.py``, or a notebook: the code cells tagged ``component`` are the
component. A notebook whose tags were lost still grades: its cells that only import and define
(functions, classes, constants; no experiment that would run on import) make the component, if
they define the names the lab requires. Shell lines (``!...``) and magics (``%...``) are dropped.
A directory holds submissions (files, or one folder per learner).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

SUFFIXES = (".py", ".ipynb")


class SubmissionError(ValueError):
    """A submission that cannot be graded; the message says what is wrong and what to do."""


def defined_names(source: str, where: str) -> set[str] | None:
    """Top-level names a module defines (None when a star import makes it unknowable)."""
    try:
        tree = ast.parse(source, filename=where)
    except SyntaxError as e:
        raise SubmissionError(f"{where}: syntax error on line {e.lineno}: {e.msg}. Fix it and "
                              f"run again (python -m py_compile {Path(where).name} shows it "
                              f"too).") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name == "*":
                    return None
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            return None  # conditional definitions: let the import decide
    return names


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    src = "".join(src) if isinstance(src, list) else str(src)
    return "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("!", "%")))


_DEFS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
         ast.Assign, ast.AnnAssign)


def _definitions_only(src: str) -> bool:
    """A cell that only imports and defines (no experiment that would run at import time)."""
    try:
        body = ast.parse(src).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(n, _DEFS) or (isinstance(n, ast.Expr) and isinstance(
        n.value, ast.Constant) and isinstance(n.value.value, str)) for n in body)


def notebook_source(path: Path, requires: tuple[str, ...] = ()) -> str:
    """The component's source from a notebook: tagged cells, else cells defining required names."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, UnicodeDecodeError):
        raise SubmissionError(f"{path}: not a notebook (the file is not JSON). Save it from "
                              f"Jupyter again, or hand in the component .py file.") from None
    except (KeyError, TypeError):
        raise SubmissionError(f"{path}: JSON without notebook cells; hand in the .ipynb saved by "
                              f"Jupyter or the component .py file.") from None
    tagged = [c for c in cells if "component" in (c.get("metadata", {}).get("tags") or [])]
    if tagged:
        return "\n\n".join(_cell_source(c) for c in tagged) + "\n"
    keep = [src for src in map(_cell_source, cells) if _definitions_only(src)]
    source = "\n\n".join(keep) + "\n"
    names = defined_names(source, str(path))
    missing = [r for r in requires if names is not None and r not in names]
    if missing:
        raise SubmissionError(f"{path}: no cell tagged `component` and no code cell defines "
                              f"{', '.join(missing)}. Tag the cells of your component with "
                              f"`component` (View > Cell toolbar > Tags).")
    return source


def component_file(submission: Path, lab, workdir: Path) -> Path:
    """A .py file with the component, checked for syntax and the names the lab requires."""
    submission = Path(submission)
    if not submission.is_file():
        raise SubmissionError(f"{submission}: no such file. Pass the component ({lab.component}) "
                              f"or your notebook.")
    if submission.suffix == ".ipynb":
        source = notebook_source(submission, lab.requires)
    elif submission.suffix == ".py":
        try:
            source = submission.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SubmissionError(f"{submission}: not UTF-8 text") from None
    else:
        raise SubmissionError(f"{submission}: a submission is a .py component or a .ipynb "
                              f"notebook, not {submission.suffix or 'a file without suffix'}")
    if not source.strip():
        raise SubmissionError(f"{submission}: the file is empty; the lab needs "
                              f"{', '.join(lab.requires) or 'a component'}")
    names = defined_names(source, str(submission))
    missing = [r for r in lab.requires if names is not None and r not in names]
    if missing:
        raise SubmissionError(f"{submission}: does not define {', '.join(missing)}; the lab "
                              f"calls {', '.join(lab.requires)} (see the notebook's first cell)")
    if submission.suffix == ".py":
        return submission.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / lab.component
    out.write_text(source, encoding="utf-8")
    return out


def expand(paths: list[str | Path]) -> list[Path]:
    """Submissions from files and directories (a directory: its .py and .ipynb files, or one
    sub-directory per learner holding them)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in SUFFIXES)
            if not found:
                found = sorted(q for d in p.iterdir() if d.is_dir()
                               for q in d.iterdir() if q.is_file() and q.suffix in SUFFIXES)
            if not found:
                raise SubmissionError(f"{p}: no .py or .ipynb submissions in this folder or in "
                                      f"its sub-folders (one per learner)")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SubmissionError(f"{p}: no such file or folder (pass the learners' .py or "
                                  f".ipynb files, or the folder that holds them)")
    return out
