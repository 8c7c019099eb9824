"""The book's figures: one picture per chapter of the anomaly its lab teaches, drawn by
``splitbrain.viz`` from a history the grader really recorded.

Each figure is a row of ``FIGURES``: the history (JSON lines, under ``docs/assets/histories/``,
copied from the artifacts of ``splitbrain check NN --submission labs/NN-slug/<component>`` run on the
broken handout), the picture to draw, and the anomaly the checker reported for it (its kind, its
message and the history events that prove it, as printed by ``check``). ``splitbrain book`` renders
them to ``docs/assets/figures/<name>.svg``. The SVG is byte-for-byte deterministic (fixed hash salt,
no date), so ``splitbrain book --check`` can tell a stale figure from a current one.

To replace a history: run the broken component through ``check`` again, copy the failing test's
``*.history.jsonl`` over the file here, update ``events``/``message`` from the new report, and run
``splitbrain book``.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BookFigure", "FIGURES", "render_svg", "figure_pages"]

HISTORIES = Path("docs") / "assets" / "histories"
FIGURES_DIR = Path("docs") / "assets" / "figures"


@dataclass(frozen=True)
class BookFigure:
    """One book figure.

    name: file stem of the history (``HISTORIES/<name>.jsonl``) and of the SVG
        (``FIGURES_DIR/<name>.svg``).
    picture: ``"spacetime"`` or ``"lease_timeline"`` (the ``splitbrain.viz`` function).
    kind, message, events: the anomaly the checker reported, as ``splitbrain check`` printed it.
    title: the figure's title.
    options: extra keyword arguments for the picture function (``ttl_s`` for a lease timeline).
    """

    name: str
    picture: str
    kind: str
    message: str
    events: tuple[int, ...]
    title: str
    options: dict[str, Any] = field(default_factory=dict)


# b's get invocations and completions that returned None (checked: the grader's checker counted
# the same 36); every key had been written by a before b read it
_MISSED_READS = (
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 114, 115, 116, 117, 118, 119,
    120, 121, 128, 129, 130, 131, 132, 133, 136, 137, 140, 141, 142, 143, 144, 145, 146, 147,
    148, 149, 150, 151, 152, 153, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 170, 171,
    172, 173, 174, 175, 176, 177, 178, 179, 184, 185, 192, 193, 194, 195, 196, 197, 198, 199,
)

FIGURES: tuple[BookFigure, ...] = (
    BookFigure("01-stale-write", "spacetime", "stale-write",
           "a (lease #1) wrote 'a-1' after b (lease #2) had written 'b-1': the storage accepted "
           "a write from an expired lease over the newer holder's", (5, 6, 8, 9),
           "Lab 01, broken lock: a paused past its 0.4 s lease, b took the lock, "
           "a's older write landed last",
           ),
    BookFigure("02-lost-event", "spacetime", "lost-event",
               "order o100: the OrderPlaced change committed but no OrderPlaced event is on the "
               "topic", (11, 12),
               "Lab 02, broken order service: killed right after the commit, o100's event "
               "never reached Kafka"),
    BookFigure("03-dangling-saga", "spacetime", "dangling-saga",
               "saga s1 stopped halfway: 2 widget reserved, alice charged 20", (1, 2, 3, 5),
               "Lab 03, broken orchestrator: killed after the charge, recover() found nothing "
               "to finish"),
    BookFigure("04-misrouted-read", "spacetime", "misrouted-read",
               "36 of b's 50 reads got None although a's acknowledged write of that key is on "
               "another shard: the reader looked on a different shard than the writer used",
               _MISSED_READS,
               "Lab 04, broken partitioner: a writes 50 keys, b (another PYTHONHASHSEED) "
               "misses 36 of them"),
    BookFigure("05-over-limit", "spacetime", "over-limit",
               "22 requests admitted within 0.440 s; the limit of 10 per 2 s allows at most "
               "12.2 in that time", tuple(range(1, 45)),
               "Lab 05, broken limiter: two gateways across a window boundary admit 22 "
               "requests in 0.44 s (limit 10 per 2 s)"),
)


def _verdict(fig: BookFigure):
    from splitbrain.checkers.base import Anomaly, Verdict
    return Verdict(False, (Anomaly(fig.kind, fig.message, fig.events),), checker=fig.kind)


def render_svg(root: Path, fig: BookFigure) -> str:
    """The figure as SVG text, identical on every run for the same history and matplotlib."""
    import matplotlib
    from splitbrain import viz
    from splitbrain.history import History

    path = root / HISTORIES / f"{fig.name}.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: the history of book figure {fig.name!r} is missing; record it "
                         f"with `splitbrain check` on the broken handout (see "
                         f"splitbrain/book_figures.py)")
    recorded = History.from_jsonl(path)
    t0 = min((e.time for e in recorded.events), default=0.0)      # time from the first event
    history = History.from_events(
        {**e.to_dict(), "time": round(e.time - t0, 6)} for e in recorded.events)
    draw = getattr(viz, fig.picture)
    with matplotlib.rc_context({"svg.hashsalt": "splitbrain-book", "svg.fonttype": "path",
                                "font.family": "DejaVu Sans"}):
        if fig.picture == "spacetime":
            figure = draw(history, _verdict(fig), title=fig.title, **fig.options)
        else:
            figure = draw(history, verdict=_verdict(fig), title=fig.title, **fig.options)
        buf = io.StringIO()
        figure.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    head, sep, body = svg.partition("?>\n")        # after the XML declaration
    stamp = f"<!-- drawn by `splitbrain book` with matplotlib {matplotlib.__version__} -->\n"
    return head + sep + stamp + body if sep else stamp + svg


def drawn_with(svg: str) -> str | None:
    """The matplotlib version a book figure was drawn with (None when it does not say).

    SVG output changes between matplotlib releases, so a figure is compared with a fresh drawing
    only when both come from the same release."""
    m = re.search(r"drawn by `splitbrain book` with matplotlib (\S+) -->", svg[:400])
    return m.group(1) if m else None


def figure_pages(root: Path) -> list[tuple[Path, str]]:
    """(path, SVG text) of every book figure."""
    return [(root / FIGURES_DIR / f"{fig.name}.svg", render_svg(root, fig)) for fig in FIGURES]
