"""The learner's copy of a lab and the handout it came from; learner progress.

``pristine(lab)`` is the broken component exactly as shipped (from git HEAD when the checkout is a
git repository, so a learner's edits never leak into ``verify``); ``reset`` restores it after
backing up the learner's work; progress (attempts, best score, hints seen, the last failure) lives
in the state dir; the hint `check` shows is the one that fits what failed (below).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from splitbrain import paths
from splitbrain.lab import LabInfo


def _git_show(lab: LabInfo, path: Path) -> bytes | None:
    try:
        rel = path.resolve().relative_to(lab.root.resolve())
        out = subprocess.run(["git", "-C", str(lab.root), "show", f"HEAD:./{rel.as_posix()}"],
                             capture_output=True, timeout=20)
    except (ValueError, OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def pristine(lab: LabInfo, dest_dir: Path, worktree: bool = False) -> Path:
    """The shipped handout component written into ``dest_dir`` (git HEAD, else the file as is;
    ``worktree``: the file as it is now, for a lab's author who is editing the handout)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / lab.component
    data = None if worktree else _git_show(lab, lab.component_path)
    if data is None:
        shutil.copyfile(lab.component_path, dest)
    else:
        dest.write_bytes(data)
    return dest


def reset(lab: LabInfo) -> tuple[Path, Path | None]:
    """Restore the handout component; the learner's version is first copied to the state dir.
    Returns (restored file, backup or None when there was nothing to keep)."""
    backup = None
    if lab.component_path.is_file():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = paths.state_dir() / "backups" / lab.slug
        folder.mkdir(parents=True, exist_ok=True)
        backup = folder / f"{stamp}-{lab.component}"
        n = 1
        while backup.exists():
            backup = folder / f"{stamp}-{n}-{lab.component}"
            n += 1
        shutil.copy2(lab.component_path, backup)
    data = _git_show(lab, lab.component_path)
    if data is None:
        raise FileNotFoundError(f"cannot restore {lab.component_path}: the checkout has no git "
                                f"history for it (clone the repository again, or copy the file "
                                f"from the course site)")
    lab.component_path.write_bytes(data)
    return lab.component_path, backup


# -- progress ----------------------------------------------------------------------------------
def _progress_path() -> Path:
    return paths.state_dir() / "progress.json"


def load_progress() -> dict:
    try:
        return json.loads(_progress_path().read_text())
    except (OSError, ValueError):
        return {}


def load_progress_for(slug: str) -> dict:
    return load_progress().get(slug, {"attempts": 0, "best": 0.0, "max": 0.0, "done": False,
                                      "hints_shown": 0})


def save_progress_for(slug: str, entry: dict) -> None:
    from splitbrain.grading.runner import write_atomic
    data = load_progress()
    data[slug] = entry
    write_atomic(_progress_path(), json.dumps(data, indent=1, sort_keys=True))


def record_attempt(slug: str, score: float, max_score: float, full: bool) -> dict:
    e = load_progress_for(slug)
    e.update(attempts=e.get("attempts", 0) + 1, best=max(e.get("best", 0.0), score),
             max=max_score, done=bool(e.get("done")) or full,
             last=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    save_progress_for(slug, e)
    return e


# -- hints: the one that fits what failed --------------------------------------------------------
# A lab's hints are an ordered list in lab.toml. `check` shows the one that fits the tests that
# failed (their anomaly kinds, their names, the hint each hidden test gives, the component's
# functions an exception came from); the optional lab.toml table ``hint_for`` says it outright
# (anomaly kind, test name or prefix, or component function -> hint numbers, best first). Showing it
# spends nothing: the same failure shows the same hint, and `splitbrain hint` reveals the next one
# about that failure. Without a failure to go by, `splitbrain hint` goes through them in order.

@dataclass(frozen=True)
class Failure:
    """What one test that did not pass tells about the mistake.

    test: its name. anomalies: the kinds its checker found. faults: the faults it injected.
    hint: the hint the test itself gave (``expect_valid(..., hint=...)``). raised: the exception
    the component raised, if it did (``NameError``). functions: the component's functions that
    exception came through, innermost last. text: the failure's own words (an assertion's
    message, an anomaly's description)."""

    test: str
    anomalies: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    hint: str = ""
    raised: str = ""
    functions: tuple[str, ...] = ()
    text: str = ""

    @property
    def key(self) -> str:
        """The same for the same failure, run after run (no timings, tokens or paths)."""
        return "|".join([self.test, ",".join(self.anomalies), self.raised,
                         ",".join(self.functions[-1:])])


def failures_of(result, component: str = "") -> list[Failure]:
    """The failures of a grading that say something about the code: failed, error and timeout
    tests (a service failure says nothing)."""
    from splitbrain.grading.explain import hint_of
    from splitbrain.grading.outcome import raised_in
    out = []
    for t in result.tests:
        if t.status not in ("failed", "error", "timeout"):
            continue
        raised, functions = raised_in(t.message, component)
        hint = hint_of(t.message)
        text = t.message.split("\nhint: ", 1)[0] if hint else t.message
        out.append(Failure(t.name, tuple(t.anomalies), tuple(t.faults), hint, raised, functions,
                           text))
    return out


_STOP = frozenset("""the and for that this with from into onto than then when what which while
whose who its it's are was were been being has have had does did not nor but any all each every
one two own only also too very can could must should would will shall may might just so such
same other another more most less least after before until since once where here there both
either neither test your you use used using make makes made way ways""".split())


def _stem(w: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "e"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[:-len(suffix)]
    return w


def _words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z][a-z0-9]*", text.lower())
            if len(w) > 2 and w not in _STOP}


def _names(text: str) -> set[str]:
    """Code names a hint mentions: ``write()``, ``FencedStore.write``, ``acquire(wait_s)``."""
    return ({m for m in re.findall(r"\b([A-Za-z_]\w*)\(", text)}
            | {m for m in re.findall(r"\.([A-Za-z_]\w*)", text)})


def _explicit(hint_for: dict, f: Failure) -> dict[int, float]:
    """Hint numbers lab.toml's ``hint_for`` names for this failure, each with a weight (best
    first: 1, 1/2, 1/3, ...)."""
    scores: dict[int, float] = {}
    for key, numbers in (hint_for or {}).items():
        fits = (key in f.anomalies or key == f.test or f.test.startswith(f"{key}_")
                or key in f.functions or any(fn.endswith(f".{key}") or key.endswith(f".{fn}")
                                              for fn in f.functions))
        if not fits:
            continue
        for pos, n in enumerate([numbers] if isinstance(numbers, int) else numbers):
            scores[int(n)] = scores.get(int(n), 0.0) + 1.0 / (pos + 1)
    return scores


def _inferred(hints: tuple[str, ...], f: Failure) -> list[float]:
    """How well each hint's words fit the failure's: the words the failure and the hint share,
    each weighted by how few of the lab's hints use it; a function the exception came through,
    or an anomaly kind, that the hint names counts most."""
    bags = [_words(h) for h in hints]
    n = len(hints)

    def idf(w: str) -> float:
        return math.log((n + 1) / (0.5 + sum(w in b for b in bags)))
    weighted = [(_words(f.hint), 1.0), (_words(" ".join(f.anomalies)), 1.0),
                (_words(f.test.removeprefix("test_")), 1.0), (_words(f.text), 0.5),
                (_words(" ".join(f.faults)), 0.25)]
    scores = []
    for h, bag in zip(hints, bags):
        score = 0.0
        for words, weight in weighted:
            score += weight * sum(idf(w) for w in words & bag) / math.sqrt(len(bag) or 1)
        named = _names(h)
        score += sum(3.0 / (depth + 1) for depth, fn in enumerate(reversed(f.functions))
                     if fn in named)
        score += sum(3.0 for kind in f.anomalies if kind in h)
        scores.append(score)
    return scores


def rank_hints(hints: tuple[str, ...], failures: list[Failure],
               hint_for: dict | None = None, seen: tuple[int, ...] = ()) -> list[int]:
    """Every hint number (1-based), the best fit for ``failures`` first: first by lab.toml's
    ``hint_for``, then by the words (each failure counts once: its best hint gets 1); ties go to
    a hint not ``seen`` yet, then to the lab's order."""
    told = [0.0] * len(hints)
    guessed = [0.0] * len(hints)
    for f in failures:
        for n, w in _explicit(hint_for or {}, f).items():
            if 1 <= n <= len(hints):
                told[n - 1] += w
        scores = _inferred(hints, f)
        top = max(scores, default=0.0)
        if top > 0:
            for i, sc in enumerate(scores):
                guessed[i] += sc / top
    return sorted(range(1, len(hints) + 1),
                  key=lambda n: (-told[n - 1], -round(guessed[n - 1], 6), n in seen, n))


def best_fits(hints: tuple[str, ...], failures: list[Failure], hint_for: dict | None = None,
              ) -> dict[int, list[str]]:
    """For each hint number, the failed tests it fits best."""
    out: dict[int, list[str]] = {}
    for f in failures:
        (n, *_) = rank_hints(hints, [f], hint_for) or (None,)
        if n is not None:
            out.setdefault(n, []).append(f.test)
    return out


def _hint_for(lab: LabInfo) -> dict:
    return dict(getattr(lab, "hint_for", None) or {})


def _seen(e: dict) -> list[int]:
    seen = e.get("hints_seen")
    if seen is None:  # progress written before hints were chosen: the first hints_shown
        seen = list(range(1, e.get("hints_shown", 0) + 1))
    return list(seen)


def _see(e: dict, n: int) -> None:
    seen = _seen(e)
    if n not in seen:
        seen.append(n)
    e["hints_seen"], e["hints_shown"] = seen, len(seen)


def hint_for_failures(lab: LabInfo, failures: list[Failure]) -> tuple[int, str] | None:
    """(number, text) of the hint that fits ``failures`` best; remembered as this lab's last
    failure, so that a second failure of the same kind shows the same hint and `splitbrain hint`
    the next one about it. Spends nothing. None when the lab has no hints."""
    if not lab.hints:
        return None
    e = load_progress_for(lab.slug)
    key = hashlib.sha1("\n".join(sorted(f.key for f in failures)).encode()).hexdigest()[:16]
    last = e.get("failure") or {}
    ranking = last.get("ranking") or []
    if last.get("key") != key or sorted(ranking) != list(range(1, len(lab.hints) + 1)):
        ranking = rank_hints(lab.hints, failures, _hint_for(lab), tuple(_seen(e)))
        last = {"key": key, "ranking": ranking, "revealed": 1}
    last["tests"] = sorted({f.test for f in failures})
    e["failure"] = last
    n = ranking[0]
    _see(e, n)
    save_progress_for(lab.slug, e)
    return n, lab.hints[n - 1]


def more_about_failure(lab: LabInfo) -> int:
    """How many hints about the last failure `splitbrain hint` has not shown yet."""
    last = load_progress_for(lab.slug).get("failure") or {}
    return max(0, len(last.get("ranking") or ()) - last.get("revealed", 0))


def forget_failure(lab: LabInfo) -> None:
    """Full marks: there is no failure to give hints about."""
    e = load_progress_for(lab.slug)
    if e.pop("failure", None) is not None:
        save_progress_for(lab.slug, e)


def next_hint(lab: LabInfo, advance: bool = True) -> tuple[int, str] | None:
    """(number, text) of the next hint: after a failed `check`, the next one about that failure
    (the best fits first); without one, the first not shown yet, in the lab's order. When every
    one has been shown, the last one repeats. None when the lab has no hints."""
    if not lab.hints:
        return None
    e = load_progress_for(lab.slug)
    last = e.get("failure") or {}
    ranking = last.get("ranking") or []
    if sorted(ranking) == list(range(1, len(lab.hints) + 1)):
        i = min(last.get("revealed", 1), len(ranking) - 1)
        n = ranking[i]
        if advance:
            last["revealed"] = min(i + 1, len(ranking))
    else:
        seen = _seen(e)
        n = next((k for k in range(1, len(lab.hints) + 1) if k not in seen), len(lab.hints))
    if advance:
        _see(e, n)
        save_progress_for(lab.slug, e)
    return n, lab.hints[n - 1]


def differs_from_head(lab: LabInfo) -> bool:
    """Whether the handout in the working tree is not the one committed (edited by a learner, or
    by the lab's author)."""
    data = _git_show(lab, lab.component_path)
    try:
        return data is not None and data != lab.component_path.read_bytes()
    except OSError:
        return False
