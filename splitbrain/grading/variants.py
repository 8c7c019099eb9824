"""A lab's graded variants: components that must get exactly their expected grade.

The hidden tests judge behaviour, not one design: a different correct component gets full marks,
and a subtly wrong one loses exactly the tests that teach its mistake, for the anomaly the chapter
names. A lab lists them in ``autograder/NN-slug/variants/variants.toml``::

    binaries = ["redis-server"]   # programs the gradings need (optional, at the top)

    [[variant]]
    name = "wrong_plain_del"      # the file variants/<name>.py ...
    base = "solution"             # ... or the lab's "solution" or "handout", or another variant
                                  # of this file that has a file of its own, with the edits below
    what = "..."                  # the mistake, or the other correct design, in one sentence
    select = "test_05"            # pytest -k expression; omitted: every hidden test
    fail = {"test_05" = "overlapping-holders"}   # these tests must fail with that anomaly kind
                                  # ("any": a failure of any kind); every other selected test
                                  # must pass
    [[variant.replace]]           # with a base: one local edit; `find` must occur exactly once
    find = "..."
    with = "..."

``splitbrain verify --variants LAB`` grades them; the kit's own suite does too. A variant with no
``fail`` is a correct design; the others are hand-written mutants (``verify --mutants`` counts
them with the generated ones).
"""
from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from splitbrain import tomlmodel
from splitbrain.grading.results import GradingResult
from splitbrain.lab import LabInfo

__all__ = ["Variant", "VariantError", "VariantOutcome", "ANY", "load_variants", "build", "judge",
           "grade_variants"]

ANY = "any"


class VariantError(ValueError):
    """A variants.toml entry that cannot be graded; the message names the file and the fix."""


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    find: str = Field(min_length=1, description="text that occurs exactly once in the base")
    with_: str = Field(alias="with", description="what replaces it")


class Variant(BaseModel):
    """One graded variant (see the module docstring for the fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    what: str = Field(min_length=1)
    base: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    select: str | None = Field(default=None, min_length=1)
    fail: dict[str, str] = Field(default_factory=dict)
    replace: tuple[Edit, ...] = ()
    folder: Path = Field(exclude=True, default=Path("."))
    binaries: tuple[str, ...] = Field(exclude=True, default=())

    @model_validator(mode="after")
    def _consistent(self) -> "Variant":
        if self.base and not self.replace:
            raise ValueError(f"base = {self.base!r} needs [[variant.replace]] edits")
        if self.replace and not self.base:
            raise ValueError('[[variant.replace]] needs base = "solution", "handout" or the name '
                             'of another variant')
        if any(not v for v in self.fail.values()):
            raise ValueError(f"`fail` maps a test (\"test_03\") to the anomaly kind it must fail "
                             f"with, or to \"{ANY}\"")
        return self

    @property
    def file(self) -> Path:
        return self.folder / f"{self.name}.py"

    @property
    def correct(self) -> bool:
        """A different correct design: every selected test must pass."""
        return not self.fail


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    binaries: tuple[str, ...] = ()
    variant: tuple[dict, ...] = Field(min_length=1)


def load_variants(lab: LabInfo) -> list[Variant]:
    """The lab's variants ([] when it has no variants.toml); VariantError names what is wrong."""
    path = lab.variants_dir / "variants.toml"
    if not path.is_file():
        return []
    top = tomlmodel.load(path, _File, {"variant": "list each graded variant as a [[variant]] "
                                                  "table"}, VariantError)
    out: list[Variant] = []
    for i, entry in enumerate(top.variant):
        where = f"{path}: variant #{i + 1} ({entry.get('name', 'no name')})"
        try:
            v = Variant.model_validate({**entry, "folder": lab.variants_dir,
                                        "binaries": top.binaries})
        except Exception as e:  # noqa: BLE001 - pydantic.ValidationError
            from pydantic import ValidationError
            if not isinstance(e, ValidationError):
                raise
            raise VariantError(tomlmodel.explain(where, Variant, e, internal=(
                "folder", "binaries"))) from None
        if not v.base and not v.file.is_file():
            raise VariantError(f"{where}: {v.file} not found; add the file, or build the variant "
                               f"from a base (base = \"solution\", \"handout\" or another "
                               f"variant) and edits")
        if v.base and v.file.is_file():
            raise VariantError(f"{where}: both {v.file.name} and base = {v.base!r}; keep one")
        out.append(v)
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise VariantError(f"{path}: a variant name appears twice: {sorted(names)}")
    whole = sorted(v.name for v in out if not v.base)
    for v in out:
        if v.base and v.base not in ("solution", "handout") and v.base not in whole:
            raise VariantError(f"{path}: variant {v.name}: base = {v.base!r} is neither "
                               f"\"solution\", \"handout\" nor a variant with a file of its own "
                               f"({', '.join(whole) or 'none here'})")
    stray = sorted(p.name for p in lab.variants_dir.glob("*.py") if p.stem not in set(names))
    if stray:
        raise VariantError(f"{path}: {', '.join(stray)} in {lab.variants_dir} is listed by no "
                           f"[[variant]], so it would never be graded; list it or remove it")
    return out


def _base_path(variant: Variant, lab: LabInfo) -> Path:
    if variant.base == "solution":
        return lab.solution_path
    if variant.base == "handout":
        return lab.component_path
    return variant.folder / f"{variant.base}.py"       # another variant's own file


def build(variant: Variant, lab: LabInfo, dest: Path, base_text: str | None = None) -> Path:
    """The variant's component file: its own, or its base with the edits applied (each ``find``
    must occur exactly once). ``base_text`` stands in for the base file (a pristine handout)."""
    if not variant.base:
        return variant.file
    source = _base_path(variant, lab)
    text = base_text if base_text is not None else source.read_text(encoding="utf-8")
    for edit in variant.replace:
        n = text.count(edit.find)
        if n != 1:
            raise VariantError(
                f"{lab.variants_dir / 'variants.toml'}: variant {variant.name}: `find` occurs {n} "
                f"times in {source} (it must occur exactly once); update the edit to the current "
                f"{variant.base}:\n{edit.find}")
        text = text.replace(edit.find, edit.with_)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{variant.name}.py"
    out.write_text(f"# Variant {variant.name} of {source.name}: {variant.what}\n{text}",
                   encoding="utf-8")
    return out


def _matches(name: str, key: str) -> bool:
    return name == key or name.startswith(key + "_")


def judge(variant: Variant, result: GradingResult, lab: str = "") -> list[str]:
    """What is wrong with the grading of ``variant``, one line per problem (empty: as expected)."""
    head = f"{lab + ':' if lab else ''}{variant.name} ({variant.what})"
    if result.error:
        return [f"{head}: the grader could not grade it: {result.error}"]
    if not result.tests:
        return [f"{head}: no test ran (select = {variant.select!r})"]
    problems = []
    for key in variant.fail:
        hits = [t.name for t in result.tests if _matches(t.name, key)]
        if len(hits) != 1:
            problems.append(f"{head}: `fail` names {key}, which matches {len(hits)} of the tests "
                            f"that ran ({', '.join(t.name for t in result.tests)})")
    for t in result.tests:
        key = next((k for k in variant.fail if _matches(t.name, k)), None)
        detail = t.detail()
        if key is None and t.status != "passed":
            problems.append(f"{head}: {t.name}: expected passed, got {t.status}; {detail}")
        elif key is not None:
            want = variant.fail[key]
            if t.status != "failed":
                problems.append(f"{head}: {t.name}: expected failed ({want}), got {t.status}; "
                                f"{detail}")
            elif want != ANY and want not in t.anomalies:
                problems.append(f"{head}: {t.name}: expected failed with {want}, got failed; "
                                f"{detail}")
    if not result.consistent:
        problems.append(f"{head}: the grade changed between repeats")
    return problems


@dataclass(frozen=True)
class VariantOutcome:
    variant: Variant
    result: GradingResult
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def grade_variants(lab: LabInfo, variants: list[Variant] | None = None, seed: int = 1,
                   out_dir: Path | None = None, jobs: int = 2, repeat: int = 1,
                   on_done=None) -> list[VariantOutcome]:
    """Grade ``variants`` (default: all of the lab's), ``jobs`` at a time, each on its own
    namespaces; the longest gradings (whole suites) start first."""
    from splitbrain.grading.handout import pristine
    from splitbrain.grading.runner import grade_repeated
    variants = load_variants(lab) if variants is None else variants
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="splitbrain-variants-"))
    built = out / "built"
    handout_text = None
    if any(v.base == "handout" for v in variants):
        with tempfile.TemporaryDirectory() as tmp:
            handout_text = pristine(lab, Path(tmp)).read_text(encoding="utf-8")

    def one(v: Variant) -> VariantOutcome:
        try:
            src = build(v, lab, built, handout_text if v.base == "handout" else None)
        except VariantError as e:
            r = GradingResult(lab.slug, v.name, seed, error=str(e))
            return VariantOutcome(v, r, (str(e),))
        r = grade_repeated(lab, src, seed, repeat, out / v.name, select=v.select)
        outcome = VariantOutcome(v, r, tuple(judge(v, r, lab.slug)))
        if on_done:
            on_done(outcome)
        return outcome

    order = sorted(variants, key=lambda v: v.select is not None)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = {v.name: o for v, o in zip(order, pool.map(one, order))}
    return [done[v.name] for v in variants]
