"""The learner's copy of a lab and the handout it came from; learner progress.

``pristine(lab)`` is the broken component exactly as shipped (from git HEAD when the checkout is a
git repository, so a learner's edits never leak into ``verify``); ``reset`` restores it after
backing up the learner's work; progress (attempts, best score, hints shown) lives in the state dir.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
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


def next_hint(lab: LabInfo, advance: bool = True) -> tuple[int, str] | None:
    """(number, text) of the next hint not yet shown; None when the lab has none left."""
    e = load_progress_for(lab.slug)
    shown = e.get("hints_shown", 0)
    if not lab.hints:
        return None
    i = min(shown, len(lab.hints) - 1)
    if advance and shown < len(lab.hints):
        e["hints_shown"] = shown + 1
        save_progress_for(lab.slug, e)
    return i + 1, lab.hints[i]


def differs_from_head(lab: LabInfo) -> bool:
    """Whether the handout in the working tree is not the one committed (edited by a learner, or
    by the lab's author)."""
    data = _git_show(lab, lab.component_path)
    try:
        return data is not None and data != lab.component_path.read_bytes()
    except OSError:
        return False
