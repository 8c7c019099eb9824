"""Shared plumbing for the pictures: figures without pyplot, colours, saving, fault windows."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


# outcome colours are light enough for dark text on them; red is kept for anomalies alone
OUTCOME_COLORS = {"ok": "#7cb98b", "fail": "#a9a9a9", "info": "#f0b44c", "open": "#e3e7ec"}
OUTCOME_NAMES = {"ok": "ok", "fail": "failed", "info": "outcome unknown", "open": "no answer"}
FAULT_COLOR = "#7b68ee"
FAULT_TEXT = "#4b3bb0"
ANOMALY_COLOR = "#d62728"
CONTEXT_COLOR = "#444444"
TEXT_COLOR = "#1f1f1f"
MUTED_TEXT = "#555555"
FORMATS = (".png", ".svg", ".pdf")
DPI = 110


class Picture(Figure):
    """A Figure that shows itself in Jupyter even when pyplot (and its inline backend) was never
    imported: IPython falls back to ``_repr_png_``. A picture with ``tooltips`` (``{gid: text}``
    for its shapes) also shows itself as an inline SVG (``_repr_html_``): resting the pointer on
    an operation shows its call, its result and the faults active."""

    tooltips: dict[str, str] | None = None

    def _repr_png_(self) -> bytes:
        import io
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()

    def _repr_html_(self) -> str | None:
        if not self.tooltips:
            return None
        from splitbrain.viz._svg import inline_html
        return inline_html(self)


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A Figure with an Agg canvas: renders headless, shows inline in Jupyter, no pyplot state."""
    fig = Picture(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (.png, .svg or .pdf, from the suffix); returns the path. An SVG
    keeps the picture's tooltips."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"save() writes {', '.join(FORMATS)} files; {path.name!r} has suffix "
                         f"{path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".svg":
        from splitbrain.viz._svg import svg_text
        path.write_text(svg_text(fig, dpi=DPI), encoding="utf-8")
    else:
        fig.savefig(path, format=path.suffix[1:].lower(), dpi=DPI)
    return path


def short(value: Any, limit: int = 14) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finish(fig: Figure, path: str | Path | None) -> Any:
    """Return the figure, or save it and return the path when ``path`` is given."""
    return save(fig, path) if path is not None else fig
