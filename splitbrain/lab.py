"""One lab, read from ``labs/NN-slug/lab.toml``: the single source of truth for a lab.

A lab lives in three folders with the same ``NN-slug``: the handout in ``labs/`` (notebook, broken
component, public tests), the fixed component in ``solutions/``, and the hidden tests in
``autograder/``. Labs are found by scanning ``labs/``; there is no second list to keep in step.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splitbrain import paths

__all__ = ["LabInfo", "LabError", "load_lab", "discover_labs", "find_lab"]

FORMAT_VERSION = 1
SLUG_RE = re.compile(r"^(\d{2})-[a-z0-9][a-z0-9-]*$")
KNOWN_SERVICES = ("postgres", "redis", "kafka")


class LabError(ValueError):
    """A lab folder or lab.toml that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class LabInfo:
    """Everything the kit knows about one lab.

    Fields read from lab.toml:
      slug: the folder name, ``NN-slug`` (e.g. ``"01-fencing-locks"``); not in the file.
      format_version: lab.toml format, currently 1.
      title: the lab's title as shown by ``splitbrain labs``.
      chapter: the chapter's path relative to ``docs/`` (``"chapters/01-fencing-locks.md"``).
      component: the file the learner fixes, in ``labs/<slug>/`` and ``solutions/<slug>/``.
      requires: names the component must define (classes or functions the grader calls).
      services: services the tests need, a subset of ``postgres``, ``redis``, ``kafka``.
      faults: names of the faults the hidden tests inject (documentation and reports).
      notebook: the lab notebook's file name in ``labs/<slug>/``.
      taught_anomalies: anomaly kinds the broken component must show (``verify`` checks this).
      hints: ordered hints; ``splitbrain check`` shows the next one after a failed attempt.
      points: the total the lab is announced as worth; when set, ``verify`` checks that the
        hidden tests' points add up to it (0: not announced, the tests' sum is the total).
      test_timeout_s: wall-clock limit of one test, seconds (default 60).
      memory_mb: memory limit of one sandboxed worker process, MiB (default 512).
      call_timeout_s: a single call into the learner's code that takes longer is a timeout and
        its worker is killed (default 10).
    Derived: root (the project checkout) and the paths below.
    """

    slug: str
    title: str
    chapter: str
    component: str
    requires: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    notebook: str = "lab.ipynb"
    taught_anomalies: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    points: int = 0
    test_timeout_s: float = 60.0
    memory_mb: int = 512
    call_timeout_s: float = 10.0
    format_version: int = FORMAT_VERSION
    root: Path = field(default_factory=paths.project_root, compare=False)

    @property
    def number(self) -> int:
        return int(self.slug[:2])

    @property
    def lab_dir(self) -> Path:
        return self.root / "labs" / self.slug

    @property
    def toml_path(self) -> Path:
        return self.lab_dir / "lab.toml"

    @property
    def component_path(self) -> Path:
        """The learner's copy of the component (the broken handout until they fix it)."""
        return self.lab_dir / self.component

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.slug

    @property
    def solution_path(self) -> Path:
        return self.solution_dir / self.component

    @property
    def autograder_dir(self) -> Path:
        return self.root / "autograder" / self.slug

    @property
    def notebook_path(self) -> Path:
        return self.lab_dir / self.notebook

    @property
    def chapter_path(self) -> Path:
        return self.root / "docs" / self.chapter

    @property
    def module_name(self) -> str:
        """The component's module name (``lock.py`` -> ``lock``)."""
        return Path(self.component).stem

    def public_tests(self) -> list[Path]:
        return sorted(self.lab_dir.glob("test_*.py"))

    def hidden_tests(self) -> list[Path]:
        return sorted(self.autograder_dir.glob("test_*.py"))


def _field(data: dict, name: str, kind: type, where: Path, default: Any = ...) -> Any:
    if name not in data:
        if default is ...:
            raise LabError(f"{where}: missing field `{name}` ({_HELP.get(name, '')})")
        return default
    value = data[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LabError(f"{where}: field `{name}` must be a list of strings, got {value!r}")
        return tuple(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise LabError(f"{where}: field `{name}` must be a {kind.__name__}, got {value!r}")
    return value


_HELP = {
    "format_version": "write format_version = 1",
    "title": 'e.g. title = "Distributed locks and fencing tokens"',
    "chapter": 'path relative to docs/, e.g. chapter = "chapters/01-fencing-locks.md"',
    "component": 'the file the learner fixes, e.g. component = "lock.py"',
}

_KNOWN = {"format_version", "title", "chapter", "component", "requires", "services", "faults",
          "notebook", "taught_anomalies", "hints", "points", "test_timeout_s", "memory_mb",
          "call_timeout_s"}


def load_lab(lab_dir: str | Path, root: str | Path | None = None) -> LabInfo:
    """Read ``<lab_dir>/lab.toml`` into a LabInfo; raise LabError naming the file and field."""
    lab_dir = Path(lab_dir)
    where = lab_dir / "lab.toml"
    root = Path(root) if root is not None else lab_dir.resolve().parent.parent
    if not SLUG_RE.match(lab_dir.name):
        raise LabError(f"{lab_dir}: a lab folder is named NN-slug (two digits, a dash, lowercase "
                       f"words), e.g. 01-fencing-locks")
    if not where.is_file():
        raise LabError(f"{where}: not found; every lab folder needs a lab.toml")
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LabError(f"{where}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise LabError(f"{where}: unknown field(s) {', '.join(unknown)}; known fields are "
                       f"{', '.join(sorted(_KNOWN))}")
    version = _field(data, "format_version", int, where)
    if version != FORMAT_VERSION:
        raise LabError(f"{where}: field `format_version` is {version}; this kit reads version "
                       f"{FORMAT_VERSION}")
    services = _field(data, "services", list, where, ())
    bad = [s for s in services if s not in KNOWN_SERVICES]
    if bad:
        raise LabError(f"{where}: field `services` has unknown service(s) {bad}; use "
                       f"{', '.join(KNOWN_SERVICES)}")
    component = _field(data, "component", str, where)
    if not component.endswith(".py") or "/" in component or "\\" in component:
        raise LabError(f"{where}: field `component` must be a .py file name in the lab folder, "
                       f"got {component!r}")
    timeout = _field(data, "test_timeout_s", float, where, 60.0)
    memory = _field(data, "memory_mb", int, where, 512)
    call_timeout = _field(data, "call_timeout_s", float, where, 10.0)
    if timeout <= 0 or call_timeout <= 0 or memory < 64:
        raise LabError(f"{where}: test_timeout_s and call_timeout_s must be > 0 and "
                       f"memory_mb >= 64")
    return LabInfo(
        slug=lab_dir.name, format_version=version,
        title=_field(data, "title", str, where), chapter=_field(data, "chapter", str, where),
        component=component, requires=_field(data, "requires", list, where, ()),
        services=services, faults=_field(data, "faults", list, where, ()),
        notebook=_field(data, "notebook", str, where, "lab.ipynb"),
        taught_anomalies=_field(data, "taught_anomalies", list, where, ()),
        hints=_field(data, "hints", list, where, ()), points=_field(data, "points", int, where, 0),
        test_timeout_s=timeout, memory_mb=memory, call_timeout_s=call_timeout,
        root=Path(root).resolve())


def discover_labs(root: str | Path | None = None) -> list[LabInfo]:
    """Every lab under ``<root>/labs`` (root defaults to the project root), sorted by slug.

    Folders that do not look like a lab (no NN- prefix) are ignored; a malformed lab.toml raises.
    """
    root = Path(root) if root is not None else paths.project_root()
    labs = root / "labs"
    if not labs.is_dir():
        return []
    return [load_lab(d, root) for d in sorted(labs.iterdir())
            if d.is_dir() and re.match(r"^\d{2}-", d.name)]


def find_lab(name: str, root: str | Path | None = None) -> LabInfo:
    """A lab by slug (``01-fencing-locks``), number (``01``/``1``) or suffix (``fencing-locks``)."""
    labs = discover_labs(root)
    for lab in labs:
        if name in (lab.slug, lab.slug[3:]) or (name.isdigit() and int(name) == lab.number):
            return lab
    if not labs:
        where = Path(root) if root is not None else paths.project_root()
        raise LabError(f"no lab named {name!r}: no labs found under {where / 'labs'} (run the "
                       f"command inside the Split Brain checkout, or set SPLITBRAIN_ROOT to it)")
    raise LabError(f"no lab named {name!r}{_suggest(name, labs)}; labs: "
                   f"{', '.join(l.slug for l in labs)}")


def _suggest(name: str, labs: list[LabInfo]) -> str:
    """`` (did you mean 01-fencing-locks?)`` for a near miss or a part of a slug, else ``""``."""
    import difflib
    low = name.lower().strip()
    close = [l.slug for l in labs if low and (low in l.slug or l.slug[3:] in low)]
    for cand in difflib.get_close_matches(low, [l.slug for l in labs] + [l.slug[3:] for l in labs],
                                          n=3, cutoff=0.6):
        slug = next(l.slug for l in labs if cand in (l.slug, l.slug[3:]))
        if slug not in close:
            close.append(slug)
    return f" (did you mean {' or '.join(close[:3])}?)" if close else ""
