"""SVG text of a picture, with a tooltip (``<title>``) on each operation and fault.

A picture that knows what its shapes stand for keeps ``tooltips``: ``{gid: text}``, the gid
matplotlib writes as the id of the shape's ``<g>``. :func:`svg_text` puts each text in a
``<title>`` inside its group: a browser shows it when the pointer rests on the shape, in an SVG
inlined in a page (a notebook's output, nbconvert's HTML) or opened on its own; not in an
``<img>``. A hovered shape is outlined too, and text lets the pointer through to the shape under
it (a style inside the SVG, scoped to it).
"""
from __future__ import annotations

import io
import re
import uuid
from html import escape
from typing import Any

_GROUP = re.compile(r'<g id="(sb-[A-Za-z0-9_-]+)">')
HOVER_STYLE = ('{root} g[id^="sb-op-"], {root} g[id^="sb-grp-"], {root} g[id^="sb-fault-"] '
               '{{cursor: help}} {root} g[id^="text_"], {root} g[id^="divider_"] '
               '{{pointer-events: none}} '
               '{root} g[id^="sb-op-"]:hover > path, {root} g[id^="sb-grp-"]:hover > path '
               '{{stroke: #111111 !important; stroke-width: 2.5px !important; '
               'stroke-dasharray: none !important}}')


def add_tooltips(svg: str, tooltips: dict[str, str], root_id: str | None = None) -> str:
    """``svg`` with a ``<title>`` in each group named in ``tooltips`` and the hover style; the
    root ``<svg>`` gets ``root_id`` (which scopes the style) when given."""
    def title(m: re.Match) -> str:
        text = tooltips.get(m.group(1))
        return m.group(0) if text is None else f"{m.group(0)}<title>{escape(text)}</title>"
    svg = _GROUP.sub(title, svg)
    root = f"svg#{root_id}" if root_id else "svg"
    style = HOVER_STYLE.format(root=root)
    svg = svg.replace("</style>", f"\n{style}</style>", 1) if "</style>" in svg else svg
    if root_id:
        svg = svg.replace("<svg ", f'<svg id="{root_id}" ', 1)
    return svg


def svg_text(fig: Any, root_id: str | None = None, **savefig: Any) -> str:
    """The figure as SVG text, with its tooltips (``fig.tooltips``) when it has some."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", **savefig)
    svg = buf.getvalue()
    tips = getattr(fig, "tooltips", None)
    return add_tooltips(svg, tips, root_id) if tips else svg


TRUST_NOTE = ("Run this cell to see the picture: Jupyter does not show the saved picture of a "
              "notebook it does not trust.")
HOVER_NOTE = "Rest the pointer on an operation to read its call, its result and the faults active."


def inline_html(fig: Any) -> str:
    """The figure as an inline ``<svg>`` for an HTML page or a notebook output: tooltips work,
    it is drawn at its own size and scrolls in a narrower output area.

    Jupyter shows the HTML of an output it does not trust (a notebook opened with outputs it did
    not make) through a sanitizer that drops SVG and keeps its text. So the SVG sits in a block
    hidden by its ``style`` attribute, which a rule inside the SVG's own ``<style>`` shows again:
    untrusted, the sanitizer drops that rule with the SVG, the block stays hidden and only a
    note saying to run the cell is left (the same rule hides the note when the SVG is there)."""
    import matplotlib
    root_id = f"sb-{uuid.uuid4().hex[:10]}"
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        svg = svg_text(fig, root_id, metadata={"Date": None})
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    shown = (f".sb-picture-{root_id} .sb-svg {{display: block !important}} "
             f".sb-picture-{root_id} .sb-needs-trust {{display: none !important}}")
    svg = svg.replace("</style>", f"\n{shown}</style>", 1)
    return (f'<div class="splitbrain-picture sb-picture-{root_id}">'
            f'<div class="sb-needs-trust" style="color: #666666">{escape(TRUST_NOTE)}</div>'
            f'<div class="sb-svg" style="display: none; overflow-x: auto">{svg}'
            f'<div style="color: #666666; font-size: 12px">{escape(HOVER_NOTE)}</div></div>'
            f'</div>')
