"""One lab, read from ``labs/NN-slug/lab.toml``: the single source of truth for a lab.

A lab lives in three folders with the same ``NN-slug``: the handout in ``labs/`` (notebook, broken
component, public tests, and ``rig/``, the lab's trusted code), the fixed component in
``solutions/``, and the hidden tests and graded variants in ``autograder/``. Labs are found by
scanning ``labs/``; there is no second list to keep in step. The kit itself knows no lab.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from splitbrain import paths, tomlmodel

__all__ = ["LabInfo", "LabError", "Figure", "Guarantee", "load_lab", "discover_labs", "find_lab", "SLUG_RE",
           "KNOWN_SERVICES"]

FORMAT_VERSION = 1
SLUG_RE = re.compile(r"^(\d{2})-[a-z0-9][a-z0-9-]*$")
KNOWN_SERVICES = ("postgres", "redis", "kafka")
_NAME_RE = r"^[a-z0-9][a-z0-9-]*$"


class LabError(ValueError):
    """A lab folder or lab.toml that cannot be used; the message names the file and the field."""


Name = Annotated[str, Field(pattern=_NAME_RE)]


class Figure(BaseModel):
    """One of the book's figures of this lab: a history the grader recorded on the broken
    handout, drawn with the anomaly the checker found in it.

    name: the figure's file stem; the recording is ``labs/<slug>/figures/<name>.history.jsonl``
        with its verdict beside it (``<name>.verdict.json``), the drawing
        ``docs/assets/figures/<slug>-<name>.svg``.
    test: the hidden test whose recording this is (``splitbrain book --record LAB`` records it
        again from a grading of the broken handout).
    picture: the ``splitbrain.viz`` function that draws it.
    title: the figure's title.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    test: str
    picture: Literal["spacetime", "lease_timeline"] = "spacetime"
    title: str


class Guarantee(BaseModel):
    """One guarantee the lab's chapter teaches, checked as the chapter states it.

    name: a short slug (``fenced-writes``).
    kind: ``safety`` (nothing bad happens), ``order`` (things happen in the right order),
        ``liveness`` (something good happens, within a bound), ``bound`` (a quantity stays under
        a limit over the whole run).
    says: the guarantee in one sentence, as the chapter states it.
    anomalies: the anomaly kinds its checker reports when it is broken.
    checker: ``module:function`` of the checker (a module of the rig or of the kit).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    kind: Literal["safety", "order", "liveness", "bound"]
    says: str = Field(min_length=10)
    anomalies: tuple[Name, ...] = Field(min_length=1)
    checker: str = Field(pattern=r"^(rig|splitbrain)(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_]\w*$")


class LabInfo(BaseModel):
    """Everything the kit knows about one lab.

    Fields read from lab.toml (each described in ``Field(description=...)`` below); ``slug`` is
    the folder name and ``root`` the project checkout, neither written in the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(description="the folder name, NN-slug (e.g. 99-example)")
    format_version: Literal[1] = Field(description="lab.toml format; write format_version = 1")
    title: str = Field(min_length=1, description="the lab's title as `splitbrain labs` shows it")
    you_fix: str = Field(default="", description="the component the learner fixes, in a few words "
                                                 "(the tables of labs show it)")
    you_see: str = Field(default="", description="the failure the broken component shows, naming "
                                                 "a taught anomaly in backquotes (the tables of "
                                                 "labs show it)")
    chapter: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.md$",
                         description="the chapter's path relative to docs/")
    component: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.py$",
                           description="the file the learner fixes, in labs/<slug>/ and "
                                       "solutions/<slug>/")
    requires: tuple[str, ...] = Field(default=(), description="names the component must define")
    services: tuple[Literal["postgres", "redis", "kafka"], ...] = Field(
        default=(), description="services the tests need")
    faults: tuple[Name, ...] = Field(
        default=(), description="names from the fault registry (the kit's and the rig's) that "
                                "the hidden tests inject")
    notebook: str = Field(default="lab.ipynb", description="the notebook in labs/<slug>/")
    taught_anomalies: tuple[Name, ...] = Field(
        default=(), description="anomaly kinds the broken component must show")
    hints: tuple[str, ...] = Field(default=(), description="ordered hints, shown one at a time")
    points: int = Field(default=0, ge=0, description="the announced total; verify checks the "
                                                     "hidden tests add up to it (0: their sum)")
    test_timeout_s: float = Field(default=60.0, gt=0, description="wall-clock limit of one test")
    memory_mb: int = Field(default=512, ge=64, description="memory limit of one worker, MiB")
    call_timeout_s: float = Field(default=10.0, gt=0,
                                  description="limit of one call into the learner's code")
    figures: tuple[Figure, ...] = Field(default=(), description="the book's figures of this lab")
    guarantees: tuple[Guarantee, ...] = Field(
        default=(), description="the guarantees the chapter teaches, each with its checker")
    root: Path = Field(default_factory=paths.project_root, exclude=True)

    @field_validator("test_timeout_s", "memory_mb", "call_timeout_s", "points", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be a number, not true/false")
        return v

    @field_validator("chapter")
    @classmethod
    def _inside_docs(cls, v: str) -> str:
        if ".." in v.split("/"):
            raise ValueError("must stay inside docs/ (no ..)")
        return v

    @model_validator(mode="after")
    def _figures_unique(self) -> "LabInfo":
        names = [f.name for f in self.figures]
        if len(set(names)) != len(names):
            raise ValueError(f"two [[figures]] share a name: {sorted(names)}")
        return self

    # -- derived --------------------------------------------------------------------------------
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
    def rig_dir(self) -> Path:
        """The lab's trusted code, the package ``rig`` (see ``splitbrain.rig``)."""
        return self.lab_dir / "rig"

    @property
    def figures_dir(self) -> Path:
        return self.lab_dir / "figures"

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
    def variants_dir(self) -> Path:
        return self.autograder_dir / "variants"

    @property
    def selftest_dir(self) -> Path:
        """Unit tests of the rig (its checkers on hand-written histories), run by the kit's
        own suite, never graded."""
        return self.autograder_dir / "selftest"

    @property
    def notebook_path(self) -> Path:
        return self.lab_dir / self.notebook

    @property
    def chapter_path(self) -> Path:
        return self.root / "docs" / self.chapter

    @property
    def module_name(self) -> str:
        """The component's module name (``counter.py`` -> ``counter``)."""
        return Path(self.component).stem

    def public_tests(self) -> list[Path]:
        return sorted(self.lab_dir.glob("test_*.py"))

    def hidden_tests(self) -> list[Path]:
        return sorted(self.autograder_dir.glob("test_*.py"))


_HINTS = {
    "format_version": "write format_version = 1",
    "title": 'e.g. title = "A counter that counts"',
    "chapter": 'path relative to docs/, e.g. chapter = "chapters/99-example.md"',
    "component": 'the file the learner fixes, e.g. component = "counter.py"',
    "services": f"use {', '.join(KNOWN_SERVICES)}",
    "faults": "fault names are lowercase words joined by dashes; `splitbrain faults` lists them",
    "taught_anomalies": "anomaly kinds are lowercase words joined by dashes, e.g. stale-write",
    "memory_mb": "at least 64",
}


def load_lab(lab_dir: str | Path, root: str | Path | None = None) -> LabInfo:
    """Read ``<lab_dir>/lab.toml`` into a LabInfo; raise LabError naming the file and field."""
    lab_dir = Path(lab_dir)
    where = lab_dir / "lab.toml"
    root = Path(root) if root is not None else lab_dir.resolve().parent.parent
    if not SLUG_RE.match(lab_dir.name):
        raise LabError(f"{lab_dir}: a lab folder is named NN-slug (two digits, a dash, lowercase "
                       f"words), e.g. 99-example")
    if not where.is_file():
        raise LabError(f"{where}: not found; every lab folder needs a lab.toml "
                       f"(`splitbrain new-lab {lab_dir.name}` writes one)")
    return tomlmodel.load(where, LabInfo, _HINTS, LabError, slug=lab_dir.name,
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
    """A lab by slug (``99-example``), number (``07``/``7``) or suffix
    (``example``)."""
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
    """`` (did you mean 99-example?)`` for a near miss or a part of a slug, else ``""``."""
    import difflib
    low = name.lower().strip()
    close = [l.slug for l in labs if low and (low in l.slug or l.slug[3:] in low)]
    for cand in difflib.get_close_matches(low, [l.slug for l in labs] + [l.slug[3:] for l in labs],
                                          n=3, cutoff=0.6):
        slug = next(l.slug for l in labs if cand in (l.slug, l.slug[3:]))
        if slug not in close:
            close.append(slug)
    return f" (did you mean {' or '.join(close[:3])}?)" if close else ""
