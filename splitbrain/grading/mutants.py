"""``splitbrain verify --mutants``: how many of a solution's mutants the hidden tests catch.

Each mutant of the solution (:mod:`.mutate`) is graded like a submission, stopping at the first
test that does not pass. It is *killed* when it loses points, *survives* when it gets full
marks. A survivor that behaves like the solution under every test may be marked *equivalent* in
the lab's ``autograder/NN-slug/mutants.toml``, with a one-line reason::

    [[equivalent]]
    id = "number:6afc96:0"      # as `verify --mutants` prints it
    why = "row[1] would be the same column: the SELECT returns one"

The lab's shipped mistakes (its variants with a ``fail``) count as hand-written mutants. The kill
rate is killed / (all - equivalent); a lab ships when it reaches :data:`TARGET`.
"""
from __future__ import annotations

import json
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from splitbrain import tomlmodel
from splitbrain.grading.mutate import Mutant, mutants
from splitbrain.grading.results import GradingResult
from splitbrain.lab import LabInfo

__all__ = ["TARGET", "MutantOutcome", "MutationReport", "load_equivalents", "run_mutants"]

TARGET = 0.90


class _Equivalent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z-]+:[0-9a-f]{6}:\d+$")
    why: str = Field(min_length=8)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    equivalent: tuple[_Equivalent, ...] = ()


class MutantsFileError(ValueError):
    """A mutants.toml that cannot be used."""


def load_equivalents(lab: LabInfo) -> dict[str, str]:
    """id -> why, from ``autograder/NN-slug/mutants.toml`` (empty when there is none)."""
    path = lab.autograder_dir / "mutants.toml"
    if not path.is_file():
        return {}
    data = tomlmodel.load(path, _File, {"equivalent": "one [[equivalent]] table per mutant: id "
                                                      "and why"}, MutantsFileError)
    return {e.id: e.why for e in data.equivalent}


@dataclass(frozen=True)
class MutantOutcome:
    name: str                   # the mutant's id, or "variant <name>"
    what: str                   # the change, in one line
    status: str                 # killed | survived | equivalent | unknown (infrastructure)
    killed_by: tuple[str, ...] = ()
    duration_s: float = 0.0
    why: str = ""               # an equivalent's reason

    def to_dict(self) -> dict:
        return {"name": self.name, "what": self.what, "status": self.status,
                "killed_by": list(self.killed_by), "duration_s": round(self.duration_s, 2),
                **({"why": self.why} if self.why else {})}


@dataclass
class MutationReport:
    lab: str
    outcomes: list[MutantOutcome] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)     # equivalents naming no current mutant
    duration_s: float = 0.0

    def count(self, status: str, hand: bool | None = None) -> int:
        return sum(1 for o in self.outcomes if o.status == status and
                   (hand is None or o.name.startswith("variant ") == hand))

    @property
    def scored(self) -> int:
        return sum(1 for o in self.outcomes if o.status in ("killed", "survived"))

    @property
    def kill_rate(self) -> float:
        return self.count("killed") / self.scored if self.scored else 0.0

    @property
    def survivors(self) -> list[MutantOutcome]:
        return [o for o in self.outcomes if o.status == "survived"]

    @property
    def meets_target(self) -> bool:
        return self.kill_rate >= TARGET and not self.count("unknown") and not self.stale

    def summary(self) -> str:
        gen = sum(1 for o in self.outcomes if not o.name.startswith("variant "))
        return (f"{self.lab}: {self.kill_rate:.0%} of mutants killed ({self.count('killed')} of "
                f"{self.scored}; {gen} generated + {len(self.outcomes) - gen} hand-written; "
                f"{self.count('equivalent')} equivalent, {self.count('unknown')} not graded) in "
                f"{self.duration_s:.0f} s")

    def to_dict(self) -> dict:
        return {"lab": self.lab, "kill_rate": round(self.kill_rate, 4), "target": TARGET,
                "killed": self.count("killed"), "survived": self.count("survived"),
                "equivalent": self.count("equivalent"), "unknown": self.count("unknown"),
                "stale_equivalents": self.stale, "duration_s": round(self.duration_s, 1),
                "outcomes": [o.to_dict() for o in self.outcomes]}


def _status(r: GradingResult) -> tuple[str, tuple[str, ...]]:
    if r.error:
        return "unknown", ()
    lost = tuple(t.name for t in r.tests if t.status not in ("passed", "infra_error"))
    if lost:
        return "killed", lost
    if not r.tests or any(t.status == "infra_error" for t in r.tests):
        return "unknown", ()
    return "survived", ()


def run_mutants(lab: LabInfo, seed: int = 1, jobs: int = 2, sample: int | None = None,
                only: set[str] | None = None, out_dir: Path | None = None,
                variants: bool = True, on_done=None) -> MutationReport:
    """Grade the solution's mutants (``sample``: a seeded random subset; ``only``: these ids)
    and, with ``variants``, the lab's hand-written mistakes."""
    from splitbrain.grading.runner import grade_submission
    t0 = time.monotonic()
    equivalents = load_equivalents(lab)
    all_mutants = mutants(lab.solution_path.read_text(encoding="utf-8"))
    ids = {m.id for m in all_mutants}
    report = MutationReport(lab.slug, stale=sorted(set(equivalents) - ids))
    todo: list[Mutant] = []
    for m in all_mutants:
        if m.id in equivalents:
            report.outcomes.append(MutantOutcome(m.id, m.describe(), "equivalent",
                                                 why=equivalents[m.id]))
        elif only is None or m.id in only:
            todo.append(m)
    if sample is not None and sample < len(todo):
        todo = sorted(random.Random(seed).sample(todo, sample), key=lambda m: m.line)
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="splitbrain-mutants-"))
    built = out / "built"

    def one(m: Mutant) -> MutantOutcome:
        folder = built / m.id.replace(":", "-")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / lab.component
        path.write_text(m.source, encoding="utf-8")
        s0 = time.monotonic()
        r = grade_submission(lab, path, seed, out / "gradings" / m.id.replace(":", "-"),
                             stop_first=True)
        status, by = _status(r)
        o = MutantOutcome(m.id, m.describe(), status, by, time.monotonic() - s0)
        if on_done:
            on_done(o)
        return o

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        report.outcomes += list(pool.map(one, todo))
    if variants and only is None:
        from splitbrain.grading.variants import grade_variants, load_variants
        mistakes = [v for v in load_variants(lab) if not v.correct]
        for o in grade_variants(lab, mistakes, seed=seed, out_dir=out / "variants", jobs=jobs):
            status, by = _status(o.result)
            mo = MutantOutcome(f"variant {o.variant.name}", o.variant.what, status, by,
                               o.result.duration_s)
            report.outcomes.append(mo)
            if on_done:
                on_done(mo)
    report.duration_s = time.monotonic() - t0
    return report


def save(report: MutationReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=1))
    return path
