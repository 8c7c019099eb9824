"""Typed results of a grading, rendered elsewhere (reports.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("passed", "failed", "error", "timeout", "infra_error")


@dataclass(frozen=True)
class TestResult:
    """One test of one grading.

    status: passed | failed | error (the test could not run the submission: syntax error, missing
        name, ...) | timeout | infra_error (a service failed; never charged: the test is left out of
        score and max_score). points: what the submission earned; max_points: what it was worth.
    """

    __test__ = False  # not a pytest test class

    name: str
    points: float
    max_points: float
    status: str
    message: str = ""
    faults: tuple[str, ...] = ()
    history: str | None = None
    anomalies: tuple[str, ...] = ()
    picture: str | None = None
    hidden: bool = False
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def detail(self, limit: int = 1500) -> str:
        """Why this test did not pass, on one line: its anomalies and the start of what the
        grader said (for a proof's problems, where a failure seen once must say why)."""
        said = " / ".join(ln.strip() for ln in (self.message or "").splitlines() if ln.strip())
        return f"anomalies {list(self.anomalies) or 'none'}; grader said: {said[:limit]}"

    @classmethod
    def from_plugin(cls, d: dict) -> "TestResult":
        status = d.get("status", "error")
        maxp = float(d.get("max_points", 1.0))
        return cls(name=d["name"], points=maxp if status == "passed" else 0.0, max_points=maxp,
                   status=status, message=d.get("message", ""), faults=tuple(d.get("faults", ())),
                   history=d.get("history"), anomalies=tuple(d.get("anomalies", ())),
                   picture=d.get("picture"), hidden=bool(d.get("hidden")),
                   duration_s=round(float(d.get("duration_s", 0.0)), 3))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["faults"], d["anomalies"] = list(self.faults), list(self.anomalies)
        return d


@dataclass(frozen=True)
class GradingResult:
    """One submission graded once: the sum of what the grader observed, test by test."""

    lab: str
    submission: str
    seed: int
    tests: tuple[TestResult, ...] = ()
    error: str | None = None           # the grading itself could not run (the message says why)
    duration_s: float = 0.0
    runs: int = 1                      # with --repeat: how many runs agreed
    consistent: bool = True            # False when repeated runs disagreed (a flaky verdict)
    extra: dict[str, Any] = field(default_factory=dict)
    scores: tuple[float, ...] = ()     # with --repeat: the score of each run

    @property
    def score(self) -> float:
        return round(sum(t.points for t in self.tests if t.status != "infra_error"), 3)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_points for t in self.tests if t.status != "infra_error"), 3)

    @property
    def full_marks(self) -> bool:
        return bool(self.tests) and self.error is None and all(
            t.status == "passed" for t in self.tests)

    @property
    def infra_errors(self) -> int:
        return sum(t.status == "infra_error" for t in self.tests)

    def anomalies(self) -> list[str]:
        return sorted({a for t in self.tests for a in t.anomalies})

    def to_dict(self) -> dict[str, Any]:
        return {"lab": self.lab, "submission": self.submission, "seed": self.seed,
                "score": self.score, "max_score": self.max_score, "error": self.error,
                "infra_errors": self.infra_errors, "consistent": self.consistent,
                "runs": self.runs, "duration_s": round(self.duration_s, 3),
                **({"scores": list(self.scores)} if self.runs > 1 else {}),
                "tests": [t.to_dict() for t in self.tests], **self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "GradingResult":
        tests = tuple(TestResult(**{k: tuple(v) if k in ("faults", "anomalies") else v
                                    for k, v in t.items()}) for t in d.get("tests", ()))
        known = {"lab", "submission", "seed", "error", "duration_s", "runs", "consistent"}
        extra = {"key": d["key"]} if "key" in d else {}
        return cls(tests=tests, extra=extra, scores=tuple(d.get("scores", ())),
                   **{k: d[k] for k in known if k in d})

    def to_gradescope_dict(self) -> dict[str, Any]:
        """Gradescope's results.json: score, per-test score/max_score/status/output."""
        out = {"score": self.score, "execution_time": round(self.duration_s),
               "output": self.error or f"{self.lab}: {self.score:g}/{self.max_score:g}",
               "tests": []}
        for t in self.tests:
            out["tests"].append({
                "name": t.name, "score": t.points, "max_score": t.max_points,
                "status": "passed" if t.status == "passed" else "failed",
                "output": t.message if t.status != "infra_error" else
                "not graded: the grading services failed (not counted)",
                "tags": list(t.faults),
                "visibility": "after_published" if t.hidden else "visible"})
        return out
