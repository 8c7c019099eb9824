"""Where a space-time diagram's words go: labels in rows above each lane (and faults' under it)
that never overlap, the legend, and the anomalies written out under the axis."""
from __future__ import annotations

from matplotlib.patches import Rectangle

from splitbrain.viz._common import (ANOMALY_COLOR, CONTEXT_COLOR, FAULT_COLOR, FAULT_TEXT,
                                    MUTED_TEXT, OUTCOME_COLORS, OUTCOME_NAMES, TEXT_COLOR)
from splitbrain.viz._layout import Rows, TimeAxis, fit, text_width, wrap
from splitbrain.viz._ops import Bar, Fault, duration, label_texts, medium_text

SIZE = 9.0            # every label, lane name, tick and legend entry (12 px at natural size)
TITLE_SIZE = 10.5
ROW = 13.0            # one row of labels
PAD = 6.0
OFFENDER_ROWS = 3     # rows above a lane for kinds, faults and offenders' labels
OTHER_ROWS = 2        # ... and for everyone else's
MAX_NOTES = 3


def place_labels(bars: list[Bar], faults: list[Fault], above: list[Rows], below: list[Rows],
                 top_rows: Rows, axis: TimeAxis, crowded: dict[int, int]) -> None:
    """Labels above each lane: the anomaly's kind over its first offender, then the offenders'
    calls, then the calls that failed or did not answer, then the rest (which give up first when
    there is no room: their tooltips still tell). A call whose label fits in its bar gets it
    there; neighbours with the same label share one (``allow → True ×11``), and a label already
    shown in a lane is not repeated. Faults are labelled under their lane, or above all lanes
    when they hit something that is not a lane."""
    by_lane: dict[int, list[Bar]] = {}
    for b in sorted(bars, key=lambda b: (b.lane, b.track, b.x0)):
        by_lane.setdefault(b.lane, []).append(b)
    units: list[tuple[int, int, float, list[str], tuple[float, float], Bar, str]] = []
    for lane, lb in by_lane.items():
        seen: set[str] = set()
        for b in sorted(lb, key=lambda b: b.x0):     # 1. the anomaly's kind, once a lane
            for kind in b.kinds:
                if kind not in seen:
                    seen.add(kind)
                    above[lane].place([kind], SIZE, (b.x0, b.x1), OFFENDER_ROWS, bold=True,
                                      key=("kind", b))
        for run in label_runs(lb):                  # 2. the calls
            b = run[0]
            if lane in crowded and not b.offender:   # overlapping bars: only offenders speak
                continue
            rank = 0 if b.offender else 1 if b.outcome != "ok" else 2
            texts = label_texts(b)
            if len(run) == 1 and lane not in crowded:
                fits = [t for t in texts[:2] if text_width(t, SIZE) + 8.0 <= b.x1 - b.x0]
                if fits or len(b.ops) > 1:
                    fits = fits or [t for t in texts if text_width(t, SIZE) + 8.0 <= b.x1 - b.x0]
                if fits:
                    b.inside = fits[0]
                    continue
            if len(run) == 1:
                units.append((lane, rank, b.x0, texts, (b.x0, b.x1), b, medium_text(b.ops[0])))
            else:
                medium, n = medium_text(b.ops[0]), len(run)
                units.append((lane, rank, b.x0, [f"{medium} ×{n}", f"{b.ops[0].f} ×{n}"],
                              (b.x0, run[-1].x1), b, medium))
    # a lane says each kind of call once: the first (offenders first) gets the label
    classes: dict[tuple, set[str]] = {}
    for lane, _, _, _, _, b, medium in units:
        classes.setdefault((lane, b.offender, b.outcome, b.ops[0].f), set()).add(medium)
    shown: set[tuple] = set()
    for lane, rank, _, texts, anchor, b, medium in sorted(units, key=lambda u: (u[1], u[2])):
        key = (lane, b.offender, b.outcome, b.ops[0].f)
        if key in shown:
            continue
        if sum(u[0] == lane and (u[5].offender, u[5].outcome, u[5].ops[0].f) == key[1:]
               for u in units) > 1:                  # said once, without a count
            texts = [medium, b.ops[0].f] if len(classes[key]) == 1 else [b.ops[0].f]
        placed = above[lane].place(texts, SIZE, anchor,
                                   OFFENDER_ROWS if b.offender else OTHER_ROWS - 1,
                                   key=("op", b), overhang=120.0 if rank < 2 else 40.0)
        if placed is not None:
            shown.add(key)
        elif len(b.ops) == 1 and lane not in crowded and \
                text_width(b.ops[0].f, SIZE) + 6.0 <= b.x1 - b.x0:
            b.inside = b.ops[0].f
    for f in faults:                                 # 3. faults
        x0, x1 = axis(f.window.start), axis(f.end)
        dur = "" if f.instant else duration(f.end - f.window.start)
        name = f.window.name
        if f.lane is None:
            where = f" {f.window.target}" if f.window.target else ""
            cands = [f"{name}{where} · {dur}" if dur else f"{name}{where}", f"{name}{where}", name]
            top_rows.place(cands, SIZE, (x0, x1), OFFENDER_ROWS, key=("fault", f))
        else:
            cands = [f"{name} · {dur}" if dur else name, name]
            below[f.lane].place(cands, SIZE, (x0, x1), OFFENDER_ROWS, key=("fault", f))


def label_runs(lane_bars: list[Bar]) -> list[list[Bar]]:
    """Neighbouring single calls of one track with the same label, outcome and marking."""
    runs: list[list[Bar]] = []
    for b in lane_bars:
        last = runs[-1][-1] if runs else None
        if last is not None and len(b.ops) == 1 and len(last.ops) == 1 and \
                b.track == last.track and \
                (b.offender, b.context, b.outcome, medium_text(b.ops[0])) == \
                (last.offender, last.context, last.outcome, medium_text(last.ops[0])):
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


def draw_rows(ax, text, rows: Rows, base: float, down: bool = False) -> None:
    """The labels of ``rows``: row 0 just above ``base`` (or just below it, ``down``)."""
    for p in rows.placed:
        kind, what = p.key
        yc = base + (p.row + 0.5) * ROW if down else base - (p.row + 0.5) * ROW
        if kind == "kind":
            text(p.x0, yc, p.text, color=ANOMALY_COLOR, bold=True)
            x = min(max((what.x0 + what.x1) / 2, p.x0 + 2), p.x0 + p.width - 2)
            if p.row > 0 and all(rows._free(r, 2.0, x - 1, x - 1, x - 1) is not None
                                 for r in range(p.row)):   # a leader down, through no label
                ax.plot([x, x], [yc + ROW / 2 - 2, base], color=ANOMALY_COLOR, lw=0.9, zorder=4)
        elif kind == "fault":
            text(p.x0, yc, p.text, color=FAULT_TEXT)
        else:
            text(p.x0, yc, p.text, color=TEXT_COLOR if what.offender else MUTED_TEXT)


def legend_items(bars: list[Bar], faults: list[Fault], axis: TimeAxis) -> list[tuple[str, str]]:
    present = {b.outcome for b in bars}
    items = [(k, OUTCOME_NAMES[k]) for k in OUTCOME_COLORS if k in present]
    if faults:
        items.append(("fault", "fault"))
    if any(b.offender for b in bars):
        items.append(("offender", "offending operation"))
    if any(b.context for b in bars):
        items.append(("context", "evidence, not at fault"))
    if axis.breaks:
        items.append(("break", "idle time cut short"))
    return items


def flow(items: list[tuple[str, str]], width: float) -> list[list[tuple[str, str, float]]]:
    rows: list[list[tuple[str, str, float]]] = [[]]
    x = 0.0
    for kind, label in items:
        w = 15.0 + text_width(label, SIZE) + 14.0
        if x + w > width and rows[-1]:
            rows.append([])
            x = 0.0
        rows[-1].append((kind, label, x))
        x += w
    return rows if rows[0] else []


def draw_legend(ax, text, rows, y0: float) -> None:
    for r, row in enumerate(rows):
        yc = y0 + (r + 0.5) * ROW
        for kind, label, x in row:
            x += PAD
            if kind == "break":
                text(x + 5.5, yc, "≈", color=MUTED_TEXT, bold=True, ha="center")
            else:
                face = OUTCOME_COLORS.get(kind, "white")
                edge, lw, ls, alpha = "none", 0.0, "solid", 1.0
                if kind == "fault":
                    face, alpha = FAULT_COLOR, 0.3
                elif kind == "offender":
                    face, edge, lw = OUTCOME_COLORS["ok"], ANOMALY_COLOR, 2.0
                elif kind == "context":
                    face, edge, lw, ls = OUTCOME_COLORS["ok"], CONTEXT_COLOR, 1.3, (0, (2.5, 1.5))
                ax.add_patch(Rectangle((x, yc - 4.5), 11.0, 9.0, facecolor=face, alpha=alpha,
                                       edgecolor=edge, lw=lw, ls=ls,
                                       hatch="////" if kind == "open" else None))
            text(x + 15.0, yc, label, color=MUTED_TEXT)


def notes(anomalies: list, bars: list[Bar], width: float
          ) -> list[tuple[str, list[tuple[float, str]]]]:
    """What is written under the axis, one entry per kind of anomaly (its first message):
    (kind, in bold red, then the message lines as (x offset, text)). Messages start in one
    column after the kinds when the kinds are short enough, else right after each kind."""
    drawn = {i for b in bars for op in b.ops for i in op.events}
    by_kind: dict[str, list] = {}
    for a in anomalies:
        by_kind.setdefault(a.kind, []).append(a)
    heads = []
    for kind, group in list(by_kind.items())[:MAX_NOTES]:
        head = kind + (f" ×{len(group)}" if len(group) > 1 else "")
        if not any(set(a.events) & drawn for a in group):
            head += " (no operation named)"
        heads.append((head, group[0].message or ""))
    column = max((text_width(h, SIZE, True) for h, _ in heads), default=0.0) + 6.0
    out = []
    for head, message in heads:
        x = column if column <= 0.3 * width else text_width(head, SIZE, True) + 6.0
        indent = column if column <= 0.3 * width else 12.0
        words = message.split()
        first, i = "", 0
        while i < len(words) and text_width(f"{first} {words[i]}".strip(), SIZE) <= width - x:
            first = f"{first} {words[i]}".strip()
            i += 1
        if not first and words:
            first, i = fit(words[0], SIZE, width - x), 1
        rest = " ".join(words[i:])
        lines = [(x, first)] + [(indent, line) for line in
                                (wrap(rest, SIZE, width - indent, max_lines=2) if rest else [])]
        out.append((head, lines))
    if len(by_kind) > MAX_NOTES:
        more = len(by_kind) - MAX_NOTES
        out.append((f"… and {more} more kind{'s' if more > 1 else ''} of anomaly", [(0.0, "")]))
    return out
