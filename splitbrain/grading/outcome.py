"""How one pytest phase becomes a status and a message a learner can read."""
from __future__ import annotations

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
        return "failed", str(report.longreprtext)[-MAX_MESSAGE:]
    if _infra(exc) or _infra(getattr(exc, "__cause__", None) or exc):
        return "infra_error", f"infrastructure: {exc}"
    if type(exc).__name__ == "TestTimeout" or isinstance(exc, CallTimeout):
        return "timeout", str(exc)[:MAX_MESSAGE]
    if isinstance(exc, RemoteError):
        tb = f"\n{exc.traceback.rstrip()}" if exc.traceback else ""
        msg = f"your component raised {exc.type}: {exc.message}{tb}"
    elif isinstance(exc, WorkerDied):
        msg = str(exc)
    elif isinstance(exc, AssertionError):
        msg = str(exc) or report.longreprtext.splitlines()[-1]
    elif isinstance(exc, pytest.fail.Exception):
        msg = str(exc)
    else:
        msg = call.excinfo.exconly()
    status = "error" if report.when != "call" else "failed"
    return status, msg.strip()[:MAX_MESSAGE]


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
