"""The space-time diagrams as a reader sees them, in headless Chromium at a 1280 px window: each
chapter's figure in the built book, and each figure drawn by ``notebook.show`` in an executed
notebook (nbconvert's HTML, and JupyterLab itself, trusted and not).

What a machine can check of what a reader sees: the smallest label is at least 11.5 px (the
pictures are drawn for 12 px), no two texts overlap, every text lies inside the picture, the
operations the verdict names, and only they, are outlined in the anomaly colour both in the SVG
and in the screenshot's pixels; in a notebook, resting the pointer on an operation lands on
that operation, whose tooltip gives its call, its result and the faults active. Each screenshot
is kept in the test's temporary folder (``--basetemp`` to keep them) to be looked at.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from chromium import FIGURE_JS, Browser
from splitbrain import book, paths
from splitbrain.viz._common import ANOMALY_COLOR

pytestmark = pytest.mark.slow   # a real browser on the built book, nbconvert and JupyterLab

ROOT = paths.project_root()
MIN_PX = 11.5
ANOMALY_RGB = tuple(int(ANOMALY_COLOR[i:i + 2], 16) for i in (1, 3, 5))
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def _figures():
    try:
        return [(lab, fig) for lab in book.book_labs(ROOT) for fig in lab.figures]
    except Exception:  # noqa: BLE001 - a broken lab.toml fails the book's tests, not collection
        return []


FIGURES = _figures()
IDS = [f"{lab.slug[:2]}-{fig.name}" for lab, fig in FIGURES]


def _offenders(lab, fig) -> set[str]:
    """The ids of the operations the figure's verdict names (``sb-op-<invoke index>``)."""
    history, verdict = book._recording(lab, fig)
    named = {i for a in verdict.anomalies for i in a.events}
    return {f"sb-op-{op.invoke.index}" for op in history.operations() if set(op.events) & named}


# -- what every picture must be ---------------------------------------------------------------
def _is_anomaly(px) -> bool:
    r, g, b = px[:3]
    return abs(r - ANOMALY_RGB[0]) < 45 and abs(g - ANOMALY_RGB[1]) < 60 and \
        abs(b - ANOMALY_RGB[2]) < 60


def _share(img, box, inset: float) -> float:
    """Share of anomaly-coloured pixels on the outline of ``box`` (grown by ``-inset``) or,
    with ``inset`` > 0, anywhere strictly inside it."""
    x0, y0 = box["x"] + inset, box["y"] + inset
    x1, y1 = box["x"] + box["w"] - inset, box["y"] + box["h"] - inset
    if inset > 0:
        pts = [(x, y) for x in range(int(x0) + 1, int(x1)) for y in range(int(y0) + 1, int(y1))]
    else:
        pts = [(x, y) for x in range(int(x0), int(x1) + 1) for y in (int(y0), int(y1))] + \
              [(x, y) for y in range(int(y0), int(y1) + 1) for x in (int(x0), int(x1))]
    pts = [p for p in pts if 0 <= p[0] < img.width and 0 <= p[1] < img.height]
    return sum(_is_anomaly(img.getpixel(p)) for p in pts) / len(pts) if pts else 0.0


def check_picture(measured: dict, offenders: set[str], shot: Path, where: str,
                  at: tuple[float, float] = (0.0, 0.0)) -> None:
    """``measured``: FIGURE_JS's answer; ``shot``: a screenshot whose top left corner is the
    page point ``at``."""
    from PIL import Image
    texts, ops, box = measured["texts"], measured["ops"], measured["box"]
    assert texts and ops, f"{where}: nothing measured ({len(texts)} texts, {len(ops)} ops)"
    small = [(t["text"], round(t["px"], 1)) for t in texts if t["px"] < MIN_PX]
    assert not small, f"{where}: labels under {MIN_PX} px as shown: {small}"
    outside = [t["text"] for t in texts if t["x"] < -0.5 or t["y"] < -0.5
               or t["x"] + t["w"] > box["w"] + 0.5 or t["y"] + t["h"] > box["h"] + 0.5]
    assert not outside, f"{where}: texts cut off at the picture's edge: {outside}"
    overlaps = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if dx > 0.5 and dy > 0.5:
                overlaps.append((a["text"], b["text"]))
    assert not overlaps, f"{where}: overlapping labels: {overlaps}"
    red = {o["id"] for o in ops if _rgb(o["stroke"]) == ANOMALY_RGB}
    assert red == offenders, (f"{where}: outlined in the anomaly colour {sorted(red)}, but the "
                              f"verdict names {sorted(offenders)}")
    img = Image.open(shot).convert("RGB")
    ox, oy = box["x"] - at[0], box["y"] - at[1]
    for o in ops:
        b = {"x": o["x"] + ox, "y": o["y"] + oy, "w": o["w"], "h": o["h"]}
        if o["id"] in offenders:
            share = _share(img, b, 0)
            assert share > 0.5, f"{where}: offender {o['id']} shows {share:.0%} red outline"
        elif o["w"] > 4 and o["h"] > 4:
            share = _share(img, b, 2)
            assert share < 0.02, f"{where}: {o['id']} is not named but shows {share:.0%} red"


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3]) \
        if "(" in css else ()


def check_tooltips(measured: dict, offenders: set[str], where: str) -> None:
    """Resting on each operation lands on it, and its tooltip tells the call, the result and
    the faults active; an offender's says which anomaly."""
    for o in measured["ops"]:
        assert o["hover"] == o["id"], f"{where}: the pointer on {o['id']} lands on {o['hover']}"
        tip = o["title"] or ""
        assert "(" in tip.splitlines()[0] or "×" in tip.splitlines()[0], (where, tip)
        assert "→" in tip and "faults active:" in tip, f"{where}: {o['id']}'s tooltip: {tip!r}"
        if o["id"] in offenders:
            assert "offending: [" in tip, f"{where}: offender {o['id']}'s tooltip: {tip!r}"


# -- the book ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served_book(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                           str(site)], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    with _serve(site) as url:
        yield url


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _serve:
    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


BOOK_FIGURE_JS = """(async () => {
  const img = [...document.images].find(i => i.getAttribute('src').endsWith(%s));
  if (!img) return null;
  window.scrollTo(0, 0);
  const r = img.getBoundingClientRect();
  // the img's own SVG, inlined at the very place and size the img is drawn, to measure it
  const doc = new DOMParser().parseFromString(await (await fetch(img.src)).text(),
                                              'image/svg+xml');
  const svg = document.importNode(doc.documentElement, true);
  const box = document.createElement('div');
  box.style.cssText = `position:absolute;left:${r.left + scrollX}px;top:${r.top + scrollY}px;` +
                      'visibility:hidden;pointer-events:none;margin:0;padding:0';
  svg.setAttribute('width', r.width); svg.setAttribute('height', r.height);
  box.appendChild(svg); document.body.appendChild(box);
  const m = (() => { %s })();
  box.remove();
  return {...m, img: {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
                      natural: img.naturalWidth}};
})()"""


@pytest.mark.parametrize("lab, fig", FIGURES, ids=IDS)
def test_the_books_figure_reads_at_a_glance_at_1280_px(served_book, lab, fig, tmp_path):
    chapter = lab.chapter.removesuffix(".md")
    with Browser(tmp_path / "profile", width=1280, height=1000) as b:
        b.goto(f"{served_book}/{chapter}/")
        m = b.eval(BOOK_FIGURE_JS % (json.dumps(book.figure_path(lab, fig)), FIGURE_JS))
        assert m is not None, f"{chapter} shows no {book.figure_path(lab, fig)}"
        img = m["img"]
        shot = b.shot(tmp_path / f"book-{lab.slug[:2]}-{fig.name}.png",
                      {"x": img["x"], "y": img["y"], "width": img["w"], "height": img["h"]})
    assert abs(img["w"] - img["natural"]) < 1, \
        f"the figure is scaled to {img['w']} px from its {img['natural']} px"
    check_picture(m, _offenders(lab, fig), shot, f"{chapter} at 1280 px",
                  at=(img["x"], img["y"]))


# -- a notebook -------------------------------------------------------------------------------
CELL = """from splitbrain import notebook as nb
from splitbrain.checkers.base import Verdict
from splitbrain.history import History
import json
history = History.from_jsonl({history!r})
verdict = Verdict.from_dict(json.load(open({verdict!r})))
nb.show(history, verdict, title={title!r})"""


def _executed_notebook(figures) -> "object":
    import nbformat
    from nbclient import NotebookClient
    cells = [nbformat.v4.new_code_cell(CELL.format(
        history=str(lab.figures_dir / f"{fig.name}.history.jsonl"),
        verdict=str(lab.figures_dir / f"{fig.name}.verdict.json"), title=fig.title))
        for lab, fig in figures]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    return nb


@pytest.fixture(scope="module")
def executed():
    assert FIGURES, "the book has no figures"
    return _executed_notebook(FIGURES)


def test_a_notebooks_figures_in_nbconvert_html_read_at_a_glance_with_tooltips(executed,
                                                                              tmp_path):
    from nbconvert import HTMLExporter
    for cell in executed.cells:
        bundle = next(o for o in cell.outputs if o.output_type == "execute_result")["data"]
        assert {"text/html", "image/png"} <= set(bundle), "show() must give HTML and a PNG"
    html, _ = HTMLExporter().from_notebook_node(executed)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "figures.html").write_text(html, encoding="utf-8")
    with _serve(tmp_path / "site") as url, \
            Browser(tmp_path / "profile", width=1280, height=1000) as b:
        b.goto(f"{url}/figures.html")
        n = b.eval("document.querySelectorAll('svg[id^=\"sb-\"]').length")
        assert n == len(FIGURES), f"{n} inline pictures for {len(FIGURES)} figures"
        for k, (lab, fig) in enumerate(FIGURES):
            m = b.eval("(() => { const svg = document.querySelectorAll('svg[id^=\"sb-\"]')[%d];"
                       " svg.scrollIntoView(); %s })()" % (k, FIGURE_JS))
            box = m["box"]
            shot = b.shot(tmp_path / f"notebook-{lab.slug[:2]}-{fig.name}.png",
                          {"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"]})
            where = f"notebook figure {lab.slug[:2]}-{fig.name}"
            check_picture(m, _offenders(lab, fig), shot, where, at=(box["x"], box["y"]))
            check_tooltips(m, _offenders(lab, fig), where)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_shows_the_picture_with_tooltips_and_an_untrusted_copy_only_a_note(tmp_path):
    """JupyterLab draws the HTML of a trusted output as is (the picture, tooltips and all) and
    sanitizes an untrusted one (a notebook opened with outputs it did not make): then only the
    note saying to run the cell is left, no stray text."""
    import nbformat
    from nbformat.sign import NotebookNotary
    lab, fig = FIGURES[0]
    nb = _executed_notebook([(lab, fig)])
    home = tmp_path / "jupyter"
    notebooks = home / "notebooks"
    notebooks.mkdir(parents=True)
    (home / "data").mkdir()
    NotebookNotary(data_dir=str(home / "data")).sign(nb)
    nbformat.write(nb, notebooks / "trusted.ipynb")
    nb.metadata["copy"] = "not signed"              # another content: no signature matches
    nbformat.write(nb, notebooks / "untrusted.ipynb")
    env = {**os.environ, "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "rt"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws")}
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={notebooks}", "--LabApp.news_url="]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (home / "server.log").open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status", server, home / "server.log")
        panel = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .splitbrain-picture"
        with Browser(tmp_path / "profile-trusted", width=1280, height=1200) as b:
            b.goto(f"http://127.0.0.1:{port}/lab/tree/trusted.ipynb?reset")
            assert b.wait(f"!!document.querySelector('{panel} svg')", 120), \
                "JupyterLab shows no picture for the trusted notebook"
            time.sleep(0.5)                             # let the layout settle
            m = b.eval("(() => { const svg = document.querySelector('%s svg'); "
                       "svg.scrollIntoView(); %s })()" % (panel, FIGURE_JS))
            b.shot(tmp_path / "jupyterlab-trusted.png")
            box = m["box"]
            shot = b.shot(tmp_path / "jupyterlab-trusted-figure.png",
                          {"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"]})
        where = "JupyterLab, trusted"
        assert box["w"] >= 600, f"{where}: the picture is squeezed to {box['w']} px"
        check_picture(m, _offenders(lab, fig), shot, where, at=(box["x"], box["y"]))
        check_tooltips(m, _offenders(lab, fig), where)
        with Browser(tmp_path / "profile-untrusted", width=1280, height=1200) as b:
            b.goto(f"http://127.0.0.1:{port}/lab/tree/untrusted.ipynb?reset")
            state = b.wait(f"""(() => {{ const o = document.querySelector('{panel}');
                if (!o) return null;
                const note = o.querySelector('.sb-needs-trust');
                return {{svg: !!o.querySelector('svg'), text: o.innerText,
                         note: note ? getComputedStyle(note).display : null}}; }})()""", 120)
            b.shot(tmp_path / "jupyterlab-untrusted.png")
        assert state, "JupyterLab shows nothing for the untrusted notebook's output"
        assert not state["svg"] and state["note"] == "block", state
        assert "faults active" not in state["text"] and "Matplotlib" not in state["text"], \
            f"the sanitized output leaks the picture's text: {state['text'][:300]!r}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)                 # the group this test started
            server.wait(10)
        log.close()


def _wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"jupyter lab did not answer {url} in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
