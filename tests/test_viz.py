"""The pictures render to real image files, headless, from hand-written histories."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from splitbrain import viz
from splitbrain.checkers.mutex import check_fencing
from splitbrain.history import Event, History

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def lock_history() -> History:
    rows = [(0.0, "a", "invoke", "acquire", None), (0.05, "a", "ok", "acquire", {"token": 1}),
            (0.1, "a", "invoke", "write", {"token": 1}),
            (0.2, "nemesis", "info", "pause", {"phase": "start", "target": "a"}),
            (1.1, "b", "invoke", "acquire", None), (1.15, "b", "ok", "acquire", 2),
            (1.2, "b", "invoke", "write", {"token": 2}), (1.25, "b", "ok", "write", True),
            (1.6, "nemesis", "info", "pause", {"phase": "end", "target": "a"}),
            (1.65, "a", "ok", "write", True),
            (1.7, "nemesis", "info", "partition", {"phase": "start", "target": "redis"}),
            (1.8, "c", "invoke", "acquire", None)]
    return History.from_events(Event(p, t, f, v, time, 0, p == "nemesis")
                               for time, p, t, f, v in rows)


def _is_image(path) -> None:
    data = path.read_bytes()
    assert len(data) > 2000
    if path.suffix == ".png":
        assert data.startswith(PNG_MAGIC)
    else:
        assert b"<svg" in data[:2000]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_spacetime_renders_with_the_anomaly(tmp_path, suffix):
    h = lock_history()
    v = check_fencing([{"token": 2, "accepted": True, "process": "b", "event": 7},
                       {"token": 1, "accepted": True, "process": "a", "event": 9}])
    assert v.kinds() == ["stale-write"]
    fig = viz.spacetime(h, v)
    assert isinstance(fig, Figure)
    path = viz.save(fig, tmp_path / f"st{suffix}")
    _is_image(path)
    if suffix == ".svg":
        assert "stale-write" in path.read_text() and "<title>" in path.read_text()


def test_spacetime_as_the_grade_report_calls_it(tmp_path):
    out = viz.spacetime(lock_history(), path=tmp_path / "r.png", highlight=[9], title="fencing")
    assert out == tmp_path / "r.png"
    _is_image(out)


def test_spacetime_of_an_empty_history(tmp_path):
    _is_image(viz.spacetime(History(), path=tmp_path / "empty.png"))


def test_lease_timeline_renders(tmp_path):
    out = viz.lease_timeline(lock_history(), ttl_s=1.0, highlight=[9], path=tmp_path / "l.svg")
    _is_image(out)
    assert "token 1" in out.read_text()


def test_saga_graph_renders_counts(tmp_path):
    fx = [{"saga": "s1", "step": s, "action": "do"} for s in ("reserve", "charge")]
    out = viz.saga_graph(["reserve", "charge", "ship"], fx, path=tmp_path / "s.svg")
    _is_image(out)
    assert "dangling" in out.read_text()
    with pytest.raises(ValueError, match="forward steps"):
        viz.saga_graph([])


def test_partition_ring_renders_and_owner_rule(tmp_path):
    from splitbrain.viz.ring import ring_owner
    ring = {"s0": [0.1, 0.6], "s1": 0.3}
    assert ring_owner(ring, 0.05) == "s0"
    assert ring_owner(ring, 0.2) == "s1"
    assert ring_owner(ring, 0.9) == "s0"          # wraps around
    keys = {f"k{i}": i / 20 for i in range(20)}
    _is_image(viz.partition_ring(ring, keys, moved=["k3"], path=tmp_path / "ring.png"))


def test_save_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        viz.save(viz.spacetime(History()), tmp_path / "x.gif")


# -- the space-time diagram as a reader needs it ----------------------------------------------
import random  # noqa: E402

from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from splitbrain.checkers.base import Anomaly, Verdict  # noqa: E402
from splitbrain.history import call_value  # noqa: E402
from splitbrain.viz._common import ANOMALY_COLOR, CONTEXT_COLOR  # noqa: E402


def _texts(fig):
    """(text, window extent in px) of every text drawn."""
    r = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(r)) for t in fig.findobj(Text)
            if t.get_text().strip() and t.get_visible()]


def _bars(fig) -> dict[str, Rectangle]:
    return {r.get_gid(): r for r in fig.findobj(Rectangle)
            if (r.get_gid() or "").startswith(("sb-op-", "sb-grp-"))}


def _red(fig) -> set[str]:
    from matplotlib.colors import to_hex
    return {gid for gid, r in _bars(fig).items() if to_hex(r.get_edgecolor()) == ANOMALY_COLOR}


def assert_readable(fig, min_pt: float = 9.0) -> None:
    """Every text at least ``min_pt``, inside the figure, and no two overlapping."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
    assert min(sizes) >= min_pt, f"a text of {min(sizes)} pt"
    texts = _texts(fig)
    W, H = fig.bbox.width, fig.bbox.height
    for s, bb in texts:
        assert bb.x0 >= -0.5 and bb.y0 >= -0.5 and bb.x1 <= W + 0.5 and bb.y1 <= H + 0.5, \
            f"{s!r} is cut off: {bb} in {W}x{H}"
    for i, (s, a) in enumerate(texts):
        for t, b in texts[i + 1:]:
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert dx <= 0.5 or dy <= 0.5, f"{s!r} overlaps {t!r}"


def random_history(seed: int) -> tuple[History, Verdict]:
    """Lanes that call at random, sometimes concurrently, faults on lanes and on services (some
    over as they happen), and anomalies naming random operations."""
    rnd = random.Random(seed)
    h = History()
    lanes = [f"worker-{i}" if rnd.random() < 0.3 else "abcdefgh"[i]
             for i in range(rnd.randint(1, 5))]
    pending: list = []
    t, scale = 0.0, rnd.choice([0.001, 1.0, 40.0])     # tick labels short and long
    faults = []
    for _ in range(rnd.randint(3, 120)):
        t += rnd.expovariate(50) * scale
        if pending and rnd.random() < 0.5:
            inv = pending.pop(rnd.randrange(len(pending)))
            h.append(inv.process, rnd.choice(["ok", "ok", "ok", "fail", "info"]), inv.f,
                     rnd.choice([True, None, 7, {"error": "CallTimeout", "message": "x"},
                                 "v-" + "x" * rnd.randint(1, 30)]), at=t)
            continue
        p = rnd.choice(lanes)
        if any(e.process == p for e in pending) and rnd.random() < 0.8:
            continue
        if rnd.random() < 0.08:
            name = rnd.choice(["pause", "partition", "kill", "clock-skew"])
            target = p if name in ("pause", "kill") else rnd.choice(["redis", "postgres", None])
            h.append("nemesis", "info", name, {"phase": "start", "target": target}, fault=True,
                     at=t)
            if name == "kill" or rnd.random() < 0.7:
                faults.append((name, target))
            continue
        if faults and rnd.random() < 0.1:
            name, target = faults.pop()
            h.append("nemesis", "info", name, {"phase": "end", "target": target}, fault=True,
                     at=t + (0 if name == "kill" else rnd.expovariate(20) * scale))
            continue
        f = rnd.choice(["acquire", "write", "read", "place_order", "allow"])
        args = rnd.choice([[], [1], ["key-" + str(rnd.randint(0, 999)), "value"],
                           [{"saga_id": "s1", "key": "k" * rnd.randint(1, 40)}]])
        pending.append(h.append(p, "invoke", f, call_value(args), at=t))
    ops = h.operations()
    anomalies = []
    for k in range(rnd.randint(0, 3)):
        named = rnd.sample(ops, min(len(ops), rnd.randint(0, 6)))
        anomalies.append(Anomaly(rnd.choice(["stale-write", "lost-event", "over-limit"]),
                                 "something went wrong " * rnd.randint(1, 12),
                                 tuple(i for op in named for i in op.events)))
    return h, Verdict(not anomalies, tuple(anomalies), "random")


@pytest.mark.parametrize("seed", range(40))
def test_spacetime_is_readable_and_marks_exactly_the_named_operations(seed):
    h, v = random_history(seed)
    fig = viz.spacetime(h, v, title=f"random history {seed} " * 3)
    assert_readable(fig)
    named = {i for a in v.anomalies for i in a.events}
    want = {f"sb-op-{op.invoke.index}" for op in h.operations() if set(op.events) & named}
    assert _red(fig) == want
    bars = _bars(fig)
    assert not [g for g, r in bars.items() if r.get_width() < 2.0], "a sliver of an operation"
    drawn = {i for g in bars for i in [int(g.rsplit("-", 1)[1])]}
    assert {op.invoke.index for op in h.operations() if op.process in h.processes()} >= drawn
    by_row: dict = {}
    for g, r in bars.items():                       # no bar hides another
        by_row.setdefault(round(r.get_y(), 3), []).append((r.get_x(), r.get_x() + r.get_width()))
    for spans in by_row.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-6 for a, b in zip(spans, spans[1:])), spans


def _lab_figures():
    from splitbrain import book, paths
    try:
        return [(lab, f) for lab in book.book_labs(paths.project_root()) for f in lab.figures]
    except Exception:  # noqa: BLE001 - a broken lab.toml fails the book's tests, not collection
        return []


@pytest.mark.parametrize("lab, fig", _lab_figures(),
                         ids=[f"{lab.slug[:2]}-{f.name}" for lab, f in _lab_figures()])
def test_each_lab_figure_has_wide_operations_readable_labels_and_only_offenders_red(lab, fig):
    from splitbrain import book
    history, verdict = book._recording(lab, fig)
    drawn = viz.spacetime(history, verdict, title=fig.title)
    assert drawn.get_figwidth() == 7.0
    assert_readable(drawn)
    named = {i for a in verdict.anomalies for i in a.events}
    assert _red(drawn) == {f"sb-op-{op.invoke.index}" for op in history.operations()
                           if set(op.events) & named}
    widths = [r.get_width() for r in _bars(drawn).values()]
    assert min(widths) >= 3.5, f"an operation {min(widths):.1f} pt wide is a sliver"
    svg = book.figure_svg(lab, fig)
    assert svg.count("<title>") >= len(_bars(drawn)), "an operation without a tooltip"


def test_an_anomaly_that_names_no_operation_is_still_on_the_picture():
    """check_counter's lost-update names no event: nothing can be outlined, so the picture
    says so under the axis, and the title names the kind."""
    h = History()
    for p in ("w0", "w1"):
        h.complete(h.invoke(p, "write", call_value(["5"])), "ok", True)
    v = Verdict(False, (Anomaly("lost-update", "write #6 stored 5 where 6 was due"),), "counter")
    fig = viz.spacetime(h, v)
    assert not _red(fig)
    texts = [s for s, _ in _texts(fig)]
    assert "lost-update (no operation named)" in texts
    assert any("write #6 stored 5 where 6 was due" in s for s in texts)
    assert any(s.endswith("— lost-update") for s in texts)


def test_context_events_are_outlined_dashed_and_grey_not_red():
    h = lock_history()
    v = Verdict(False, (Anomaly("stale-write", "a's write landed after b's", (9,),
                                {"context": [6, 7]}),), "fencing")
    fig = viz.spacetime(h, v)
    bars = _bars(fig)
    assert _red(fig) == {"sb-op-2"}                      # a's write: invoke 2, ok 9
    from matplotlib.colors import to_hex
    ctx = bars["sb-op-6"]                                # b's write: invoke 6, ok 7
    assert to_hex(ctx.get_edgecolor()) == CONTEXT_COLOR and ctx.get_linestyle() != "solid"
    assert "evidence of: [stale-write]" in fig.tooltips["sb-op-6"]


def test_a_fault_recorded_without_its_end_that_is_over_as_it_happens_is_a_line():
    """A kill recorded before the nemesis wrote the end of instant faults is drawn at its
    moment, not shaded to the end of the picture; a pause never healed is."""
    h = History()
    h.complete(h.invoke("a", "work", call_value()), "ok", 1)
    h.append("nemesis", "info", "kill", {"phase": "start", "target": "a"}, fault=True)
    h.append("nemesis", "info", "pause", {"phase": "start", "target": "b"}, fault=True)
    h.complete(h.invoke("b", "work", call_value()), "info", None)
    h.complete(h.invoke("a", "work", call_value()), "ok", 2)
    fig = viz.spacetime(h)
    kill = [a for a in fig.findobj() if a.get_gid() == "sb-fault-0"]
    pause = [a for a in fig.findobj() if a.get_gid() == "sb-fault-1"]
    assert kill and not isinstance(kill[0], Rectangle)
    assert pause and isinstance(pause[0], Rectangle)
    assert "over as it happened" in fig.tooltips["sb-fault-0"]
    assert "never healed here" in fig.tooltips["sb-fault-1"]


def test_many_plain_calls_in_a_row_are_one_bar_and_offenders_never_hide_in_one():
    h, t = History(), 0.0
    for p, f, n in (("a", "put", 50), ("b", "get", 10)):
        for i in range(n):
            args = [f"k{i}", i] if f == "put" else [f"k{i}"]
            h.append(p, "invoke", f, call_value(args), at=t)
            h.append(p, "ok", f, None if f == "put" or i % 3 else i, at=t + 0.0007)
            t += 0.001
    gets = [op for op in h.operations() if op.process == "b"]
    v = Verdict(False, (Anomaly("misrouted-read", "b missed", tuple(
        i for op in gets if op.result is None for i in op.events)),), "reads")
    fig = viz.spacetime(h, v)
    bars = _bars(fig)
    assert "sb-grp-0" in bars and not any(g.startswith("sb-op-") and int(g[6:]) < 100
                                          for g in bars)
    assert "put ×50" in fig.tooltips["sb-grp-0"] and "first: put(k0, 0)" in fig.tooltips["sb-grp-0"]
    assert len(_red(fig)) == 6 and all(g.startswith("sb-op-") for g in _red(fig))
    assert_readable(fig)


def test_tooltips_tell_the_call_the_result_and_the_faults_active():
    v = check_fencing([{"token": 2, "accepted": True, "process": "b", "event": 7},
                       {"token": 1, "accepted": True, "process": "a", "event": 9}])
    fig = viz.spacetime(lock_history(), v)
    tip = fig.tooltips["sb-op-2"]                        # a's write, through the pause
    assert tip.startswith("a: write(token=1)\n")
    assert "→ ok: True" in tip and "faults active: pause on a" in tip
    assert "offending: [stale-write]" in tip
    assert "faults active: none" in fig.tooltips["sb-op-0"]
    assert "no answer" in fig.tooltips["sb-op-11"]       # c's acquire never came back


def test_in_a_notebook_the_picture_is_an_inline_svg_with_tooltips_that_untrusted_hides():
    """``_repr_html_``: an inline <svg> with a <title> in each operation's group; the block that
    holds it is hidden by its style attribute and shown by a rule inside the SVG's own <style>,
    so a sanitizer that drops the SVG leaves only the note to run the cell."""
    import re
    from html.parser import HTMLParser
    fig = viz.spacetime(lock_history(), highlight=[9])
    html = fig._repr_html_()
    assert html.count("<svg") == 1 and "<metadata>" not in html
    assert len(re.findall(r'<g id="sb-op-\d+"><title>', html)) == len(_bars(fig))
    root = re.search(r'<svg id="(sb-[0-9a-f]+)"', html).group(1)
    assert f".sb-picture-{root} .sb-svg {{display: block !important}}" in html
    assert 'class="sb-svg" style="display: none' in html
    assert fig._repr_png_().startswith(PNG_MAGIC)

    class Sanitized(HTMLParser):       # what a sanitizer that drops <svg> and <style> leaves
        def __init__(self):
            super().__init__()
            self.depth, self.hidden, self.shown = 0, 0, []

        def handle_starttag(self, tag, attrs):
            if tag == "svg" or self.depth:
                self.depth += 1
            elif "display: none" in (dict(attrs).get("style") or ""):
                self.hidden += 1

        def handle_endtag(self, tag):
            if self.depth:
                self.depth -= 1

        def handle_data(self, data):
            if not self.hidden and data.strip():
                self.shown.append(data.strip())
    s = Sanitized()
    s.feed(html)
    assert s.shown == ["Run this cell to see the picture: Jupyter does not show the saved "
                       "picture of a notebook it does not trust."]
    assert viz.lease_timeline(lock_history(), ttl_s=1.0)._repr_html_() is None


def test_a_process_with_many_calls_at_once_keeps_its_lane_small_and_offenders_on_top():
    """64 calls in flight at once from one process: six tracks, dealt round, the lane says how
    many at once, and the offending call is drawn over the others."""
    h = History()
    invs = [h.append("a", "invoke", "put", call_value([f"k{i}"]), at=i * 0.0001)
            for i in range(64)]
    for i, inv in enumerate(invs):
        h.append("a", "ok", "put", None, at=0.05 + i * 0.0001)
    v = Verdict(False, (Anomaly("lost-write", "k7 is gone", (invs[7].index,)),), "reads")
    fig = viz.spacetime(h, v)
    bars = _bars(fig)
    assert len({round(r.get_y(), 3) for r in bars.values()}) == 6
    assert "64 at once" in [s for s, _ in _texts(fig)]
    assert _red(fig) == {f"sb-op-{invs[7].index}"}
    assert bars[f"sb-op-{invs[7].index}"].get_zorder() > max(
        r.get_zorder() for g, r in bars.items() if g != f"sb-op-{invs[7].index}")
    assert fig.get_figheight() < 4.0
    assert_readable(fig)


@pytest.mark.parametrize("bold", [False, True])
def test_measured_text_is_never_narrower_than_drawn_text(bold):
    """The layout measures glyph outlines with a margin; Agg's hinted text in a PNG, at the
    pictures' 110 dpi, must not come out wider, or labels measured apart would touch."""
    from splitbrain.viz._common import DPI, new_figure
    from splitbrain.viz._layout import FAMILY, text_width
    fig = new_figure(7, 1, layout=None)
    r = fig.canvas.get_renderer()
    for s in ["place_order(o100, ada, 100) → WorkerDied", "acquire", "misrouted-read ×36",
              "window-boundary clock · 602 ms", "0.0003", "lllllliiiiii", "WWWWMMMM ≈ ×"]:
        t = fig.text(0, 0.5, s, fontsize=9, fontfamily=FAMILY, parse_math=False,
                     fontweight="bold" if bold else "normal")
        drawn = t.get_window_extent(r).width * 72 / DPI
        assert drawn <= text_width(s, 9, bold), (s, drawn, text_width(s, 9, bold))
