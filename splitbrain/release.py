"""``splitbrain release OUT``: the learner's repository for a class.

A class gets the handouts (labs/: notebooks, broken components, public tests, each lab's rig and
figures), the book (docs/, mkdocs.yml) and the kit (splitbrain/, pyproject.toml, README.md), and
none of what makes or reveals the grade: solutions/, autograder/ (hidden tests, variants,
mutants, selftests), the kit's own tests and benches (they grade the solutions), the authors'
guide. The files come from the checkout's committed tree (``git archive`` of a commit, HEAD by
default), so neither build artefacts nor an instructor's uncommitted edits (a solution pasted
over a handout while trying it) can leak. A marker file, :data:`MARKER`, tells the kit it runs in
a release: ``splitbrain check`` then runs the public tests and says that the grade comes from the
instructor's hidden tests.

Before it reports success the release is scanned for every hidden test's name and every line of
every solution that the handouts do not share (:func:`leaks`); a hit fails the release.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MARKER = ".splitbrain-release"

# (path prefix, kept?, why): the first rule that matches a path decides; a path no rule matches
# is left out (what is not known to be the learner's stays with the instructor).
RULES: tuple[tuple[str, bool, str], ...] = (
    ("solutions/", False, "the fixed components and their explained solutions"),
    ("autograder/", False, "the hidden tests, graded variants, mutants and rig selftests"),
    ("tests/", False, "the kit's own tests, which grade the solutions with the hidden tests"),
    ("bench/", False, "benches that grade the solutions"),
    (".ci/", False, "the kit's CI, which runs the kit's own tests"),
    ("docker/k8s/", False, "grading a class on a cluster (the instructor's)"),
    ("CONTRIBUTING.md", False, "the authors' guide: how hidden tests and variants are written"),
    ("labs/", True, "handouts: notebooks, components, public tests, rigs, figures"),
    ("docs/", True, "the book"),
    ("mkdocs.yml", True, "the book"),
    ("splitbrain/", True, "the kit"),
    ("pyproject.toml", True, "the kit"),
    ("README.md", True, "the kit"),
    (".gitignore", True, "the kit"),
    ("docker/compose.yaml", True, "the services on a Docker engine"),
)
OTHER = "not part of the learner's edition"

README_NOTE = """\
> **Your class's edition.** This repository holds the labs, the book and the kit. The hidden
> tests your work is graded with, and the solutions, stay with your instructor:
> `splitbrain check` runs each lab's public tests under the lab's faults, and your grade comes
> from the instructor's hidden tests.

"""


class ReleaseError(Exception):
    """A release that cannot be written; the message says why and what to do."""


@dataclass
class Release:
    """What :func:`build` wrote: files kept, labs, what was left out (reason -> paths)."""

    out: Path
    commit: str
    files: list[str] = field(default_factory=list)
    labs: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    taught: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"wrote {len(self.files)} files to {self.out} (commit {self.commit[:12]})",
                 f"labs: {', '.join(self.labs) or 'none'}", "left out:"]
        for why, paths in sorted(self.left_out.items(), key=lambda kv: -len(kv[1])):
            tops = sorted({p.split("/")[0] + ("/" if "/" in p else "") for p in paths})
            lines.append(f"  {len(paths):4d} file(s) in {', '.join(tops)}: {why}")
        lines.append("checked: no hidden test is named and no solution line is held outside the "
                     "book")
        if self.taught:
            per: dict[str, int] = {}
            for f, _ in self.taught:
                per[f] = per.get(f, 0) + 1
            lines.append("the book prints these solution lines as the pattern it teaches: "
                         + ", ".join(f"{f} ({n})" for f, n in sorted(per.items())))
        return "\n".join(lines)


def rule_for(path: str) -> tuple[bool, str]:
    for prefix, keep, why in RULES:
        if path.startswith(prefix) if prefix.endswith("/") else path == prefix:
            return keep, why
    return False, OTHER


def info(root: str | Path | None = None) -> dict | None:
    """The release marker of checkout ``root`` (default: the project root), or None when it is
    the full (self-paced) edition."""
    if root is None:
        from splitbrain import paths
        root = paths.project_root()
    p = Path(root) / MARKER
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _git(root: Path, *args: str, binary: bool = False):
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=not binary, check=False)
    except FileNotFoundError:
        raise ReleaseError("git is not installed; a release is cut from a git checkout") from None
    if proc.returncode != 0:
        err = proc.stderr if not binary else proc.stderr.decode(errors="replace")
        raise ReleaseError(f"git {' '.join(args)} failed in {root}: {err.strip()} (a release is "
                           f"cut from the committed tree of a git checkout)")
    return proc.stdout


def build(out: str | Path, root: str | Path | None = None, ref: str = "HEAD",
          force: bool = False) -> Release:
    """Write the learner's repository of checkout ``root`` at commit ``ref`` into ``out``."""
    from splitbrain import __version__, paths
    root = Path(root) if root is not None else paths.project_root()
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out} is a file; name a folder for the release")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ReleaseError(f"{out} is not empty; name a new folder, or pass --force to "
                               f"replace what is in it")
        if (out / ".git").exists() and not (out / MARKER).is_file():
            raise ReleaseError(f"{out} holds a git repository that is not a release; refusing "
                               f"to replace it even with --force")
    if out == root.resolve() or root.resolve().is_relative_to(out):
        raise ReleaseError(f"{out} holds the checkout itself; name a folder outside it")
    commit = _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    data = _git(root, "archive", "--format=tar", commit, binary=True)
    rel = Release(out, commit)
    kept: list[tarfile.TarInfo] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isdir():
                continue
            keep, why = rule_for(m.name)
            if keep:
                kept.append(m)
            else:
                rel.left_out.setdefault(why, []).append(m.name)
        if out.is_dir():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for m in kept:
            dest = out / m.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if m.issym():
                continue  # a link could point at what was left out
            src = tar.extractfile(m)
            if src is None:
                continue
            dest.write_bytes(src.read())
            dest.chmod(0o755 if m.mode & 0o111 else 0o644)
            rel.files.append(m.name)
    readme = out / "README.md"
    if readme.is_file():
        readme.write_text(README_NOTE + readme.read_text(encoding="utf-8"), encoding="utf-8")
    (out / MARKER).write_text(json.dumps({"edition": "learner", "kit_version": __version__,
                                          "source_commit": commit}, indent=1) + "\n")
    rel.files.append(MARKER)
    rel.labs = sorted({f.split("/")[1] for f in rel.files
                       if f.startswith("labs/") and f.endswith("/lab.toml")})
    found, rel.taught = leaks(out, root, commit)
    if found:
        shutil.rmtree(out)
        shown = "\n".join(f"  {f}: {what}" for f, what in found[:20])
        raise ReleaseError(f"the release would reveal hidden tests or solutions, so it was "
                           f"removed; fix these files (or leave them out):\n{shown}")
    return rel


# -- what must never be in a release ----------------------------------------------------------

_BOILER = re.compile(r'^(#|"""|\'\'\'|from |import |def |class |return |@|raise )')


def secrets(root: str | Path, ref: str = "HEAD") -> tuple[set[str], set[str]]:
    """(hidden test names, solution lines) of checkout ``root`` at ``ref``: every ``def test_``
    under autograder/ that no public test shares, and every line of solutions/ longer than 25
    characters once stripped that neither a handout (labs/) nor the kit (splitbrain/) holds (the
    handout's own code and docstrings, and the kit's, are no secret)."""
    root = Path(root)
    files = _git(root, "ls-tree", "-r", "--name-only", ref).split("\n")

    def text(path: str) -> str:
        return _git(root, "show", f"{ref}:{path}")

    hidden: set[str] = set()
    public: set[str] = set()
    shared: list[str] = []
    for f in files:
        if f.startswith("autograder/") and f.endswith(".py"):
            hidden |= set(re.findall(r"def (test_\w+)", text(f)))
        elif f.startswith(("labs/", "splitbrain/")) and not f.endswith(
                (".jsonl", ".svg", ".png", ".pyc")):
            t = text(f)
            public |= set(re.findall(r"def (test_\w+)", t)) if f.startswith("labs/") else set()
            shared.append(t)
    everything = "\n".join(shared)
    lines: set[str] = set()
    for f in files:
        if f.startswith("solutions/"):
            for l in text(f).splitlines():
                s = l.strip()
                if len(s) > 25 and not _BOILER.match(s) and s not in everything:
                    lines.add(s)
    return hidden - public, lines


BOOK = ("docs/chapters/",)


def leaks(out: str | Path, root: str | Path, ref: str = "HEAD"
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(leaks, taught) of release ``out`` against checkout ``root`` at ``ref``: leaks are
    (file, what) that name a hidden test or hold a solution line anywhere but in a chapter of
    the book; taught are the solution lines a chapter prints (the pattern it teaches, in the
    self-paced edition too), listed so the instructor sees them."""
    hidden, lines = secrets(root, ref)
    names = re.compile(r"\b(" + "|".join(sorted(map(re.escape, hidden))) + r")\b") \
        if hidden else None
    found: list[tuple[str, str]] = []
    taught: list[tuple[str, str]] = []
    out = Path(out)
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        t = p.read_text(encoding="utf-8", errors="replace")
        rel = str(p.relative_to(out))
        if names:
            for m in sorted(set(names.findall(t))):
                found.append((rel, f"names the hidden test {m}"))
        for l in sorted(lines):
            if l in t:
                (taught if rel.startswith(BOOK) else found).append(
                    (rel, f"holds the solution line {l[:60]!r}"))
    return found, taught
