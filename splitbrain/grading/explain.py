"""``expect_valid``: turn a checker's verdict into a failure a learner can act on."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from splitbrain.checkers.base import Anomaly, Verdict
from splitbrain.grading.context import current


def faults_around(anomaly: Anomaly, history) -> list[str]:
    """The faults active while the anomaly's events happened (all faults if it names none)."""
    if history is None:
        return []
    times = [history.events[i].time for i in anomaly.events if 0 <= i < len(history.events)]
    lo, hi = (min(times), max(times)) if times else (float("-inf"), float("inf"))
    out = []
    for w in history.fault_windows():
        f, target, start, end = w.name, w.target, w.start, w.end
        if start <= hi and (end is None or end >= lo):
            span = f"{start:.2f}-{end:.2f} s" if end is not None else f"from {start:.2f} s"
            out.append(f"{f}({target}) {span}" if target else f"{f} {span}")
    return out


def render_picture(history, verdict: Verdict, path: Path) -> Path | None:
    """The space-time diagram of the history with the anomaly's events highlighted, if the
    pictures module can draw one; never lets a drawing problem hide the verdict."""
    try:
        from splitbrain.viz import spacetime
        out = spacetime(history, verdict, path=path, title=verdict.checker or None)
        return Path(out) if out else None
    except Exception:  # noqa: BLE001 - a picture is a bonus, the verdict is the point
        return None


def explain(verdict: Verdict, history=None, hint: str | None = None, seed: Any = None,
            picture: Path | None = None) -> str:
    head = verdict.explain(limit=0).splitlines()[0]
    lines = [head]
    for a in verdict.anomalies[:8]:
        lines.append(f"  [{a.kind}] {a.message}")
        if history is not None and a.events:
            t = [history.events[i].time for i in a.events if 0 <= i < len(history.events)]
            if t:
                lines.append(f"      at t={min(t):.3f} s (history events {list(a.events)[:6]})")
        around = faults_around(a, history)
        if around:
            lines.append(f"      faults active: {', '.join(around)}")
    if len(verdict.anomalies) > 8:
        lines.append(f"  ... and {len(verdict.anomalies) - 8} more")
    if verdict.valid == "unknown":
        lines.append("  the checker could not decide within its budget; unknown never counts as "
                     "valid")
    if seed is not None:
        lines.append(f"replay with --seed {seed}")
    if picture is not None:
        lines.append(f"picture: {picture}")
    if hint:
        lines.append(f"hint: {hint}")
    return "\n".join(lines)


def hint_of(message: str) -> str:
    """The hint a failure's message ends with (``explain``'s last line and what follows it),
    or ""."""
    text = message or ""
    if text.startswith("hint: "):
        return text[len("hint: "):].strip()
    return text.split("\nhint: ", 1)[1].strip() if "\nhint: " in text else ""


_LABS: dict[str, Any] = {}


def lab_hint(failure) -> str | None:
    """The lab's hint (lab.toml) that fits one failure of the running test, for a test that
    gives none of its own (a public test, a plain ``assert``); None outside a lab's grading."""
    from splitbrain.grading.handout import rank_hints
    ctx = current()
    if not ctx.hints:
        return None
    if ctx.lab_slug not in _LABS:
        try:
            from splitbrain.lab import find_lab
            _LABS[ctx.lab_slug] = dict(getattr(find_lab(ctx.lab_slug), "hint_for", None) or {})
        except Exception:  # noqa: BLE001 - the words alone still choose
            _LABS[ctx.lab_slug] = {}
    n = rank_hints(ctx.hints, [failure], _LABS[ctx.lab_slug])[0]
    return ctx.hints[n - 1]


def expect_valid(verdict: Verdict, history=None, hint: str | None = None) -> Verdict:
    """Pass if the verdict is valid; else fail the test with each anomaly (``[kind] message``),
    the faults active around it, the seed to replay, the picture's path and the hint (without
    one, the lab's hint that fits the anomalies).
    The anomaly kinds are recorded on the test report so ``verify`` can match them against the
    lab's ``taught_anomalies``."""
    if verdict.valid is True:
        return verdict
    ctx = current()
    ctx.record("anomalies", verdict.kinds() if verdict.valid is False else ["unknown"])
    saved = ctx.artifact(".verdict.json")
    if saved is not None:  # beside the history: what the book's figures are drawn from
        import json
        saved.write_text(json.dumps(verdict.to_dict(), indent=1, default=str))
    picture = None
    if history is not None:
        path = ctx.artifact(".svg")
        picture = render_picture(history, verdict, path) if path is not None else None
        if picture is not None:
            ctx.record("picture", str(picture))
    if not hint:  # a public test's check: the lab's hint that fits these anomalies
        from splitbrain.grading.handout import Failure
        hint = lab_hint(Failure(ctx.nodeid.rpartition("::")[2],
                                tuple(verdict.kinds()) if verdict.valid is False else (),
                                ctx.faults, text=" ".join(a.message for a in verdict.anomalies)))
    msg = explain(verdict, history, hint, ctx.seed if ctx.nodeid else None, picture)
    raise AssertionError(msg)
