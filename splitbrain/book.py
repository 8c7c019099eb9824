"""The book, generated from the labs at every build: nothing in docs/ or mkdocs.yml lists a lab.

mkdocs-gen-files runs ``docs/gen_book.py`` at every ``mkdocs build`` and ``mkdocs serve``; it calls
:func:`gen_files`, which adds these files to the build (never to docs/ on disk):

* ``labs/<slug>.md`` for each lab (a ``labs/NN-slug/`` folder with a lab.toml), the labs index
  ``labs/index.md``, and ``labs/SUMMARY.md``: the Labs section of the nav;
* ``chapters/SUMMARY.md``: the Chapters section of the nav, each lab's chapter titled by its first
  ``# `` heading;
* ``faults.md``: every fault of the registry, the kit's and each lab rig's, with the labs that
  inject it. Each lab page's fault table comes from the registry too: the lab's rig is loaded
  (``splitbrain.rig.load``) so that its own faults (``rig/faults.py``) are known;
* ``assets/figures/NN-<name>.svg``: each ``[[figures]]`` of a lab.toml drawn by ``splitbrain.viz``
  from the recording in ``labs/<slug>/figures/`` (``<name>.history.jsonl`` and
  ``<name>.verdict.json``; ``splitbrain book --record LAB`` makes them again). The SVG is the
  same bytes on every run (fixed hash salt, no date).

mkdocs-literate-nav turns the two SUMMARY.md files into the nav: mkdocs.yml names the folders
(``chapters/``, ``labs/``), never a page in them. A lab.toml that names a fault the registry does
not know, a missing chapter or an unreadable recording stops the build with one message that says
which lab and what to do (:class:`BookError`); a figure of a lab being written that has no
recording yet is left out with a note.

:func:`table_problems` checks the hand-written tables of labs (README.md, docs/index.md) against
the labs found under labs/.
"""
from __future__ import annotations

import ast
import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from splitbrain import paths
from splitbrain.lab import SLUG_RE, Figure, LabError, LabInfo, load_lab
from splitbrain import pyast

__all__ = ["BookError", "NotRecorded", "Page", "FaultInfo", "book_labs", "fault_catalog",
           "figure_path", "figure_svg", "render", "gen_files", "table_problems"]

HEADER = ("<!-- Generated at build time by splitbrain.book from {source}: change that, not this "
          "page. -->\n")
NAV_FILE = "SUMMARY.md"
FIGURES_DIR = "assets/figures"
SERVICE_NAMES = {"postgres": "PostgreSQL", "redis": "Redis", "kafka": "Kafka"}
KINDS = ("process", "network", "clock", "crash", "delivery", "service", "condition")


class BookError(Exception):
    """The book cannot be built from the labs as they are; the message says which lab and why."""


class NotRecorded(BookError):
    """A figure of a lab being written has no recording yet: it is left out, with a note (a
    chapter that shows it fails the strict build on its broken link)."""


@dataclass(frozen=True)
class Page:
    """One generated file: its path relative to docs/ (posix) and its content."""

    path: str
    content: str


@dataclass(frozen=True)
class FaultInfo:
    """A fault of the registry as the book shows it; ``lab`` is the slug of the lab whose rig
    registers it (None: one of the kit's faults)."""

    name: str
    kind: str
    description: str
    lab: str | None = None


# -- labs and their faults --------------------------------------------------------------------
def book_labs(root: Path, problems: list[str] | None = None) -> list[LabInfo]:
    """Every ``labs/NN-slug`` folder with a lab.toml, by slug. A folder without one (a lab being
    written, or what a removed lab left behind) gets nothing in the book; a malformed lab.toml is
    a problem (appended to ``problems``, else raised)."""
    base = root / "labs"
    dirs = sorted(d for d in base.iterdir() if d.is_dir() and SLUG_RE.match(d.name)) \
        if base.is_dir() else []
    labs = []
    for d in dirs:
        if not (d / "lab.toml").is_file():
            continue
        try:
            labs.append(load_lab(d, root))
        except LabError as e:
            if problems is None:
                raise BookError(str(e)) from e
            problems.append(str(e))
    return labs


def _info(cls, lab: str | None) -> FaultInfo:
    return FaultInfo(cls.name, cls.kind, " ".join(cls.description.split()), lab)


def fault_catalog(labs: list[LabInfo], problems: list[str] | None = None
                  ) -> tuple[list[FaultInfo], dict[str, list[FaultInfo]]]:
    """(every fault: the kit's and each lab rig's, by kind and name; for each lab slug, the faults
    its lab.toml names, in its order). Each lab's rig is loaded in turn and unloaded after; a rig
    loaded before the call is loaded again at the end. A fault the registry does not know is a
    problem naming the lab, the fault and the known names."""
    from splitbrain import rig
    from splitbrain.faults import registry
    before = rig.loaded_path()
    problems = [] if (raise_ := problems is None) else problems
    kit = {n: _info(c, None) for n, c in registry.FAULTS.items() if n in registry.KIT_FAULTS}
    every = list(kit.values())
    per_lab: dict[str, list[FaultInfo]] = {}
    try:
        for lab in labs:
            try:
                rig.load(lab)
            except Exception as e:  # noqa: BLE001 - a lab's rig that does not import
                problems.append(f"lab {lab.slug}: its rig (labs/{lab.slug}/rig) fails to import "
                                f"({type(e).__name__}: {e}); the book reads the lab's own faults "
                                f"from it")
                continue
            own = {n: _info(c, lab.slug) for n, c in registry.lab_faults().items()}
            every += own.values()
            known = {**kit, **own}
            unknown = [f for f in lab.faults if f not in known]
            if unknown:
                problems.append(
                    f"lab {lab.slug}: labs/{lab.slug}/lab.toml names the fault"
                    f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}, which the "
                    f"fault registry does not know. Known faults: {', '.join(sorted(known))}. "
                    f"Use a registry name, or register the lab's own fault in "
                    f"labs/{lab.slug}/rig/faults.py (@register; `splitbrain faults {lab.slug[:2]}` "
                    f"lists them).")
            per_lab[lab.slug] = [known[f] for f in lab.faults if f in known]
    finally:
        rig.unload()
        if before is not None:
            rig.register(before)
    if raise_ and problems:
        raise BookError("\n".join(problems))
    order = {k: i for i, k in enumerate(KINDS)}
    every.sort(key=lambda f: (order.get(f.kind, len(KINDS)), f.kind, f.name, f.lab or ""))
    return every, per_lab


# -- pages ------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _interface(lab: LabInfo) -> str:
    """The handout component's module docstring, which documents the interface the grader calls."""
    try:
        tree = pyast.parse(lab.component_path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ""
    return (ast.get_docstring(tree) or "").strip()


def _page_title(lab: LabInfo) -> str:
    return f"Lab {lab.slug[:2]}: {lab.title}"


def _services(lab: LabInfo) -> str:
    return ", ".join(SERVICE_NAMES.get(s, s) for s in lab.services)


def _lab_page(lab: LabInfo, faults: list[FaultInfo]) -> str:
    out = [HEADER.format(source=f"labs/{lab.slug}/lab.toml"), f"# {_page_title(lab)}\n"]
    out.append(f"Read the chapter first: [{lab.title}](../{lab.chapter}). It tells the failure "
               f"story this lab makes you live through.\n")
    out.append("## What you get\n")
    out.append(f"- `labs/{lab.slug}/{lab.notebook}`: the notebook. It runs the broken component "
               f"against real services, injects the fault, and draws what happened.")
    out.append(f"- `labs/{lab.slug}/{lab.component}`: the component you fix. The grader calls "
               f"{', '.join(f'`{r}`' for r in lab.requires) or 'its documented interface'}.")
    if lab.public_tests():
        names = ", ".join(f"`{p.name}`" for p in lab.public_tests())
        out.append(f"- {names}: public tests you can read and run.")
    out.append("")
    out.append("## Services and faults\n")
    out.append("| | what |\n|---|---|")
    out.append(f"| Services | {_services(lab) or 'none'} |")
    for f in faults:
        out.append(f"| Fault `{f.name}` | {_cell(f.description)} |")
    if lab.taught_anomalies:
        out.append("| The broken component shows | "
                   + ", ".join(f"`{a}`" for a in lab.taught_anomalies) + " |")
    out.append("")
    out.append("## Run it\n")
    out.append("```bash\n"
               "splitbrain start            # services, JupyterLab and this book\n"
               f"# open labs/{lab.slug}/{lab.notebook}, run it, then fix {lab.component}\n"
               f"splitbrain check {lab.slug}   # grade your fix; shows the next hint\n"
               f"splitbrain hint {lab.slug}    # the next hint, without grading\n```\n")
    doc = _interface(lab)
    if doc:
        out.append("## The interface\n")
        out.append(f"The top of `{lab.component}`, as handed out:\n")
        out.append("```text\n" + doc + "\n```\n")
    if lab.hints:
        out.append("## Hints\n")
        out.append("`splitbrain check` shows them one at a time, after a failed attempt. Try "
                   "without them first.\n")
        for i, hint in enumerate(lab.hints, 1):
            out.append(f'??? tip "Hint {i}"\n    ' + hint.replace("\n", "\n    ") + "\n")
    return "\n".join(out).rstrip() + "\n"


def _index(labs: list[LabInfo]) -> str:
    out = [HEADER.format(source="every labs/*/lab.toml"), "# Labs\n",
           "Each lab hands you a component that works until a fault arrives. Run its notebook to "
           "watch it fail against real services, fix it, and let `splitbrain check` grade the fix "
           "under the same faults. See [how the labs work](../how-labs-work.md); the "
           "[faults](../faults.md) page says what each fault does.\n",
           "| Lab | Chapter | Services | Faults |", "|---|---|---|---|"]
    for lab in labs:
        out.append(f"| [{lab.slug[:2]} {lab.title}]({lab.slug}.md) | [chapter](../{lab.chapter}) "
                   f"| {_services(lab)} | {', '.join(f'`{f}`' for f in lab.faults)} |")
    return "\n".join(out) + "\n"


def _faults_page(every: list[FaultInfo], labs: list[LabInfo]) -> str:
    out = [HEADER.format(source="the fault registry (splitbrain/faults/registry.py and each "
                                "labs/*/rig/faults.py)"), "# Faults\n",
           "Every fault the grader and the notebooks inject, by the one name used everywhere: in a "
           "lab's `lab.toml`, in a test's `faults` marker, in `nemesis.inject(...)`, in the "
           "recorded histories and in the grade report. The kit's faults serve every lab; a lab "
           "adds the faults of its own scenario in its rig (`labs/NN-slug/rig/faults.py`). "
           "`splitbrain faults` prints the same list.\n",
           "Kinds: *process* (a worker or server stopped or killed), *network* (through the "
           "fault proxy), *clock*, *crash* (at a named point in the code), *delivery* (of "
           "messages), *service* (a server restarted, a replica behind), and *condition*: a "
           "shape of the scenario that is recorded but changes nothing by itself.\n",
           "| fault | kind | what happens | from | labs that inject it |", "|---|---|---|---|---|"]
    for f in every:
        users = [lab for lab in labs if f.name in lab.faults and f.lab in (None, lab.slug)]
        links = ", ".join(f"[{lab.slug[:2]}](labs/{lab.slug}.md)" for lab in users) or "none"
        origin = "the kit" if f.lab is None else f"lab {f.lab[:2]}'s rig"
        out.append(f"| `{f.name}` | {f.kind} | {_cell(f.description)} | {origin} | {links} |")
    return "\n".join(out) + "\n"


def _chapter_title(path: Path) -> str | None:
    """The chapter's first ``# `` heading outside code blocks."""
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            return line[2:].strip().rstrip("#").strip() or None
    return None


def _link_text(text: str) -> str:
    return re.sub(r"([\[\]\\`*_])", r"\\\1", text)


def _chapters_nav(labs: list[LabInfo], docs: Path, problems: list[str]) -> str:
    out, seen = [HEADER.format(source="each labs/*/lab.toml's chapter")], set()
    for lab in labs:
        path = docs / lab.chapter
        if lab.chapter in seen:
            continue
        seen.add(lab.chapter)
        if not path.is_file():
            problems.append(f"lab {lab.slug}: its chapter docs/{lab.chapter} does not exist "
                            f"(lab.toml: chapter = {lab.chapter!r}); write it, or fix the path")
            continue
        title = _chapter_title(path) or lab.title
        out.append(f"- [{_link_text(title)}]({posixpath.relpath(lab.chapter, 'chapters')})")
    return "\n".join(out) + "\n"


def _labs_nav(labs: list[LabInfo]) -> str:
    return "\n".join([HEADER.format(source="every labs/*/lab.toml")] + [
        f"- [{_link_text(_page_title(lab))}]({lab.slug}.md)" for lab in labs]) + "\n"


# -- figures ----------------------------------------------------------------------------------
def figure_path(lab: LabInfo, fig: Figure) -> str:
    """Where the figure is drawn, relative to docs/ (the path chapters link)."""
    return f"{FIGURES_DIR}/{lab.slug[:2]}-{fig.name}.svg"


def _recording(lab: LabInfo, fig: Figure):
    from splitbrain.checkers.base import Verdict
    from splitbrain.history import History
    hist = lab.figures_dir / f"{fig.name}.history.jsonl"
    verdict = lab.figures_dir / f"{fig.name}.verdict.json"
    gone = [p for p in (hist, verdict) if not p.is_file()]
    where = f"lab {lab.slug}: figure {fig.name!r} (lab.toml [[figures]])"
    if gone:
        raise NotRecorded(f"{where} has no recording: {', '.join(map(str, gone))} missing; "
                          f"`splitbrain book --record {lab.slug[:2]}` records it from a "
                          f"grading of the broken handout")
    try:
        return (History.from_jsonl(hist),
                Verdict.from_dict(json.loads(verdict.read_text(encoding="utf-8"))))
    except (ValueError, KeyError, TypeError) as e:
        raise BookError(f"{where}: its recording cannot be read ({type(e).__name__}: {e}); "
                        f"`splitbrain book --record {lab.slug[:2]}` records it again") from e


def figure_svg(lab: LabInfo, fig: Figure) -> str:
    """The figure as SVG text, identical on every run for the same recording and matplotlib.

    Drawn at the pictures' own size (7 in: 672 CSS px, which the book's column shows unscaled
    in a 1280 px window), its text as glyph outlines so that no reader's fonts change it, each
    operation with its tooltip (shown when the SVG is opened on its own)."""
    import matplotlib
    from splitbrain import viz
    from splitbrain.history import History
    from splitbrain.viz._svg import svg_text
    recorded, verdict = _recording(lab, fig)
    t0 = min((e.time for e in recorded.events), default=0.0)      # time from the first event
    history = History.from_events(
        {**e.to_dict(), "time": round(e.time - t0, 6)} for e in recorded.events)
    draw = getattr(viz, fig.picture)
    with matplotlib.rc_context({"svg.hashsalt": "splitbrain-book", "svg.fonttype": "path",
                                "font.family": "DejaVu Sans"}):
        figure = draw(history, verdict=verdict, title=fig.title)
        return svg_text(figure, metadata={"Date": None, "Creator": None})
        # viz figures hold no pyplot state: nothing to close


# -- the whole book ---------------------------------------------------------------------------
def render(root: Path | None = None, docs: Path | None = None, draw: bool = True,
           notes: list[str] | None = None) -> list[Page]:
    """Every generated file of the book (nothing is written). ``draw=False`` reads each figure's
    recording without drawing it (a quick check). Raises BookError listing every problem; a
    figure not recorded yet is left out and said in ``notes``."""
    root = Path(root) if root is not None else paths.project_root()
    docs = Path(docs) if docs is not None else root / "docs"
    problems: list[str] = []
    labs = book_labs(root, problems)
    every, per_lab = fault_catalog(labs, problems)
    pages = [Page(f"labs/{lab.slug}.md", _lab_page(lab, per_lab.get(lab.slug, [])))
             for lab in labs]
    pages += [Page("labs/index.md", _index(labs)), Page(f"labs/{NAV_FILE}", _labs_nav(labs)),
              Page(f"chapters/{NAV_FILE}", _chapters_nav(labs, docs, problems)),
              Page("faults.md", _faults_page(every, labs))]
    drawn: dict[str, str] = {}
    for lab in labs:
        for fig in lab.figures:
            path = figure_path(lab, fig)
            if path in drawn:
                problems.append(f"lab {lab.slug}: figure {fig.name!r} would be drawn to {path}, "
                                f"like lab {drawn[path]}'s; rename one")
                continue
            drawn[path] = lab.slug
            try:
                if draw:
                    pages.append(Page(path, figure_svg(lab, fig)))
                else:
                    _recording(lab, fig)
            except NotRecorded as e:
                if notes is not None:
                    notes.append(f"{e} (the figure is left out of the book until then)")
            except BookError as e:
                problems.append(str(e))
    if problems:
        raise BookError("the book cannot be built from the labs:\n"
                        + "\n".join(f"- {p}" for p in problems))
    return pages


def gen_files() -> None:
    """Add the generated pages to the mkdocs build that is running (called by docs/gen_book.py
    through mkdocs-gen-files). The project is the folder of mkdocs.yml."""
    import mkdocs_gen_files
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import InclusionLevel
    import logging
    config, notes = mkdocs_gen_files.config, []
    try:
        pages = render(Path(config.config_file_path).resolve().parent, Path(config.docs_dir),
                       notes=notes)
    except BookError as e:
        raise PluginError(str(e)) from None
    for note in notes:
        logging.getLogger("mkdocs.plugins.splitbrain.book").info(note)
    for page in pages:
        with mkdocs_gen_files.open(page.path, "w") as fh:
            fh.write(page.content)
    root = Path(config.config_file_path).resolve().parent
    try:
        home = home_page(root, Path(config.docs_dir))
    except BookError as e:
        raise PluginError(str(e)) from None
    with mkdocs_gen_files.open("index.md", "w") as fh:   # the home page's table of labs
        fh.write(home)
    files = mkdocs_gen_files.files
    for page in pages:  # the nav files feed literate-nav; they are not pages of the site
        if posixpath.basename(page.path) == NAV_FILE:
            files.get_file_from_path(page.path).inclusion = InclusionLevel.EXCLUDED


# -- the tables of labs in README.md and on the home page ---------------------------------------
# Both are made from each lab's lab.toml (`you_fix`, `you_see`): README.md holds its table between
# two markers, written by `splitbrain book --tables` and checked by the suite; the home page's is
# put in at every build.
TABLE_BEGIN = "<!-- labs table: generated from labs/*/lab.toml by `splitbrain book --tables` -->"
TABLE_END = "<!-- end of the labs table -->"
_ANOMALY = re.compile(r"`([a-z0-9]+(?:-[a-z0-9]+)*)`")


def readme_table(labs: list[LabInfo]) -> str:
    rows = ["| lab | you fix | the anomaly you will see |", "|---|---|---|"]
    rows += [f"| {lab.slug} | {_cell(lab.you_fix)} | {_cell(lab.you_see)} |" for lab in labs]
    return "\n".join(rows)


def home_table(labs: list[LabInfo], docs: Path) -> str:
    rows = ["| | chapter | the failure | the lab's component |", "|---|---|---|---|"]
    for lab in labs:
        title = _chapter_title(docs / lab.chapter) or lab.title
        rows.append(f"| {lab.number} | [{_link_text(title)}]({lab.chapter}) | {_cell(lab.you_see)} "
                    f"| {_cell(lab.you_fix)} |")
    return "\n".join(rows)


def _put(text: str, table: str, where: str) -> str:
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise BookError(f"{where}: no place for the table of labs; put the two lines "
                        f"{TABLE_BEGIN!r} and {TABLE_END!r} where it goes")
    head, rest = text.split(TABLE_BEGIN, 1)
    return f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{rest.split(TABLE_END, 1)[1]}"


def home_page(root: Path, docs: Path) -> str:
    """docs/index.md with its table of labs filled in (at build time; a page without the two
    marker lines is left as it is, and ``table_problems`` says so)."""
    text = (docs / "index.md").read_text(encoding="utf-8")
    if TABLE_BEGIN not in text:
        return text
    return _put(text, home_table(book_labs(root), docs), "docs/index.md")


def write_tables(root: Path | None = None) -> list[Path]:
    """Write README.md's table of labs; the files that changed."""
    root = Path(root) if root is not None else paths.project_root()
    path = root / "README.md"
    text = path.read_text(encoding="utf-8")
    new = _put(text, readme_table(book_labs(root)), "README.md")
    if new == text:
        return []
    path.write_text(new, encoding="utf-8")
    return [path]


def table_problems(root: Path | None = None) -> list[str]:
    """What is wrong with the tables of labs: a lab whose `you_fix` or `you_see` is missing or
    names no taught anomaly, a README.md table that is not the one `splitbrain book --tables`
    writes, a home page with no place for its table. Empty when all is right."""
    root = Path(root) if root is not None else paths.project_root()
    labs = book_labs(root)
    out = []
    for lab in labs:
        named = _ANOMALY.findall(lab.you_see)
        wrong = [a for a in named if a not in lab.taught_anomalies]
        if not lab.you_fix.strip():
            out.append(f"{lab.toml_path}: `you_fix` is empty: the component, in a few words")
        if wrong or not named:
            out.append(f"{lab.toml_path}: `you_see` must name in backquotes one of the lab's "
                       f"taught anomalies ({', '.join(lab.taught_anomalies) or 'none'})"
                       + (f"; {', '.join(wrong)} is not one" if wrong else ""))
    readme = root / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
        if _put(text, readme_table(labs), "README.md") != text:
            out.append("README.md: the table of labs is not the labs' own; run `splitbrain book "
                       "--tables`")
    except (BookError, OSError) as e:
        out.append(str(e))
    index = root / "docs" / "index.md"
    if not index.is_file() or TABLE_BEGIN not in index.read_text(encoding="utf-8"):
        out.append(f"docs/index.md: no place for the table of labs (the line {TABLE_BEGIN!r} "
                   f"and {TABLE_END!r})")
    return out
