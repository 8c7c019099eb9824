"""Every rendering of grading results: terminal summary (rich), JSON, JUnit XML, Gradescope
results.json, and the CSV gradebook of a batch. Results stay typed until they reach this module."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree as ET

from splitbrain.grading.results import GradingResult
from splitbrain.grading.runner import write_atomic

FORMATS = ("json", "junit", "gradescope", "csv")
_STYLE = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow",
          "infra_error": "magenta"}


def summary(result: GradingResult, console=None, show_messages: bool = True) -> None:
    """A table of tests with points, then what each test that did not pass says (tests that
    failed with the same words are named together, the words once). On a console that is not a
    terminal (a notebook's ``!splitbrain check``, a log) plain lines: no escape codes, no box."""
    from rich.console import Console
    console = console or Console()
    plain = not console.is_terminal
    if result.error:
        console.print(f"{result.lab}: could not grade {result.submission}\n{result.error}",
                      markup=False, highlight=False, style=None if plain else "red")
        return
    title = f"{result.lab}: {Path(result.submission).name} (seed {result.seed})"
    if plain:
        console.print(title, markup=False, highlight=False, soft_wrap=True)
        for t in result.tests:
            faults = f"  [{', '.join(t.faults)}]" if t.faults else ""
            console.print(f"  {t.status:<11} {_points(t):>10}  {t.name}{faults}", markup=False,
                          highlight=False, soft_wrap=True)
    else:
        from rich.table import Table
        table = Table(title=title)
        table.add_column("test", overflow="fold")
        table.add_column("status")
        table.add_column("points", justify="right")
        table.add_column("faults")
        for t in result.tests:
            table.add_row(t.name, f"[{_STYLE[t.status]}]{t.status}[/]", _points(t),
                          ", ".join(t.faults))
        console.print(table)
    if show_messages:
        for tests in _same_words(result.tests):
            t = tests[0]
            names = ", ".join(x.name for x in tests)
            head = f"{names} ({t.status})" if len(tests) == 1 else \
                f"{names} ({t.status}, {len(tests)} tests, the same way)"
            console.print(f"\n{head}", markup=False, highlight=False, soft_wrap=True,
                          style=None if plain else "bold")
            console.print(t.message, markup=False, highlight=False, soft_wrap=True)
            for x in tests:
                if x.history:
                    console.print(f"history: {x.history}", markup=False, highlight=False,
                                  soft_wrap=True)
    total = f"score {result.score:g}/{result.max_score:g}"
    if result.infra_errors:
        total += f" ({result.infra_errors} test(s) not graded: services failed; run again)"
    if result.runs > 1:
        spread = max(result.scores) - min(result.scores) if result.scores else 0
        total += (f" (the lowest of {result.runs} runs: "
                  f"{', '.join(f'{x:g}' for x in result.scores)}"
                  + (f"; spread {spread:g}: the runs disagreed)"
                     if not result.consistent else "; the same verdicts every run)"))
    console.print(f"\n{total}", markup=False, highlight=False, soft_wrap=True,
                  style=None if plain else "bold")


def _points(t) -> str:
    return f"{t.points:g}/{t.max_points:g}" if t.max_points else "public (0)"


def _same_words(tests) -> list[list]:
    """The tests that did not pass and said something, those with the same status and message
    together, in the order they first appear."""
    groups: dict[tuple[str, str], list] = {}
    for t in tests:
        if t.status != "passed" and t.message:
            groups.setdefault((t.status, t.message), []).append(t)
    return list(groups.values())


def to_json(result: GradingResult) -> str:
    return json.dumps(result.to_dict(), indent=1)


def to_junit(results: list[GradingResult]) -> str:
    suites = ET.Element("testsuites")
    for r in results:
        failures = sum(t.status == "failed" for t in r.tests)
        errors = sum(t.status in ("error", "timeout", "infra_error") for t in r.tests)
        suite = ET.SubElement(suites, "testsuite", name=f"{r.lab}:{Path(r.submission).name}",
                              tests=str(len(r.tests)), failures=str(failures),
                              errors=str(errors + (1 if r.error else 0)),
                              time=f"{r.duration_s:.3f}")
        if r.error:
            case = ET.SubElement(suite, "testcase", name="grading", classname=r.lab)
            ET.SubElement(case, "error", message="could not grade").text = r.error
        for t in r.tests:
            case = ET.SubElement(suite, "testcase", name=t.name, classname=r.lab,
                                 time=f"{t.duration_s:.3f}")
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="points", value=f"{t.points:g}/{t.max_points:g}")
            if t.status == "failed":
                ET.SubElement(case, "failure", message=t.message.splitlines()[0] if t.message
                              else "failed").text = t.message
            elif t.status != "passed":
                ET.SubElement(case, "error", type=t.status, message=t.status).text = t.message
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def to_gradescope(result: GradingResult) -> str:
    return json.dumps(result.to_gradescope_dict(), indent=1)


def to_csv(results: list[GradingResult]) -> str:
    """The gradebook: one row per submission, one column per test (points earned)."""
    names: list[str] = []
    for r in results:
        for t in r.tests:
            if t.name not in names:
                names.append(t.name)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["submission", "lab", "seed", "score", "max_score", "status", *names])
    for r in results:
        per = {t.name: (f"{t.points:g}" if t.status != "infra_error" else "infra_error")
               for t in r.tests}
        status = ("error" if r.error else "infra_error" if r.infra_errors else
                  "full marks" if r.full_marks else "graded")
        w.writerow([r.submission, r.lab, r.seed, f"{r.score:g}", f"{r.max_score:g}", status,
                    *[per.get(n, "") for n in names]])
    return buf.getvalue()


def write_reports(results: list[GradingResult], out_dir: str | Path,
                  formats: tuple[str, ...] | list[str] = FORMATS) -> list[Path]:
    """Batch reports in ``out_dir``: results.json (all gradings), junit.xml, gradebook.csv and a
    Gradescope results.json per submission folder. Every file is written atomically."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown report format(s) {', '.join(bad)}; choose from "
                         f"{', '.join(FORMATS)}")
    out = Path(out_dir)
    written = []
    if "json" in formats:
        written.append(write_atomic(out / "results.json", json.dumps(
            {"results": [r.to_dict() for r in results]}, indent=1)))
    if "junit" in formats:
        written.append(write_atomic(out / "junit.xml", to_junit(results)))
    if "csv" in formats:
        written.append(write_atomic(out / "gradebook.csv", to_csv(results)))
    if "gradescope" in formats:
        if len(results) == 1:
            written.append(write_atomic(out / "gradescope" / "results.json",
                                        to_gradescope(results[0])))
        else:
            from splitbrain.grading.runner import submission_key
            for r in results:
                key = r.extra.get("key") or submission_key(Path(r.submission), None)
                written.append(write_atomic(out / "gradescope" / key / "results.json",
                                            to_gradescope(r)))
    return written
