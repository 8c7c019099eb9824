"""What a learner hands in, turned into one component file the grader can run.

A submission is the component ``.py``, or a notebook: the code cells tagged ``component`` are the
component. A notebook whose tags were lost still grades: its cells that only import and define
(functions, classes, constants; no experiment that would run on import) make the component, if
they define the names the lab requires. Shell lines (``!...``) and magics (``%...``) are dropped.
A directory holds submissions (files, or one folder per learner).

:func:`read_batch` reads an instructor's batch as handed in: a folder's ``.py`` and ``.ipynb``
files are submissions, each sub-folder or archive (``.zip``, ``.tar``, ``.tar.gz``...) is one
learner, unpacked (archives inside archives too) and searched at any depth; a folder, an archive
and a file of the same name (``alice/``, ``alice.zip``, ``alice.py``) are one learner. A
learner's component is the file named like the lab's component, else the one file that defines
what the lab requires; identical copies count once. A learner whose folder holds two candidates, none, or an archive the
grader cannot open is reported by name with what to do, never graded twice or left out silently.
"""
from __future__ import annotations

import ast
import hashlib
import json
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from splitbrain import pyast

SUFFIXES = (".py", ".ipynb")
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
FOREIGN = (".rar", ".7z", ".gz", ".bz2", ".xz")   # archives the grader does not open: reported
NOT_LEARNERS = ("__MACOSX", "__pycache__", ".ipynb_checkpoints")
MAX_DEPTH = 3                # archives inside archives, at most this deep
MAX_MEMBERS = 5000           # files in one archive
MAX_BYTES = 200 * 2**20      # unpacked size of one archive


class SubmissionError(ValueError):
    """A submission that cannot be graded; the message says what is wrong and what to do."""


def defined_names(source: str, where: str) -> set[str] | None:
    """Top-level names a module defines (None when a star import makes it unknowable)."""
    try:
        tree = pyast.parse(source, filename=where)
    except SyntaxError as e:
        raise SubmissionError(f"{where}: syntax error on line {e.lineno}: {e.msg}. Fix it and "
                              f"run again (python -m py_compile {Path(where).name} shows it "
                              f"too).") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name == "*":
                    return None
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            return None  # conditional definitions: let the import decide
    return names


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    src = "".join(src) if isinstance(src, list) else str(src)
    return "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("!", "%")))


_DEFS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
         ast.Assign, ast.AnnAssign)


def _definitions_only(src: str) -> bool:
    """A cell that only imports and defines (no experiment that would run at import time)."""
    try:
        body = pyast.parse(src).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(n, _DEFS) or (isinstance(n, ast.Expr) and isinstance(
        n.value, ast.Constant) and isinstance(n.value.value, str)) for n in body)


def notebook_source(path: Path, requires: tuple[str, ...] = ()) -> str:
    """The component's source from a notebook: tagged cells, else cells defining required names."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, UnicodeDecodeError):
        raise SubmissionError(f"{path}: not a notebook (the file is not JSON). Save it from "
                              f"Jupyter again, or hand in the component .py file.") from None
    except (KeyError, TypeError):
        raise SubmissionError(f"{path}: JSON without notebook cells; hand in the .ipynb saved by "
                              f"Jupyter or the component .py file.") from None
    tagged = [c for c in cells if "component" in (c.get("metadata", {}).get("tags") or [])]
    if tagged:
        return "\n\n".join(_cell_source(c) for c in tagged) + "\n"
    keep = [src for src in map(_cell_source, cells) if _definitions_only(src)]
    source = "\n\n".join(keep) + "\n"
    names = defined_names(source, str(path))
    missing = [r for r in requires if names is not None and r not in names]
    if missing:
        raise SubmissionError(f"{path}: no cell tagged `component` and no code cell defines "
                              f"{', '.join(missing)}. Tag the cells of your component with "
                              f"`component` (View > Cell toolbar > Tags).")
    return source


def component_file(submission: Path, lab, workdir: Path) -> Path:
    """A .py file with the component, checked for syntax and the names the lab requires."""
    submission = Path(submission)
    if not submission.is_file():
        raise SubmissionError(f"{submission}: no such file. Pass the component ({lab.component}) "
                              f"or your notebook.")
    if submission.suffix == ".ipynb":
        source = notebook_source(submission, lab.requires)
    elif submission.suffix == ".py":
        try:
            source = submission.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SubmissionError(f"{submission}: not UTF-8 text") from None
    else:
        raise SubmissionError(f"{submission}: a submission is a .py component or a .ipynb "
                              f"notebook, not {submission.suffix or 'a file without suffix'}")
    if not source.strip():
        raise SubmissionError(f"{submission}: the file is empty; the lab needs "
                              f"{', '.join(lab.requires) or 'a component'}")
    names = defined_names(source, str(submission))
    missing = [r for r in lab.requires if names is not None and r not in names]
    if missing:
        raise SubmissionError(f"{submission}: does not define {', '.join(missing)}; the lab "
                              f"calls {', '.join(lab.requires)} (see the notebook's first cell)")
    if submission.suffix == ".py":
        return submission.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / lab.component
    out.write_text(source, encoding="utf-8")
    return out


def expand(paths: list[str | Path]) -> list[Path]:
    """Submissions from files and directories (a directory: its .py and .ipynb files, or one
    sub-directory per learner holding them)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in SUFFIXES)
            if not found:
                found = sorted(q for d in p.iterdir() if d.is_dir()
                               for q in d.iterdir() if q.is_file() and q.suffix in SUFFIXES)
            if not found:
                raise SubmissionError(f"{p}: no .py or .ipynb submissions in this folder or in "
                                      f"its sub-folders (one per learner)")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SubmissionError(f"{p}: no such file or folder (pass the learners' .py or "
                                  f".ipynb files, or the folder that holds them)")
    return out


# -- a batch as handed in: folders, archives, one component per learner --------------------------

@dataclass(frozen=True)
class Submission:
    """One learner's entry in a batch. ``path`` is the file graded (None when ``problem`` says why
    nothing can be); ``name`` is where it sits in the batch as handed in (an archive's members
    under its name without the suffix), which names its result folder."""
    path: Path | None
    name: Path
    where: str
    problem: str | None = None
    digest: str = ""      # of every file the learner handed in, when ``problem`` is set


def _digest(sources: list[Path]) -> str:
    h = hashlib.sha256()
    for src in sources:
        for f in sorted(src.rglob("*")) if src.is_dir() else [src]:
            if f.is_file() and not f.is_symlink():
                h.update(f"{f.relative_to(src.parent)}\0".encode() + f.read_bytes())
    return h.hexdigest()


def archive_kind(path: Path) -> str | None:
    """The archive suffix of ``path`` (``.tar.gz``...), or None for any other file."""
    name = path.name.lower()
    return next((s for s in ARCHIVES + FOREIGN if name.endswith(s)), None)


def _stem(path: Path) -> str:
    kind = archive_kind(path)
    return path.name[:-len(kind)] if kind else path.stem


def _hidden(rel: Path | PurePosixPath) -> bool:
    return any(part.startswith(".") or part in NOT_LEARNERS for part in rel.parts)


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into ``dest`` (no path may leave it, no links, size limits)."""
    kind = archive_kind(archive)
    if kind in FOREIGN or kind is None:
        raise SubmissionError(f"{archive}: a {kind or archive.suffix} file, which the grader does "
                              f"not unpack; unpack it into a folder of the same name (or ask for "
                              f"a .zip) and grade again")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)

    def limits(count: int, size: int) -> None:
        if count > MAX_MEMBERS or size > MAX_BYTES:
            raise SubmissionError(f"{archive}: {count} files, {size / 2**20:.0f} MB unpacked: more "
                                  f"than a submission holds ({MAX_MEMBERS} files, "
                                  f"{MAX_BYTES // 2**20} MB); unpack it yourself and grade the "
                                  f"component")
    try:
        if kind == ".zip":
            with zipfile.ZipFile(archive) as z:
                infos = [i for i in z.infolist() if not i.is_dir()
                         and not stat.S_ISLNK(i.external_attr >> 16)]
                limits(len(infos), sum(i.file_size for i in infos))
                for info in infos:
                    rel = PurePosixPath(info.filename.replace("\\", "/"))
                    if rel.is_absolute() or ".." in rel.parts:
                        raise SubmissionError(f"{archive}: a member leaves the archive's folder "
                                              f"({info.filename}); unpack it yourself")
                    target = dest.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive) as t:
                members = [m for m in t.getmembers() if m.isfile()]
                limits(len(members), sum(m.size for m in members))
                t.extractall(dest, members=members, filter="data")
    except SubmissionError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise SubmissionError(f"{archive}: not a readable {kind} archive ({e}); hand it in again "
                              f"or unpack it yourself") from None
    return dest


class _Unpacker:
    """Unpacks every archive of a batch into its own folder under ``root``."""

    def __init__(self, root: Path):
        self.root, self.n = Path(root), 0

    def __call__(self, archive: Path) -> Path:
        self.n += 1
        return unpack(archive, self.root / f"{self.n:04d}-{_stem(archive)[:40]}")


def learner_files(folder: Path, unpack_into, depth: int = 0) -> list[tuple[Path, PurePosixPath]]:
    """Every file of a learner's folder at any depth, as (file, where it sits in the folder as
    handed in); archives are unpacked (their members sit under the archive's name)."""
    out: list[tuple[Path, PurePosixPath]] = []
    for p in sorted(Path(folder).rglob("*")):
        rel = PurePosixPath(p.relative_to(folder).as_posix())
        if _hidden(rel) or p.is_symlink() or not p.is_file():
            continue
        if archive_kind(p):
            if depth >= MAX_DEPTH:
                raise SubmissionError(f"{rel}: archives nested more than {MAX_DEPTH} deep; unpack "
                                      f"them yourself")
            inner = unpack_into(p)
            out += [(f, rel.parent / _stem(p) / r)
                    for f, r in learner_files(inner, unpack_into, depth + 1)]
        else:
            out.append((p, rel))
    return out


def defines_required(path: Path, lab) -> bool:
    """Whether the .py or notebook defines every name the lab requires (unknowable counts)."""
    try:
        src = (notebook_source(path, lab.requires) if path.suffix == ".ipynb"
               else path.read_text(encoding="utf-8"))
        names = defined_names(src, str(path))
    except (SubmissionError, OSError, UnicodeDecodeError):
        return False
    return names is None or all(r in names for r in lab.requires)


def _is_test(name: str) -> bool:
    return name.startswith("test_") and name.endswith(".py") or name == "conftest.py"


def _handout_bytes(lab) -> bytes | None:
    try:
        return Path(lab.component_path).read_bytes()
    except (OSError, AttributeError):
        return None


def choose(files: list[tuple[Path, PurePosixPath]], lab, where: str, again: str = "grade again"
           ) -> tuple[tuple[Path, PurePosixPath] | None, str | None, str | None]:
    """The one component among a learner's files: (the file, problem, note). The file named like
    the lab's component (unless it is the handout unchanged and one other file holds the work),
    else the one that defines what the lab requires; tests and identical copies do not count.
    Several candidates, or none: no file and a problem that names them and says what to do."""
    code = [(p, r) for p, r in files if p.suffix in SUFFIXES]
    cands: list[tuple[Path, PurePosixPath]] = []
    seen: set[str] = set()
    for p, r in code:
        if _is_test(r.name):
            continue
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            cands.append((p, r))
    needs = ", ".join(lab.requires) or "the component"
    named = [c for c in cands if c[1].name == lab.component]
    handout = _handout_bytes(lab)
    unchanged = [c for c in named if c[0].read_bytes() == handout]
    if len(named) > 1 and len(named) - len(unchanged) == 1:
        named = [c for c in named if c not in unchanged]    # the work, not the handout's copy
    pick = None
    if len(named) > 1:
        return None, (f"{where}: {len(named)} different files named {lab.component} "
                      f"({', '.join(str(r) for _, r in named)}); keep the one to grade and "
                      f"{again}"), None
    if named:
        pick = named[0]
        defining = [c for c in cands if c is not pick and defines_required(c[0], lab)]
        if pick in unchanged and defining:   # the work is elsewhere
            pick = None
    else:
        defining = [c for c in cands if len(cands) == 1 or defines_required(c[0], lab)]
    if pick is None and len(defining) == 1:
        pick = defining[0]
    elif pick is None and defining:
        shown = " and ".join(str(r) for _, r in defining)
        also = f" ({unchanged[0][1]} is the handout unchanged)" if unchanged else ""
        return None, (f"{where}: {len(defining)} possible components, {shown}: each defines "
                      f"{needs}{also}. Keep one (or name it {lab.component}) and {again}"), None
    elif pick is None and cands:
        shown = ", ".join(str(r) for _, r in cands)
        return None, (f"{where}: none of {shown} is named {lab.component} or defines "
                      f"{needs}; name the component {lab.component} and {again}"), None
    elif pick is None:
        held = ", ".join(str(r) for _, r in files[:6]) or "nothing"
        return None, (f"{where}: nothing to grade: no .py or .ipynb file (it holds {held}); the "
                      f"lab grades {lab.component} or the notebook"), None
    left = sorted(str(r) for _, r in code if r != pick[1])
    why = ", ".join(f"{r} is the handout unchanged" for _, r in unchanged if r != pick[1])
    note = (f"{where}: grading {pick[1]} (left out: {', '.join(left)}{'; ' + why if why else ''})"
            if left else None)
    return pick, None, note


def read_batch(paths: list[str | Path], lab, unpack_dir: Path) -> tuple[list[Submission],
                                                                          list[str]]:
    """The batch given on the command line: (one Submission per file or learner, notes). Each
    archive is unpacked under ``unpack_dir``; an archive given itself is read as the folder it
    holds."""
    unpacker = _Unpacker(unpack_dir)
    out: list[Submission] = []
    notes: list[str] = []
    for p in map(Path, paths):
        if p.is_file() and archive_kind(p):
            top, name = unpacker(p), p.with_name(_stem(p))
            while True:   # an export that wraps the batch in one folder
                inside = [q for q in top.iterdir() if not _hidden(PurePosixPath(q.name))]
                if len(inside) != 1 or not inside[0].is_dir():
                    break
                top, name = inside[0], name / inside[0].name
            _read_folder(top, name, p.name, lab, unpacker, out, notes)
        elif p.is_dir():
            _read_folder(p, p, str(p), lab, unpacker, out, notes)
        elif p.exists():
            out.append(Submission(p, p, str(p)))
        else:
            raise SubmissionError(f"{p}: no such file or folder (pass the learners' .py or "
                                  f".ipynb files, or the folder or archive that holds them)")
    return out, notes


def _read_folder(folder: Path, name: Path, shown: str, lab, unpacker, out: list[Submission],
                 notes: list[str]) -> None:
    ours = unpacker.root.resolve()   # the grades folder, when it sits in the batch's folder
    kids = sorted(q for q in folder.iterdir() if not _hidden(PurePosixPath(q.name))
                  and not ours.is_relative_to(q.resolve()))
    files = [q for q in kids if q.is_file() and q.suffix in SUFFIXES]
    learners: dict[str, list[Path]] = {}   # a folder and an archive of the same name: one learner
    for q in kids:
        if q.is_dir() or (q.is_file() and archive_kind(q)):
            learners.setdefault(_stem(q) if q.is_file() else q.name, []).append(q)
    other = [q.name for q in kids if q.is_file() and q not in files and not archive_kind(q)]
    if not files and not learners:
        raise SubmissionError(f"{shown}: no .py or .ipynb submissions in this folder, its "
                              f"sub-folders (one per learner) or its archives")
    beside = {f.stem: f for f in files if f.stem in learners}   # alice.py next to alice/
    out.extend(Submission(f, name / f.name, f"{shown.rstrip('/')}/{f.name}") for f in files
               if f.stem not in beside)
    for who, sources in learners.items():
        where = f"{who}/"
        found: list[tuple[Path, PurePosixPath]] = []
        handed = list(sources)
        if who in beside:
            found.append((beside[who], PurePosixPath("..", beside[who].name)))
            handed.append(beside[who])
        try:
            for src in sources:
                inside = unpacker(src) if src.is_file() else src
                found += learner_files(inside, unpacker)
        except SubmissionError as e:
            out.append(Submission(None, name / who / lab.component, where,
                                  f"{where}: {e}".replace(f"{folder}/", ""), _digest(handed)))
            continue
        pick, problem, note = choose(found, lab, where)
        if note:
            notes.append(note)
        if pick is None:
            out.append(Submission(None, name / who / lab.component, where, problem,
                                  _digest(handed)))
        elif pick[1].parts[0] == "..":
            out.append(Submission(pick[0], name / pick[0].name, f"{shown.rstrip('/')}/"
                                                                  f"{pick[0].name}"))
        else:
            out.append(Submission(pick[0], name / who / pick[1].name, f"{who}/{pick[1]}"))
    if other:
        notes.append(f"{shown}: left out {', '.join(other[:6])}"
                     f"{' ...' if len(other) > 6 else ''} (not .py, .ipynb or an archive)")
