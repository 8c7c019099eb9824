"""``verify``: every lab proves itself.

First the lab must be complete (:mod:`.labcheck`: chapter, notebook without outputs, hints,
hidden tests, variants, figures, faults and anomalies the kit knows). Then its shipped broken
component must fail, with at least one anomaly the chapter teaches, and its solution must
get full marks; with ``variants``, every graded variant must get exactly its expected grade.
"""
from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from splitbrain.grading.handout import pristine
from splitbrain.grading.results import GradingResult
from splitbrain.grading.runner import grade_repeated
from splitbrain.lab import LabInfo
from splitbrain.grading.labcheck import Item, missing


@dataclass(frozen=True)
class LabProof:
    lab: str
    broken: GradingResult | None
    solution: GradingResult | None
    taught: tuple[str, ...]
    points: int = 0
    missing: tuple[Item, ...] = ()
    variants: tuple = ()            # VariantOutcome, when asked for

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def shown(self) -> list[str]:
        """Taught anomalies the broken component showed."""
        return [a for a in self.broken.anomalies() if a in self.taught] if self.broken else []

    @property
    def problems(self) -> list[str]:
        if self.missing:
            return [f"not complete: {i.what}: {i.fix}" for i in self.missing]
        out = []
        b, s = self.broken, self.solution
        assert b is not None and s is not None
        if b.error:
            out.append(f"the broken component could not be graded: {b.error}")
        elif b.score >= b.max_score:
            out.append("the broken component gets full marks: the hidden tests do not catch it")
        elif self.taught and not self.shown:
            seen = ", ".join(b.anomalies()) or "none (it failed without an expect_valid verdict)"
            out.append(f"the broken component fails without a taught anomaly "
                       f"({', '.join(self.taught)}); anomalies seen: {seen}")
        if s.error:
            out.append(f"the solution could not be graded: {s.error}")
        elif not s.full_marks:
            bad = [f"{t.name} ({t.status}; {t.detail(600)})" for t in s.tests
                   if t.status != "passed"]
            out.append(f"the solution loses points: {', '.join(bad)}")
        if self.points and not s.error and s.max_score != self.points:
            out.append(f"the hidden tests are worth {s.max_score:g} points; lab.toml says "
                       f"points = {self.points}")
        for name, r in (("broken", b), ("solution", s)):
            if not r.consistent:
                out.append(f"the {name} component got different verdicts over {r.runs} runs")
            if r.infra_errors:
                out.append(f"{r.infra_errors} test(s) of the {name} run hit infrastructure errors")
        for o in self.variants:
            out += list(o.problems)
        return out

    @property
    def proves(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        d = {"lab": self.lab, "proves": self.proves, "complete": self.complete,
             "problems": self.problems, "taught_anomalies": list(self.taught),
             "anomalies_shown": self.shown,
             "missing": [{"what": i.what, "fix": i.fix} for i in self.missing]}
        if self.broken is not None and self.solution is not None:
            d["broken"] = {"score": self.broken.score, "max_score": self.broken.max_score,
                           "anomalies": self.broken.anomalies()}
            d["solution"] = {"score": self.solution.score, "max_score": self.solution.max_score}
        if self.variants:
            d["variants"] = [{"name": o.variant.name, "correct": o.variant.correct, "ok": o.ok,
                              "score": o.result.score, "max_score": o.result.max_score,
                              "problems": list(o.problems)} for o in self.variants]
        return d


def verify_lab(lab: LabInfo, seed: int = 1, repeat: int = 1, out_dir: Path | None = None,
               jobs: int = 1, concurrent: bool = True, worktree: bool = False,
               variants: bool = False) -> LabProof:
    """Check that the lab is complete, then grade the shipped broken component and the solution
    (at the same time when ``concurrent``: each grading is its own pytest process on isolated
    namespaces), then, with ``variants``, its graded variants.
    ``worktree``: grade the handout as it is in the working tree, not as committed."""
    left = tuple(missing(lab))
    if left:
        return LabProof(lab.slug, None, None, lab.taught_anomalies, lab.points, left)
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="splitbrain-verify-"))
    with tempfile.TemporaryDirectory(prefix="splitbrain-handout-") as tmp:
        broken_file = pristine(lab, Path(tmp), worktree=worktree)

        def broken() -> GradingResult:
            return grade_repeated(lab, broken_file, seed, repeat, out / lab.slug / "broken",
                                  jobs=jobs)

        def solution() -> GradingResult:
            return grade_repeated(lab, lab.solution_path, seed, repeat,
                                  out / lab.slug / "solution", jobs=jobs)

        with ThreadPoolExecutor(max_workers=2 if concurrent else 1) as pool:
            b, s = pool.submit(broken), pool.submit(solution)
            b_res, s_res = b.result(), s.result()
    outcomes: tuple = ()
    if variants:
        from splitbrain.grading.variants import grade_variants
        outcomes = tuple(grade_variants(lab, seed=seed, out_dir=out / lab.slug / "variants",
                                        jobs=2 if concurrent else 1, repeat=repeat))
    return LabProof(lab.slug, b_res, s_res, lab.taught_anomalies, lab.points, (), outcomes)


def verify_labs(labs: list[LabInfo], seed: int = 1, repeat: int = 1,
                out_dir: Path | None = None, parallel: int = 2) -> list[LabProof]:
    """Prove every lab; ``parallel`` gradings run at once (2 suits a 2-core machine)."""
    with ThreadPoolExecutor(max_workers=max(1, (parallel + 1) // 2)) as pool:
        return list(pool.map(lambda lab: verify_lab(lab, seed, repeat, out_dir,
                                                    concurrent=parallel > 1), labs))
