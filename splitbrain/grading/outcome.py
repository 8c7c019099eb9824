"""How one pytest phase becomes a status and a message a learner can read: the test's own words,
the anomaly, the component's exception and where in the component it came from, and a hint; never
pytest's rewriting of an assertion (the values it saw, the grader's objects), nor paths of the
sandbox."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from splitbrain.grading.env import InfraError
from splitbrain.sandbox.protocol import CallTimeout, RemoteError, WorkerDied

MAX_MESSAGE = 4000


def _infra(exc: BaseException) -> bool:
    from splitbrain.services.errors import ServiceError
    return isinstance(exc, (InfraError, ServiceError))


def classify(report: pytest.TestReport, call: pytest.CallInfo) -> tuple[str, str]:
    """(status, message) for a phase: passed | failed | error | timeout | infra_error."""
    if report.passed:
        return "passed", ""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "error", f"the test was skipped: {reason}"
    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is None:
        return "failed", _failure_lines(str(report.longreprtext))[-MAX_MESSAGE:]
    if _infra(exc) or _infra(getattr(exc, "__cause__", None) or exc):
        return "infra_error", f"infrastructure: {exc}"
    if type(exc).__name__ == "TestTimeout" or isinstance(exc, CallTimeout):
        return "timeout", str(exc)[:MAX_MESSAGE]
    if isinstance(exc, RemoteError):
        tb = f"\n{sandbox_paths(exc.traceback.rstrip())}" if exc.traceback else ""
        msg = f"your component raised {exc.type}: {exc.message}{tb}"
    elif isinstance(exc, WorkerDied):
        msg = str(exc)
    elif isinstance(exc, AssertionError):
        msg = _assertion(exc, call) or str(exc) or _failure_lines(report.longreprtext)
    elif isinstance(exc, pytest.fail.Exception):
        msg = str(exc)
    else:
        msg = call.excinfo.exconly()
    status = "error" if report.when != "call" else "failed"
    return status, msg.strip()[:MAX_MESSAGE]


def _failure_lines(longrepr: str) -> str:
    """The ``E`` lines of pytest's report (what went wrong), without the source around them."""
    lines = [ln[1:].strip() for ln in longrepr.splitlines() if ln.startswith("E ")]
    if lines:
        return "\n".join(lines)
    return longrepr.strip().splitlines()[-1] if longrepr.strip() else ""


def _assertion(exc: AssertionError, call: pytest.CallInfo) -> str | None:
    """A failed ``assert`` of a test, in the test's words: its message without what pytest's
    rewriting appended (``assert 17 is None``, `` +  where ...`` with the grader's objects); a
    bare ``assert`` names its line. Then the lab's hint that fits. None when the AssertionError
    did not come from an ``assert`` statement (``expect_valid`` raises its own, already
    explained)."""
    try:
        entry = call.excinfo.traceback[-1]
        statement = str(entry.statement).strip()
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    if not statement.startswith("assert"):
        return None
    lines = str(exc).split("\n")
    cut = next((i for i, ln in enumerate(lines) if ln.startswith("assert ")), len(lines))
    said = "\n".join([lines[0], *(ln.removeprefix("  ") for ln in lines[1:cut])]
                     ) if cut else ""
    if not said.strip():
        where = f"{Path(str(entry.path)).name}, line {entry.lineno + 1}"
        said = f"a check of the test failed ({where}): {' '.join(statement.split())[:300]}"
    from splitbrain.grading.context import current
    from splitbrain.grading.explain import lab_hint
    from splitbrain.grading.handout import Failure
    ctx = current()
    hint = lab_hint(Failure(ctx.nodeid.rpartition("::")[2], faults=ctx.faults, text=said))
    return f"{said}\nhint: {hint}" if hint else said


_SANDBOX = re.compile(r'File "[^"]*/sb-[^/"]*/')


def sandbox_paths(traceback: str) -> str:
    """A worker's traceback with the paths of its private folder taken out: ``File "lock.py"``,
    ``File "rig/fencing.py"``, the same in every run."""
    return _SANDBOX.sub('File "', traceback).replace('File ".rig/', 'File "rig/')


_RAISED = re.compile(r"your component raised (\w+)")
_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')


def raised_in(message: str, component: str = "") -> tuple[str, tuple[str, ...]]:
    """(exception type, the component's functions it came through, innermost last) of a
    message that says the component raised; ("", ()) for any other message. ``component`` is
    the component's file name (``lock.py``); without it every frame outside the rig counts."""
    m = _RAISED.search(message or "")
    if not m:
        return "", ()
    names = tuple(fn for path, fn in _FRAME.findall(message)
                  if (Path(path).name == component if component
                      else not path.startswith("rig/")) and fn != "<module>")
    return m.group(1), names


def faults_of(item: pytest.Item, histories: list) -> list[str]:
    """Faults the test declared (``faults`` marker) plus those seen in its histories."""
    names: dict[str, None] = {}
    marker = item.get_closest_marker("faults")
    for n in (marker.args if marker else ()):
        names.setdefault(str(n), None)
    for h in histories:
        for ev in h.faults():
            names.setdefault(ev.f, None)
    return list(names)


def undeclared_injection(item: pytest.Item, histories: list) -> list[str]:
    """Faults the test declares (``faults`` marker) that none of its histories recorded."""
    marker = item.get_closest_marker("faults")
    seen = {ev.f for h in histories for ev in h.faults()}
    return [str(n) for n in (marker.args if marker else ()) if str(n) not in seen]
