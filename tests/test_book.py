"""The book: made from the labs at build time (lab pages, labs index, Faults page, the Chapters and
Labs sections of the nav, figures), built with --strict; a lab added appears and a lab removed
leaves nothing; an unknown fault stops the build with a message; a chapter renders in a real
browser with its diagrams drawn offline, its figure loaded and its lab link resolving; the tables
of labs in README.md and on the home page match labs/."""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from chromium import chromium

from splitbrain import book, paths

ROOT = paths.project_root()
FIXTURE_LAB = Path(__file__).parent / "fixtures" / "project" / "labs" / "00-counter"
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def _mkdocs_build(root: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
                           str(root / "mkdocs.yml"), "-d", str(out)],
                          capture_output=True, text=True, cwd=root, env=ENV, timeout=300)


# -- a small project of our own: the real mkdocs.yml and generator, stub pages, fixture labs ----
def _project(tmp_path: Path) -> Path:
    """The book's real configuration (mkdocs.yml, docs/gen_book.py, the vendored mermaid and the
    book's stylesheet) with a stub for each hand-written page of the nav, and no lab."""
    root = tmp_path / "project"
    (root / "docs" / "chapters").mkdir(parents=True)
    (root / "labs").mkdir()
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copy(ROOT / "docs" / "gen_book.py", root / "docs" / "gen_book.py")
    shutil.copytree(ROOT / "docs" / "assets", root / "docs" / "assets")
    nav = re.findall(r"^\s*- ([^:\n]+): ([\w./-]+\.md)\s*$",
                     (ROOT / "mkdocs.yml").read_text(), re.M)
    assert nav, "mkdocs.yml has no nav of hand-written pages"
    for title, page in nav:
        if (ROOT / "docs" / page).is_file():
            (root / "docs" / page).write_text(f"# {title}\n")
    return root


def _chapter(root: Path, lab_dir: Path, heading: str) -> None:
    """The lab's chapter: its first heading, a link to the lab page and its figures."""
    from splitbrain.lab import load_lab
    lab = load_lab(lab_dir, root)
    figs = "".join(f"\n![{f.title}](../{book.figure_path(lab, f)})\n" for f in lab.figures)
    (root / "docs" / lab.chapter).write_text(
        f"# {heading}\n\n```bash\n# not a heading\n```\n\nDo [the lab](../labs/{lab.slug}.md)."
        f"\n{figs}")


def _fixture_lab(root: Path) -> Path:
    """tests/fixtures/project's lab 00-counter, with its chapter."""
    lab = root / "labs" / FIXTURE_LAB.name
    shutil.copytree(FIXTURE_LAB, lab)
    _chapter(root, lab, "Counting under concurrency")
    return lab


TOY_RIG_FAULTS = '''
from splitbrain.faults.registry import Condition, register


@register
class ToyBurst(Condition):
    name = "toy-burst"
    description = "a burst of toy requests | all at once"
'''


def _toy_lab(root: Path, faults=("pause", "toy-burst"), figure=True) -> Path:
    """Lab 07: a fault of its own (its rig registers `toy-burst`) and a recorded figure."""
    from splitbrain.checkers.base import Anomaly, Verdict
    from splitbrain.history import History, call_value
    lab = root / "labs" / "07-toy-lab"
    (lab / "rig").mkdir(parents=True)
    (lab / "lab.toml").write_text(
        'format_version = 1\ntitle = "A toy"\nchapter = "chapters/07-toy.md"\n'
        'component = "toy.py"\nrequires = ["Toy"]\nservices = ["redis"]\n'
        f'faults = {json.dumps(list(faults))}\ntaught_anomalies = ["stale-write"]\n'
        'hints = ["look here", "then there"]\n'
        + ('\n[[figures]]\nname = "stale"\ntest = "test_01"\ntitle = "a toy gone stale"\n'
           if figure else ""))
    (lab / "toy.py").write_text('"""The toy interface."""\nclass Toy: pass\n')
    (lab / "rig" / "__init__.py").write_text('"""The toy lab\'s rig."""\n')
    (lab / "rig" / "faults.py").write_text(TOY_RIG_FAULTS)
    if figure:
        h = History()
        for p in ("a", "b"):
            h.complete(h.invoke(p, "write", call_value(["k", p])), "ok", True)
        h.to_jsonl(lab / "figures" / "stale.history.jsonl")
        v = Verdict(False, (Anomaly("stale-write", "a wrote after b", (0, 1)),), "toy")
        (lab / "figures" / "stale.verdict.json").write_text(json.dumps(v.to_dict()))
    _chapter(root, lab, "The toy chapter")
    return lab


def _nav(page: Path) -> list[str]:
    """The labels of the built page's primary navigation, in order."""
    html = page.read_text()
    nav = html[html.index("md-nav--primary"):]
    return [re.sub(r"<[^>]+>|\s+", " ", m).strip() for m in
            re.findall(r'class="md-nav__link[^"]*"[^>]*>(.*?)</(?:a|label)>', nav, re.S)]


@pytest.mark.slow
def test_a_lab_added_appears_in_the_book_and_a_lab_removed_leaves_nothing(tmp_path):
    root = _project(tmp_path)
    fixture = _fixture_lab(root)
    site = tmp_path / "site"
    proc = _mkdocs_build(root, site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "labs" / "00-counter" / "index.html").is_file()
    assert "Counting under concurrency" in _nav(site / "index.html")
    assert not list(site.rglob("SUMMARY*")), "a nav file was published as a page"

    toy = _toy_lab(root)
    proc = _mkdocs_build(root, site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nav = _nav(site / "index.html")
    assert nav.index("Counting under concurrency") < nav.index("The toy chapter") \
        < nav.index("Lab 00: A counter that counts") < nav.index("Lab 07: A toy"), nav
    page = (site / "labs" / "07-toy-lab" / "index.html").read_text()
    assert "The toy interface." in page and "then there" in page and "Redis" in page
    assert re.search(r"Fault <code>toy-burst</code></td>\s*<td>a burst of toy requests \| all at "
                     r"once</td>", page), "the lab page's fault row is not the registry's text"
    assert re.search(r"Fault <code>pause</code></td>\s*<td>a process frozen", page)
    faults = (site / "faults" / "index.html").read_text()
    assert re.search(r"<code>toy-burst</code>.*?lab 07's rig.*?07-toy-lab", faults, re.S)
    assert re.search(r"<code>pause</code>.*?the kit.*?07-toy-lab", faults, re.S)
    assert "07-toy-lab" in (site / "labs" / "index.html").read_text()
    svg = site / "assets" / "figures" / "07-stale.svg"
    assert svg.is_file() and "<svg" in svg.read_text()
    chapter = (site / "chapters" / "07-toy" / "index.html").read_text()
    assert 'src="../../assets/figures/07-stale.svg"' in chapter

    shutil.rmtree(toy)
    (toy / "rig" / "__pycache__").mkdir(parents=True)        # what a removed lab may leave behind
    (root / "docs" / "chapters" / "07-toy.md").unlink()
    proc = _mkdocs_build(root, site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (site / "labs" / "07-toy-lab").exists()
    assert not (site / "chapters" / "07-toy").exists()
    assert not list((site / "assets" / "figures").glob("07-*"))
    for built in site.rglob("*.html"):
        assert "07-toy" not in built.read_text() and "toy-burst" not in built.read_text(), built
    assert fixture.is_dir()


def test_an_unknown_fault_stops_the_build_naming_the_lab_the_fault_and_the_known_names(tmp_path):
    root = _project(tmp_path)
    _toy_lab(root, faults=("pause", "no-such-fault"))
    with pytest.raises(book.BookError) as e:
        book.render(root)
    msg = str(e.value)
    assert "07-toy-lab" in msg and "'no-such-fault'" in msg
    known = msg.split("Known faults:")[1]
    assert "pause" in known and "toy-burst" in known, "the known names leave out the lab's own"
    proc = _mkdocs_build(root, tmp_path / "site")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "no-such-fault" in proc.stderr and "07-toy-lab" in proc.stderr, proc.stderr


def test_a_missing_chapter_stops_the_build_and_a_figure_not_yet_recorded_is_a_note(tmp_path):
    root = _project(tmp_path)
    lab = _toy_lab(root)
    (lab / "figures" / "stale.verdict.json").unlink()
    chapter = root / "docs" / "chapters" / "07-toy.md"
    text = chapter.read_text()
    chapter.unlink()
    with pytest.raises(book.BookError, match="docs/chapters/07-toy.md does not exist"):
        book.render(root, draw=False)
    chapter.write_text(text.split("![")[0])      # a lab being written: no figure shown yet
    notes: list[str] = []
    pages = [p.path for p in book.render(root, notes=notes)]
    assert "labs/07-toy-lab.md" in pages and not any(p.endswith("07-stale.svg") for p in pages)
    assert len(notes) == 1 and "stale.verdict.json" in notes[0] \
        and "splitbrain book --record 07" in notes[0]
    proc = _mkdocs_build(root, tmp_path / "site")
    assert proc.returncode == 0, proc.stdout + proc.stderr      # the note is an INFO line


def test_docs_hold_no_generated_page_and_mkdocs_yml_names_no_chapter_or_lab():
    for generated in ("labs", "assets/figures", "assets/histories", "faults.md"):
        assert not (ROOT / "docs" / generated).exists(), \
            f"docs/{generated} is generated at build time; delete it"
    listed = re.findall(r"\b(?:chapters|labs)/[\w.-]+\.md", (ROOT / "mkdocs.yml").read_text())
    assert not listed, f"mkdocs.yml lists {listed} by hand"


def test_the_tables_of_labs_in_readme_and_on_the_home_page_match_labs():
    problems = book.table_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_the_tables_of_labs_are_made_from_the_labs_and_checked(tmp_path):
    root = _project(tmp_path)
    lab = _toy_lab(root, figure=False)
    _fixture_lab(root)
    (root / "README.md").write_text(f"# R\n\n{book.TABLE_BEGIN}\n| stale |\n{book.TABLE_END}\n")
    (root / "docs" / "index.md").write_text(f"# Home\n\n{book.TABLE_BEGIN}\n{book.TABLE_END}\n")
    problems = "\n".join(book.table_problems(root))
    assert "07-toy-lab/lab.toml: `you_fix` is empty" in problems
    assert "README.md: the table of labs is not the labs' own; run `splitbrain book --tables`" \
        in problems
    toml = lab / "lab.toml"
    toml.write_text(toml.read_text().replace(
        'title = "A toy"\n', 'title = "A toy"\nyou_fix = "a toy"\n'
                             'you_see = "it goes stale (`lost-event`)"\n'))
    assert "`you_see` must name in backquotes one of the lab's taught anomalies (stale-write); "\
           "lost-event is not one" in "\n".join(book.table_problems(root))
    toml.write_text(toml.read_text().replace("`lost-event`", "`stale-write`"))
    assert book.write_tables(root) == [root / "README.md"]
    assert book.table_problems(root) == [] and book.write_tables(root) == []
    readme = (root / "README.md").read_text()
    assert "| 07-toy-lab | a toy | it goes stale (`stale-write`) |" in readme
    home = book.home_page(root, root / "docs")
    assert "| 7 | [The toy chapter](chapters/07-toy.md) | it goes stale (`stale-write`) | a toy |" \
        in home and "| 0 | " in home


def test_how_labs_work_names_only_faults_of_the_registry():
    from splitbrain.faults.registry import KIT_FAULTS
    text = (ROOT / "docs" / "how-labs-work.md").read_text()
    names = re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M)
    assert names and set(names) <= KIT_FAULTS, sorted(set(names) - KIT_FAULTS)


# -- recording a figure -----------------------------------------------------------------------
def _fake_grading(status: str, seen: dict):
    """Stands in for grade_submission: writes the artifacts the plugin and expect_valid write."""
    from splitbrain.grading.results import GradingResult, TestResult

    def grade(lab, submission, seed=1, out_dir=None, select=None, **kw):
        seen.update(select=select, handout=Path(submission).read_text())
        art = Path(out_dir) / "artifacts"
        art.mkdir(parents=True)
        (art / "test_toy.test_01_goes_stale.history.jsonl").write_text("recorded history\n")
        (art / "test_toy.test_01_goes_stale.verdict.json").write_text(json.dumps(
            {"valid": False, "anomalies": [{"kind": "stale-write", "message": "m"}]}))
        test = TestResult("test_01_goes_stale", 0.0, 1.0, status,
                          history=str(art / "test_toy.test_01_goes_stale.history.jsonl"))
        return GradingResult(lab.slug, str(submission), seed, (test,))
    return grade


def test_record_copies_the_figure_tests_history_and_verdict_over_the_labs_figure(
        tmp_path, monkeypatch):
    from splitbrain.cli.book_cmds import record
    from splitbrain.grading import runner
    from splitbrain.lab import load_lab
    root = _project(tmp_path)
    lab = load_lab(_toy_lab(root), root)
    seen: dict = {}
    monkeypatch.setattr(runner, "grade_submission", _fake_grading("failed", seen))
    assert [(f.name, t) for f, t in record(lab)] == [("stale", "test_01_goes_stale")]
    assert seen == {"select": "test_01", "handout": (lab.component_path).read_text()}
    assert (lab.figures_dir / "stale.history.jsonl").read_text() == "recorded history\n"
    assert "stale-write" in (lab.figures_dir / "stale.verdict.json").read_text()


def test_record_refuses_a_test_the_broken_handout_passes_and_changes_nothing(
        tmp_path, monkeypatch):
    from splitbrain.cli.book_cmds import record
    from splitbrain.grading import runner
    from splitbrain.lab import load_lab
    root = _project(tmp_path)
    lab = load_lab(_toy_lab(root), root)
    before = (lab.figures_dir / "stale.history.jsonl").read_text()
    monkeypatch.setattr(runner, "grade_submission", _fake_grading("passed", {}))
    with pytest.raises(book.BookError, match="ended passed"):
        record(lab)
    assert (lab.figures_dir / "stale.history.jsonl").read_text() == before


def test_book_check_and_record_from_the_command_line(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "splitbrain", "book", *args],
                              capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    out = cli("--check")
    assert out.returncode == 0, out.stdout + out.stderr
    out = cli("--record", "no-such-lab")
    assert out.returncode == 2 and out.stderr.startswith("error: no lab named"), out.stderr


# -- the real book ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = _mkdocs_build(ROOT, out)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _labs():
    return book.book_labs(ROOT)


def _built(lab_or_path) -> str:
    """The site folder of a page: chapters/01-x.md -> chapters/01-x."""
    return str(lab_or_path).removesuffix(".md")


def test_site_builds_strict_with_every_chapter_lab_figure_and_the_faults_page(site):
    labs = _labs()
    assert labs, "no lab found under labs/"
    nav = _nav(site / "index.html")
    for lab in labs:
        assert (site / "labs" / lab.slug / "index.html").is_file(), lab.slug
        chapter = (site / _built(lab.chapter) / "index.html").read_text()
        for fig in lab.figures:
            path = book.figure_path(lab, fig)
            assert (site / path).is_file(), path
            assert f'src="../../{path}"' in chapter, f"{lab.chapter} does not show {path}"
        assert f"Lab {lab.slug[:2]}: {lab.title}" in nav, f"the nav has no entry for {lab.slug}"
    chapters = [book._chapter_title(ROOT / "docs" / lab.chapter) for lab in labs]
    assert [t for t in nav if t in chapters] == chapters, "the Chapters nav is not in lab order"
    faults = (site / "faults" / "index.html").read_text()
    for name in {f for lab in labs for f in lab.faults}:
        assert f"<code>{name}</code>" in faults, f"the Faults page does not list {name}"


def test_book_figures_are_deterministic():
    """Each figure is drawn from its recording; drawing it again gives the same bytes (no date,
    fixed hash salt)."""
    figures = [(lab, fig) for lab in _labs() for fig in lab.figures]
    assert figures, "the book has no figures"
    for lab, fig in figures:
        first = book.figure_svg(lab, fig)
        assert first == book.figure_svg(lab, fig), f"{fig.name}: SVG differs between runs"
        assert "<dc:date>" not in first, f"{fig.name}: the SVG carries a date"


# -- in a browser -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_LightDomHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


# Material draws each diagram into a *closed* shadow root, which --dump-dom cannot see. Pages served
# under /light/ get a first script that makes attachShadow return the host element itself, so the
# drawn <svg> lands inside the .mermaid element where the dumped DOM shows it; once the page has
# loaded, it also marks each image with whether it loaded (data-loaded="true" / "false") and each
# code block with whether its text runs past the block's edge (data-overflow="true" / "false").
_LIGHT_DOM = (b"<script>Element.prototype.attachShadow = function () { return this; };"
              b"addEventListener('load', () => { for (const i of document.images) "
              b"i.setAttribute('data-loaded', String(i.complete && i.naturalWidth > 0)); "
              b"for (const c of document.querySelectorAll('pre > code')) "
              b"c.setAttribute('data-overflow', String(c.scrollWidth > c.clientWidth + 1)); });"
              b"</script>")


class _LightDomHandler(_QuietHandler):
    def do_GET(self):
        if not self.path.startswith("/light/"):
            return super().do_GET()
        self.path = self.path[len("/light"):]
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            return super().do_GET()
        body = path.read_bytes().replace(b"<head>", b"<head>" + _LIGHT_DOM, 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
           "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1", *args]  # offline
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_a_chapter_renders_in_chromium_with_its_figure_and_its_lab_link_resolves(served, tmp_path):
    lab = next((lab for lab in _labs() if lab.figures), None)
    assert lab is not None, "no lab has a figure"
    title = book._chapter_title(ROOT / "docs" / lab.chapter)
    url = f"{served}/light/{_built(lab.chapter)}/"
    proc = _browser(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    dom = proc.stdout
    assert "<h1" in dom and title in dom, \
        f"the chapter did not render; chromium said:\n{proc.stderr[-2000:]}"
    for fig in lab.figures:
        img = re.search(rf'<img[^>]*src="[./]*{re.escape(book.figure_path(lab, fig))}"[^>]*>', dom)
        assert img, f"the chapter shows no {book.figure_path(lab, fig)}"
        assert 'data-loaded="true"' in img.group(0), f"the figure did not load: {img.group(0)}"
    links = re.findall(rf'href="([^"]*labs/{lab.slug}/?[^"]*)"', dom)
    assert links, "the chapter has no link to its lab page"
    target = urllib.request.urljoin(f"{served}/{_built(lab.chapter)}/", links[0])
    with urllib.request.urlopen(target, timeout=10) as resp:
        assert resp.status == 200
        page = resp.read().decode()
    assert f"<title>Lab {lab.slug[:2]}: {lab.title}" in page, f"{target} is not the lab page"
    shot = tmp_path / "chapter.png"
    _browser(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}",
             f"{served}/{_built(lab.chapter)}/")
    assert shot.is_file() and shot.stat().st_size > 10_000, "chromium produced no screenshot"


def _chapters_with_diagrams() -> list[tuple[str, int]]:
    """(built page, number of mermaid diagrams) of every lab's chapter that has diagrams."""
    try:
        labs = _labs()
    except Exception:  # noqa: BLE001 - a broken lab.toml fails the build tests, not collection
        return []
    return [(_built(lab.chapter), n) for lab in labs
            if (n := (ROOT / "docs" / lab.chapter).read_text().count("```mermaid"))]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for every page of the module (a window 1280 px wide), driven over
    the DevTools protocol: a page costs a navigation, not a browser start."""
    from chromium import Browser
    with Browser(tmp_path_factory.mktemp("chromium"), width=1280, height=2000) as b:
        yield b


def _open_light(browser, served: str, page: str) -> None:
    """Open a page under /light/ and wait for its load handler to have marked images and code."""
    browser.goto(f"{served}/light/{page}/")
    browser.wait("document.readyState === 'complete' && "
                 "[...document.images].every(i => i.hasAttribute('data-loaded'))", timeout=30)


@pytest.mark.parametrize("page, diagrams", _chapters_with_diagrams())
def test_mermaid_diagrams_render_offline_from_the_vendored_script(served, site, browser, page,
                                                                  diagrams):
    """No network in the browser: every diagram must still become an SVG, which only the
    vendored mermaid (docs/assets/javascripts/mermaid.min.js) can draw. A diagram mermaid cannot
    parse stays as its source text (in a sequence diagram, a `;` ends the line: write #59;)."""
    built = (site / page / "index.html").read_text()
    assert "assets/javascripts/mermaid.min.js" in built, \
        f"{page} does not load the vendored mermaid (extra_javascript in mkdocs.yml)"
    _open_light(browser, served, page)
    drawn = browser.wait(f"document.querySelectorAll('div.mermaid svg').length >= {diagrams} "
                         "&& document.querySelectorAll('div.mermaid svg').length", timeout=20)
    hosts = browser.eval("document.querySelectorAll('div.mermaid').length")
    assert drawn and drawn >= diagrams, (
        f"{page}: {drawn or 0} of {diagrams} mermaid diagrams rendered to SVG ({hosts} hosts)")
    assert not browser.eval("document.querySelectorAll('pre.mermaid').length"), \
        f"{page}: a diagram is still shown as its source"


# -- rendering: definition lists, one title per lab, code that is not cut off ----------------------
def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def test_the_glossary_and_who_it_is_for_render_as_definition_lists(site):
    """`**term**` then `:   definition` is a definition list (the def_list extension): every term
    of the glossary is a <dt> with its <dd>, and so is each reader of the home page's "Who it is
    for"."""
    source = (ROOT / "docs" / "glossary.md").read_text()
    terms = re.findall(r"^\*\*(.+?)\*\*\n:   ", source, re.M)
    assert len(terms) > 20, "the glossary's terms are not written as definitions"
    built = (site / "glossary" / "index.html").read_text()
    dts = [_text(d) for d in re.findall(r"<dt>(.*?)</dt>", built, re.S)]
    assert dts == terms, "the glossary does not render as a definition list"
    assert built.count("<dd>") == len(terms)
    home = (site / "index.html").read_text()
    who = home[home.index('id="who-it-is-for"'):home.index('id="start"')]
    assert [_text(d) for d in re.findall(r"<dt>(.*?)</dt>", who, re.S)] == \
        ["Self-paced readers", "Learners", "Instructors", "Workshop leads"]


def test_each_chapter_is_headed_with_its_labs_title(site):
    """The lab page (titled from lab.toml), its link to the chapter, the nav and the chapter itself
    call the lab by one title."""
    for lab in _labs():
        chapter = ROOT / "docs" / lab.chapter
        assert book._chapter_title(chapter) == lab.title, \
            f"{lab.chapter} is headed {book._chapter_title(chapter)!r}; lab.toml says {lab.title!r}"
        page = (site / "labs" / lab.slug / "index.html").read_text()
        link = re.search(r'Read the chapter first: <a href="[^"]+">(.*?)</a>', page)
        built = (site / _built(lab.chapter) / "index.html").read_text()
        h1 = re.search(r"<h1[^>]*>(.*?)(?:<a class=\"headerlink\".*?)?</h1>", built, re.S)
        assert link and h1 and _text(link.group(1)) == _text(h1.group(1)) == lab.title


def test_claim_comments_stay_comments_in_the_built_book(site):
    for built in site.rglob("*.html"):
        assert "&lt;!-- claim" not in built.read_text(), f"{built} shows a claim comment as text"


def _pages_with_code() -> list[str]:
    try:
        labs = _labs()
    except Exception:  # noqa: BLE001 - a broken lab.toml fails the build tests, not collection
        return []
    return [f"labs/{lab.slug}" for lab in labs] + [_built(lab.chapter) for lab in labs]


@pytest.mark.parametrize("page", _pages_with_code())
def test_no_code_line_is_cut_off_at_book_width(served, site, browser, page):
    """At a 1280 px window, every code block of the lab pages and chapters shows its whole text:
    long lines wrap (docs/assets/stylesheets/book.css) instead of running past the block's edge."""
    if "<pre" not in (site / page / "index.html").read_text():
        return                                            # a page without code blocks
    _open_light(browser, served, page)
    marked = browser.wait("document.querySelectorAll('code[data-overflow]').length", timeout=30)
    assert marked, f"{page}: no code block was measured"
    cut = browser.eval("[...document.querySelectorAll('code[data-overflow=\"true\"]')]"
                       ".map(c => c.textContent.replace(/\\s+/g, ' ').trim().slice(0, 80))")
    assert not cut, f"{page}: code cut off at the block's edge: {cut}"
